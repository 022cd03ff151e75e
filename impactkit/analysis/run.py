"""Run a declared analysis: ``analysis.toml`` -> the results document.

The chain, one way: read -> validate (the contract is the gate) -> prepare -> a list of
registered *steps* (:data:`STEPS`), each a small function of one :class:`Context` that adds
its sections to ``ctx.results`` or leaves them out with a one-line reason
(``ctx.omit(section, reason)``, shown by the pack): estimates (the headline estimator and
those it is compared with, event study, wild bootstrap, randomization inference,
Goodman-Bacon), instrumental variables, the headline in plain terms, design checks
(balance, attrition and Lee bounds, heterogeneity, multiple outcomes), power, scale
readiness. Randomness is seeded from ``[seeds] entropy``, each procedure with its own
purpose string. No step reaches back into another's internals: what a later step needs
from an earlier one travels in ``ctx.results`` or ``ctx.scratch``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from impactkit import __version__
from impactkit.analysis import steps as _steps  # noqa: F401  (registers every step, in order)
from impactkit.analysis.context import (ESTIMATOR_LABELS, SCHEMA, SEED_PURPOSES, STEPS, Context, Step,
                                        estimator_labels, step)
from impactkit.analysis.document import load_results
from impactkit.analysis.labels import resolve_labels
from impactkit.analysis.prepare import prepare_panel
from impactkit.analysis.spec import AnalysisSpec, load_analysis
from impactkit.analysis.steps.scale import evidence_facts, scale_accounts
from impactkit.errors import CheckFailed, ImpactkitWarning, SpecError
from impactkit.provenance import sha256_file, sha256_tree
from impactkit.results import to_plain

__all__ = ["ESTIMATOR_LABELS", "STEPS", "Context", "build_context", "contract_failure", "estimator_labels",
           "evidence_facts", "execute", "input_hashes", "run_analysis", "scale_accounts", "step"]


# ------------------------------------------------------------------------------------------
# the whole chain
# ------------------------------------------------------------------------------------------
def input_hashes(spec: AnalysisSpec) -> dict[str, str]:
    """SHA-256 of every input (each partition of a partitioned dataset), and, for a dataset of
    several files, the digest of the whole (:func:`impactkit.provenance.sha256_tree`) under the
    data path as ``analysis.toml`` writes it."""
    hashes = {rel: sha256_file(path) for rel, path in spec.input_files().items()}
    parts = spec.data_files()
    if spec.data.file not in hashes and parts:  # a remote dataset (s3://...) is not hashed
        hashes[spec.data.file] = sha256_tree({rel: hashes[rel] for rel in parts})
    return dict(sorted(hashes.items()))


def refuse_personal_roles(spec: AnalysisSpec, personal: tuple[str, ...]) -> None:
    """SpecError when a design role, outcome or covariate names a personal column (values would print)."""
    from impactkit.privacy import personal_roles

    dumped = spec.model_dump(exclude={"folder"})
    roles = {f"{section}.{key}": value for section in ("design", "outcomes", "estimators", "checks")
             for key, value in (dumped.get(section) or {}).items()}
    hits = personal_roles(roles, personal)
    if hits:
        field, column = hits[0]
        raise SpecError(f"{spec.folder / 'analysis.toml'}: field '{field}' = '{column}': a personal column cannot "
                        "be a unit, subgroup, cluster, outcome or covariate (its values would reach the outputs)")


def run_analysis(analysis_dir: str | Path | AnalysisSpec,
                 progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every step an analysis declares and return the results document.

    Raises :class:`impactkit.errors.SpecError` / ``InputError`` (exit 2) for unusable
    input and :class:`impactkit.errors.CheckFailed` (exit 1) when the data fail their
    contract: no estimate is made from a panel that is not what the analysis assumes.
    This is the pandas engine; :func:`impactkit.distributed.analysis.run_analysis_on` picks the
    engine ``[engine] kind`` declares.
    """
    spec = analysis_dir if isinstance(analysis_dir, AnalysisSpec) else load_analysis(analysis_dir)
    return execute(spec, build_context, STEPS, progress)


