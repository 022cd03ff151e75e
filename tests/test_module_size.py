"""Every module of the library stays under 600 lines: split by concern rather than grow one.

A module that needs more is split along its concerns (see DEVELOPING.md, "Layout"), with the
names its users import re-exported from the old path.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
# Modules being split right now; drop each entry when its split lands.
ALLOWED: dict[str, str] = {}


def _line_counts() -> dict[str, int]:
    return {path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
            for path in sorted((ROOT / "impactkit").rglob("*.py")) if "__pycache__" not in path.parts}


def test_no_module_over_600_lines():
    counts = _line_counts()
    over = [f"{rel}: {n} lines" for rel, n in counts.items() if n > MAX_LINES and rel not in ALLOWED]
    assert not over, f"modules over {MAX_LINES} lines (split them by concern):\n" + "\n".join(over)


def test_the_allow_list_names_existing_modules():
    counts = _line_counts()
    assert all(rel in counts for rel in ALLOWED), sorted(set(ALLOWED) - set(counts))
