"""The whole analysis chain on Dask, from the same ``analysis.toml``: results, pack, pin, rerun.

Data: a subset of the simulated Peru TAP panel (whole communities) and the public ``mpdta``
(Callaway & Sant'Anna 2021, via moderndid), each written as several Parquet files (partitions
holding whole units), run on the session's LocalCluster (``dask_cluster`` in conftest) and on
the pandas engine from the same folder. Tolerance: 1e-10 absolute on every number of a section
the Dask engine computes (the engines add the same sums in a different order); strings and counts
exactly equal. Sections the Dask engine does not compute are absent and carry a reason in
``omitted``.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "analyses" / "peru_tap"
MPDTA = Path(__file__).resolve().parent / "data" / "mpdta"
TOL = 1e-10
#: sections both engines compute (every number must agree)
DISTRIBUTED = ("analysis", "data", "validation", "estimators", "event_study", "wild_bootstrap", "headline", "balance",
               "attrition", "bacon")
ON_DASK = "not computed on the Dask engine: "

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def write_parts(frame: pd.DataFrame, folder: Path, unit: str, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, chunk in enumerate(np.array_split(np.sort(frame[unit].unique()), n)):
        frame[frame[unit].isin(chunk)].to_parquet(folder / f"part-{i}.parquet", index=False)


def peru_folder(folder: Path) -> Path:
    """A partitioned copy of the Peru analysis on a third of the communities, fewer draws."""
    panel = pd.read_parquet(PERU / "panel.parquet")
    communities = np.sort(panel["community_id"].unique())
    panel = panel[panel["community_id"].isin(communities[::3])].reset_index(drop=True)
    write_parts(panel, folder / "panel", "household_id", 4)
    text = (PERU / "analysis.toml").read_text(encoding="utf-8").replace('file = "panel.parquet"', 'file = "panel"')
    text = text.replace('"../../data_contracts/', f'"{ROOT}/data_contracts/').replace(
        '"../portfolio.yaml"', f'"{ROOT}/analyses/portfolio.yaml"').replace('costs = "costs.toml"', f'costs = "{PERU}/costs.toml"')
    text = text.replace("wild_bootstrap_draws = 9999", "wild_bootstrap_draws = 999").replace(
        "multiplier_draws = 999", "multiplier_draws = 199").replace("multiple_testing_draws = 499", "multiple_testing_draws = 99")
    text = text.replace('intervention = "peru_tap"', 'intervention = "peru_tap"\ndraws = 500').replace(
        "multiplier_draws = 199", "multiplier_draws = 199\nrandomization_draws = 99")
    (folder / "analysis.toml").write_text(text + '\n[engine]\nkind = "dask"\n', encoding="utf-8")
    return folder


def mpdta_folder(folder: Path) -> Path:
    """``tests/data/mpdta`` (contract + analysis.toml) with mpdta written as 3 partitions."""
    from moderndid import load_mpdta

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("contract.yaml", "analysis.toml"):
        shutil.copy(MPDTA / name, folder / name)
    frame = load_mpdta().to_pandas().rename(columns={"first.treat": "first_treat"})
    frame["treated_now"] = ((frame["first_treat"] > 0) & (frame["year"] >= frame["first_treat"])).astype("int64")
    frame["state"] = frame["countyreal"] // 1000
    frame = frame[["countyreal", "year", "state", "first_treat", "treated_now", "lemp", "lpop"]]
    write_parts(frame, folder / "panel", "countyreal", 3)
    return folder


def flat(value, path: str = ""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from flat(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from flat(v, f"{path}[{i}]")
    else:
        yield path, value


def assert_same(dask: dict, pandas: dict, section: str) -> None:
    a, b = dict(flat(dask[section], section)), dict(flat(pandas[section], section))
    assert set(a) == set(b), (section, sorted(set(a) ^ set(b)))
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) or isinstance(y, float):
            assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= TOL, (key, x, y)
        else:
            assert x == y, (key, x, y)


#: scale keys that are Monte Carlo probabilities (checked within their Monte Carlo error), their
#: standard errors, and the draws' quantiles with the tornado built on them (not compared: see below)
MC_PROBABILITY = re.compile(r"\.(p_[a-z_0-9]+|probability)$")
MC_OTHER = re.compile(r"\.(mcse_[a-z_0-9]+|se|q05|q95)$|^scale\.tornado\[")


def assert_scale_within_monte_carlo(dask: dict, pandas: dict) -> None:
    """The scale section: every number that does not rest on the Monte Carlo draws equal to 1e-10
    (relative above 1); every Monte Carlo probability within 5 standard errors of the difference of
    two independent runs, ``5 sqrt(p_a(1 - p_a)/D + p_b(1 - p_b)/D) + 2/D`` (D draws; the Dask
    draws are per-block streams, pandas' one stream). The draws' 5%/95% quantiles and the tornado
    (whose order rests on them) are not compared: their Monte Carlo error has no closed form here."""
    a, b = dict(flat(dask["scale"], "scale")), dict(flat(pandas["scale"], "scale"))
    assert set(a) == set(b)
    draws = a["scale.options.draws"]
    n_probabilities = 0
    for key, x in a.items():
        y = b[key]
        if MC_OTHER.search(key):
            continue
        if MC_PROBABILITY.search(key) and isinstance(x, float):
            n_probabilities += 1
            assert abs(x - y) <= 5 * math.sqrt((x * (1 - x) + y * (1 - y)) / draws) + 2 / draws, (key, x, y)
        elif isinstance(x, float) or isinstance(y, float):
            assert abs(x - y) <= TOL * max(1.0, abs(y)), (key, x, y)
        else:
            assert x == y, (key, x, y)
    assert n_probabilities > 20


def assert_omissions(dask: dict, pandas: dict) -> None:
    """Every section the pandas engine computes is on Dask too, or omitted with a Dask reason."""
    for section in pandas:
        if section in ("omitted", "warnings") or section in dask:
            continue
        assert dask["omitted"].get(section, "").startswith(ON_DASK), section
    for section, reason in dask["omitted"].items():
        assert reason.startswith(ON_DASK) or pandas["omitted"].get(section) == reason, (section, reason)


@pytest.fixture(scope="module")
def peru(dask_cluster, tmp_path_factory):
    from impactkit.distributed.analysis import run_analysis_on

    folder = peru_folder(tmp_path_factory.mktemp("peru-dask") / "peru")
    return folder, run_analysis_on(folder), run_analysis_on(folder, engine="pandas")


# ------------------------------------------------------------------------------------------ fast checks
def test_every_pandas_step_has_a_dask_entry():
    from impactkit.analysis.run import STEPS
    from impactkit.distributed.steps import DASK_STEPS, dask_steps

    assert [name for name, _ in dask_steps()] == [name for name, _ in STEPS]
    assert set(DASK_STEPS) == {name for name, _ in STEPS}


def test_directory_digest_is_sorted_paths_and_file_digests(tmp_path):
    from impactkit.provenance import sha256_file, sha256_text, sha256_tree

    (tmp_path / "b.parquet").write_bytes(b"two")
    (tmp_path / "a.parquet").write_bytes(b"one")
    files = {"b.parquet": tmp_path / "b.parquet", "a.parquet": tmp_path / "a.parquet"}
    expected = sha256_text("".join(f"{k}\0{sha256_file(files[k])}\n" for k in sorted(files)))
    assert sha256_tree(files) == expected == sha256_tree(dict(reversed(list(files.items()))))
    assert sha256_tree({"c.parquet": files["a.parquet"], "b.parquet": files["b.parquet"]}) != expected


# ------------------------------------------------------------------------------------------ results
def test_peru_results_on_dask_equal_pandas(peru):
    _, dask, pandas = peru
    assert "lee_bounds" in dask["attrition"] and "lee_bounds" not in dask["omitted"]
    assert dask["schema"] == pandas["schema"] == "impactkit.results/2"
    for section in (*DISTRIBUTED, "iv"):
        if section == "data":  # the weights' users differ: steps omitted on Dask use none
            dask, pandas = ({**r, "data": {k: v for k, v in r["data"].items() if k != "weights"}} for r in (dask, pandas))
        assert_same(dask, pandas, section)
    assert [r["method"] for r in dask["estimators"]] == ["cs", "twfe", "sa", "iv"]
    assert dask["iv"]["complier_means"] and dask["headline"]["tot"]["take_up"] == dask["iv"]["first_stage"]["estimate"]
    # power from reductions, with the 2SLS first stage as the take-up (as pandas); the cost
    # account and the scale section then rest on the same facts
    assert_same(dask, pandas, "power")
    cost_a, cost_b = dict(flat(dask["cost"])), dict(flat(pandas["cost"]))
    assert cost_a.keys() == cost_b.keys() and all(
        abs(x - cost_b[k]) <= TOL * max(1.0, abs(cost_b[k])) if isinstance(x, float) else x == cost_b[k]
        for k, x in cost_a.items())
    assert_scale_within_monte_carlo(dask, pandas)
    assert_omissions(dask, pandas)
    assert "iv" not in dask["omitted"]
    # randomization inference from per-cluster sums: the pandas engine's re-assignments and p-value
    assert "randomization_inference" not in dask["omitted"]
    assert_same(dask, pandas, "randomization_inference")
    # the family's corrections by per-cluster sums, with the pandas draws: estimates to 1e-10,
    # Romano-Wolf and Westfall-Young p-values (counts of draws) equal
    assert len(dask["multiple_outcomes"]) == 5 and "multiple_outcomes" not in dask["omitted"]
    assert_same(dask, pandas, "multiple_outcomes")
    for a, b in zip(dask["multiple_outcomes"], pandas["multiple_outcomes"]):
        assert a["romano_wolf"] == b["romano_wolf"] and a["westfall_young"] == b["westfall_young"]
    assert not any(r.startswith(ON_DASK) for r in dask["omitted"].values()), dask["omitted"]
    # subgroup effects by cluster sums: the interaction model equal to pandas to 1e-10
    assert dask["heterogeneity"]["by"] and "heterogeneity" not in dask["omitted"]
    assert_same(dask, pandas, "heterogeneity")
    assert len(dask["heterogeneity"]["rows"]) == 3 and math.isfinite(dask["heterogeneity"]["interaction_p"])
    assert dask["scale"]["ranking"] and dask["seeds"]["entropy"] == pandas["seeds"]["entropy"]


def test_mpdta_results_on_dask_equal_pandas(dask_cluster, tmp_path):
    from impactkit.distributed.analysis import run_analysis_on

    folder = mpdta_folder(tmp_path / "mpdta")
    dask, pandas = run_analysis_on(folder), run_analysis_on(folder, engine="pandas")
    for section in (*DISTRIBUTED, "power"):
        assert_same(dask, pandas, section)
    assert [r["method"] for r in dask["estimators"]] == ["cs", "twfe", "sa", "2x2", "ancova"]
    for section in ("randomization_inference", "randomization_inference_ancova"):
        assert section not in dask["omitted"]
        assert_same(dask, pandas, section)
    assert_omissions(dask, pandas)
    assert not any(r.startswith(ON_DASK) for r in dask["omitted"].values()), dask["omitted"]
    assert dask["balance"]["rows"][0]["covariate"] == "lpop"
    assert dask["data"]["sha256"] == dask["provenance"]["inputs"]["panel"]  # the directory's digest
    assert {f"panel/part-{i}.parquet" for i in range(3)} <= set(dask["provenance"]["inputs"])


# ------------------------------------------------------------------------------------------ pack, pin, rerun
@pytest.mark.slow
def test_pack_renders_from_a_dask_analysis(peru, cli, tmp_path):
    folder, _, _ = peru
    out = tmp_path / "pack"
    result = cli("--quiet", "pack", str(folder), "--to", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    qmd = (out / "evidence-pack.qmd").read_text(encoding="utf-8")
    html = (out / "evidence-pack.html").read_text(encoding="utf-8")
    # every section is computed on Dask now: none is left out, the family table and RI are printed
    assert "not computed on the Dask engine" not in qmd and "not computed on the Dask engine" not in html
    assert "Callaway" in html and "Romano-Wolf" in html and "Westfall-Young" in html
    assert re.search(r"[Rr]andomi[sz]ation inference", html)


@pytest.mark.slow
def test_pin_and_rerun_of_a_partitioned_dask_analysis(dask_cluster, cli, tmp_path):
    folder = mpdta_folder(tmp_path / "mpdta")
    result = cli("pin", str(folder))
    assert result.exit_code == 0, result.output
    result = cli("rerun", str(folder))
    assert result.exit_code == 0 and "rerun OK" in result.output, result.output
    # a changed partition is named
    part = folder / "panel" / "part-1.parquet"
    frame = pd.read_parquet(part)
    frame.loc[frame.index[0], "lemp"] += 0.01
    frame.to_parquet(part, index=False)
    result = cli("rerun", str(folder))
    assert result.exit_code == 2 and "panel/part-1.parquet changed" in result.output, result.output
    # an added partition and a removed one are named
    shutil.copy(folder / "panel" / "part-2.parquet", folder / "panel" / "part-3.parquet")
    (folder / "panel" / "part-0.parquet").unlink()
    result = cli("rerun", str(folder))
    assert result.exit_code == 2, result.output
    assert "panel/part-3.parquet is new" in result.output and "panel/part-0.parquet is missing" in result.output


def test_heterogeneity_by_cluster_sums_equals_pandas_with_suppression(dask_cluster):
    """Three subgroups, one below ``min_cell`` in the treated arm, a control, four partitions:
    the Dask fit equals :func:`impactkit.checks.heterogeneity` on the gathered rows to 1e-10."""
    import dask.dataframe as dd

    from impactkit.analysis.context import final_with_baseline
    from impactkit.checks.heterogeneity import heterogeneity
    from impactkit.distributed.heterogeneity import heterogeneity_fit

    rng = np.random.default_rng(15)
    n = 600
    units = pd.DataFrame({"unit": np.arange(n), "cl": np.arange(n) // 12, "x": rng.normal(size=n),
                          "group": rng.choice(["a", "b"], size=n)})
    units["ever_treated"] = (units["cl"] % 2).astype(int)
    units.loc[units.index[:30], "group"] = "c"
    units.loc[units.index[:30], "ever_treated"] = 0
    units.loc[units.index[:3], "ever_treated"] = 1  # group c: 3 treated < min_cell
    panel = pd.concat([units.assign(t=t) for t in (0, 1)], ignore_index=True)
    panel["y"] = (panel["x"] + panel["t"] * panel["ever_treated"] * (1 + (panel["group"] == "b"))
                  + rng.normal(size=len(panel)))
    panel.loc[5, "y"] = np.nan
    panel = panel.sort_values("unit").reset_index(drop=True)
    ddf = dd.from_pandas(panel, npartitions=4, sort=False)
    assert ddf.npartitions == 4
    got = heterogeneity_fit(ddf, unit="unit", time="t", final=1, baseline=0, y="y", controls=["x"], by="group",
                            cluster="cl", min_cell=10)
    frame = final_with_baseline(panel, "unit", "t", 1, 0, ["y", "x"]).dropna(subset=["y", "y_baseline", "x_baseline"])
    with pytest.warns(Warning):
        want = heterogeneity(frame, y="y", treat="ever_treated", by="group", controls=["y_baseline", "x_baseline"],
                             cluster="cl", min_cell=10)
    assert list(got.table["term"]) == ["effect"] * 3 + ["difference"]
    assert bool(got.table["suppressed"].iloc[2])
    pd.testing.assert_frame_equal(got.table, want.table, rtol=0, atol=1e-10)
    assert abs(got.test_f - want.test_f) <= 1e-10 and abs(got.test_p - want.test_p) <= 1e-10
    assert got.test_df == want.test_df
