"""Exact order statistics of a distributed column without gathering it (impactkit.distributed.select).

Checked against numpy on the whole column: ``np.sort`` for order statistics, ``np.quantile`` and
``np.median`` bit for bit (equality, no tolerance), with histograms so coarse and a gather limit so
small that every search narrows over several passes; and the contract's outlier rows equal the
pandas engine's when the fences come from those narrowed searches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def column_values(part: pd.DataFrame, column: str) -> np.ndarray:
    v = part[column].to_numpy(dtype=float)
    return v[np.isfinite(v)]


@pytest.fixture(scope="module")
def column_parts(tmp_path_factory):
    import dask.dataframe as dd

    gen = np.random.default_rng(2026)
    values = np.concatenate([gen.lognormal(3.0, 1.2, 3000), np.full(400, 7.25), gen.integers(0, 50, 600) / 4,
                             [np.nan] * 20, [-1e12, 1e12]])
    gen.shuffle(values)
    frame = pd.DataFrame({"x": values})
    return frame["x"].to_numpy(), dd.from_pandas(frame, npartitions=5)


@pytest.mark.parametrize("bins,max_gather", [(4, 3), (16, 50), (2048, 50_000)])
def test_order_statistics_equal_the_sorted_column(dask_cluster, column_parts, bins, max_gather):
    from impactkit.distributed.reduce import partitions
    from impactkit.distributed.select import order_statistics

    values, frame = column_parts
    data = np.sort(values[np.isfinite(values)])
    ranks = [0, 1, 17, data.size // 4, data.size // 2, data.size // 2 + 1, 3 * data.size // 4, data.size - 1]
    found = order_statistics(partitions(frame), column_values, ("x",), ranks, bins=bins, max_gather=max_gather)
    assert found == {k: float(data[k]) for k in ranks}


def test_quantiles_and_medians_equal_numpy_bit_for_bit(dask_cluster, column_parts, monkeypatch):
    from impactkit.distributed import select
    from impactkit.distributed.reduce import partitions

    monkeypatch.setattr(select, "BINS", 8)
    monkeypatch.setattr(select, "MAX_GATHER", 10)
    values, frame = column_parts
    data = values[np.isfinite(values)]
    parts = partitions(frame)
    for n_drop in (0, 1):                      # even and odd counts
        sub = frame.iloc[:, :] if n_drop == 0 else frame[frame["x"] != 1e12]
        expected = data if n_drop == 0 else data[data != 1e12]
        p = partitions(sub)
        n = select.count(p, column_values, ("x",))
        assert n == expected.size
        assert select.quantile(p, column_values, ("x",), [0.25, 0.75, 0.1], n) == \
            [float(q) for q in np.quantile(expected, [0.25, 0.75, 0.1])]
        assert select.median(p, column_values, ("x",), n) == float(np.median(expected))
    assert select.count(parts, column_values, ("x",)) == data.size


def test_outlier_rules_equal_pandas_with_narrowed_searches(dask_cluster, tmp_path, monkeypatch):
    """Tukey and robust-z fences (one on logs) found through several narrowing passes."""
    from impactkit.contracts import validate
    from impactkit.distributed import select
    from impactkit.distributed.contracts import validate as validate_dask
    from impactkit.distributed.data import read_panel
    from tests.test_distributed_estimators import write_parts

    monkeypatch.setattr(select, "BINS", 16)
    monkeypatch.setattr(select, "MAX_GATHER", 40)
    panel = pd.read_parquet(ROOT / "analyses" / "peru_tap" / "panel.parquet")
    gen = np.random.default_rng(3)
    panel.loc[gen.choice(len(panel), 6, replace=False), "income"] = 1e9
    panel.loc[gen.choice(len(panel), 6, replace=False), "milk_litres_day"] = 400.0
    text = (ROOT / "data_contracts" / "peru_tap.yaml").read_text()
    rule = "          income: {iqr: 3, log: true}\n"
    assert rule in text
    contract = tmp_path / "peru_tap.yaml"               # add a robust-z rule next to the Tukey one
    contract.write_text(text.replace(rule, rule + "          milk_litres_day: {z: 3.5}\n"))
    report = validate_dask(read_panel(write_parts(panel, tmp_path / "parts", "household_id", n=3)), contract)
    ref = validate(panel, contract)
    outliers = ref.results[ref.results["rule"] == "outlier"]
    assert len(outliers) == 2 and not outliers["success"].any()
    assert report.results.to_dict("records") == ref.results.to_dict("records")
