"""The policy brief: recommendation table, catalogs, locale formatting, labels, palette, docx.

Visual checks (the brief as a person sees it) are in ``tests/test_pack_visual.py``.
"""

from __future__ import annotations

import copy
import json
import re
import zipfile
from pathlib import Path

import pytest

from impactkit.pack.brief import BriefSettings, Honesty, brief_qmd, results_verdict
from impactkit.pack.i18n import Local, catalog_path, translations
from impactkit.pack.recommend import Verdict, authored_stance, reconcile, verdict

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "analyses" / "peru_tap"


@pytest.fixture(scope="module")
def results(peru_results):
    """The Peru TAP results document as JSON gives it (the session's run, once per worker)."""
    from impactkit.atomic import dumps_json

    return json.loads(dumps_json(peru_results))


@pytest.fixture(scope="module")
def settings():
    from impactkit.pack.cli import brief_settings

    return brief_settings(PERU)


def label(text: str) -> str:
    """An honesty label as the .qmd holds it (brackets escaped for pandoc)."""
    return f"\\[{text}\\]"


# --- recommendation: the table of cases -------------------------------------------------

@pytest.mark.parametrize("low, high, better, failed, uncertain, assessed, expected", [
    (None, None, True, [], [], True, Verdict.NO_EVIDENCE),
    (-0.5, -0.1, True, [], [], True, Verdict.STOP),
    (0.1, 0.5, False, [], [], True, Verdict.STOP),          # a rise in a bad outcome
    (-0.1, 0.3, True, [], [], True, Verdict.NOT_SHOWN),
    (0.0, 0.3, True, [], [], True, Verdict.NOT_SHOWN),      # touching zero is not shown
    (0.1, 0.3, True, ["cost_data"], [], True, Verdict.FIX_FIRST),
    (0.1, 0.3, True, ["cost_data"], ["readiness"], True, Verdict.FIX_FIRST),
    (0.1, 0.3, True, [], ["readiness"], True, Verdict.SCALE_IN_STAGES),
    (0.1, 0.3, True, [], [], False, Verdict.SCALE_IN_STAGES),
    (0.1, 0.3, True, [], [], True, Verdict.SCALE),
    (-0.3, -0.1, False, [], [], True, Verdict.SCALE),       # a fall in a bad outcome
])
def test_verdict_table(low, high, better, failed, uncertain, assessed, expected):
    assert verdict(low, high, higher_is_better=better, failed_gates=failed, uncertain_gates=uncertain,
                   assessed=assessed) is expected


@pytest.mark.parametrize("text, stance", [
    ("Certify TAPs and fund their training, rolling out in waves.", "expand"),
    ("Scale up nationally.", "expand"),
    ("Do not scale until the costs are known.", "hold"),
    ("Pause the roll-out.", "hold"),
    ("", None),
    ("Collect more data on attendance.", None),
])
def test_authored_stance(text, stance):
    assert authored_stance(text) == stance


def test_authored_text_contradicting_a_null_effect_is_replaced_with_a_warning():
    rec = reconcile(Verdict.NOT_SHOWN, "Scale up the programme in every province.")
    assert rec.authored is None and "advocates expanding" in rec.warning
    kept = reconcile(Verdict.SCALE_IN_STAGES, "Scale up the programme in every province.")
    assert kept.authored and kept.warning is None
    cautious = reconcile(Verdict.NOT_SHOWN, "Do not scale yet; run a second trial.")
    assert cautious.authored and cautious.warning is None


def null_results(results):
    out = copy.deepcopy(results)
    head = out["headline"]
    head.update(estimate=0.01, conf_low=-0.03, conf_high=0.05, percent=0.01, percent_low=-0.03, percent_high=0.05)
    return out


def test_peru_verdict_follows_results(results):
    assert results_verdict(results) is Verdict.SCALE_IN_STAGES  # positive, readiness gate uncertain
    assert results_verdict(null_results(results)) is Verdict.NOT_SHOWN


