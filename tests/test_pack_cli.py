"""The evidence pack on the real analysis runner: privacy canaries end to end.

A copy of the Peru TAP analysis (panel, contract, portfolio) is written to a temporary
folder with unique canary strings planted in every personal column the contract names
(``head_name`` for every household; ``dni`` and ``phone`` for 25 households, keeping their
8- and 9-digit formats so that the contract still validates). ``impactkit pack`` then
(the real command line, ``python -m impactkit pack``) runs the analysis, builds and
renders the pack; every output byte (HTML, PDF, .qmd,
JSON, PNG) and the PDF's extracted text are searched for every canary: none may appear.
Skipped while ``impactkit.analysis.run_analysis`` does not exist.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pandas as pd

from impactkit.privacy import all_files, pdf_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def canary_pack(tmp_path_factory):
    root = tmp_path_factory.mktemp("canary")
    shutil.copytree(REPO / "analyses", root / "analyses")
    if (REPO / "data_contracts").exists():
        shutil.copytree(REPO / "data_contracts", root / "data_contracts")
    panel_path = root / "analyses" / "peru_tap" / "panel.parquet"
    panel = pd.read_parquet(panel_path)
    households = sorted(panel["household_id"].unique())
    names = {h: f"Canaryname Zqx{i:04d}" for i, h in enumerate(households)}
    panel["head_name"] = panel["household_id"].map(names)
    chosen = households[:25]
    dnis = {h: f"{48_271_600 + 37 * i:08d}" for i, h in enumerate(chosen)}
    phones = {h: f"9{61_530_200 + 41 * i:08d}" for i, h in enumerate(chosen)}
    mask = panel["household_id"].isin(chosen)
    panel.loc[mask, "dni"] = panel.loc[mask, "household_id"].map(dnis)
    panel.loc[mask, "phone"] = panel.loc[mask, "household_id"].map(phones)
    panel.to_parquet(panel_path, index=False)
    out = root / "reports" / "peru_tap"
    # the real command line, in a child process with one BLAS thread (the analysis fits
    # ~1,000 small regressions; oversubscribed BLAS threads only slow them down)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, "-m", "impactkit", "pack", str(root / "analyses" / "peru_tap"),
                           "--to", "html,pdf", "--out", str(out)], capture_output=True, text=True, env=env,
                          cwd=str(root), check=False)
    code = done.returncode
    assert code == 0, done.stderr[-2000:]
    assert str(out / "evidence-pack.pdf") in done.stdout  # the command prints the output paths
    canaries = sorted(set(names.values()) | set(dnis.values()) | set(phones.values()))
    return code, out, canaries


def test_pack_exits_zero_with_every_output(canary_pack):
    code, out, _ = canary_pack
    assert code == 0
    for name in ("evidence-pack.qmd", "evidence-pack.html", "evidence-pack.pdf", "results.json"):
        assert (out / name).stat().st_size > 0
    assert list((out / "figures").rglob("*.png"))


def test_no_canary_in_any_output_byte(canary_pack):
    _, out, canaries = canary_pack
    files = all_files(out)
    assert len(files) >= 5
    blobs = {f: f.read_bytes() for f in files}
    for f in files:
        if f.suffix == ".pdf":
            blobs[f] += pdf_text(f).encode("utf-8")
    for canary in canaries:
        raw = canary.encode("utf-8")
        pattern = re.compile(rb"(?<![0-9])" + re.escape(raw) + rb"(?![0-9])") if canary.isdigit() else None
        for f, blob in blobs.items():
            found = pattern.search(blob) is not None if pattern else raw in blob
            assert not found, f"a planted personal value appears in {f.name}"


def test_first_pdf_page_states_the_real_headline(canary_pack):
    """The numbers on page 1 are those of the published results.json (formatted, not recomputed)."""
    import json

    from impactkit.pack import format as fmt
    from impactkit.pack.build import display_view

    _, out, _ = canary_pack
    head = display_view(json.loads((out / "results.json").read_text(encoding="utf-8")))["headline"]
    first = pdf_text(out / "evidence-pack.pdf", last_page=1)
    flat = " ".join(first.split())
    assert fmt.percent_change(head["percent"]) in flat
    assert f"{fmt.percent_change(head['percent_low'])} to {fmt.percent_change(head['percent_high'])}" in flat
    assert fmt.money_short(head["money_per_unit"], "PEN") in flat
    # the effect on users within the IV horizon (the report's "+350% within two years") and
    # the subgroup effects named as the final-wave comparison, not the ITT average
    window = json.loads((out / "results.json").read_text(encoding="utf-8"))["iv"]["window"]
    assert window["post"] - window["cohort"] == 2
    assert "Within two years, for households that actually used a TAP" in flat
    assert f"**{fmt.percent_change(head['tot']['percent'])}**".strip("*") in flat
    assert "from the final-year comparison" in flat and "not the average over all years above" in flat
