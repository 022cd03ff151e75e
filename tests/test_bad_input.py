"""Bad-input catalogue: hostile and broken input is refused (exit 2), neutralised or guarded.

Each case reproduces one finding of issue 17 against the command line (in-process) and
asserts the documented exit code, a one-line message naming the file / field / column,
and no traceback. Grouped by family:

1. bounded work on untrusted specs (YAML bombs, tags, depth, regexes, draw counts, bounds);
2. one privacy guard for every output;
3. input accepted silently that would change the result;
4. outputs a user can trust (pack folder safety);
5. injection into the ``.qmd``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from impactkit.contracts import load_contract, validate
from impactkit.datasets.peru_tap import simulate_peru_tap
from impactkit.errors import ContractError, InputError, SpecError

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "data_contracts" / "peru_tap.yaml"


def one_line_error(result, code: int, *fragments: str) -> str:
    """The CLI exited with ``code`` and printed one ``error:`` line holding every fragment."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out
    line = " ".join(out.split())
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_peru_tap()


def _contract_text() -> str:
    return CONTRACT.read_text(encoding="utf-8")


def _write_contract(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _laughs(levels: int) -> str:
    """A "billion laughs" YAML: each level an anchor listing the previous one nine times."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- 1. bounded work

YAML_BOMBS = {
    "billion_laughs": _laughs(8),
    "python_tag": "apiVersion: !!python/name:os.system v3.0.2\n",
    "python_object": "kind: !!python/object/apply:os.system ['true']\n",
    "local_tag": "apiVersion: !mine v3.0.2\n",
    "recursive_alias": "a: &a [1, *a]\n",
    "deep_nesting": "a: " + "[" * 3000 + "]" * 3000 + "\n",
    "merge_key": "base: &b {x: 1}\nother: {<<: *b}\n",
    "bad_timestamp": "contractCreatedTs: 2020-99-99\n",
}


@pytest.mark.parametrize("case", sorted(YAML_BOMBS))
def test_hostile_contract_yaml_is_refused_quickly(case, tmp_path, cli, panel):
    path = _write_contract(tmp_path, YAML_BOMBS[case])
    start = time.perf_counter()
    with pytest.raises(ContractError, match=re.escape(str(path))):
        load_contract(path)
    assert time.perf_counter() - start < 5  # bounded work (a generous bound, not a benchmark)
    data = tmp_path / "p.parquet"
    panel.head(20).to_parquet(data)
    one_line_error(cli("validate", data, "--contract", path), 2, str(path), "not valid YAML")


def test_a_few_aliases_as_yaml_safe_dump_writes_them_are_fine():
    from impactkit import safeyaml

    assert safeyaml.load("a: &x {s: 1}\nb: *x\n", "f.yaml") == {"a": {"s": 1}, "b": {"s": 1}}


@pytest.mark.parametrize("case", ["billion_laughs", "python_tag", "recursive_alias", "deep_nesting"])
def test_hostile_intervention_and_portfolio_yaml_is_refused(case, tmp_path, cli):
    portfolio = tmp_path / "portfolio.yaml"
    portfolio.write_text(YAML_BOMBS[case], encoding="utf-8")
    one_line_error(cli("score", portfolio, "--no-linked"), 2, str(portfolio), "invalid YAML")
    intervention = tmp_path / "x.yaml"
    intervention.write_text(YAML_BOMBS[case], encoding="utf-8")
    portfolio.write_text("interventions:\n  - file: x.yaml\n", encoding="utf-8")
    one_line_error(cli("score", portfolio, "--no-linked"), 2, str(intervention), "invalid YAML")


def test_catastrophic_pattern_runs_in_linear_time(tmp_path, panel):
    """``(a+)+$`` over long notes: Python's re backtracks for ages; RE2 (rules and GX) does not."""
    text = _contract_text().replace("description: Enumerator free text (usually empty); must not carry personal data.",
                                    "description: notes\n        logicalTypeOptions: {pattern: '(a+)+$'}")
    text = text.replace("        dni: '(?:^|\\D)\\d{8}(?:\\D|$)'", "        dni: '(a+)+$'")
    contract = _write_contract(tmp_path, text)
    frame = panel.head(200).copy()
    frame["notes"] = "a" * 5000 + "!"
    start = time.perf_counter()
    report = validate(frame, contract)
    assert time.perf_counter() - start < 60
    failed = report.results.loc[~report.results["success"], ["rule", "column"]]
    failed = set(map(tuple, failed.to_numpy().tolist()))
    assert ("pattern", "notes") in failed and ("personal_leak", "notes") not in failed  # no match, in linear time


@pytest.mark.parametrize("where, pattern", [
    ("logicalTypeOptions: {pattern: '^PE-\\d{4,6}$'}", "logicalTypeOptions: {pattern: '(a)\\1'}"),
    ("        dni: '(?:^|\\D)\\d{8}(?:\\D|$)'", "        dni: '(?<!\\d)\\d{8}(?!\\d)'"),
])
def test_patterns_re2_cannot_run_are_refused_at_load(where, pattern, tmp_path):
    contract = _write_contract(tmp_path, _contract_text().replace(where, pattern))
    with pytest.raises(ContractError, match=r"c\.yaml:\d+: field .*RE2"):
        load_contract(contract)


@pytest.mark.parametrize("old, new, fragment", [
    ("logicalTypeOptions: {minimum: 0, maximum: 20}", "logicalTypeOptions: {minimum: 20, maximum: 0}",
     "minimum 20 and maximum 0"),
    ("logicalTypeOptions: {pattern: '^C\\d{2}$'}", "logicalTypeOptions: {minLength: 5, maxLength: 2}",
     "minLength 5 > maxLength 2"),
    ("logicalTypeOptions: {minimum: 0, maximum: 20}", "logicalTypeOptions: {exclusiveMinimum: 3, maximum: 3}",
     "exclusiveMinimum 3 and maximum 3"),
    ("logicalTypeOptions: {minimum: 0, maximum: 20}", "logicalTypeOptions: {minimum: .nan}", "minimum is not a number"),
])
def test_contradictory_contract_bounds_are_refused(old, new, fragment, tmp_path):
    text = _contract_text()
    assert old in text
    contract = _write_contract(tmp_path, text.replace(old, new, 1))
    with pytest.raises(ContractError, match=re.escape(fragment)):
        load_contract(contract)


@pytest.mark.parametrize("section, key, value, bound", [
    ("estimators", "wild_bootstrap_draws", 10**9, "100000"),
    ("estimators", "multiplier_draws", 10**9, "100000"),
    ("checks", "multiple_testing_draws", 10**9, "20000"),
])
def test_draw_counts_have_an_upper_bound(section, key, value, bound, peru_copy, cli):
    toml = peru_copy / "analysis.toml"
    text = toml.read_text(encoding="utf-8")
    text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text) if key in text else \
        text.replace(f"[{section}]\n", f"[{section}]\n{key} = {value}\n")
    toml.write_text(text, encoding="utf-8")
    one_line_error(cli("estimate", peru_copy), 2, "analysis.toml", key, bound)


