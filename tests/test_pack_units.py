"""Unit tests of the evidence pack's pure parts: number formats, escaping, privacy, tables.

Each expected string is derived by hand from the stated input (exact string equality,
tolerance: none); escaping is checked by running the real pandoc writers on the escaped
text and asserting the literal text survives.
"""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from impactkit.errors import CheckFailed, InputError
from impactkit.pack import format as fmt
from impactkit.pack.build import build_qmd, check_results, plain_outcome
from impactkit.pack.escape import Markdown, attribute, md
from impactkit.pack.figures import plain_label, save_figures
from impactkit.privacy import (forbidden_strings, guard_outputs, is_small, must_suppress,
                                    scan_for_forbidden, suppressed_label)
from impactkit.pack.render import front_matter, pandoc_path, parse_formats
from impactkit.pack.tables import heterogeneity_table, pipe_table, sample_flow_table

FIXTURE = Path(__file__).parent / "fixtures" / "results_peru_tap.json"
HOSTILE = ["<script>alert(1)</script>", "#set page(width: 1cm)", "@bogus", "$x$", "*bold* _it_ [a](b) `c` \\ | ~ ^",
           "1. not a list", "- not a bullet", "{{< pagebreak >}}", "& &amp; %"]


def load_fixture() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def test_numbers_are_formatted_consistently():
    assert fmt.number(12436.0, 0) == "12,436"
    assert fmt.number(-0.0301, 2) == "\u22120.03"
    assert fmt.number(-0.001, 2) == "0.00"  # no negative zero
    assert fmt.integer(2250) == "2,250"
    assert fmt.money(4530.4, "PEN", 2008) == "PEN 4,530 (2008 Peruvian soles)"
    assert fmt.money(1, "usd", 2013) == "USD 1 (2013 US dollars)"
    assert fmt.currency_unit("XYZ") == "XYZ" and fmt.currency_unit(None) == ""
    assert fmt.money_short(9078.87, "pen") == "PEN 9,079"
    assert fmt.percent_change(200.4166) == "+200%"
    assert fmt.percent_change(-12.6) == "\u221213%"
    assert fmt.share(0.87) == "87%"
    assert fmt.p_value(1.2e-40) == "< 0.001"
    assert fmt.p_value(0.0423) == "0.042"
    assert fmt.p_equals(0.21) == "p = 0.210"
    assert fmt.p_equals(1e-9) == "p < 0.001"
    assert fmt.interval(0.953, 1.247) == "[0.95, 1.25]"
    assert fmt.percent_interval(159.3, 247.99) == "[+159%, +248%]"
    # log points -> percent: 100 (exp(1.1) - 1) = 200.4166...
    assert fmt.log_points_to_percent(1.1) == pytest.approx(100 * (math.exp(1.1) - 1), rel=1e-15)


@pytest.mark.parametrize("missing", [None, float("nan"), "nan", ""])
def test_missing_values_show_as_dash_never_nan(missing):
    for text in (fmt.number(missing), fmt.money(missing, "PEN", 2008), fmt.p_value(missing),
                 fmt.percent_change(missing), fmt.interval(missing, 1.0), fmt.share(missing)):
        assert text == fmt.MISSING
        assert "nan" not in text.lower()


def test_escape_marks_every_markdown_special():
    assert md("@bogus") == "\\@bogus"
    assert md("$x$") == "\\$x\\$"
    assert md("#set page(width: 1cm)") == "\\#set page(width: 1cm)"
    assert md("<script>") == "\\<script\\>"
    assert md("1. not a list") == "1\\. not a list"
    assert md("- x") == "\\- x"
    assert md("a\n\n# heading") == "a \\# heading"  # data never opens a block
    assert md(None) == ""
    already = Markdown("**bold**")
    assert md(already) is already
    assert attribute('say "hi" {x}') == "say 'hi' (x)"
    assert plain_label("$x$") == r"\$x\$"  # no matplotlib mathtext from data
    assert plain_outcome("Household income (log PEN per year)") == "household income"
    assert plain_outcome("PEN income") == "PEN income"


