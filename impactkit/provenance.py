"""Provenance: the facts about where and how a number was computed.

One leaf module (it imports nothing from impactkit but the package's version) for everything the
analysis, the pin and the pack record about their inputs and their environment:

- :func:`sha256_file`, :func:`sha256_text`: digests of inputs; :func:`sha256_tree`: one digest of a
  dataset of several files (partitioned Parquet), from their sorted relative paths and digests;
- :func:`source_sha256`, :func:`git_commit`, :func:`git_dirty`, :func:`impactkit_identity`: which
  impactkit computed the numbers;
- :func:`runtime_packages`: the distributions impactkit actually depends on at run time (the
  closure of its ``Requires-Dist`` without extras), not the whole virtualenv;
- :func:`blas_info`, :func:`cpu_model`: the numerical kernel (library, CPU-specific kernel, thread
  count) and the processor, because floating-point results differ in their last bits between
  OpenBLAS kernels;
- :func:`environment`: all of the above as one JSON-ready dict.

These facts are recorded and shown; they never decide whether a rerun reproduces (that is judged on
the numbers, see :mod:`impactkit.pin`).
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import impactkit

PACKAGE_DIR = Path(impactkit.__file__).resolve().parent


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_tree(files: dict[str, Path] | dict[str, str]) -> str:
    """Hex SHA-256 of a set of files: ``relative path NUL sha256 LF`` for each, sorted by path.

    ``files`` maps relative paths (``/`` separators) to paths, or to their hex digests. The
    digest depends only on the names and bytes of the files, not on their order on disk, their
    times or the folder holding them.
    """
    digest = hashlib.sha256()
    for rel in sorted(files):
        value = files[rel]
        hex_digest = value if isinstance(value, str) else sha256_file(value)
        digest.update(f"{rel}\0{hex_digest}\n".encode())
    return digest.hexdigest()


def source_sha256(package: Path = PACKAGE_DIR) -> str:
    """SHA-256 over a package's ``.py`` sources (relative path + bytes, sorted by path)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "--no-optional-locks", "-C", str(folder), *args], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_commit(folder: Path = PACKAGE_DIR) -> str | None:
    """The checked-out commit of the git repository holding ``folder`` (None outside git)."""
    out = _git(folder, "rev-parse", "HEAD")
    return out.strip() or None if out else None


def git_dirty(folder: Path = PACKAGE_DIR) -> bool | None:
    """Whether tracked files under ``folder`` have uncommitted changes (None outside git)."""
    out = _git(folder, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return None if out is None else bool(out.strip())


def impactkit_identity() -> dict:
    """impactkit's version, the SHA-256 of its sources and the git commit they come from."""
    return {"version": impactkit.__version__, "source_sha256": source_sha256(),
            "git_commit": git_commit(), "git_dirty": git_dirty()}


def package_version(name: str, missing: str = "not installed") -> str:
    """The installed version of distribution ``name`` (``missing`` when it is not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return missing


def package_versions(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """``[(name, version)]`` for the named distributions, in the order given."""
    return [(name, package_version(name)) for name in names]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def runtime_packages(root: str = "impactkit") -> dict[str, str]:
    """``{distribution: version}`` for the run-time dependency closure of ``root``.

    Follows ``Requires-Dist`` entries whose environment marker holds here without extras, so
    test runners, benchmark peers and documentation tools are left out.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    found: dict[str, str] = {}
    todo = [root]
    while todo:
        name = _normalise(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist.version
        for line in dist.requires or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(requirement.name)
    found.pop(_normalise(root), None)
    return dict(sorted(found.items()))


def blas_info() -> list[dict]:
    """The BLAS/OpenMP libraries numpy and scipy loaded: library, version, kernel, threads."""
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl inspects)
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer")
    rows = [{k: info.get(k) for k in keep if info.get(k) is not None} for info in threadpool_info()]
    unique = {tuple(sorted(row.items())): row for row in rows}
    return sorted(unique.values(), key=lambda row: tuple(str(row.get(k)) for k in keep))


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def environment() -> dict:
    """Python, platform, CPU, BLAS and impactkit's run-time packages, as one JSON-ready dict."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "blas": blas_info(),
        "packages": runtime_packages(),
    }
