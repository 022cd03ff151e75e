"""Commands on a Dask analysis that the engine tests do not reach: ``rerun --twice`` and ``score``
of a portfolio that links a Dask analysis.

``rerun --twice`` runs the pinned analysis in two fresh processes (1 and 2 client threads); on the
Dask engine each starts its own LocalCluster (``[engine] n_workers = 1`` here, while the pin ran on
the session's two-worker ``dask_cluster``), so the test also checks that the numbers do not depend
on the number of workers: both runs bit-identical to each other and to the lock (the verdict is
within the declared tolerances, rtol 1e-9 / atol 1e-12; bit identity is reported).

``score`` runs each linked analysis on the engine its ``analysis.toml`` declares. The same
partitioned Peru analysis (a third of the communities, ``tests/test_distributed_analysis.py``)
linked once with ``[engine] kind = "dask"`` and once with ``"pandas"``: every number of the score
that does not rest on Monte Carlo draws equal to 1e-10 (relative above 1), every Monte Carlo
probability within the rule of the scale-readiness Dask test
(``assert_scale_within_monte_carlo``: 5 standard errors of the difference of two runs plus 2/D).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.test_distributed_analysis import MC_OTHER, MC_PROBABILITY, ROOT, TOL, flat, mpdta_folder, peru_folder

pytestmark = pytest.mark.filterwarnings("ignore::impactkit.errors.ImpactkitWarning")


def one_worker_mpdta(folder: Path) -> Path:
    """The partitioned mpdta analysis, its fresh-process LocalClusters limited to one worker."""
    folder = mpdta_folder(folder)
    spec = folder / "analysis.toml"
    spec.write_text(spec.read_text(encoding="utf-8") + "n_workers = 1\n", encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------------ rerun --twice
def test_rerun_twice_of_a_dask_analysis_is_bit_identical_and_within_tolerance(dask_cluster, cli, tmp_path):
    folder = one_worker_mpdta(tmp_path / "mpdta")
    assert cli("pin", str(folder)).exit_code == 0
    out = tmp_path / "rerun.json"
    result = cli("rerun", str(folder), "--twice", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert "rerun OK" in result.output and "bit-identical: yes" in result.output, result.output
    assert "determinism, two fresh processes with 1 and 2 threads: bit-identical" in result.output, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    lock = json.loads((folder / "analysis.lock.json").read_text(encoding="utf-8"))
    assert report["ok"] and [r["threads"] for r in report["runs"]] == [1, 2]
    for block in ("against_lock", "between_runs"):
        assert report[block]["ok"] and report[block]["bit_identical"], block
        assert report[block]["n_numbers"] == len(lock["numbers"]) > 200
        assert report[block]["max_abs_difference"] == 0.0 and not report[block]["beyond_tolerance"]


def test_rerun_twice_names_a_partition_changed_since_the_pin(dask_cluster, cli, tmp_path):
    folder = one_worker_mpdta(tmp_path / "mpdta")
    assert cli("pin", str(folder)).exit_code == 0
    part = folder / "panel" / "part-2.parquet"
    frame = pd.read_parquet(part)
    frame.loc[frame.index[-1], "lemp"] -= 0.25
    frame.to_parquet(part, index=False)
    result = cli("rerun", str(folder), "--twice")
    assert result.exit_code == 2, result.output
    assert "panel/part-2.parquet changed: pinned sha256" in result.output, result.output
    assert "part-0" not in result.output and "part-1" not in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------------------ score, linked
def linking_portfolio(folder: Path, analysis: Path) -> Path:
    """The shipped portfolio with its interventions, ``peru_tap`` linking ``analysis``."""
    shutil.copy(ROOT / "analyses" / "portfolio.yaml", folder / "portfolio.yaml")
    shutil.copytree(ROOT / "analyses" / "interventions", folder / "interventions")
    item = folder / "interventions" / "peru_tap.yaml"
    text = item.read_text(encoding="utf-8")
    assert "analysis: analyses/peru_tap\n" in text
    item.write_text(text.replace("analysis: analyses/peru_tap\n", f"analysis: {analysis}\n"), encoding="utf-8")
    return folder / "portfolio.yaml"


@pytest.fixture(scope="module")
def scores(dask_cluster, tmp_path_factory):
    """``impactkit score --json`` of the portfolio linking the partitioned Peru analysis on Dask,
    then of the same portfolio linking the same analysis (same files) on pandas."""
    from distributed import get_task_stream
    from typer.testing import CliRunner

    from impactkit.cli import app
    from impactkit.distributed.analysis import run_analysis_on

    root = tmp_path_factory.mktemp("score-dask")
    analysis = peru_folder(root / "peru")
    spec = analysis / "analysis.toml"
    dask_toml = spec.read_text(encoding="utf-8")
    assert dask_toml.rstrip().endswith('kind = "dask"')
    portfolio = linking_portfolio(root, analysis)
    documents = {}
    for name, kind, options in (("pandas", "pandas", ()), ("dask", "dask", ()), ("dask-500", "dask", ("--draws", "500"))):
        spec.write_text(dask_toml.replace('kind = "dask"', f'kind = "{kind}"'), encoding="utf-8")
        out = root / f"score-{name}.json"
        with get_task_stream(dask_cluster) as stream:
            result = CliRunner().invoke(app, ["score", str(portfolio), "--json", str(out), *options],
                                        catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert bool(stream.data) is (kind == "dask"), (kind, len(stream.data))  # the engine the link declares
        documents[name] = json.loads(out.read_text(encoding="utf-8"))
    documents["analysis"] = run_analysis_on(analysis)  # on Dask, its own scale step with draws = 500
    return documents


#: score keys holding Monte Carlo probabilities besides ``p_*`` (the rank-probability matrix)
RANK_PROBABILITY = re.compile(r"^rank_probabilities\[")
#: draws' standard errors and quantiles, and what is ordered by them (not compared: no closed form)
NOT_COMPARED = re.compile(r"^(rank_probabilities_se|tornado|assumption_flips)[\[.]")


def test_score_linking_a_dask_analysis_equals_the_pandas_link(scores):
    dask, pandas = scores["dask"], scores["pandas"]
    a, b = dict(flat(dask)), dict(flat(pandas))
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    draws = a[".options.draws"]
    n_probabilities = n_numbers = 0
    for key, x in a.items():
        y, bare = b[key], key.lstrip(".")
        if MC_OTHER.search(key) or NOT_COMPARED.search(bare):
            continue
        if (MC_PROBABILITY.search(key) or RANK_PROBABILITY.search(bare)) and isinstance(x, float):
            n_probabilities += 1
            assert abs(x - y) <= 5 * math.sqrt((x * (1 - x) + y * (1 - y)) / draws) + 2 / draws, (key, x, y)
        elif isinstance(x, float) or isinstance(y, float):
            n_numbers += 1
            assert (math.isnan(x) and math.isnan(y)) or abs(x - y) <= TOL * max(1.0, abs(y)), (key, x, y)
        else:
            assert x == y, (key, x, y)
    assert n_probabilities > 20 and n_numbers > 100
    # the linked view: peru_tap's evidence is the linked analysis's estimate on both engines
    rows = {r["intervention"]: r for r in dask["table"]}
    assert dask["view"] == "linked" and rows["peru_tap"]["evidence_from"] == "impactkit estimate"


def test_score_linking_a_dask_analysis_draws_as_its_pack(scores):
    """As on pandas (``test_score_cli_uses_the_linked_analysis_like_the_pack``): with the analysis's
    draws and seed, ``score`` shows the numbers of the linked Dask analysis's own scale section,
    probabilities included (both draw in blocks on the cluster), bit for bit."""
    table = {r["intervention"]: r for r in scores["dask-500"]["table"]}
    pack = {r["intervention"]: r for r in scores["analysis"]["scale"]["ranking"]}
    assert scores["analysis"]["scale"]["options"]["draws"] == scores["dask-500"]["options"]["draws"] == 500
    assert set(table) == set(pack) and len(pack) == 7
    for name, row in pack.items():
        for key in ("rank", "p_rank_1", "p_pass_gates", "score_geometric"):
            assert table[name][key] == row[key], (name, key, table[name][key], row[key])
    # the pandas link draws its one stream: some probability differs by Monte Carlo error
    assert any(a["p_rank_1"] != b["p_rank_1"] for a, b in zip(scores["dask"]["table"], scores["pandas"]["table"]))
