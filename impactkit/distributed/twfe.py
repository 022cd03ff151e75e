"""Two-way fixed effects and 2x2 DiD on Dask, by sufficient statistics.

The model is ``y_it = alpha_i + lambda_t + X_it' beta + e_it`` (Angrist & Pischke 2009,
*Mostly Harmless Econometrics*, eq. 5.2.6) with ``X = [D, covariates]``. With every unit in
one partition (:func:`impactkit.distributed.data.by_unit`) the unit effects are partialled
out *inside* each partition (exact one-pass within-unit demeaning), and by Frisch-Waugh-Lovell
(Lovell 1963, *JASA* 58(304)) the period effects enter as the ``T - 1`` unit-demeaned period
dummies ``D~``. Two passes over the data, no iteration, exact on balanced and unbalanced panels:

1. per partition the cross-products ``Z~' W Z~`` of ``Z~ = [y~, X~, D~]`` (a ``(1+k+T-1)``-square
   matrix), added up: the normal equations give ``beta`` and the period effects ``delta``;
   ``Gamma = (D~'WD~)^-1 D~'WX~`` gives the fully demeaned regressors ``X^ = X~ - D~ Gamma`` and
   the bread ``(X^'WX^)^-1`` (a Schur complement);
2. per partition the residuals ``u = y~ - X~ beta - D~ delta`` and the cluster score sums
   ``sum_{i in g} w X^_i u_i`` and cluster cross-products ``X^_g'W X^_g``, added up per cluster:
   CRV1 (Liang & Zeger 1986) with fixest's small-sample correction (as
   :mod:`impactkit.numerics.covariance`), and the wild cluster bootstrap of Roodman et al. (2019),
   which needs exactly these cluster sums (:func:`wild_bootstrap_from_sums`).

The pandas engine (:mod:`impactkit.did.twfe`) demeans by alternating projections on unbalanced
panels; both converge to the same least-squares solution (tested to 1e-10).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impactkit.distributed.reduce import add, map_blocks, partitions
from impactkit.errors import EstimationError, ImpactkitWarning, InputError

FEW_CLUSTERS = 42


@dataclass(frozen=True)
class TWFEColumns:
    """Column roles of a TWFE / 2x2 fit (``treated`` or ``cohort`` gives the treatment)."""

    y: str
    unit: str
    time: str
    treated: str | None = None
    cohort: str | None = None
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | None = None
    design: str = "twfe"                       # "twfe" or "2x2"
    window: tuple[float, float] | None = None  # 2x2: (pre, post) periods kept; None: all
    post_start: float | None = None            # 2x2: first post period

    def needed(self) -> list[str]:
        cols = [self.y, self.unit, self.time, self.treated, self.cohort, *self.covariates, self.weights, self.cluster]
        return list(dict.fromkeys(c for c in cols if c))

    # The three hooks below define the regression; :func:`reduce_twfe` only calls them, so another
    # within-unit estimator (Sun-Abraham's interactions, :mod:`impactkit.distributed.sa`) subclasses
    # the column roles and reuses both passes.
    def select(self, part: pd.DataFrame) -> pd.DataFrame:
        """The partition's estimation rows: outcome observed, 2x2 window applied."""
        keep = part[self.y].notna().to_numpy().copy()
        if self.window is not None:
            keep &= part[self.time].isin(list(self.window)).to_numpy()
        return part.loc[keep]

    def terms(self) -> list[str]:
        """Names of the regressors (the treatment first)."""
        return ["treated_x_post" if self.design == "2x2" else (self.treated or "treated"), *self.covariates]

    def regressors(self, rows: pd.DataFrame) -> np.ndarray:
        """The regressors ``[D, covariates]`` of the selected rows (n x k)."""
        out = np.empty((len(rows), 1 + len(self.covariates)))
        times = rows[self.time].to_numpy(dtype=float)
        if self.design == "2x2":
            cohort = pd.to_numeric(rows[self.cohort]).fillna(0).to_numpy(dtype=float)
            out[:, 0] = (cohort > 0) & (times >= self.post_start)
        elif self.treated is not None:
            out[:, 0] = rows[self.treated].to_numpy(dtype=float)
        else:
            cohort = pd.to_numeric(rows[self.cohort]).fillna(0).to_numpy(dtype=float)
            out[:, 0] = (cohort > 0) & (times >= cohort)
        for j, c in enumerate(self.covariates, start=1):
            out[:, j] = rows[c].to_numpy(dtype=float)
        return out


