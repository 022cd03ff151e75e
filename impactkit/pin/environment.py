"""Facts about the environment a result was computed in (for the lock, never the results)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import impactkit


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def installed_packages() -> dict[str, str]:
    """``{distribution name (normalised): version}`` of everything installed."""
    packages = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name != "impactkit":
            packages[name] = dist.version
    return dict(sorted(packages.items()))


def git_commit(folder: Path) -> str | None:
    """The checked-out commit of the repository holding ``folder`` (None outside git)."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "packages": installed_packages(),
    }


def git_dirty(folder: Path) -> bool | None:
    """Whether tracked files under ``folder`` have uncommitted changes."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no", "--", "."],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def source_sha256(package: Path) -> str:
    """SHA-256 over impactkit's own ``.py`` sources (relative path + bytes, sorted): the code
    that computed the numbers, whether or not it sits in a git checkout."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def impactkit_identity(folder: Path | None = None) -> dict:
    """impactkit's version, source hash and the commit of its source (not of the analysis folder)."""
    source = Path(impactkit.__file__).resolve().parent
    return {"version": impactkit.__version__, "source_sha256": source_sha256(source),
            "git_commit": git_commit(source), "git_dirty": git_dirty(source)}