def test_score_draws_have_an_upper_bound(cli):
    one_line_error(cli("score", ROOT / "analyses" / "portfolio.yaml", "--no-linked", "--draws", "1000000000"), 2,
                   "draws", "200,000")


def test_wild_bootstrap_api_bound():
    import numpy as np

    from impactkit.did.wild import wild_cluster_bootstrap

    with pytest.raises(InputError, match="at most 100,000"):
        wild_cluster_bootstrap(np.arange(8.0), np.ones((8, 1)), np.arange(8) % 4, param_index=0, B=10**9)


@pytest.mark.parametrize("name", ["analysis.toml", "costs.toml"])
def test_non_utf8_toml_is_refused(name, peru_copy, cli):
    path = peru_copy / name
    path.write_bytes(path.read_bytes().replace(b"# ", b"# \xe9\xff ", 1))
    command = ("estimate", peru_copy) if name == "analysis.toml" else \
        ("score", peru_copy.parent / "portfolio.yaml", "--no-linked", "--costs", f"peru_tap={path}")
    one_line_error(cli(*command), 2, str(path), "not UTF-8")


@pytest.mark.parametrize("lock", ["[]", '{"inputs": [], "numbers": {}, "numbers_digest": "x", "seeds": {}, '
                                  '"environment": {}}', '{"inputs": {}, "numbers": 3, "numbers_digest": 1, '
                                  '"seeds": {}, "environment": {}}', "[" * 100000 + "]" * 100000])
