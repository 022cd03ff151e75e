"""Regression table (impactkit.etable): several results side by side in five formats.

The table shows each model's own numbers: every cell is checked against the result it came
from (rounded to the requested digits), and text from results is escaped in each format.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import impactkit as ik
from impactkit.errors import InputError
from impactkit.etable import etable


@pytest.fixture(scope="module")
def models():
    moderndid = pytest.importorskip("moderndid")
    frame = moderndid.load_mpdta().to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = dict(y="lemp", unit="countyreal", time="year", cohort="first.treat")
        out = {"TWFE": ik.did(frame, method="twfe", **kw), "Sun-Abraham": ik.did(frame, method="sa", **kw),
               "BJS_imputation": ik.did(frame, method="imputation", **kw)}
    gen = np.random.default_rng(3)
    z = gen.normal(size=400)
    d = 0.8 * z + gen.normal(size=400)
    iv_frame = pd.DataFrame({"z": z, "d": d, "y": 2.0 * d + gen.normal(size=400)})
    out["IV & 2SLS"] = ik.iv(iv_frame, "y ~ 1 + [d ~ z]")
    return out


def test_cells_are_the_results_numbers(models):
    table = etable(models, digits=4)
    cells = table.cells
    att = models["TWFE"].att()
    row = list(cells.index).index("ATT")
    assert cells.iloc[row]["TWFE"] == f"{att['estimate']:.4f}"
    assert cells.iloc[row + 1]["TWFE"] == f"({att['std_error']:.4f})"
    es = models["Sun-Abraham"].event_study().set_index("event_time")
    row = list(cells.index).index("event time 0")
    assert cells.iloc[row]["Sun-Abraham"] == f"{es.loc[0, 'estimate']:.4f}"
    assert cells.iloc[row]["TWFE"] == ""
    coef = models["IV & 2SLS"].tidy().set_index("term")
    row = list(cells.index).index("d")
    assert cells.iloc[row]["IV & 2SLS"] == f"{coef.loc['d', 'estimate']:.4f}"


def test_every_format_renders_and_escapes(models):
    table = etable(models, terms=["ATT", "d"], uncertainty="ci", stars=True)
    text, md, tex, html_out = table.to_text(), table.to_markdown(), table.to_latex(), table.to_html()
    assert "ATT" in text and "[" in text
    assert "IV & 2SLS" in md and "BJS\\_imputation" in md
    assert r"IV \& 2SLS" in tex and r"BJS\_imputation" in tex and r"\begin{tabular}" in tex
    assert "IV &amp; 2SLS" in html_out
    gt = table.to_gt()
    assert "IV &amp; 2SLS" in gt.as_raw_html()


def test_bad_input():
    with pytest.raises(InputError, match="no models"):
        etable([])
    with pytest.raises(InputError, match="uncertainty"):
        etable([object()], uncertainty="sd")
    with pytest.raises(InputError, match="no estimates"):
        etable([object()])
