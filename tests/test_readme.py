"""The README's Python tour runs as written (from the repository root)."""

from __future__ import annotations

import os
import re

import matplotlib

from tests.conftest import ROOT

matplotlib.use("Agg")


def test_readme_python_tour_runs(monkeypatch, capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no python block"
    tour = blocks[0]
    assert len(tour.strip().splitlines()) <= 22
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)  # noqa: S102 - the tour is our own text
    out = capsys.readouterr().out
    assert "True" in out and "rules checked" in out
    assert namespace["results"]["headline"]["estimate"] > 0
    assert namespace["late"].tidy().shape[0] >= 1
    assert os.getcwd() == str(ROOT)
