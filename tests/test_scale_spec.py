"""Bad intervention / portfolio files raise SpecError naming the file, intervention, field and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from impactkit.errors import SpecError
from impactkit.scale import load_intervention, load_portfolio

GOOD = """\
id: demo
name: Demo
components:
  - name: only
    readiness:
      value: 7
      evidence: {source: fixture}
    use: unknown
evidence:
  design: before_after
  design_evidence: {source: fixture}
"""


def _write(tmp_path: Path, text: str, name: str = "demo.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_good_file_loads(tmp_path):
    spec = load_intervention(_write(tmp_path, GOOD)).spec
    assert spec.components[0].use.is_unknown and spec.components[0].readiness.bounds() == (7.0, 7.0)


def test_typo_key_names_file_intervention_field_and_line(tmp_path):
    p = _write(tmp_path, GOOD.replace("    use: unknown", "    use: unknown\n    usee: 3"))
    with pytest.raises(SpecError) as info:
        load_intervention(p)
    msg = str(info.value)
    assert str(p) in msg and "intervention 'demo'" in msg and "components.0.usee" in msg and "line 9" in msg
    assert "\n" not in msg


def test_wrong_type_names_the_field(tmp_path):
    p = _write(tmp_path, GOOD.replace("value: 7", "value: high"))
    with pytest.raises(SpecError, match=r"intervention 'demo': field 'components\.0\.readiness\.value' \(line 6\)"
                                        r".*number, an interval \[low, high\] or 'unknown'"):
        load_intervention(p)
    with pytest.raises(SpecError, match="exactly two bounds"):
        load_intervention(_write(tmp_path, GOOD.replace("value: 7", "value: [1, 2, 3]")))
    with pytest.raises(SpecError, match=r"components\.0\.use"):
        load_intervention(_write(tmp_path, GOOD.replace("use: unknown", "use: unknwon")))


def test_out_of_range_and_non_integer_levels(tmp_path):
    with pytest.raises(SpecError, match=r"components\.0\.readiness.*outside the admissible range \[1, 9\]"):
        load_intervention(_write(tmp_path, GOOD.replace("value: 7", "value: 12")))
    with pytest.raises(SpecError, match="whole numbers"):
        load_intervention(_write(tmp_path, GOOD.replace("value: 7", "value: 6.5")))
    with pytest.raises(SpecError, match="low > high"):
        load_intervention(_write(tmp_path, GOOD.replace("value: 7", "value: [8, 6]")))


def test_known_value_needs_evidence(tmp_path):
    p = _write(tmp_path, GOOD.replace("      evidence: {source: fixture}\n    use", "    use"))
    with pytest.raises(SpecError, match="needs 'evidence'"):
        load_intervention(p)


def test_duplicate_key_and_invalid_yaml(tmp_path):
    with pytest.raises(SpecError, match="duplicate key"):
        load_intervention(_write(tmp_path, GOOD + "name: Again\n"))
    with pytest.raises(SpecError, match=r"line \d+.*invalid YAML"):
        load_intervention(_write(tmp_path, GOOD + "  - : [\n"))


def test_missing_files(tmp_path):
    with pytest.raises(SpecError, match="file not found"):
        load_intervention(tmp_path / "nope.yaml")
    p = _write(tmp_path, "interventions:\n  - file: demo.yaml\n  - file: gone.yaml\n", "portfolio.yaml")
    _write(tmp_path, GOOD)
    with pytest.raises(SpecError) as info:
        load_portfolio(p)
    msg = str(info.value)
    assert "portfolio.yaml" in msg and "interventions.1.file" in msg and "line 3" in msg and "gone.yaml" in msg


def test_portfolio_errors(tmp_path):
    _write(tmp_path, GOOD)
    p = _write(tmp_path, "interventions:\n  - file: demo.yaml\nweights: {evidence_strenght: 1}\n", "portfolio.yaml")
    with pytest.raises(SpecError, match=r"portfolio: field 'weights' \(line 3\).*evidence_strenght"):
        load_portfolio(p)
    p = _write(tmp_path, "interventions:\n  - file: demo.yaml\n  - file: demo.yaml\n", "portfolio.yaml")
    with pytest.raises(SpecError, match="duplicate id"):
        load_portfolio(p)
    p = _write(tmp_path, "interventions:\n  - file: demo.yaml\ngates: {readiness_floor: 100}\n", "portfolio.yaml")
    with pytest.raises(SpecError, match=r"gates\.readiness_floor"):
        load_portfolio(p)


def test_government_rungs(tmp_path):
    text = GOOD + "government:\n  policy: {source: fixture}\n"
    assert load_intervention(_write(tmp_path, text)).spec.government.level() == 3
    with pytest.raises(SpecError, match=r"government\.budget"):
        load_intervention(_write(tmp_path, GOOD + "government:\n  budget: 4\n"))
