"""Installable like a library: the built wheel, in a fresh venv, builds a pack outside the repo.

The wheel is built from a copy of the sources (``pip wheel --no-deps --no-build-isolation``:
no network, nothing written into the checkout) and installed with ``--no-deps --no-index``
into a fresh virtual environment created *without* system site packages. Its dependencies
come from the shared environment through one ``.pth`` line naming that environment's
site-packages (a plain path: the source checkout's editable finder there is not loaded).
The test then checks that ``impactkit`` is imported from the fresh venv, not from the
checkout, and runs ``impactkit pack`` from an unrelated working folder on an analysis folder
outside the repository: the pack must be written, templates found as package data, and the
rerun instructions must name the folder as given.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_builds_a_pack_outside_the_repository(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copytree(ROOT / "impactkit", source / "impactkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    wheels = tmp_path / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(wheels), str(source)], tmp_path, env)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheels.glob("impactkit-*.whl"))

    fresh = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(fresh)
    python = fresh / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).stdout.strip())
    (site / "shared-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                      str(wheel)], tmp_path, env)
    if installed.returncode != 0:  # pip without --python support: the venv's own pip is absent by design
        installed = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                          str(wheel)], tmp_path, env)
    assert installed.returncode == 0, installed.stderr[-2000:]

    where = _run([str(python), "-c", "import impactkit, impactkit.pack.build as b; "
                  "print(impactkit.__file__); print(b.template_dir())"], tmp_path, env)
    module_file, templates = where.stdout.split()
    assert Path(module_file).is_relative_to(fresh) and Path(templates).is_relative_to(fresh), where.stdout
    assert not Path(module_file).is_relative_to(ROOT)

    study = tmp_path / "elsewhere" / "farms"
    shutil.copytree(ROOT / "analyses" / "did_2x2", study)
    work = tmp_path / "cwd"
    work.mkdir()
    out = tmp_path / "pack"
    done = _run([str(fresh / "bin" / "impactkit"), "--quiet", "pack", str(study), "--to", "html", "--out", str(out)],
                work, env)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-1500:])
    page = (out / "evidence-pack.html").read_text(encoding="utf-8")
    assert f"impactkit rerun {study}" in page  # the folder the pack was built from, not analyses/<name>
    assert "kg per hectare" in page
