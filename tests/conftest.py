"""Shared fixtures: the repository layout, tmp copies of the Peru analysis, the CLI runner."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PERU = ROOT / "analyses" / "peru_tap"

os.environ.setdefault("MPLBACKEND", "Agg")


def copy_peru_analysis(destination: Path) -> Path:
    """Copy the Peru analysis with everything it points to (contract, portfolio, lock)."""
    shutil.copytree(ROOT / "analyses", destination / "analyses",
                    ignore=shutil.ignore_patterns("__pycache__", "*.tmp"))
    shutil.copytree(ROOT / "data_contracts", destination / "data_contracts")
    return destination / "analyses" / "peru_tap"


@pytest.fixture()
def peru_copy(tmp_path) -> Path:
    return copy_peru_analysis(tmp_path)


@pytest.fixture(scope="session")
def peru_results():
    """The Peru TAP results document (computed once per test worker)."""
    from impactkit.analysis import run_analysis

    return run_analysis(PERU)


@pytest.fixture()
def cli():
    """Invoke the impactkit CLI in-process: ``cli("validate", ...) -> Result``."""
    from typer.testing import CliRunner

    from impactkit.cli import app

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def dask_cluster():
    """One in-process LocalCluster (two single-threaded workers) for every Dask test of the session."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client