def test_malformed_lock_is_refused(lock, peru_copy, cli):
    (peru_copy / "analysis.lock.json").write_text(lock, encoding="utf-8")
    one_line_error(cli("rerun", peru_copy), 2, "analysis.lock.json", "lock" if lock.startswith(("{", "[]")) else "JSON")


# ----------------------------------------------------------------------------- 2. one privacy guard

def test_personal_unit_key_is_refused_at_contract_load(tmp_path, cli, panel):
    contract = _write_contract(tmp_path, _contract_text().replace("unit_key: household_id", "unit_key: dni"))
    data = tmp_path / "p.parquet"
    panel.head(50).to_parquet(data)
    result = cli("validate", data, "--contract", contract, "--json", tmp_path / "out.json")
    line = one_line_error(result, 2, str(contract), "unit_key", "personal column")
    assert not (tmp_path / "out.json").exists()
    assert not any(dni in line for dni in panel["dni"].head(50))


@pytest.mark.parametrize("key, column", [("subgroup", "head_name"), ("unit", "dni"), ("cluster", "phone")])
def test_personal_column_in_a_design_role_is_refused(key, column, peru_copy, cli):
    toml = peru_copy / "analysis.toml"
    text = re.sub(rf"(?m)^{key} = .*$", f'{key} = "{column}"', toml.read_text(encoding="utf-8"))
    toml.write_text(text, encoding="utf-8")
    out = peru_copy / "estimate.json"
    one_line_error(cli("estimate", peru_copy, "--json", out), 2, "analysis.toml", f"design.{key}", "personal column")
    assert not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".txt", ".pq", ".parquet", ".xlsx", ".xlsm", ".dta"])
def test_guard_reads_personal_values_through_the_analysis_reader(suffix, tmp_path, panel):
    from impactkit.privacy import personal_values

    contract = load_contract(CONTRACT)
    frame = panel.head(30).copy()
    path = tmp_path / f"panel{suffix}"
    if suffix in (".csv", ".txt"):
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, index=False, sep="\t")
    elif suffix in (".pq", ".parquet"):
        frame.to_parquet(path)
    elif suffix == ".dta":
        frame.to_stata(path, write_index=False)
    else:
        frame.to_excel(path, index=False, engine="openpyxl")
    found = set(personal_values(path, contract=contract))
    assert set(frame["head_name"]) <= found
    assert set(frame["dni"].astype(str)) <= found


def test_guard_decodes_a_latin1_csv_with_the_contracts_encoding(tmp_path, panel):
    from impactkit.privacy import personal_values

    contract = load_contract(_write_contract(tmp_path, _contract_text().replace("encoding: utf-8", "encoding: latin-1")))
    frame = panel.head(20).copy()
    frame.loc[frame.index[:3], "head_name"] = ["José Quispe Ñahui", "María Mamani Ávila", "Zoë Çondori"]
    path = tmp_path / "latin.csv"
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))
    assert {"José Quispe Ñahui", "Zoë Çondori"} <= set(personal_values(path, contract=contract))


def test_guard_text_refuses_an_output_holding_a_personal_value(tmp_path):
    from impactkit.errors import CheckFailed
    from impactkit.privacy import guard_text

    with pytest.raises(CheckFailed, match=r"1 personal-data value\(s\) would be written to out.json") as err:
        guard_text('{"label": "José Quispe Ñahui", "n": 12345678}', ["José Quispe Ñahui", "87654321"], "out.json")
    assert "José" not in str(err.value)
    guard_text('{"n": 187654321}', ["87654321"], "out.json")  # inside a longer number: not a leak


