"""docs/analysis-spec.md is generated from the model and kept current; its example is valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "analysis-spec.md"


def test_reference_page_is_up_to_date():
    from impactkit.analysis.specdoc import render_reference

    assert PAGE.read_text(encoding="utf-8") == render_reference(), \
        "regenerate: python -m impactkit.analysis.specdoc > docs/analysis-spec.md"


def test_every_key_of_the_model_is_documented_with_a_meaning():
    from impactkit.analysis.spec import AnalysisSpec

    text = PAGE.read_text(encoding="utf-8")
    for section, field in AnalysisSpec.model_fields.items():
        if section == "folder":
            continue
        assert f"## `[{section}]`" in text
        for key, sub in field.annotation.model_fields.items():
            assert sub.description, f"[{section}] {key} has no description"
            assert f"| `{key}` |" in text


def test_the_worked_example_validates(tmp_path):
    from impactkit.analysis.spec import AnalysisSpec

    block = re.search(r"```toml\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S).group(1)
    spec = AnalysisSpec.model_validate({**tomllib.loads(block), "folder": tmp_path})
    assert spec.outcomes.kind == "log" and spec.outcomes.transform == "none"