@pytest.mark.parametrize("text", HOSTILE)
def test_escaped_text_is_literal_in_html_and_typst(text):
    """Run pandoc's HTML and Typst writers on the escaped text (real pandoc, no mock)."""
    source = f"Name: {md(text)}\n"
    html = subprocess.run([pandoc_path(), "-f", "markdown", "-t", "html5"], input=source, capture_output=True,
                          text=True, check=True).stdout
    import html as html_lib

    visible = html_lib.unescape(html.replace("<p>", "").replace("</p>", "")).strip()
    assert " ".join(visible.split()) == "Name: " + " ".join(text.split()).replace("'", "\u2019")
    assert "<script>" not in html and "<a " not in html and "<code>" not in html
    typ = subprocess.run([pandoc_path(), "-f", "markdown", "-t", "typst"], input=source, capture_output=True,
                         text=True, check=True).stdout
    import typst

    pdf = typst.compile(typ.encode("utf-8"))  # compiles: no bibliography error, no code executed
    assert pdf.startswith(b"%PDF")
    for bad in ("#set", "$x", "@bogus"):
        if bad in text:
            assert "\\" + bad[0] in typ


def test_small_cell_rules():
    assert suppressed_label(10) == "<10, suppressed"
    assert is_small(9, 10) and not is_small(10, 10) and not is_small(None, 10)
    assert must_suppress({"n": 500, "suppressed": True}) and must_suppress({"n": 3}) and not must_suppress({"n": 30})
    results = load_fixture()
    results["analysis"]["min_cell"] = 20
    results["data"]["sample_flow"].append({"wave": 2013, "arm": "pilot arm", "units": 12})
    table = sample_flow_table(results)
    assert "<20, suppressed" in table.replace("\\", "") and "| 12 |" not in table
    results["heterogeneity"]["rows"].append({"subgroup": "tiny group", "estimate": 9.876, "std_error": 1.0,
                                             "conf_low": 7.9, "conf_high": 11.8, "p_value": 0.01, "n": 15,
                                             "suppressed": False})
    het = heterogeneity_table(results)
    assert "9.876" not in het and "tiny group" in het
    assert het.count("<20, suppressed") == 2 * 2  # estimate and units cells of 2 rows (Macusani flagged, tiny small)


def test_pipe_table_shape_and_escaping():
    table = pipe_table(["Name", "Value"], [["@bogus | x", 1.5], ["ok", None]])
    lines = table.splitlines()
    assert lines[0].startswith("| Name") and set(lines[1]) <= set("|:-")
    assert "\\@bogus \\| x" in lines[2]
    assert fmt.MISSING in lines[3]
    with pytest.raises(ValueError):
        pipe_table(["a", "b"], [["only one"]])


def test_forbidden_scan_finds_values_in_bytes(tmp_path):
    (tmp_path / "a.html").write_text("hello CANARY-name-0001 world", encoding="utf-8")
    (tmp_path / "b.json").write_text('{"x": 1}', encoding="utf-8")
    forbidden = forbidden_strings(["CANARY-name-0001", "ab", None, "nan", "CANARY-dni-0002"])
    assert forbidden == ["CANARY-dni-0002", "CANARY-name-0001"]  # too short / missing values skipped
    hits = scan_for_forbidden(sorted(tmp_path.iterdir()), forbidden)
    assert hits == [(tmp_path / "a.html", 1)]
    with pytest.raises(CheckFailed) as err:
        guard_outputs(tmp_path, forbidden)
    assert "CANARY" not in str(err.value)  # the message never repeats the personal value