def test_null_effect_brief_shows_results_verdict_and_warns(results, settings):
    brief = brief_qmd(null_results(results), settings, "en", date="2026-12-01", figure=None, figure_alt="",
                      annex="evidence-pack.html")
    assert brief.warnings and "not_shown" in brief.warnings[0]
    assert "do not scale on this evidence" in brief.qmd
    assert "Certify TAPs" not in brief.qmd  # the authored call to expand is not shown
    es = brief_qmd(null_results(results), settings, "es", date="2026-12-01", figure=None, figure_alt="",
                   annex="evidence-pack.html")
    assert "no escalar con esta evidencia" in es.qmd and "Certificar a los TAP" not in es.qmd


def test_pipeline_warns_on_contradiction(results, settings, tmp_path):
    from impactkit.pack.pipeline import build_briefs

    one = BriefSettings(audience="government", languages=("en",), text=settings.text, honesty=settings.honesty)
    with pytest.warns(UserWarning, match="authored recommendation"):
        made, _ = build_briefs(null_results(results), tmp_path, one, ["html", "docx"], date="2026-12-01",
                               engine="pandoc", keep_typst=False)
    from impactkit.privacy import docx_text

    word = docx_text(made["brief-en-docx"])  # an editable Word brief, labels included
    assert "do not scale on this evidence" in word and "[simulated data]" in word


# --- catalogs and locale formatting -----------------------------------------------------