def test_every_writer_passes_through_the_one_guard():
    """validate, estimate, score, pack and pin import the guard of impactkit.privacy (one module),
    directly or through impactkit.analysis.personal (an analysis's personal values, read as it reads them)."""
    sources = {name: (ROOT / "impactkit" / name).read_text(encoding="utf-8") for name in
               ("contracts/cli.py", "analysis/cli.py", "scale/cli.py", "pack/pipeline.py", "pack/cli.py", "pin/lock.py",
                "analysis/personal.py")}
    for name, text in sources.items():
        if name != "pack/cli.py":  # pack/cli reads the values; pack/pipeline guards every output with them
            assert "from impactkit.privacy import" in text, name
    for name in ("analysis/cli.py", "pack/cli.py", "pin/lock.py"):
        assert "from impactkit.analysis.personal import analysis_personal_values" in sources[name], name
    assert not (ROOT / "impactkit" / "pack" / "privacy.py").exists()


# ----------------------------------------------------------------------------- 3. silently accepted input

def test_data_column_named_like_a_derived_one_is_refused(peru_copy, cli):
    import numpy as np

    data = peru_copy / "panel.parquet"
    frame = pd.read_parquet(data)
    frame["log_income"] = np.random.default_rng(0).normal(size=len(frame))  # noise posing as the derived log
    frame.to_parquet(data)
    one_line_error(cli("estimate", peru_copy), 2, "log_income", "derives", "rename or drop")


def test_infinite_values_fail_the_range_rule(panel):
    frame = panel.head(300).copy()
    frame.loc[frame.index[[3, 7]], "income"] = float("inf")
    frame.loc[frame.index[9], "milk_litres_day"] = float("-inf")
    report = validate(frame, CONTRACT)
    failed = report.results.loc[~report.results["success"]]
    ranges = failed[failed["rule"] == "range"].set_index("column")
    assert ranges.loc["income", "failed_rows"] == 2 and "inf)" in ranges.loc["income", "message"]
    assert "milk_litres_day" in ranges.index


def test_duplicate_csv_header_is_refused(tmp_path, panel, cli):
    path = tmp_path / "dup.csv"
    frame = panel.head(10)
    text = frame.to_csv(index=False)
    header, rest = text.split("\n", 1)
    path.write_text(header.replace("milk_litres_day", "income") + "\n" + rest, encoding="utf-8")
    one_line_error(cli("validate", path, "--contract", CONTRACT), 2, str(path), "'income' appears twice")


def _workbook(path: Path, frame: pd.DataFrame, *, formula_rows: int = 0, extra_sheet: bool = False) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "panel"
    sheet.append(list(frame.columns))
    income = list(frame.columns).index("income") + 1
    for i, row in enumerate(frame.itertuples(index=False), start=2):
        sheet.append(list(row))
        if i - 1 <= formula_rows:
            sheet.cell(row=i, column=income, value=f"=1000+{i}")  # a formula with no cached value
    if extra_sheet:
        book.create_sheet("notes").append(["about", "this file"])
    book.save(path)


def test_excel_formulas_without_cached_values_are_refused(tmp_path, panel, cli):
    path = tmp_path / "f.xlsx"
    _workbook(path, panel.head(40), formula_rows=2)
    one_line_error(cli("validate", path, "--contract", CONTRACT), 2, str(path),
                   "2 formula cell(s) have no saved value", "'income'")


def test_a_workbook_of_several_sheets_needs_the_sheet_named(tmp_path, panel, cli):
    path = tmp_path / "two.xlsx"
    _workbook(path, panel.head(40), extra_sheet=True)
    one_line_error(cli("validate", path, "--contract", CONTRACT), 2, str(path), "2 sheets", "sheet:")
    named = _write_contract(tmp_path, _contract_text().replace("encoding: utf-8", "encoding: utf-8\n      sheet: panel"))
    from impactkit.io import read_table

    assert len(read_table(path, contract=load_contract(named))) == 40