def test_formats_and_front_matter_checks():
    assert parse_formats("html, pdf,html") == ["html", "pdf"]
    assert parse_formats("docx") == ["docx"]  # Word on request (pandoc)
    with pytest.raises(InputError, match="odt"):
        parse_formats("odt")
    assert front_matter("---\ntitle: x\n---\nbody") == {"title": "x"}
    with pytest.raises(InputError):
        check_results({"schema": "other"})


def test_build_is_deterministic_and_never_changes_numbers(tmp_path):
    """Same results + same date -> identical .qmd and identical PNG bytes."""
    results = load_fixture()
    first = build_qmd(results, tmp_path / "one", date="2026-01-01")
    second = build_qmd(results, tmp_path / "two", date="2026-01-01")
    assert first == second
    pngs = sorted((tmp_path / "one").rglob("*.png"))
    assert len(pngs) == 5
    for png in pngs:
        assert png.read_bytes() == (tmp_path / "two" / png.relative_to(tmp_path / "one")).read_bytes()
    assert results == load_fixture()  # the pack does not mutate the results document
    # every figure is a standalone paragraph with alt text (Quarto figure syntax)
    lines = first.splitlines()
    figure_lines = [i for i, line in enumerate(lines) if line.startswith("![")]
    assert len(figure_lines) == 5
    for i in figure_lines:
        assert lines[i - 1] == "" and 'fig-alt="' in lines[i] and 'fig-alt=""' not in lines[i]


def test_figures_skip_absent_sections(tmp_path):
    minimal = {"schema": "impactkit.results/2", "analysis": {"name": "x"}}
    assert save_figures(minimal, tmp_path) == {}


def test_digit_values_match_only_as_whole_numbers(tmp_path):
    (tmp_path / "r.json").write_text('{"x": 0.1234567812345, "y": "id 12345678."}', encoding="utf-8")
    assert scan_for_forbidden([tmp_path / "r.json"], ["23456781"]) == []  # inside a float: not a leak
    assert scan_for_forbidden([tmp_path / "r.json"], ["12345678"]) == [(tmp_path / "r.json", 0)]


def test_long_validation_lists_show_failed_rules_and_a_count():
    from impactkit.pack.tables import MAX_RULE_ROWS, validation_table

    rules = [{"rule": f"rule {i}", "column": "c", "engine": "gx", "success": i != 7, "failed_rows": int(i == 7),
              "failed_share": 0.0} for i in range(MAX_RULE_ROWS + 5)]
    table = validation_table({"validation": {"rules": rules}})
    body = table.splitlines()[2:]
    assert len(body) == 2 and "rule 7" in body[0] and f"{MAX_RULE_ROWS + 4:,} other rules" in body[1]


def test_percent_units_are_recognised_not_recomputed():
    from impactkit.pack.build import display_view, percent_factor

    b = 1.1
    proportion = {"estimate": b, "percent": math.expm1(b)}
    in_percent = {"estimate": b, "percent": 100 * math.expm1(b)}
    assert percent_factor(proportion) == 100.0 and percent_factor(in_percent) == 1.0
    results = load_fixture()
    view = display_view(results)
    assert view["headline"]["percent"] == 100 * results["headline"]["percent"]  # exact: a unit change only
    assert view["headline"]["tot"]["percent_low"] == 100 * results["headline"]["tot"]["percent_low"]
    assert results == load_fixture()


def test_subgroup_sentence_reads_the_difference_row_in_log_points():
    from impactkit.pack.build import display_view, subgroup_sentence

    results = load_fixture()
    rows = results["heterogeneity"]["rows"]
    diff = next(r for r in rows if r["subgroup"].startswith("difference"))
    text = subgroup_sentence(display_view(results)).replace("\\", "")
    women = next(r for r in rows if r["subgroup"] == "women-headed households")
    assert f"women-headed households {fmt.percent_change(100 * math.expm1(women['estimate']))}" in text
    assert f"{fmt.signed(diff['estimate'], 3)} log points" in text
    assert "<10, suppressed" in text  # the flagged Macusani subgroup
    assert fmt.p_equals(results["heterogeneity"]["interaction_p"]) in text


