"""``impactkit pin`` and ``impactkit rerun``: a reviewer gets the same numbers, or learns why not.

The verdict is about numbers, never about the machine. ``pin(analysis_dir)`` runs the analysis
and writes ``analysis.lock.json`` holding

- ``inputs``: SHA-256 of every input the numbers depend on (analysis.toml, data, contract,
  portfolio and intervention files, cost accounts), keyed by their path relative to the folder;
- ``presentation``: SHA-256 of the pack templates (they shape how numbers are shown, not the
  numbers: a change is reported, never counted as drift);
- ``impactkit`` (version, source hash, git commit) and ``environment`` (Python, CPU, BLAS
  library, kernel and threads, impactkit's run-time packages): provenance, shown, never gated;
- ``seeds``: the ``numpy.random.SeedSequence`` entropy and the purposes drawn from it;
- ``numbers``: every reported number at full precision (:mod:`impactkit.pin.numbers`) and
  ``numbers_digest``, their SHA-256, so that a hand-edited number or digest is detected.

``rerun(analysis_dir)`` checks the lock's form, the seed, the inputs' hashes (a changed byte is
exit 2 naming the file and both hashes) and the lock's digest, re-executes the analysis from
scratch in a temporary folder and compares every number within the tolerances that
``analysis.toml`` declares (``[pin]``; the lock's own copy of them is ignored, so a hand-edited
lock cannot widen them). Whether the numbers are also bit-identical is reported as a fact.
With ``twice=True`` the analysis runs in two fresh processes with 1 and 2 BLAS threads, and
numbers that differ between the two runs (non-determinism) are reported apart from drift.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from impactkit.analysis import load_analysis
from impactkit.distributed.analysis import run_analysis_on as run_analysis
from impactkit.atomic import dumps_json, write_text
from impactkit.errors import InputError
from impactkit.pin.numbers import (Comparison, Tolerance, TolerancePolicy, compare_numbers, flatten_numbers,
                                   numbers_digest)
from impactkit.analysis.personal import analysis_personal_values
from impactkit.privacy import guard_text
from impactkit.provenance import environment, impactkit_identity, sha256_file, sha256_text

LOCK_FILE = "analysis.lock.json"
LOCK_VERSION = 2
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class _LockModel(BaseModel):
    """The form a lock must have before anything in it is trusted."""

    model_config = ConfigDict(extra="allow")
    lock_version: int
    analysis: str
    inputs: dict[str, str]
    presentation: dict[str, str] = {}
    impactkit: dict[str, Any]
    environment: dict[str, Any]
    seeds: dict[str, Any]
    numbers: dict[str, float | int | None]
    numbers_digest: str


@dataclass
class PinReport:
    lock_path: Path
    n_numbers: int
    written: bool = True
    changed_inputs: list[dict[str, Any]] = field(default_factory=list)
    comparison: Comparison | None = None
    previous: bool = False

    @property
    def needs_repin(self) -> bool:
        """A new lock is needed: no lock, an input changed, or a number moved beyond tolerance."""
        return not self.previous or bool(self.changed_inputs) or not (self.comparison and self.comparison.ok)


@dataclass
class RerunReport:
    n_numbers: int
    comparison: Comparison
    tolerances: dict[str, Any]
    environment_differences: list[dict[str, Any]]
    presentation_changes: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    between_runs: Comparison | None = None

    @property
    def ok(self) -> bool:
        return self.comparison.ok and (self.between_runs is None or self.between_runs.ok)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        """The full comparison, JSON-ready (``rerun --json``)."""
        def block(c: Comparison) -> dict[str, Any]:
            return {"ok": c.ok, "bit_identical": c.bit_identical, "n_numbers": c.n_numbers,
                    "n_differing": len(c.differing), "n_beyond_tolerance": len(c.beyond),
                    "max_abs_difference": c.max_abs, "max_rel_difference": c.max_rel,
                    "beyond_tolerance": c.beyond, "differing": c.differing}
        return {"ok": self.ok, "against_lock": block(self.comparison), "tolerances": self.tolerances,
                "environment_differences": self.environment_differences,
                "presentation_changes": self.presentation_changes, "runs": self.runs,
                "between_runs": None if self.between_runs is None else block(self.between_runs)}


# ------------------------------------------------------------------------------------------
# the lock
# ------------------------------------------------------------------------------------------
def _hashes(files: dict[str, Path]) -> dict[str, str]:
    return {rel: sha256_file(path) for rel, path in files.items()}


def tolerance_policy(spec) -> TolerancePolicy:
    """The tolerances ``analysis.toml`` declares, as a policy over quantity names."""
    pin = spec.pin
    monte_carlo = ("monte_carlo", tuple(pin.monte_carlo), Tolerance(pin.monte_carlo_rtol, pin.monte_carlo_atol))
    return TolerancePolicy(Tolerance(pin.rtol, pin.atol), (monte_carlo,))


def build_lock(spec, results: dict[str, Any]) -> dict[str, Any]:
    numbers = flatten_numbers(results)
    return {
        "lock_version": LOCK_VERSION,
        "analysis": spec.analysis.name,
        "inputs": _hashes(spec.input_files()),
        "presentation": _hashes(spec.presentation_files()),
        "impactkit": impactkit_identity(),
        "environment": environment(),
        "seeds": results.get("seeds", {"entropy": spec.seeds.entropy}),
        "tolerances": spec.pin.model_dump(),
        "results_sha256": sha256_text(dumps_json(results)),
        "numbers": numbers,
        "numbers_digest": numbers_digest(numbers),
    }


def read_lock(folder: Path) -> dict[str, Any]:
    """The lock of ``folder``, checked for form; unusable locks are :class:`InputError` (exit 2)."""
    path = folder / LOCK_FILE
    if not path.is_file():
        raise InputError(f"{path}: no lock (run `impactkit pin {folder}` first)")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: not valid JSON (truncated or edited?): {exc or 'nested too deeply'}") from None
    if not isinstance(lock, dict):
        raise InputError(f"{path}: malformed lock: the top level must be an object, not {type(lock).__name__}")
    try:
        _LockModel.model_validate(lock)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{path}: malformed lock: {where}: {first['msg']} "
                         f"({exc.error_count()} problem(s); re-pin with `impactkit pin {folder}`)") from None
    return lock


def _fresh_numbers(spec) -> dict[str, Any]:
    """Run the analysis from a temporary copy of its inputs and flatten its numbers."""
    with tempfile.TemporaryDirectory(prefix="impactkit-rerun-") as tmp:
        copy = _copy_inputs(spec, Path(tmp))
        return flatten_numbers(run_analysis(copy))


def pin(analysis_dir: str | Path, *, check: bool = False) -> PinReport:
    """Run the analysis and (over)write its lock; report what changed against the old one.

    With ``check=True`` nothing is written: the report says whether a re-pin is needed (an
    input changed, or a number moved beyond the declared tolerance).
    """
    folder = Path(analysis_dir)
    spec = load_analysis(folder)
    results = run_analysis(folder)
    lock = build_lock(spec, results)
    previous = None
    if (folder / LOCK_FILE).is_file():
        try:
            previous = read_lock(folder)
        except InputError:
            previous = None
    guard_text(dumps_json(lock), analysis_personal_values(spec), folder / LOCK_FILE)  # impactkit.privacy
    report = PinReport(lock_path=folder / LOCK_FILE, n_numbers=len(lock["numbers"]), written=not check,
                       previous=previous is not None)
    if previous:
        report.changed_inputs = _changed(previous["inputs"], lock["inputs"])
        report.comparison = compare_numbers(previous["numbers"], lock["numbers"], tolerance_policy(spec))
    if not check:
        write_text(folder / LOCK_FILE, dumps_json(lock))
    return report


def _changed(before: dict[str, str], after: dict[str, str]) -> list[dict[str, Any]]:
    return [{"input": rel, "pinned": before.get(rel), "now": after.get(rel)}
            for rel in sorted(set(before) | set(after)) if before.get(rel) != after.get(rel)]


def _check_inputs(spec, lock: dict[str, Any]) -> None:
    folder = spec.folder
    pinned_seed = (lock.get("seeds") or {}).get("entropy")
    if pinned_seed is not None and pinned_seed != spec.seeds.entropy:
        raise InputError(f"{folder / 'analysis.toml'}: seed changed: [seeds] entropy pinned {pinned_seed}, now {spec.seeds.entropy}")
    changes = []
    for row in _changed(lock["inputs"], _hashes(spec.input_files())):
        rel, before, after = row["input"], row["pinned"], row["now"]
        if after is None:
            changes.append(f"{rel} is missing (pinned sha256 {before})")
        elif before is None:
            changes.append(f"{rel} is new (sha256 {after}, not in the lock)")
        else:
            changes.append(f"{rel} changed: pinned sha256 {before}, now {after}")
    if changes:
        raise InputError("input changed since the pin: " + "; ".join(changes))


def _check_digest(folder: Path, lock: dict[str, Any]) -> None:
    computed = numbers_digest(lock["numbers"])
    if computed != lock["numbers_digest"]:
        raise InputError(f"{folder / LOCK_FILE}: the lock was edited by hand: numbers_digest records "
                         f"{lock['numbers_digest']}, its numbers hash to {computed} "
                         f"(re-pin with `impactkit pin {folder}`)")


def environment_differences(lock: dict[str, Any], now: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows ``(what, pinned, now)`` where this machine differs from the lock: impactkit's version,
    source and commit, Python, platform, CPU, BLAS (library, version, kernel, threads) and
    impactkit's run-time packages. Information, never a verdict."""
    now = now or {"impactkit": impactkit_identity(), "environment": environment()}
    rows = []
    pinned_ik, now_ik = lock.get("impactkit") or {}, now["impactkit"]
    for key in ("version", "source_sha256", "git_commit"):
        if pinned_ik.get(key) != now_ik.get(key):
            rows.append({"what": f"impactkit {key.replace('_', ' ')}", "pinned": pinned_ik.get(key), "now": now_ik.get(key)})
    pinned_env, now_env = lock.get("environment") or {}, now["environment"]
    for key in ("python", "platform", "machine", "cpu"):
        if key in pinned_env and pinned_env.get(key) != now_env.get(key):
            rows.append({"what": key, "pinned": pinned_env.get(key), "now": now_env.get(key)})
    if "blas" in pinned_env and pinned_env.get("blas") != now_env.get("blas"):
        rows.append({"what": "BLAS", "pinned": _blas_words(pinned_env.get("blas")), "now": _blas_words(now_env.get("blas"))})
    before, after = pinned_env.get("packages") or {}, now_env.get("packages") or {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            rows.append({"what": name, "pinned": before.get(name), "now": after.get(name)})
    return rows


def _blas_words(blas: Any) -> str:
    """``openblas 0.3.31 SkylakeX x2`` for each library (threads after the x)."""
    if not isinstance(blas, list):
        return str(blas)
    return "; ".join(" ".join(str(b.get(k)) for k in ("internal_api", "version", "architecture") if b.get(k))
                     + (f" x{b['num_threads']}" if b.get("num_threads") else "") for b in blas if isinstance(b, dict))


def _copy_inputs(spec, destination: Path) -> Path:
    """Copy every input into ``destination`` keeping their relative layout; return the copy's folder."""
    files = list(spec.input_files().values())
    root = Path(os.path.commonpath([str(spec.folder.resolve())] + [str(p.resolve()) for p in files]))
    for path in files:
        target = destination / path.resolve().relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return destination / spec.folder.resolve().relative_to(root)


def _run_in_fresh_process(folder: Path, out: Path, threads: int) -> dict[str, Any]:
    """Run the analysis in a new Python process with ``threads`` BLAS/OpenMP threads."""
    env = dict(os.environ, **{name: str(threads) for name in THREAD_VARIABLES})
    done = subprocess.run([sys.executable, "-m", "impactkit.pin.worker", str(folder), str(out)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InputError(f"{folder}: the analysis failed in a fresh process with {threads} thread(s): {last}")
    return json.loads(out.read_text(encoding="utf-8"))


def rerun(analysis_dir: str | Path, *, twice: bool = False) -> RerunReport:
    """Verify a pinned analysis (see the module docstring). Raises InputError for exit 2."""
    folder = Path(analysis_dir)
    spec = load_analysis(folder)
    lock = read_lock(folder)
    _check_inputs(spec, lock)
    _check_digest(folder, lock)
    policy = tolerance_policy(spec)
    presentation = _changed(lock.get("presentation") or {}, _hashes(spec.presentation_files()))
    runs: list[dict[str, Any]] = []
    between = None
    if twice:
        with tempfile.TemporaryDirectory(prefix="impactkit-twice-") as tmp:
            copy = _copy_inputs(spec, Path(tmp) / "inputs")
            runs = [_run_in_fresh_process(copy, Path(tmp) / f"run{threads}.json", threads) for threads in (1, 2)]
        numbers = runs[0]["numbers"]
        between = compare_numbers(runs[0]["numbers"], runs[1]["numbers"], policy)
        comparison = compare_numbers(lock["numbers"], numbers, policy).merge(
            compare_numbers(lock["numbers"], runs[1]["numbers"], policy))
    else:
        numbers = _fresh_numbers(spec)
        comparison = compare_numbers(lock["numbers"], numbers, policy)
    return RerunReport(n_numbers=len(numbers), comparison=comparison, tolerances=spec.pin.model_dump(),
                       environment_differences=environment_differences(lock), presentation_changes=presentation,
                       runs=[{"threads": t, "blas": r.get("blas")} for t, r in zip((1, 2), runs)],
                       between_runs=between)
