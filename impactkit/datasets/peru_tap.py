"""The simulated Peru TAP household panel: a documented, seeded data-generating process.

There is no public survey file for CARE Peru's Technical Assistance Provider (TAP)
programme in Puno (CARE International UK, *Adding Value to Value Chains*, the Peru case).
This module simulates a household income panel shaped like the report's facts, with
**known true effects**, so that every estimator can be checked against the truth.

Data-generating process (all draws from ``impactkit.seeds.rng(seed, "peru-tap")``)
---------------------------------------------------------------------------------
Units and design
    * 2,250 livestock-producing households in 75 communities of 8 Puno districts
      (community sizes 15 + multinomial, mean 30).
    * Six annual survey waves, 2008-2013.
    * Staggered rollout at community level, assigned at random: 20 communities receive
      TAPs in 2010, 20 in 2011, 20 in 2012 (cohort = first treated wave), 15 only after
      the study (cohort 0, never treated within the panel). Cohort 2010 has two
      pre-periods (2008, 2009).
    * 109 TAPs: one per served community, the 49 others allocated by community size.

Potential income without TAPs (PEN per household per year, 2008 soles)
    ``log Y0_it = mu + 0.35 log(1 + herd0_i) - 0.10 woman_head_i + c_j + a_i + d_t + e_it``
    with community effect ``c_j ~ N(0, 0.25^2)``, household effect ``a_i ~ N(0, 0.40^2)``,
    wave effects ``d_t`` = 0, .03, -.05 (2010 frost), .04, .06, .08, and AR(1) shocks
    ``e_it = 0.3 e_i,t-1 + u_it``, ``u_it ~ N(0, 0.30^2)``. ``mu`` is calibrated so that
    87% of households are below the poverty line (PEN 9,000 per household-year) at
    baseline, as in the report ("87% of producers lived below the poverty line").

Take-up (one-sided non-compliance)
    Once a community is served, a household uses TAP services with probability
    ``logistic(0.4 + 0.35 log(1 + herd0_i) - 0.25 woman_head_i)`` (about 0.7 on average);
    users are fixed household types (compliers); no one uses TAPs before the rollout.

True effects (for users only, multiplicative on income)
    Income multiplier by event time ``e = wave - cohort``: 1.8 (e = 0), 3.0 (e = 1),
    4.5 (e >= 2), i.e. **+350% within two years**, growing with exposure. Women-headed
    users gain 90% of that percentage gain (multiplier ``1 + 0.9 (m - 1)``).
    Secondary outcomes for users: veterinary services +3 per year, milk yield x1.4,
    calf mortality -0.08; herd size has **no** effect (a true null for multiple testing).

Survey realism
    Permanent attrition with hazard 3% per wave after baseline (independent of arm),
    income missing for 2% of interviews and milk yield for 3% (item non-response),
    community-level survey weights (households represented per sampled household).
    Personal data columns (``head_name``, ``dni``, ``phone``) are synthetic and exist to
    test that personal data never reaches an output.

The truth returned with ``return_truth=True`` holds, per observed row, the household's
log-income effect ``tau_log`` (0 when not using TAPs), its untreated income ``income0``,
and complier status, so that any estimand (ITT or TOT, any aggregation) can be computed
on the realised sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from impactkit.seeds import rng as make_rng

PERU_TAP_SEED = 2_250_109
N_HOUSEHOLDS = 2_250
N_COMMUNITIES = 75
N_TAPS = 109
WAVES = (2008, 2009, 2010, 2011, 2012, 2013)
COHORT_SIZES = {2010: 20, 2011: 20, 2012: 20, 0: 15}
POVERTY_LINE_PEN = 9_000.0
BASELINE_POOR_SHARE = 0.87
INCOME_MULTIPLIER = {0: 1.8, 1: 3.0, 2: 4.5}  # event time -> multiplier; e >= 2 uses 4.5
WOMEN_GAIN_FACTOR = 0.9
WAVE_EFFECTS = {2008: 0.0, 2009: 0.03, 2010: -0.05, 2011: 0.04, 2012: 0.06, 2013: 0.08}
ATTRITION_HAZARD = 0.03
INCOME_MISSING_SHARE = 0.02
MILK_MISSING_SHARE = 0.03
EFFECT_VET_SERVICES = 3.0
EFFECT_MILK_MULTIPLIER = 1.4
EFFECT_CALF_MORTALITY = -0.08

DISTRICTS = ("Azangaro", "Ayaviri", "Lampa", "Huancane", "Macusani", "Ilave", "Juli", "Putina")
_SURNAMES = ("Quispe", "Mamani", "Condori", "Huanca", "Apaza", "Choque", "Ccama", "Flores",
             "Ticona", "Pari", "Coaquira", "Yucra", "Calcina", "Chambi", "Huaman", "Turpo")
_GIVEN = ("Rosa", "Juana", "Maria", "Lucia", "Teodora", "Justina", "Felipa", "Marcelina",
          "Juan", "Pedro", "Mario", "Celestino", "Alberto", "Hilario", "Victor", "Santos")
_NOTES = ("", "", "", "", "", "", "Visita reprogramada", "Informante: conyuge",
          "Hogar ausente en primera visita", "Ganado en pastoreo lejano")

PERSONAL_COLUMNS = ("head_name", "dni", "phone")


@dataclass(frozen=True)
class PeruTapTruth:
    """The known truth behind a simulated panel.

    Attributes
    ----------
    effects: frame keyed by ``household_id, wave`` (the observed rows) with ``tau_log``
        (true effect on log income, 0 when not using TAPs), ``income0`` (untreated
        income), ``complier`` and the effects on secondary outcomes.
    multipliers: income multiplier for users by event time (men-headed households).
    poverty_line: the household-year poverty line used to calibrate the baseline.
    seed: the seed that generated the panel.
    """

    effects: pd.DataFrame
    multipliers: dict[int, float] = field(default_factory=lambda: dict(INCOME_MULTIPLIER))
    women_gain_factor: float = WOMEN_GAIN_FACTOR
    poverty_line: float = POVERTY_LINE_PEN
    seed: int = PERU_TAP_SEED

    def att_gt(self, panel: pd.DataFrame, outcome: str = "log_income", population: str = "itt") -> pd.DataFrame:
        """True ATT(g, t) on the realised sample.

        ``population="itt"`` averages over all households of served communities (the
        estimand of a DiD on the community rollout); ``"tot"`` over TAP users only.
        ``outcome`` is ``"log_income"`` (mean of ``tau_log``) or ``"income"`` (mean
        level gain ``income - income0``), computed on rows with an observed income.
        """
        merged = panel.merge(self.effects, on=["household_id", "wave"], how="left", validate="one_to_one")
        merged = merged[(merged["cohort"] > 0) & merged["income"].notna()]
        if population == "tot":
            merged = merged[merged["complier"] == 1]
        elif population != "itt":
            raise ValueError("population must be 'itt' or 'tot'")
        if outcome == "log_income":
            merged = merged.assign(effect=merged["tau_log"])
        elif outcome == "income":
            merged = merged.assign(effect=merged["income"] - merged["income0"])
        else:
            raise ValueError("outcome must be 'log_income' or 'income'")
        table = (merged.groupby(["cohort", "wave"], sort=True)["effect"]
                 .agg(["mean", "size"]).reset_index()
                 .rename(columns={"cohort": "group", "wave": "time", "mean": "att", "size": "n"}))
        return table

    def event_time_multiplier(self, event_time: int, woman_head: bool = False) -> float:
        """Income multiplier for a TAP user at ``event_time`` (0 before the rollout)."""
        if event_time < 0:
            return 1.0
        m = self.multipliers[min(event_time, 2)]
        return 1.0 + self.women_gain_factor * (m - 1.0) if woman_head else m


def _community_frame(gen: np.random.Generator) -> pd.DataFrame:
    sizes = 15 + gen.multinomial(N_HOUSEHOLDS - 15 * N_COMMUNITIES, np.full(N_COMMUNITIES, 1 / N_COMMUNITIES))
    cohorts = np.concatenate([np.full(k, g) for g, k in COHORT_SIZES.items()])
    cohorts = gen.permutation(cohorts)
    served = cohorts > 0
    extra = gen.multinomial(N_TAPS - int(served.sum()), sizes[served] / sizes[served].sum())
    n_taps = np.zeros(N_COMMUNITIES, dtype=np.int64)
    n_taps[served] = 1 + extra
    district = gen.integers(0, len(DISTRICTS), N_COMMUNITIES)
    return pd.DataFrame({
        "community_id": [f"C{j + 1:02d}" for j in range(N_COMMUNITIES)],
        "district": [DISTRICTS[d] for d in district],
        "cohort": cohorts.astype(np.int64),
        "n_taps": n_taps,
        "altitude_m": np.round(gen.uniform(3_800, 4_600, N_COMMUNITIES)).astype(np.int64),
        "community_effect": gen.normal(0.0, 0.25, N_COMMUNITIES),
        "weight": np.round(gen.uniform(1.5, 4.0, N_COMMUNITIES), 3),
        "size": sizes,
    })


def _household_frame(gen: np.random.Generator, communities: pd.DataFrame) -> pd.DataFrame:
    community_index = np.repeat(np.arange(N_COMMUNITIES), communities["size"].to_numpy())
    n = community_index.size
    woman_head = (gen.random(n) < 0.28).astype(np.int64)
    herd0 = gen.negative_binomial(3, 3 / (3 + 6.0), n).astype(np.int64)
    p_use = 1 / (1 + np.exp(-(0.4 + 0.35 * np.log1p(herd0) - 0.25 * woman_head)))
    surname1 = gen.integers(0, len(_SURNAMES), n)
    surname2 = gen.integers(0, len(_SURNAMES), n)
    given = gen.integers(0, len(_GIVEN), n)
    dni = gen.integers(10_000_000, 99_999_999, n)
    phone = gen.integers(900_000_000, 999_999_999, n)
    frame = pd.DataFrame({
        "household_id": [f"PE-{i + 1:04d}" for i in range(n)],
        "community_index": community_index,
        "woman_head": woman_head,
        "household_size": 1 + gen.poisson(3.2, n),
        "head_age_baseline": np.clip(np.round(gen.normal(47, 12, n)), 18, 90).astype(np.int64),
        "herd0": herd0,
        "complier": (gen.random(n) < p_use).astype(np.int64),
        "household_effect": gen.normal(0.0, 0.40, n),
        "head_name": [f"{_GIVEN[g]} {_SURNAMES[a]} {_SURNAMES[b]}" for g, a, b in zip(given, surname1, surname2)],
        "dni": [f"{d:08d}" for d in dni],
        "phone": [f"{p:09d}" for p in phone],
    })
    return frame


def simulate_peru_tap(seed: int = PERU_TAP_SEED, *, return_truth: bool = False):
    """Simulate the Peru TAP household panel (see the module docstring for the DGP).

    Parameters
    ----------
    seed:
        Seed of the data-generating process; the same seed gives a bit-identical frame.
    return_truth:
        Also return a :class:`PeruTapTruth` with the true effects on the realised sample.

    Returns
    -------
    pandas.DataFrame (and ``PeruTapTruth``)
        One row per household and wave that was interviewed, sorted by
        ``household_id, wave``.
    """
    gen = make_rng(seed, "peru-tap")
    communities = _community_frame(gen)
    households = _household_frame(gen, communities)
    n, n_waves = len(households), len(WAVES)
    waves = np.asarray(WAVES)

    comm = communities.iloc[households["community_index"].to_numpy()].reset_index(drop=True)
    cohort = comm["cohort"].to_numpy()
    # --- untreated log income ------------------------------------------------------
    shocks = np.empty((n, n_waves))
    innovations = gen.normal(0.0, 0.30, (n, n_waves))
    shocks[:, 0] = innovations[:, 0] / np.sqrt(1 - 0.3**2)
    for t in range(1, n_waves):
        shocks[:, t] = 0.3 * shocks[:, t - 1] + innovations[:, t]
    structural = (0.35 * np.log1p(households["herd0"].to_numpy())
                  - 0.10 * households["woman_head"].to_numpy()
                  + comm["community_effect"].to_numpy()
                  + households["household_effect"].to_numpy())
    log_y0_no_mu = structural[:, None] + np.array([WAVE_EFFECTS[w] for w in WAVES])[None, :] + shocks
    mu = np.log(POVERTY_LINE_PEN) - np.quantile(log_y0_no_mu[:, 0], BASELINE_POOR_SHARE)
    log_y0 = mu + log_y0_no_mu

    # --- treatment and effects ------------------------------------------------------
    event_time = waves[None, :] - cohort[:, None]
    served = (cohort[:, None] > 0) & (event_time >= 0)
    use = served & (households["complier"].to_numpy()[:, None] == 1)
    multiplier = np.select([event_time == 0, event_time == 1, event_time >= 2],
                           [INCOME_MULTIPLIER[0], INCOME_MULTIPLIER[1], INCOME_MULTIPLIER[2]], 1.0)
    women = households["woman_head"].to_numpy()[:, None] == 1
    multiplier = np.where(women, 1.0 + WOMEN_GAIN_FACTOR * (multiplier - 1.0), multiplier)
    tau_log = np.where(use, np.log(multiplier), 0.0)
    income0 = np.exp(log_y0)
    income = np.exp(log_y0 + tau_log)

    # --- secondary outcomes ---------------------------------------------------------
    herd0 = households["herd0"].to_numpy()[:, None]
    herd_size = np.maximum(0, herd0 + gen.integers(-1, 2, (n, n_waves)) * (waves[None, :] > WAVES[0]))
    vet0 = gen.poisson(0.3 + 0.05 * herd0, (n, n_waves)).astype(float)
    vet_services = vet0 + np.where(use, gen.poisson(EFFECT_VET_SERVICES, (n, n_waves)), 0)
    milk0 = np.exp(np.log(2.5) + 0.2 * np.log1p(herd0) + gen.normal(0, 0.35, (n, n_waves)))
    milk = milk0 * np.where(use, EFFECT_MILK_MULTIPLIER, 1.0)
    calf0 = np.clip(0.25 + gen.normal(0, 0.07, (n, n_waves)), 0.0, 1.0)
    calf = np.clip(calf0 + np.where(use, EFFECT_CALF_MORTALITY, 0.0), 0.0, 1.0)

    # --- attrition and item non-response -------------------------------------------
    exit_draw = gen.random((n, n_waves))
    exit_draw[:, 0] = 1.0
    present = np.cumprod(exit_draw >= ATTRITION_HAZARD, axis=1).astype(bool)
    income_missing = gen.random((n, n_waves)) < INCOME_MISSING_SHARE
    milk_missing = gen.random((n, n_waves)) < MILK_MISSING_SHARE
    notes = gen.integers(0, len(_NOTES), (n, n_waves))

    rows = pd.DataFrame({
        "household_id": np.repeat(households["household_id"].to_numpy(), n_waves),
        "wave": np.tile(waves, n).astype(np.int64),
        "community_id": np.repeat(comm["community_id"].to_numpy(), n_waves),
        "district": np.repeat(comm["district"].to_numpy(), n_waves),
        "cohort": np.repeat(cohort, n_waves).astype(np.int64),
        "treated": served.ravel().astype(np.int64),
        "tap_use": use.ravel().astype(np.int64),
        "n_taps": np.repeat(comm["n_taps"].to_numpy(), n_waves),
        "income": np.where(income_missing, np.nan, np.round(income, 2)).ravel(),
        "milk_litres_day": np.where(milk_missing, np.nan, np.round(milk, 3)).ravel(),
        "vet_services": vet_services.ravel().astype(np.int64),
        "calf_mortality": np.round(calf, 4).ravel(),
        "herd_size": herd_size.ravel().astype(np.int64),
        "woman_head": np.repeat(households["woman_head"].to_numpy(), n_waves),
        "household_size": np.repeat(households["household_size"].to_numpy(), n_waves).astype(np.int64),
        "head_age_baseline": np.repeat(households["head_age_baseline"].to_numpy(), n_waves),
        "altitude_m": np.repeat(comm["altitude_m"].to_numpy(), n_waves),
        "weight": np.repeat(comm["weight"].to_numpy(), n_waves),
        "head_name": np.repeat(households["head_name"].to_numpy(), n_waves),
        "dni": np.repeat(households["dni"].to_numpy(), n_waves),
        "phone": np.repeat(households["phone"].to_numpy(), n_waves),
        "notes": np.asarray(_NOTES, dtype=object)[notes].ravel(),
    })
    keep = present.ravel()
    truth_rows = pd.DataFrame({
        "household_id": rows["household_id"].to_numpy(),
        "wave": rows["wave"].to_numpy(),
        "tau_log": tau_log.ravel(),
        "income0": income0.ravel(),
        "complier": np.repeat(households["complier"].to_numpy(), n_waves),
        "effect_vet_services": (vet_services - vet0).ravel(),
        "effect_milk_log": np.where(use, np.log(EFFECT_MILK_MULTIPLIER), 0.0).ravel(),
        "effect_calf_mortality": (calf - calf0).ravel(),
    })
    panel = rows.loc[keep].reset_index(drop=True)
    for col in ("household_id", "community_id", "district", "head_name", "dni", "phone", "notes"):
        panel[col] = panel[col].astype("string")
    if not return_truth:
        return panel
    truth = PeruTapTruth(effects=truth_rows.loc[keep].reset_index(drop=True), seed=seed)
    return panel, truth


def write_peru_tap(path, seed: int = PERU_TAP_SEED):
    """Write the simulated panel as Parquet (zstd), deterministically and atomically."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from impactkit.atomic import write_bytes

    panel = simulate_peru_tap(seed)
    table = pa.Table.from_pandas(panel, preserve_index=False)
    table = table.replace_schema_metadata({"impactkit.dataset": "peru_tap", "impactkit.seed": str(seed)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", use_dictionary=True, write_statistics=True)
    return write_bytes(path, buffer.getvalue())