def test_trie_scan_agrees_with_naive_substring_search(tmp_path):
    """The trie regex finds exactly the values a naive ``value in text`` search finds."""
    from impactkit.seeds import rng

    gen = rng(7, "pack-trie-test")
    letters = list("abcAB -9")
    words = sorted({"".join(gen.choice(letters, size=int(gen.integers(4, 9)))) for _ in range(300)})
    words = [w for w in words if not w.isdigit()]
    text = "".join(gen.choice(letters, size=5000))
    path = tmp_path / "blob.txt"
    path.write_text(text, encoding="utf-8")
    found = {i for _, i in scan_for_forbidden([path], words)}
    naive = {i for i, w in enumerate(words) if w in text}
    assert naive  # the draw plants values to find
    # no false hit, and a file holding any value is flagged (matches do not overlap, so a
    # value overlapping an earlier match may go uncounted; the file is flagged either way)
    assert found <= naive and bool(found) == bool(naive)
    assert len(found) >= 0.5 * len(naive)


def test_every_block_starts_after_a_blank_line(tmp_path):
    from impactkit.pack.build import ensure_block_spacing

    assert ensure_block_spacing("text\n# Impact\n| a |\n| b |\n- x\n- y\n```\n# not a heading\n```") == \
        "text\n\n# Impact\n\n| a |\n| b |\n\n- x\n- y\n\n```\n# not a heading\n```"
    for results in (load_fixture(), json.loads(json.dumps({**load_fixture(), "warnings": ["w1", "w2"]}))):
        lines = build_qmd(results, tmp_path, date="2026-01-01").split("\n")
        body_start = lines.index("---", 1) + 1
        in_code = False
        for i in range(body_start + 1, len(lines)):
            if lines[i].startswith("```"):
                in_code = not in_code
            if not in_code and lines[i].startswith("#"):
                assert lines[i - 1] == "", lines[i]


def with_design(results: dict) -> dict:
    """The fixture plus the fields the real runner writes: the IV window, the subgroup design."""
    results["iv"]["window"] = {"cohort": 2010, "pre": 2009, "post": 2012, "n_clusters": 35}
    results["heterogeneity"]["design"] = "final wave, served vs comparison communities, baseline outcome as control"
    results["heterogeneity"]["label"] = "women-headed households"
    results["event_study"]["rows"] = results["event_study"].get("rows") or [{"event_time": 0, "estimate": 0.4}]
    return results


def test_executive_summary_keeps_itt_users_and_final_wave_apart():
    """The ITT average, the effect on users within the IV horizon and the final-wave subgroup
    effects are each named as such (exact strings, derived by hand from the fixture)."""
    from impactkit.pack.build import display_view, headline_sentences, subgroup_sentence, tot_horizon

    results = with_design(load_fixture())
    view = display_view(results)
    head, tot = results["headline"], results["headline"]["tot"]
    assert tot_horizon(results) == 2012 - 2010
    text = {k: v.replace("\\", "") for k, v in headline_sentences(view).items()}
    assert f"by an estimated **{fmt.percent_change(100 * head['percent'])}**" in text["effect"]
    assert "on average over the years since roll-out" in text["effect"]
    # 1.5 log points -> 100 (exp(1.5) - 1) = +348%, the users' effect within two years
    assert text["tot"].startswith("Within two years, for households that actually used the service, household income "
                                  f"rose by an estimated **{fmt.percent_change(100 * tot['percent'])}**")
    assert fmt.percent_change(100 * tot["percent"]) == "+348%"
    groups = subgroup_sentence(view).replace("\\", "")
    assert groups.startswith("Effects by group, from the final-wave comparison (served vs comparison communities, "
                             "baseline outcome as control), not the average over all years above: women-headed")
    results.pop("iv")
    assert tot_horizon(results) is None
    assert headline_sentences(display_view(results))["tot"].startswith("For households that actually used")


