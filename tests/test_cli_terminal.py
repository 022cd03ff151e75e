"""The command line fits the terminal: widths 80, 100, 200; --version; --quiet; warnings once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (80, 100, 200)


@pytest.fixture(scope="module")
def did_results():
    from impactkit.analysis import run_analysis

    return run_analysis(ROOT / "analyses" / "did_2x2")


@pytest.mark.parametrize("width", WIDTHS)
def test_estimates_table_fits_the_terminal(did_results, width, monkeypatch):
    from impactkit.analysis.cli import print_estimates
    from impactkit.console import make_console, set_quiet

    monkeypatch.setenv("COLUMNS", str(width))
    set_quiet(True)  # warnings go to stderr; here only the table
    buffer = io.StringIO()
    try:
        print_estimates(did_results, make_console(file=buffer))
    finally:
        set_quiet(False)
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    assert any(line.startswith("Headline") for line in lines) or any("Headline" in line for line in lines)
    assert "kg per hectare" in buffer.getvalue()
    for row in did_results["estimators"]:  # no number is cut to fit
        assert f"{row['estimate']:.3f}" in buffer.getvalue()
        if row.get("n_obs"):
            assert f" {row['n_obs']} " in buffer.getvalue() + " "


@pytest.mark.parametrize("width", WIDTHS)
def test_score_table_fits_the_terminal(cli, width, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setenv("IMPACTKIT_QUIET", "0")  # restored after the test (--quiet sets it)
    result = cli("--quiet", "score", ROOT / "analyses" / "portfolio.yaml", "--no-linked", "--draws", "200")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.output.splitlines()) <= width


def test_version(cli):
    from impactkit import __version__

    result = cli("--version")
    assert result.exit_code == 0 and result.output.strip() == f"impactkit {__version__}"


def test_each_warning_once_on_one_short_line():
    from impactkit.console import MAX_WARNING, WarningsOnce, make_console, set_quiet

    buffer = io.StringIO()
    handler = WarningsOnce(make_console(file=buffer))
    long = "dropped 277 row(s) with missing outcome 'y' " + "because the follow-up did not reach them " * 10
    for _ in range(3):
        handler.show(long)
        handler.show("weights 'w' not used by power calculation")
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2
    assert all(line.startswith("warning: ") and len(line) <= MAX_WARNING + len("warning: ") for line in lines)
    set_quiet(True)
    try:
        handler.show("a new warning under --quiet")
    finally:
        set_quiet(False)
    assert len(buffer.getvalue().splitlines()) == 2


def test_no_cli_forces_a_console_width():
    import re

    for path in sorted((ROOT / "impactkit").rglob("cli.py")):
        if path.parts[-2:] == ("pin", "cli.py"):
            continue  # the lead's module (not this issue's)
        assert not re.search(r"width\s*=\s*max\(", path.read_text(encoding="utf-8")), path