def test_stata_non_unique_value_labels_keep_the_reason(tmp_path, cli):
    path = tmp_path / "labels.dta"
    pd.DataFrame({"district": [1, 2, 1], "x": [1.0, 2.0, 3.0]}).to_stata(
        path, write_index=False, value_labels={"district": {1: "Lampa", 2: "Lampa"}})
    one_line_error(cli("validate", path, "--contract", CONTRACT), 2, str(path), "column 'district'",
                   "value labels are not unique")


# ----------------------------------------------------------------------------- 4. outputs a user can trust

PACK_FIXTURE = Path(__file__).parent / "fixtures" / "results_peru_tap.json"


def _minimal(name: str = "bare") -> dict:
    from impactkit.analysis.document import SCHEMA_VERSION

    return {"schema": SCHEMA_VERSION, "analysis": {"name": name, "title": "A bare analysis"}}


def test_pack_keeps_the_users_files_and_keeps_the_folder_consistent(tmp_path):
    from impactkit.pack.pipeline import MANIFEST, pack

    out = tmp_path / "mine"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "my-figure.png").write_bytes(b"user figure")
    (out / "notes.md").write_text("my notes", encoding="utf-8")
    results = json.loads(PACK_FIXTURE.read_text(encoding="utf-8"))
    first = pack(results, out, to="html,pdf", date="2026-11-29")
    assert first["pdf"].is_file() and (out / MANIFEST).is_file()
    owned = set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"])
    assert "evidence-pack.pdf" in owned and "figures/my-figure.png" not in owned
    pack(_minimal(), out, to="html", date="2026-11-29")  # fewer formats, no figures
    assert not (out / "evidence-pack.pdf").exists()  # the stale format is gone ...
    assert (out / "figures" / "my-figure.png").read_bytes() == b"user figure"  # ... the user's files stay
    assert (out / "notes.md").read_text(encoding="utf-8") == "my notes"
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    now = set(json.loads((out / MANIFEST).read_text(encoding="utf-8"))["files"])
    assert left == now | {MANIFEST, "figures/my-figure.png", "notes.md"}


def test_pack_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    from impactkit.pack.pipeline import pack

    out = tmp_path / "theirs"
    out.mkdir()
    (out / "results.json").write_text('{"mine": true}', encoding="utf-8")
    with pytest.raises(InputError, match="was not written by impactkit pack"):
        pack(_minimal(), out, to="html", date="2026-11-29")
    assert (out / "results.json").read_text(encoding="utf-8") == '{"mine": true}'
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


def test_interrupted_builds_are_cleaned_up_on_the_next_run(tmp_path):
    from impactkit.pack.pipeline import pack

    out = tmp_path / "p"
    stale = out / ".evidence-pack-build-abc123"
    stale.mkdir(parents=True)
    (stale / "results.json").write_text("{}", encoding="utf-8")
    (stale / ".pid").write_text("999999999", encoding="utf-8")  # no such process
    pack(_minimal(), out, to="html", date="2026-11-29")
    assert not stale.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".evidence-pack-build-")]


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "a/b", ".."])
def test_analysis_name_cannot_lead_the_pack_outside_reports(name, peru_copy, cli, monkeypatch, tmp_path):
    toml = peru_copy / "analysis.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('name = "peru_tap"', f'name = "{name}"'),
                    encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    one_line_error(cli("pack", peru_copy, "--to", "html"), 2, "analysis.name", "--out")
    assert not (tmp_path / "reports").exists() and not (tmp_path.parent / "escaped").exists()


def test_publish_refuses_paths_outside_the_folder(tmp_path):
    from impactkit.pack.pipeline import _inside

    with pytest.raises(InputError, match="outside the output folder"):
        _inside(tmp_path, "../x.html")
    (tmp_path / "link").symlink_to(tmp_path.parent)
    with pytest.raises(InputError, match="outside the output folder"):
        _inside(tmp_path, "link/x.html")