def test_plain_language_phrases():
    from impactkit.pack.build import impact_unit_phrase, verdict_phrase, years_phrase

    assert verdict_phrase("not yet shown to pass: readiness") == "not yet shown to pass the readiness gate"
    assert verdict_phrase("fails: cost_data, evidence") == "fails the cost data and evidence gates"
    assert verdict_phrase("ready to scale") == "ready to scale"
    assert impact_unit_phrase({"impact_unit": "PEN 2013 of yearly benefit per participant"}, "PEN") == \
        "PEN 1 (2013 Peruvian soles) of yearly benefit per participant"
    assert impact_unit_phrase({}, "USD") == "USD 1 of yearly benefit"
    assert years_phrase(1) == "one year" and years_phrase(2) == "two years" and years_phrase(12) == "12 years"


def test_provenance_table_fits_full_digests_and_front_matter_references():
    from impactkit.pack.build import packages_table, provenance_inputs_table
    from impactkit.pack.pipeline import referenced_files

    results = load_fixture()
    table = provenance_inputs_table(results)
    lines = table.splitlines()
    # the dashes set relative widths: 36% for the path, 64% for the 64-digit digest
    assert lines[1] == "|:" + "-" * 36 + "|:" + "-" * 64 + "|"
    for path, digest in results["provenance"]["inputs"].items():
        assert f"| {md(path)} | `{digest}` |" in lines
    packages = packages_table([("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")], columns=3)
    # column-major: two rows of up to three (package, version) pairs
    assert [c.strip() for c in packages.splitlines()[2].split("|")[1:-1]] == ["a", "1", "c", "3", "", ""]
    assert [c.strip() for c in packages.splitlines()[3].split("|")[1:-1]] == ["b", "2", "d", "4", "", ""]
    front = "---\nformat:\n  html:\n    css: pack.css\n  typst:\n    include-in-header: [pack-typst.typ]\n---\n"
    assert referenced_files(front) == ["pack.css", "pack-typst.typ"]


def test_tornado_drops_flat_inputs_and_labels_in_words():
    from impactkit.pack.figures import rank_palette, tornado_figure

    results = load_fixture()
    results["scale"]["tornado"].append({"parameter": "government_adoption", "score_low": 0.8, "score_high": 0.8})
    made = tornado_figure(results)
    labels = [t.get_text() for t in made.figure.axes[0].get_yticklabels()]
    assert "Government adoption" not in labels and len(labels) == 3
    assert "do not move the score: government adoption" in made.caption
    assert all(label[:1].isupper() and "_" not in label for label in labels)
    colours = rank_palette(7)
    assert len(set(colours)) == 7 and len(rank_palette(9)) == 9


def test_templates_are_package_data_found_through_importlib_resources():
    """The pack templates live in the package and every file matches a package-data glob."""
    import fnmatch
    import importlib.resources
    import tomllib
    from pathlib import Path

    from impactkit.pack.build import template_dir

    folder = template_dir()
    assert folder == Path(str(importlib.resources.files("impactkit.pack").joinpath("templates")))
    assert (folder / "evidence-pack.qmd.j2").is_file()
    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["impactkit"]
    for path in folder.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            assert any(fnmatch.fnmatch(path.name, g.split("/")[-1]) for g in globs), path.name


def test_levels_state_their_scale():
    from impactkit.pack.tables import level_with_scale, scale_detail_table

    assert level_with_scale("nesta_level", 5) == "5 of 5"
    assert level_with_scale("government_level", "0-4") == "0-4 of 4"
    table = scale_detail_table({"scale": {"focus_detail": {"nesta_level": 5, "government_level": "4",
                                                           "evidence_level": "4"}}})
    assert "Nesta Standards of Evidence level | 5 of 5" in table
    assert "Government adoption level | 4 of 4" in table
    assert "Evidence level (Maryland Scientific Methods Scale) | 4 of 5" in table