def _unit_demeaned(part: pd.DataFrame, cols: TWFEColumns, periods: np.ndarray):
    """(rows, Z~ = [y, X, D] demeaned within unit, weights or None)."""
    rows = cols.select(part)
    n = len(rows)
    x = cols.regressors(rows)
    k = x.shape[1]
    z = np.empty((n, 1 + k + len(periods) - 1), order="F")
    z[:, 0] = rows[cols.y].to_numpy(dtype=float)
    z[:, 1:1 + k] = x
    period_index = np.searchsorted(periods, rows[cols.time].to_numpy(dtype=float))
    dummies = z[:, 1 + k:]
    dummies[:] = 0.0
    later = period_index > 0
    dummies[np.flatnonzero(later), period_index[later] - 1] = 1.0
    w = None if cols.weights is None else rows[cols.weights].to_numpy(dtype=float)
    demean_within(z, pd.factorize(rows[cols.unit])[0], w)
    return rows, z, w


def demean_within(z: np.ndarray, codes: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Subtract from every column of ``z`` (in place) its (weighted) mean within the groups ``codes``.

    Parameters
    ----------
    z : numpy.ndarray
        (n,) or (n, p) values, changed in place.
    codes : numpy.ndarray
        Group code 0..U-1 of every row (here: the unit).
    w : numpy.ndarray or None
        Row weights.

    Returns
    -------
    numpy.ndarray
        ``z`` itself.
    """
    n_groups = int(codes.max()) + 1 if codes.size else 0
    counts = np.bincount(codes, weights=w, minlength=n_groups)
    columns = z[:, None] if z.ndim == 1 else z
    for j in range(columns.shape[1]):
        col = columns[:, j]
        sums = np.bincount(codes, weights=col if w is None else col * w, minlength=n_groups)
        col -= (sums / counts)[codes]
    return z


def _gram_part(part: pd.DataFrame, cols: TWFEColumns, periods: np.ndarray) -> dict:
    rows, z, w = _unit_demeaned(part, cols, periods)
    zw = z if w is None else z * w[:, None]
    return {"gram": zw.T @ z, "n_obs": float(len(rows))}


def _facts_part(part: pd.DataFrame, cols: TWFEColumns) -> dict:
    """Periods, units, clusters and nesting facts of one partition (small)."""
    rows = cols.select(part)
    out = {"periods": np.unique(rows[cols.time].to_numpy(dtype=float)), "n_units": int(rows[cols.unit].nunique()),
           "clusters": None, "unit_in_cluster": True, "period_cluster": {}}
    if cols.cluster:
        out["clusters"] = pd.unique(rows[cols.cluster])
        out["unit_in_cluster"] = bool((rows.groupby(cols.unit, sort=False)[cols.cluster].nunique() <= 1).all())
        per = rows.groupby(cols.time, sort=False)[cols.cluster]
        out["period_cluster"] = {float(t): (int(n), first) for (t, n), first
                                 in zip(per.nunique().items(), per.first().to_numpy())}
    for c in cols.covariates:
        missing = int(rows[c].isna().sum())
        if missing:
            raise InputError(f"column '{c}' (covariate) has {missing} missing value(s) where '{cols.y}' is observed")
    if cols.weights and (rows[cols.weights].to_numpy(dtype=float) <= 0).any():
        raise InputError(f"column '{cols.weights}' (weights) must be positive")
    return out


def _scores_part(part: pd.DataFrame, cols: TWFEColumns, periods: np.ndarray, beta: np.ndarray,
                 delta: np.ndarray, gamma: np.ndarray, with_cross: bool = True) -> pd.DataFrame:
    rows, z, w = _unit_demeaned(part, cols, periods)
    k = beta.size
    y, x, d = z[:, 0], z[:, 1:1 + k], z[:, 1 + k:]
    x_hat = x - d @ gamma
    resid = y - x @ beta - d @ delta
    if w is not None:
        root = np.sqrt(w)
        x_hat, resid = x_hat * root[:, None], resid * root
    labels = rows[cols.cluster].to_numpy() if cols.cluster else rows[cols.unit].to_numpy()
    codes, uniques = pd.factorize(labels)
    data = {}
    for i in range(k):
        data[f"s{i}"] = np.bincount(codes, weights=x_hat[:, i] * resid, minlength=len(uniques))
        for j in range(i, k if with_cross else i):
            data[f"xx{i}_{j}"] = np.bincount(codes, weights=x_hat[:, i] * x_hat[:, j], minlength=len(uniques))
    return pd.DataFrame(data, index=pd.Index(uniques, name="cluster"))


@dataclass
class ReducedTWFE:
    """What the reductions leave: coefficients, bread, per-cluster scores and cross-products."""

    terms: list[str]
    coef: np.ndarray
    bread: np.ndarray
    scores: np.ndarray          # G x k, clusters in order of first appearance (as the pandas engine)
    cross: np.ndarray           # G x k x k
    n_obs: int
    n_units: int
    n_periods: int
    df_k: int
    cluster: str | None
    extras: dict = field(default_factory=dict)

    @property
    def n_clusters(self) -> int:
        return int(self.scores.shape[0])


def reduce_twfe(frame, cols: TWFEColumns, with_cross: bool = True) -> ReducedTWFE:
    """Run the two passes on a unit-partitioned dask DataFrame (see the module docstring).

    ``with_cross=False`` skips the per-cluster ``X_g'X_g`` (only the wild bootstrap needs them;
    ``cross`` is then empty), which saves ``k (k + 1) / 2`` sums per row with many regressors."""
    parts = partitions(frame)
    facts = map_blocks(_facts_part, parts, cols)
    periods = np.unique(np.concatenate([f["periods"] for f in facts]))
    if periods.size < 2:
        raise EstimationError(f"TWFE needs at least two periods of '{cols.time}' with the outcome observed")
    n_units = sum(f["n_units"] for f in facts)
    stats = add(map_blocks(_gram_part, parts, cols, periods))
    gram, n_obs = stats["gram"], int(stats["n_obs"])
    terms = cols.terms()
    k = len(terms)
    xs, ds = slice(1, 1 + k), slice(1 + k, gram.shape[0])
    try:
        theta = np.linalg.solve(gram[1:, 1:], gram[1:, 0])
        dd_inv = np.linalg.inv(gram[ds, ds])
    except np.linalg.LinAlgError:
        raise EstimationError(f"regressors {', '.join(terms)} are collinear after removing fixed effects") from None
    beta, delta = theta[:k], theta[k:]
    gamma = dd_inv @ gram[ds, xs]
    xx_hat = gram[xs, xs] - gram[xs, ds] @ gamma
    raw = np.diag(gram[xs, xs])
    if np.any(np.diag(xx_hat) <= 1e-10 * np.maximum(raw, 1e-300)):
        raise EstimationError(f"regressor(s) of {', '.join(terms)} collinear with the fixed effects")
    bread = np.linalg.inv(xx_hat)
    per_cluster = pd.concat(map_blocks(_scores_part, parts, cols, periods, beta, delta, gamma, with_cross))
    per_cluster = per_cluster.groupby(level=0, sort=False).sum()  # first appearance, as pandas' factorize
    scores = per_cluster[[f"s{i}" for i in range(k)]].to_numpy()
    cross = np.empty((len(per_cluster), k, k) if with_cross else (0, k, k))
    for i in range(k if with_cross else 0):
        for j in range(i, k):
            cross[:, i, j] = cross[:, j, i] = per_cluster[f"xx{i}_{j}"].to_numpy()
    df_k = _fixest_df_k(k, n_units, periods.size, facts, cols)
    return ReducedTWFE(terms=terms, coef=beta, bread=bread, scores=scores, cross=cross, n_obs=n_obs,
                       n_units=n_units, n_periods=int(periods.size), df_k=df_k, cluster=cols.cluster)


def _fixest_df_k(k: int, n_units: int, n_periods: int, facts: list[dict], cols: TWFEColumns) -> int:
    """fixest's ``K`` (:func:`impactkit.numerics.covariance.fixest_df_k`) from per-partition facts:
    all fixed-effect levels minus one, minus the levels of effects nested in the cluster (one kept)."""
    k_fe = n_units + n_periods - 1
    nested_levels = nested_count = 0
    unit_nested = all(f["unit_in_cluster"] for f in facts) if cols.cluster else True
    if unit_nested:
        nested_levels += n_units
        nested_count += 1
    if cols.cluster:
        seen: dict[float, object] = {}
        period_nested = True
        for f in facts:
            for t, (count, first) in f["period_cluster"].items():
                if count > 1 or seen.setdefault(t, first) != first:
                    period_nested = False
        if period_nested:
            nested_levels += n_periods
            nested_count += 1
    return k + k_fe - nested_levels + nested_count


def crv1_from_sums(reduced: ReducedTWFE, stacklevel: int = 3) -> tuple[np.ndarray, list[str]]:
    """CRV1 covariance (Liang & Zeger 1986, fixest's small-sample correction) of every coefficient
    from the reduced cluster scores, and the few-clusters message (also warned)."""
    from impactkit.numerics.covariance import make_psd_check, sandwich

    g, n, df_k = reduced.n_clusters, reduced.n_obs, reduced.df_k
    if g < 2:
        raise EstimationError(f"clustered standard errors need at least 2 clusters; '{reduced.cluster}' has {g}")
    meat = reduced.scores.T @ reduced.scores
    vcov = sandwich(reduced.bread, meat) * (g / (g - 1.0) * ((n - 1.0) / (n - df_k)))
    messages = []
    if g < FEW_CLUSTERS:
        text = (f"only {g} clusters (< {FEW_CLUSTERS}): cluster-robust t-tests over-reject; "
                f"use result.wild_bootstrap() (MacKinnon & Webb 2018)")
        warnings.warn(text, ImpactkitWarning, stacklevel=stacklevel)
        messages.append("Warning: " + text + ".")
    if not make_psd_check(vcov):
        raise EstimationError("the covariance matrix has a non-positive variance; too few clusters "
                              "or a regressor without within-cluster variation")
    return vcov, messages


def twfe_result(reduced: ReducedTWFE, alpha: float = 0.05, unit_label: str = "unit"):
    """A :class:`impactkit.did.twfe.TWFEResult` (CRV1, fixest correction) from the reductions."""
    from impactkit.did.twfe import TWFEResult

    g, n, df_k = reduced.n_clusters, reduced.n_obs, reduced.df_k
    vcov, messages = crv1_from_sums(reduced)
    result = TWFEResult(terms=reduced.terms, coef=reduced.coef, vcov=vcov, vcov_type="CRV1", df_t=g - 1,
                        n_obs=n, n_units=reduced.n_units, n_periods=reduced.n_periods, n_clusters=g,
                        cluster=[reduced.cluster or unit_label], alpha=alpha,
                        design="twfe" if reduced.terms[0] != "treated_x_post" else "2x2", messages=messages,
                        _df_k=df_k)
    return result


def estimate_twfe(frame, *, y: str, unit: str, time: str, treated: str | None = None, cohort: str | None = None,
                  covariates: Sequence[str] = (), weights: str | None = None, cluster: str | None = None,
                  alpha: float = 0.05):
    """TWFE DiD ``y ~ treated + covariates | unit + time`` on a dask DataFrame, CRV1 by ``cluster``
    (default: the unit), same numbers as :func:`impactkit.did.twfe.estimate_twfe`.

    Returns ``(TWFEResult, ReducedTWFE)``; the second feeds :func:`wild_bootstrap_from_sums`.
    """
    from impactkit.distributed.data import by_unit

    if treated is None and cohort is None:
        raise InputError("give the treatment as 'cohort' (first treated period) or 'treated' (0/1)")
    cols = TWFEColumns(y=y, unit=unit, time=time, treated=treated, cohort=cohort,
                       covariates=tuple(covariates), weights=weights, cluster=cluster)
    frame = by_unit(frame[cols.needed()], unit)
    reduced = reduce_twfe(frame, cols)
    return twfe_result(reduced, alpha, unit_label=unit), reduced


def estimate_2x2(frame, *, y: str, unit: str, time: str, cohort: str, periods: tuple[float, float],
                 covariates: Sequence[str] = (), weights: str | None = None, cluster: str | None = None,
                 alpha: float = 0.05):
    """Canonical 2x2 DiD (Card & Krueger 1994) on the ``periods = (pre, post)`` window: the units
    with ``cohort > 0`` (one adoption period) against never-treated units, unit and period effects
    absorbed; same numbers as :func:`impactkit.did.twfe.estimate_2x2` with ``periods=``."""
    from impactkit.distributed.data import by_unit

    pre, post = float(periods[0]), float(periods[1])
    if not pre < post:
        raise InputError(f"periods must be (pre, post) with pre < post, got {periods!r}")
    cols = TWFEColumns(y=y, unit=unit, time=time, cohort=cohort, covariates=tuple(covariates), weights=weights,
                       cluster=cluster, design="2x2", window=(pre, post), post_start=post)
    frame = by_unit(frame[cols.needed()], unit)
    cohorts = frame[cohort].dropna().unique().compute()
    treated_cohorts = sorted(float(c) for c in cohorts if c > 0)
    if len(treated_cohorts) > 1:
        raise EstimationError(f"2x2 needs one adoption period; the treated units of '{unit}' start in "
                              f"{len(treated_cohorts)} periods; use method='cs'")
    reduced = reduce_twfe(frame, cols)
    return twfe_result(reduced, alpha, unit_label=unit), reduced


def wild_bootstrap_from_sums(reduced: ReducedTWFE, *, B: int = 9999, weights: str = "rademacher",
                             seed: int | None = None, alpha: float = 0.05, param_index: int = 0,
                             r: float = 0.0, impose_null: bool = True):
    """Wild cluster bootstrap (WCR/WCU) of one coefficient from the reduced cluster sums.

    The algorithm of Roodman, MacKinnon, Nielsen & Webb (2019, *Stata Journal* 19(1), sec. 3)
    needs only ``X_g'X_g`` and ``X_g'u_g`` per cluster: exactly what :func:`reduce_twfe` returns,
    so the draws (same ``impactkit.seeds`` stream, clusters in order of first appearance, as the pandas engine
    passes them) and the
    statistic equal :func:`impactkit.did.wild.wild_cluster_bootstrap` on the pandas engine.
    """
    from impactkit.did import wild

    j = int(param_index)
    g = reduced.n_clusters
    if int(B) < wild.MIN_DRAWS:
        raise InputError(f"B={B}: at least {wild.MIN_DRAWS} bootstrap draws are required")
    if weights not in wild.WEIGHT_TYPES:
        raise InputError(f"weights={weights!r}: must be one of {', '.join(wild.WEIGHT_TYPES)}")
    enumerate_all = (weights == "rademacher" and g <= wild.MAX_ENUMERATION_CLUSTERS and 2 ** g <= B)
    draws = wild.enumerate_rademacher(g) if enumerate_all else wild.draw_weights(B, g, weights, seed)
    xx_g = reduced.cross
    xtx_inv = np.linalg.inv(xx_g.sum(axis=0))
    xtx_inv = 0.5 * (xtx_inv + xtx_inv.T)
    s0 = reduced.scores
    a = xtx_inv[:, j]
    ssc = wild.crv1_factor(reduced.n_obs, reduced.df_k, g, True)
    c0 = s0 @ a
    std_error = math.sqrt(ssc * float(c0 @ c0))
    s1 = (xx_g @ a) / xtx_inv[j, j] if impose_null else np.zeros_like(s0)
    c1 = s1 @ a
    w = (xx_g @ a) @ xtx_inv
    moments = wild.bootstrap_moments(draws, c0, c1, w @ s0.T, w @ s1.T, ssc)
    estimate = float(reduced.coef[j])

    def p_at(value: float) -> float:
        d = estimate - value
        return wild.bootstrap_p_value(d / std_error, moments.t_stats(d), "symmetric")

    d_obs = estimate - float(r)
    t_boot = moments.t_stats(d_obs)
    p_value = wild.bootstrap_p_value(d_obs / std_error, t_boot, "symmetric")
    conf_low, conf_high = wild.invert_p_value(p_at, estimate, std_error, alpha)
    return wild.WildBootstrapResult(
        term=reduced.terms[j], estimate=estimate, std_error=std_error, t_stat=float(d_obs / std_error),
        p_value=p_value, conf_low=float(conf_low), conf_high=float(conf_high), r=float(r), alpha=float(alpha),
        n_draws=int(draws.shape[0]), n_clusters=g, n_obs=reduced.n_obs, weights=weights,
        impose_null=bool(impose_null), full_enumeration=bool(enumerate_all), p_value_type="symmetric",
        small_sample=True, seed=None if seed is None else int(seed), t_boot=t_boot)
