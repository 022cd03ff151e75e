"""``impactkit pin`` and ``impactkit rerun``: a reviewer gets the same numbers, or learns why not.

``pin(analysis_dir)`` runs the analysis and writes ``analysis.lock.json`` holding

- ``inputs``: SHA-256 of every input (analysis.toml, data, contract, portfolio and
  intervention files, pack templates), keyed by their path relative to the folder;
- ``impactkit`` (version, git commit) and ``environment`` (Python, every installed
  package's version) -- facts, never part of the numbers;
- ``seeds``: the ``numpy.random.SeedSequence`` entropy and the purposes drawn from it;
- ``numbers``: every reported number at full precision (see :mod:`impactkit.pin.numbers`)
  and ``numbers_digest``, their SHA-256, so that a hand-edited number is detected.

``rerun(analysis_dir)`` checks, in order: the seed, the inputs' hashes (a changed byte is
exit 2 naming the file and both hashes), the lock's own digest; it then reports
environment differences, re-executes the analysis from scratch in a temporary folder and
compares every number: bit-identical when the environment is the one pinned, within the
declared tolerances (``[pin] rtol, atol``) otherwise. It never writes the lock.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impactkit.analysis import load_analysis, run_analysis
from impactkit.atomic import dumps_json, write_text
from impactkit.errors import InputError
from impactkit.pin.environment import environment, impactkit_identity, sha256_file
from impactkit.pin.numbers import compare_numbers, flatten_numbers, numbers_digest
from impactkit.privacy import analysis_personal_values, guard_text

LOCK_FILE = "analysis.lock.json"
LOCK_VERSION = 1


@dataclass
class PinReport:
    lock_path: Path
    n_numbers: int
    changed_inputs: list[dict[str, Any]] = field(default_factory=list)
    changed_numbers: list[dict[str, Any]] = field(default_factory=list)
    previous: bool = False


@dataclass
class RerunReport:
    ok: bool
    n_numbers: int
    exact: bool
    drift: list[dict[str, Any]]
    environment_differences: list[dict[str, Any]]
    lock_edited: bool

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def _input_hashes(spec) -> dict[str, str]:
    return {rel: sha256_file(path) for rel, path in spec.input_files().items()}


def build_lock(spec, results: dict[str, Any]) -> dict[str, Any]:
    numbers = flatten_numbers(results)
    return {
        "lock_version": LOCK_VERSION,
        "analysis": spec.analysis.name,
        "inputs": _input_hashes(spec),
        "impactkit": impactkit_identity(spec.folder),
        "environment": environment(),
        "seeds": results.get("seeds", {"entropy": spec.seeds.entropy}),
        "tolerances": {"rtol": spec.pin.rtol, "atol": spec.pin.atol},
        "results_sha256": __import__("hashlib").sha256(dumps_json(results).encode()).hexdigest(),
        "numbers": numbers,
        "numbers_digest": numbers_digest(numbers),
    }


def read_lock(folder: Path) -> dict[str, Any]:
    path = folder / LOCK_FILE
    if not path.is_file():
        raise InputError(f"{path}: no lock (run `impactkit pin {folder}` first)")
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"{path}: not valid JSON: {exc or 'nested too deeply'}") from None
    if not isinstance(lock, dict):
        raise InputError(f"{path}: malformed lock, the top level must be an object")
    missing = [k for k in ("inputs", "numbers", "numbers_digest", "seeds", "environment") if k not in lock]
    wrong = [k for k in ("inputs", "numbers", "seeds", "environment") if k in lock and not isinstance(lock[k], dict)]
    if wrong or not isinstance(lock.get("numbers_digest", ""), str):
        raise InputError(f"{path}: malformed lock, wrong type of {', '.join(wrong) or 'numbers_digest'}")
    if missing:
        raise InputError(f"{path}: malformed lock, missing {', '.join(missing)}")
    return lock


def pin(analysis_dir: str | Path) -> PinReport:
    """Run the analysis and (over)write its lock; report what changed against the old one."""
    spec = load_analysis(analysis_dir)
    folder = Path(analysis_dir)
    results = run_analysis(folder)
    lock = build_lock(spec, results)
    previous = None
    if (folder / LOCK_FILE).is_file():
        try:
            previous = json.loads((folder / LOCK_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            previous = None
    guard_text(dumps_json(lock), analysis_personal_values(spec), folder / LOCK_FILE)  # impactkit.privacy
    write_text(folder / LOCK_FILE, dumps_json(lock))
    report = PinReport(lock_path=folder / LOCK_FILE, n_numbers=len(lock["numbers"]), previous=previous is not None)
    if previous:
        old_inputs = previous.get("inputs", {})
        for rel in sorted(set(old_inputs) | set(lock["inputs"])):
            if old_inputs.get(rel) != lock["inputs"].get(rel):
                report.changed_inputs.append({"input": rel, "pinned": old_inputs.get(rel), "now": lock["inputs"].get(rel)})
        report.changed_numbers = compare_numbers(previous.get("numbers", {}), lock["numbers"], exact=True, rtol=0, atol=0)
    return report


def _check_inputs(spec, lock: dict[str, Any]) -> None:
    folder = spec.folder
    pinned_seed = (lock.get("seeds") or {}).get("entropy")
    if pinned_seed is not None and pinned_seed != spec.seeds.entropy:
        raise InputError(f"{folder / 'analysis.toml'}: seed changed: [seeds] entropy pinned {pinned_seed}, now {spec.seeds.entropy}")
    now = _input_hashes(spec)
    changes = []
    for rel in sorted(set(lock["inputs"]) | set(now)):
        before, after = lock["inputs"].get(rel), now.get(rel)
        if before == after:
            continue
        if after is None:
            changes.append(f"{rel} is missing (pinned sha256 {before})")
        elif before is None:
            changes.append(f"{rel} is new (sha256 {after}, not in the lock)")
        else:
            changes.append(f"{rel} changed: pinned sha256 {before}, now {after}")
    if changes:
        raise InputError("input changed since the pin: " + "; ".join(changes))


def environment_differences(lock: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (package, pinned, now) where the environment differs: impactkit's version and
    source hash, Python, and every installed package."""
    pinned_env, now_env = lock.get("environment", {}), environment()
    rows = []
    pinned_ik, now_ik = lock.get("impactkit", {}), impactkit_identity()
    for key in ("version", "source_sha256"):
        if pinned_ik.get(key) != now_ik.get(key):
            rows.append({"package": f"impactkit ({key.replace('_', ' ')})", "pinned": pinned_ik.get(key),
                         "now": now_ik.get(key)})
    if pinned_env.get("python") != now_env["python"]:
        rows.append({"package": "python", "pinned": pinned_env.get("python"), "now": now_env["python"]})
    before, after = pinned_env.get("packages", {}), now_env["packages"]
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            rows.append({"package": name, "pinned": before.get(name), "now": after.get(name)})
    return rows


