"""Pinned analyses: the verdict is about numbers (within the tolerances analysis.toml declares),
whatever the CPU, BLAS kernel, thread count or impactkit source hash; tampering with an input or
the lock is caught with the documented exit code."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from impactkit.pin.numbers import Tolerance, TolerancePolicy, compare_numbers, flatten_numbers, numbers_digest
from tests.conftest import PERU, ROOT

KERNELS = ("Haswell", "SkylakeX", "Zen", "Sandybridge", "Prescott")
# the kernel OpenBLAS reports for a requested core type: Zen runs on its Haswell kernels, and
# Prescott on its generic SSE kernels, reported as Katmai
SAME_KERNEL = {"zen": {"zen", "haswell"}, "prescott": {"prescott", "katmai"}}


def run_cli(*args, columns: int = 100):
    from impactkit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False,
                                env={"COLUMNS": str(columns), "TERM": "dumb"})
    return result


def edit_lock(folder: Path, change, *, reseal: bool) -> dict:
    path = folder / "analysis.lock.json"
    lock = json.loads(path.read_text())
    change(lock)
    if reseal:
        lock["numbers_digest"] = numbers_digest(lock["numbers"])
    path.write_text(json.dumps(lock))
    return lock


# ------------------------------------------------------------------------------------------
# the reviewer's path, on any kernel and thread count
# ------------------------------------------------------------------------------------------
def test_shipped_lock_reruns_within_tolerance(cli):
    result = cli("rerun", PERU)
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("rerun OK:") and len(first) <= 80, first
    assert "bit-identical: " in result.output  # reported as a fact, yes or no


@pytest.mark.slow
@pytest.mark.parametrize("kernel", KERNELS)
def test_shipped_lock_reruns_under_every_kernel_with_1_and_2_threads(kernel, tmp_path):
    """`rerun --twice` in a fresh process under each OpenBLAS kernel: two more fresh processes
    with 1 and 2 threads, each compared with the lock and with each other."""
    out = tmp_path / "rerun.json"
    env = dict(os.environ, OPENBLAS_CORETYPE=kernel, COLUMNS="80")
    done = subprocess.run([sys.executable, "-m", "impactkit", "rerun", str(PERU), "--twice", "--json", str(out)],
                          env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("rerun OK:")
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    report = json.loads(out.read_text())
    assert report["ok"] and report["between_runs"]["ok"]
    threads = {run["threads"]: run["blas"] for run in report["runs"]}
    for n in (1, 2):  # the kernel and thread count really were the ones asked for
        openblas = [b for b in threads[n] if b.get("internal_api") == "openblas"]
        assert openblas and all(b["architecture"].lower() in SAME_KERNEL.get(kernel.lower(), {kernel.lower()}) for b in openblas), threads[n]
        assert all(b["num_threads"] == n for b in openblas), threads[n]


@pytest.mark.slow
def test_comment_only_change_to_a_library_module_needs_no_repin(tmp_path):
    package = tmp_path / "impactkit"
    shutil.copytree(ROOT / "impactkit", package, ignore=shutil.ignore_patterns("__pycache__"))
    module = package / "did" / "twfe.py"
    module.write_text(module.read_text() + "\n# a comment that changes no number\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), COLUMNS="100")
    done = subprocess.run([sys.executable, "-m", "impactkit", "rerun", str(PERU)], env=env,
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("rerun OK:")
    assert "impactkit source sha256" in done.stdout  # shown as provenance


def test_pin_check_says_no_repin_needed_and_writes_nothing(peru_copy):
    before = (peru_copy / "analysis.lock.json").read_bytes()
    result = run_cli("pin", peru_copy, "--check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("no re-pin needed")
    assert (peru_copy / "analysis.lock.json").read_bytes() == before


def test_pin_check_says_repin_needed_when_an_input_moves_numbers(peru_copy):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace('cs_control = "never"', 'cs_control = "notyet"'))
    before = (peru_copy / "analysis.lock.json").read_bytes()
    result = run_cli("pin", peru_copy, "--check")
    assert result.exit_code == 1
    assert result.output.startswith("re-pin needed")
    assert "analysis.toml" in result.output and "beyond tolerance" in result.output
    assert (peru_copy / "analysis.lock.json").read_bytes() == before
    assert run_cli("pin", peru_copy).exit_code == 0
    assert run_cli("rerun", peru_copy).exit_code == 0


# ------------------------------------------------------------------------------------------
# tampering: inputs are exit 2 naming the file and both hashes; the lock's numbers are sealed
# ------------------------------------------------------------------------------------------
def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def _append(text: str):
    return lambda path: path.write_text(path.read_text() + text)


def _replace(old: str, new: str):
    def edit(path: Path) -> None:
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new, 1))
    return edit


TAMPERING = {
    "data byte": ("panel.parquet", _flip_byte),
    "contract rule": ("../../data_contracts/peru_tap.yaml", _replace("{minimum: 0, maximum: 20}", "{minimum: 0, maximum: 21}")),
    "portfolio weight": ("../portfolio.yaml", _replace("evidence_strength: 0.15", "evidence_strength: 0.16")),
    "intervention fact": ("../interventions/peru_tap.yaml", _append("\n# edited\n")),
    "cost account": ("costs.toml", _replace("fixed_cost = [400000, 600000]", "fixed_cost = [400000, 600001]")),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_changed_input_is_exit_2_naming_file_and_both_hashes(case, peru_copy):
    rel, edit = TAMPERING[case]
    pinned = json.loads((peru_copy / "analysis.lock.json").read_text())["inputs"][rel]
    edit(peru_copy / rel)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2, result.output
    assert f"{rel} changed: pinned sha256 {pinned}, now " in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_changed_seed_is_exit_2_naming_both_seeds(peru_copy):
    spec = peru_copy / "analysis.toml"
    spec.write_text(spec.read_text().replace("entropy = 2250109", "entropy = 7"))
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2
    assert "seed changed" in result.output and "2250109" in result.output and "now 7" in result.output


def test_edited_number_or_digest_in_the_lock_is_exit_2(peru_copy):
    def bump(lock):
        lock["numbers"]["headline.estimate"] += 0.01
    edit_lock(peru_copy, bump, reseal=False)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2 and "lock was edited by hand" in result.output

    def digest(lock):
        lock["numbers"]["headline.estimate"] -= 0.01
        lock["numbers_digest"] = "0" * 64
    edit_lock(peru_copy, digest, reseal=False)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2 and "lock was edited by hand" in result.output


@pytest.mark.parametrize("columns", [80, 100])
def test_resealed_edit_with_widened_tolerances_is_drift_in_a_table_that_fits(columns, peru_copy, tmp_path):
    """A number changed and the digest recomputed, with the lock's tolerances widened: the
    tolerances come from analysis.toml, so the edit is drift (exit 1), shown within the width."""
    def tamper(lock):
        lock["numbers"]["headline.estimate"] *= 1.01
        lock["numbers"]["attrition.rows[wave=2009].estimate"] += 0.5
        lock["tolerances"] = {"rtol": 1.0, "atol": 1.0}
    edit_lock(peru_copy, tamper, reseal=True)
    out = tmp_path / "rerun.json"
    result = run_cli("rerun", peru_copy, "--json", out, columns=columns)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("rerun FAILED: 2 of ") and "rel " in lines[0]
    assert max(len(line) for line in lines) <= columns, result.output
    assert "re-pin needed" in result.output
    first_column = "".join(line.split("│")[0].strip() for line in lines if "│" in line)
    assert "attrition.rows[wave=2009].estimate" in first_column  # whole, or folded within its column
    full = json.loads(out.read_text())
    beyond = [r["quantity"] for r in full["against_lock"]["beyond_tolerance"]]
    assert beyond == ["attrition.rows[wave=2009].estimate", "headline.estimate"]  # largest relative first
    assert full["tolerances"]["rtol"] == 1e-9


def test_lock_from_another_machine_reports_it_and_passes(peru_copy):
    def elsewhere(lock):
        lock["environment"]["packages"]["numpy"] = "1.26.0"
        lock["environment"]["cpu"] = "AMD EPYC 7B13"
        lock["impactkit"]["source_sha256"] = "0" * 64
        key = "headline.std_error"  # a last-digit difference another kernel could produce
        lock["numbers"][key] *= 1 + 1e-12
    edit_lock(peru_copy, elsewhere, reseal=True)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 0, result.output
    assert "bit-identical: no (1 of" in result.output
    for fact in ("1.26.0", "AMD EPYC 7B13", "impactkit source sha256"):
        assert fact in result.output


@pytest.mark.parametrize("content, what", [
    ("{not json", "not valid JSON"),
    ('{"inputs": {}, "numb', "not valid JSON"),
    ("[1, 2, 3]", "top level must be an object"),
    ('{"lock_version": 2, "analysis": "x", "inputs": [], "impactkit": {}, "environment": {}, "seeds": {},'
     ' "numbers": {}, "numbers_digest": "x"}', "inputs"),
    ('{"lock_version": 2, "analysis": "x", "inputs": {}, "impactkit": {}, "environment": {}, "seeds": {},'
     ' "numbers": "many", "numbers_digest": "x"}', "numbers"),
])
def test_malformed_or_truncated_lock_is_exit_2(content, what, peru_copy):
    (peru_copy / "analysis.lock.json").write_text(content)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2, result.output
    assert what in result.output and "Traceback" not in result.output


def test_missing_lock_is_exit_2(peru_copy):
    (peru_copy / "analysis.lock.json").unlink()
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 2 and "no lock" in result.output


def test_changed_template_is_reported_not_drift(peru_copy):
    def template(lock):
        key = next(iter(lock["presentation"]))
        lock["presentation"][key] = "0" * 64
    edit_lock(peru_copy, template, reseal=False)
    result = run_cli("rerun", peru_copy)
    assert result.exit_code == 0, result.output
    assert "pack templates changed" in result.output


# ------------------------------------------------------------------------------------------
# the lock's content and the pieces
# ------------------------------------------------------------------------------------------
def test_lock_records_inputs_provenance_seeds_and_numbers():
    lock = json.loads((PERU / "analysis.lock.json").read_text())
    assert {"panel.parquet", "analysis.toml", "costs.toml", "../../data_contracts/peru_tap.yaml",
            "../portfolio.yaml", "../interventions/peru_tap.yaml"} <= set(lock["inputs"])
    assert lock["presentation"] and not set(lock["presentation"]) & set(lock["inputs"])
    assert lock["seeds"]["entropy"] == 2250109
    env = lock["environment"]
    assert env["cpu"] and env["python"] and env["blas"][0]["architecture"]
    packages = env["packages"]
    assert {"numpy", "pandas", "statsmodels"} <= set(packages)
    assert not {"pytest", "pyfixest", "moderndid", "quartodoc"} & set(packages)  # run time only
    assert len(lock["impactkit"]["source_sha256"]) == 64 and lock["impactkit"]["version"]
    assert lock["numbers_digest"] == numbers_digest(lock["numbers"])
    assert "headline.estimate" in lock["numbers"] and len(lock["numbers"]) > 500


def test_flatten_names_records_by_identifying_fields():
    doc = {"estimators": [{"estimator": "A", "estimate": 1.0}, {"estimator": "B", "estimate": 2.0}],
           "rows": [{"x": 1}, {"x": 2}], "flag": True, "label": "t"}
    assert flatten_numbers(doc) == {"estimators[estimator=A].estimate": 1.0, "estimators[estimator=B].estimate": 2.0,
                                    "rows[0].x": 1, "rows[1].x": 2}


def test_compare_reports_bit_differences_and_judges_by_tolerance_class():
    policy = TolerancePolicy(Tolerance(1e-9, 0.0), (("monte_carlo", ("*p_mc",), Tolerance(0.0, 2e-3)),))
    pinned = {"a": 1.0, "b": 2.0, "c": 3.0, "x.p_mc": 0.05, "n": float("nan")}
    now = {"a": 1.0, "b": 2.0 * (1 + 1e-12), "d": 4.0, "x.p_mc": 0.051, "n": float("nan")}
    result = compare_numbers(pinned, now, policy)
    assert {r["quantity"] for r in result.differing} == {"b", "c", "d", "x.p_mc"}
    assert [r["quantity"] for r in result.beyond] == ["c", "d"]  # missing on one side: always beyond
    assert not result.ok and not result.bit_identical
    assert result.max_rel == pytest.approx(0.02)
    assert compare_numbers(pinned, pinned, policy).bit_identical


def test_provenance_is_one_leaf_module_and_analysis_does_not_import_pin():
    """Hashing, git and package facts live in impactkit.provenance; it imports no other impactkit
    module, and neither analysis nor pack reaches into pin for them."""
    def imports(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        return names
    package = ROOT / "impactkit"
    assert {m for m in imports(package / "provenance.py") if m.startswith("impactkit")} <= {"impactkit"}
    for folder in ("analysis", "pack"):
        for module in (package / folder).rglob("*.py"):
            assert not {m for m in imports(module) if m.startswith("impactkit.pin")}, module