def test_a_full_disk_says_so(monkeypatch, tmp_path, cli):
    import errno
    import os as os_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os_module.strerror(errno.ENOSPC))

    monkeypatch.setattr("impactkit.atomic.os.fdopen", full)
    one_line_error(cli("simulate", tmp_path / "p.parquet"), 2, "disk full")
    assert not list(tmp_path.iterdir())


def test_pandoc_disk_full_message_is_translated(tmp_path):
    from impactkit.pack.render import RenderError, _run

    with pytest.raises(RenderError, match="disk full"):
        _run(["sh", "-c", "echo 'pandoc: ioException: hPutBuf: resource exhausted (No space left on device)' >&2; "
                          "exit 1"], tmp_path, "pandoc")


@pytest.mark.parametrize("suffix, magic", [(".csv", b"household_id,"), (".parquet", b"PAR1"), (".pq", b"PAR1")])
def test_simulate_writes_the_format_its_suffix_names(suffix, magic, tmp_path, cli):
    out = tmp_path / f"panel{suffix}"
    assert cli("simulate", out).exit_code == 0
    assert out.read_bytes().startswith(magic)


def test_simulate_refuses_an_unknown_suffix(tmp_path, cli):
    one_line_error(cli("simulate", tmp_path / "panel.xlsx"), 2, "panel.xlsx", "unknown output format")
    assert not list(tmp_path.iterdir())


# ----------------------------------------------------------------------------- 5. injection into the .qmd

SHORTCODE = "{{< include /etc/passwd >}}"


def test_shortcodes_from_specs_never_reach_the_qmd_live(tmp_path):
    from impactkit.pack.escape import SHORTCODES_ALLOWED
    from impactkit.pack.pipeline import pack

    results = json.loads(PACK_FIXTURE.read_text(encoding="utf-8"))
    results["analysis"]["name"] = f"x{SHORTCODE}"
    results["analysis"]["title"] = f"Title {SHORTCODE}"
    results["scale"]["ranking"][0]["name"] = SHORTCODE
    paths = pack(results, tmp_path / "out", to="html", date="2026-11-29",
                 command=f"impactkit pack analyses/{SHORTCODE}/`rm -rf`\n```")
    qmd = paths["qmd"].read_text(encoding="utf-8")
    live = re.findall(r"(?<!\{)\{\{<[^>]*>\}\}(?!\})", qmd)
    assert set(live) <= set(SHORTCODES_ALLOWED), live
    assert "{{{< include /etc/passwd >}}}" in qmd  # Quarto's escaped (literal) form, in the rerun code block
    html = paths["html"].read_text(encoding="utf-8")
    assert "{{{<" not in html and "include /etc/passwd" in html  # the pandoc fallback prints it as written
    assert "root:" not in html


def test_neutralise_keeps_the_packs_own_shortcodes():
    from impactkit.pack.escape import neutralise_shortcodes, unescape_shortcodes

    text = "a {{< pagebreak >}} b ```\n{{< include x >}}\n``` {{<"
    done = neutralise_shortcodes(text)
    assert done == "a {{< pagebreak >}} b ```\n{{{< include x >}}}\n``` {{{<"
    assert unescape_shortcodes(done) == text


def test_randomization_inference_permutations_have_a_ceiling():
    """n_permutations = 10**9 would allocate a (10**9 x clusters) array: refused up front, naming the bound."""
    import pandas as pd

    from impactkit.did.ri import randomization_inference
    from impactkit.errors import InputError

    frame = pd.DataFrame({"y": [0.0, 1.0, 0.5, 1.5], "unit": [1, 1, 2, 2], "time": [0, 1, 0, 1],
                          "treated": [1, 1, 0, 0], "village": [1, 1, 2, 2]})
    with pytest.raises(InputError, match="at most 100,000 permutations"):
        randomization_inference(frame, y="y", unit="unit", time="time", treated_cluster_col="treated",
                                cluster="village", estimator=lambda f: 0.0, n_permutations=10**9)