def _copy_inputs(spec, destination: Path) -> Path:
    """Copy every input into ``destination`` keeping their relative layout; return the copy's folder."""
    files = list(spec.input_files().values())
    root = Path(os.path.commonpath([str(spec.folder.resolve())] + [str(p.resolve()) for p in files]))
    for path in files:
        target = destination / path.resolve().relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return destination / spec.folder.resolve().relative_to(root)


def rerun(analysis_dir: str | Path) -> RerunReport:
    """Verify a pinned analysis (see the module docstring). Raises InputError for exit 2."""
    folder = Path(analysis_dir)
    spec = load_analysis(folder)
    lock = read_lock(folder)
    _check_inputs(spec, lock)
    lock_edited = numbers_digest(lock["numbers"]) != lock["numbers_digest"]
    env_diff = environment_differences(lock)
    exact = not env_diff
    tolerances = lock.get("tolerances", {"rtol": spec.pin.rtol, "atol": spec.pin.atol})
    with tempfile.TemporaryDirectory(prefix="impactkit-rerun-") as tmp:
        copy = _copy_inputs(spec, Path(tmp))
        results = run_analysis(copy)
    numbers = flatten_numbers(results)
    drift = compare_numbers(lock["numbers"], numbers, exact=exact,
                            rtol=float(tolerances["rtol"]), atol=float(tolerances["atol"]))
    return RerunReport(ok=not drift and not lock_edited, n_numbers=len(numbers), exact=exact,
                       drift=drift, environment_differences=env_diff, lock_edited=lock_edited)