def execute(spec: AnalysisSpec, build: Callable[[AnalysisSpec], Context], steps: list[tuple[str, Step]],
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """``build(spec)`` -> the context, then ``steps`` in order -> the checked results document
    (any engine: the Dask engine passes its own context and steps)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the numbers then do not depend on the machine's core count (and the
    # small dense algebra here runs faster without thread hand-offs).
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ImpactkitWarning)
        results = _run(build(spec), steps, progress)
    notes = [str(w.message) for w in caught if issubclass(w.category, ImpactkitWarning)]
    results["warnings"] = sorted(set(notes))
    plain = to_plain(results)
    load_results(plain)  # every section matches its typed model (docs/results-schema.json), else a bug
    return plain


def contract_failure(spec: AnalysisSpec, report) -> CheckFailed:
    """The exit-1 error of a panel that fails its contract (names the first five rules)."""
    failed = report.failed
    names = ", ".join(f"{r['rule']}({r['column']})" if r.get("column") else str(r["rule"])
                      for r in to_plain(failed.head(5)))
    return CheckFailed(f"{spec.data.file}: {len(failed)} contract rule(s) fail: {names}; "
                       f"see `impactkit validate {spec.path(spec.data.file)} --contract {spec.path(spec.data.contract)}`")


def _load(spec: AnalysisSpec):
    from impactkit.contracts import load_contract, validate
    from impactkit.io import read_table

    contract = load_contract(spec.path(spec.data.contract))
    refuse_personal_roles(spec, contract.personal_columns)
    frame = read_table(spec.path(spec.data.file), contract=contract)
    report = validate(frame, contract)
    if not report.ok:
        raise contract_failure(spec, report)
    return contract, frame, report


def build_context(spec: AnalysisSpec) -> Context:
    """Read, validate and prepare the data of ``spec``: the context every step runs on."""
    hashes = input_hashes(spec)
    contract, frame, report = _load(spec)
    panel = prepare_panel(frame, spec, never_treated_cohort=contract.panel.never_treated_cohort)
    return Context(spec=spec, panel=panel, contract=contract, report=report, hashes=hashes,
                   labels=resolve_labels(spec, contract), seed=spec.seeds.entropy)


def _run(ctx: Context, steps: list[tuple[str, Step]], progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    spec = ctx.spec
    results = ctx.results
    results["schema"] = SCHEMA
    for name, func in steps:
        if progress is not None:
            progress(name)
        func(ctx)
    results["seeds"] = {"entropy": ctx.seed, "purposes": list(SEED_PURPOSES)}
    if "scale_mc" in ctx.scratch:
        results["seeds"]["scale_mc"] = ctx.scratch["scale_mc"]
    if spec.design.weights:
        results["data"]["weights"] = {"column": spec.design.weights, "used_by": ctx.weights_used_by,
                                      "not_used_by": ctx.weights_not_used_by}
        if ctx.weights_not_used_by:
            warnings.warn(f"weights '{spec.design.weights}' not used by {', '.join(ctx.weights_not_used_by)} "
                          "(they take no weights): those are unweighted", ImpactkitWarning, stacklevel=2)
    results["omitted"] = dict(sorted(ctx.omitted.items()))
    results["provenance"] = {"impactkit_version": __version__, "inputs": ctx.hashes,
                             "analysis_folder": spec.folder.name,
                             "command": f"impactkit rerun {_shown_folder(spec.folder)}"}
    return results


def _shown_folder(folder: Path) -> str:
    """The analysis folder as a user would type it: relative to the working folder when
    inside it, else its name (results never hold absolute paths)."""
    import os

    try:
        rel = Path(os.path.relpath(folder.resolve(), Path.cwd().resolve()))
    except ValueError:
        return folder.name
    return folder.name if rel.parts[:1] == ("..",) else rel.as_posix()