def extracted_messages() -> set[str]:
    """Messages Babel extracts from the modules named in babel.cfg (keywords t and N_)."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file

    keywords = {**DEFAULT_KEYWORDS, "t": None, "N_": None}
    files = re.findall(r"^\[python: (.+)\]$", (ROOT / "babel.cfg").read_text(), re.MULTILINE)
    found = set()
    for name in files:
        for _lineno, message, _comments, _context in extract_from_file("python", str(ROOT / name), keywords=keywords):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_spanish_catalog_translates_every_extracted_message():
    from babel.messages.pofile import read_po

    with catalog_path("es").open("rb") as handle:
        catalog = read_po(handle, locale="es")
    translated = {m.id for m in catalog if m.id and m.string and "fuzzy" not in m.flags}
    missing = sorted(extracted_messages() - translated)
    assert not missing, f"untranslated in es.po (run `make i18n` and translate): {missing[:5]}"
    assert translations("es").gettext("Findings") == "Resultados"


def test_spanish_brief_has_no_untranslated_string(results, settings):
    brief = brief_qmd(results, settings, "es", date="2026-12-01", figure="figures/x.png", figure_alt="alt",
                      annex="evidence-pack.html")
    assert brief.untranslated == []
    body = brief.qmd.split("\n---\n", 1)[1]
    english = {m for m in extracted_messages() if len(m) > 12 and "%" not in m}
    leaked = [m for m in english if m in body]
    assert not leaked, leaked[:3]
    for word in (" the ", " and ", " with ", "household", "Findings", "Recommendation"):
        assert word not in body, word


def test_untranslated_authored_text_is_reported(results):
    bare = BriefSettings(languages=("es",), honesty=Honesty(simulated_data=True))
    brief = brief_qmd(results, bare, "es", date="2026-12-01", figure=None, figure_alt="", annex="x.html")
    assert "[pack.text.es] title" in brief.untranslated


def test_locale_formatting():
    es, en = Local("es", "PE"), Local("en", "PE")
    assert es.money(6019.5, "PEN", 2) == "S/\u00a06.019,50"
    assert en.money(6019.5, "PEN", 2) == "PEN\u00a06,019.50"
    assert es.date("2026-12-01") == "1 de diciembre de 2026"
    assert en.date("2026-12-01") == "December 1, 2026"
    assert es.signed_percent(108.2) == "+108\u00a0%" and en.signed_percent(108.2) == "+108%"
    assert es.number(-0.004, 2) == "0,00"  # no negative zero


def test_brief_uses_locale_numbers_and_labels(results, settings):
    es = brief_qmd(results, settings, "es", date="2026-12-01", figure=None, figure_alt="", annex="x.html").qmd
    assert "S/\u00a0672" in es and "1 de diciembre de 2026" in es and "lang: es" in es
    assert label("datos simulados") in es and label("cuentas ilustrativas") in es and label("supuesto") in es
    assert label("inverosímilmente alto: revise las cuentas") in es  # BCR 116 > 20
    en = brief_qmd(results, settings, "en", date="2026-12-01", figure=None, figure_alt="", annex="x.html").qmd
    assert label("simulated data") in en and label("illustrative accounts") in en and label("assumption") in en
    assert "lang: en" in en


@pytest.mark.parametrize("audience, heading", [("government", "What the state must fund"),
                                               ("company", "The business case"), ("funder", "Cost-effectiveness")])
def test_audience_changes_the_lead(results, settings, audience, heading):
    one = BriefSettings(audience=audience, languages=("en",), text=settings.text, honesty=settings.honesty)
    qmd = brief_qmd(results, one, "en", date="2026-12-01", figure=None, figure_alt="", annex="x.html").qmd
    page2 = qmd.split("{{< pagebreak >}}", 1)[1]
    assert page2.lstrip().startswith(f"## {heading}")


def test_rank_never_stands_beside_a_contradicting_verdict(results, settings):
    qmd = brief_qmd(results, settings, "en", date="2026-12-01", figure=None, figure_alt="", annex="x.html").qmd
    assert "ranked 1 of" not in qmd
    assert "most promising of 7 options assessed, but not yet shown to be ready" in qmd


# --- the technical report --------------------------------------------------------------

def test_report_labels_power_rule_and_language(results, settings, tmp_path):
    from impactkit.pack.build import build_qmd

    qmd = build_qmd(results, tmp_path, date="2026-12-01", honesty=settings.honesty)
    assert "lang: en" in qmd
    assert label("simulated data") in qmd and label("illustrative accounts") in qmd
    assert label("implausibly high: check the accounts") in qmd
    needed = results["power"]["n_clusters_required"]
    assert "at least 42 clusters" in qmd and f"power alone would need {needed}" in qmd
    assert f"would need {needed} clusters" not in qmd
    assert "it does not override the gates" in qmd


# --- colour and fonts ------------------------------------------------------------------

def contrast(a: str, b: str) -> float:
    """WCAG 2.1 contrast ratio of two sRGB hex colours."""
    def luminance(hex_colour: str) -> float:
        rgb = [int(hex_colour.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula_on_known_pairs():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


def test_palette_contrast_ratios():
    from impactkit.pack import figures

    for colour in figures.GRAPHIC_COLOURS + figures.RANK_COLOURS:
        assert contrast(colour, figures.BACKGROUND) >= 3.0, colour
    for colour in figures.TEXT_COLOURS:
        assert contrast(colour, figures.BACKGROUND) >= 4.5, colour
    # the labels' text on their own fill
    assert contrast("#5c3b00", "#fff4e5") >= 4.5 and contrast("#8b1a1a", "#fdecec") >= 4.5


def test_one_font_family_across_text_and_figures():
    from impactkit.pack import figures
    from impactkit.pack.build import template_dir

    family = figures.FONT_FAMILY
    for name in ("pack-typst.typ", "brief-typst.typ"):
        assert f'font: ("{family}",)' in (template_dir() / name).read_text()
    for name in ("pack.css", "brief.css"):
        assert f'font-family: "{family}"' in (template_dir() / name).read_text()


# --- Word files and the privacy guard ---------------------------------------------------

def test_privacy_guard_reads_docx_text(tmp_path):
    from impactkit.errors import CheckFailed
    from impactkit.privacy import guard_outputs

    doc = tmp_path / "brief.docx"
    xml = ('<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p>'
           '<w:r><w:t>Call 9876</w:t></w:r><w:r><w:t>5432 today</w:t></w:r></w:p></w:body></w:document>')
    with zipfile.ZipFile(doc, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", xml)
    assert b"98765432" not in doc.read_bytes()  # zipped: a byte scan alone finds nothing
    with pytest.raises(CheckFailed, match="brief.docx"):
        guard_outputs(tmp_path, ["98765432"])


def test_every_scale_gate_has_a_name_in_each_language():
    """Gate names reach the brief's recommendation: each must come from the catalog, never an
    identifier such as 'financial_sustainability' in the Spanish text."""
    from impactkit.pack.brief import GATE_NAMES, Writer, gate_phrase
    from impactkit.pack.i18n import Local
    from impactkit.scale.criteria import GATES

    assert set(GATES) <= set(GATE_NAMES)
    w = Writer(Local("es", "PE"), {}, {})
    spanish = gate_phrase(w, list(GATES))
    assert not w.untranslated
    assert "_" not in spanish and "financial" not in spanish and "sostenibilidad financiera" in spanish
