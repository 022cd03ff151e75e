"""General means general: no word of the seed study in the library outside the simulator.

The Peru study lives in ``impactkit/datasets/`` (the simulator) and ``analyses/peru_tap/``
(its analysis.toml). Every label the library prints comes from an analysis.toml or a data
contract, so no file under ``impactkit/`` (or the pack templates) may carry the study's
words. The one allowed occurrence is listed with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = re.compile(r"peru|puno|\btaps?\b|\bsoles\b|herd|woman_head|women-headed|household|income",
                   re.IGNORECASE)
# (path relative to the repository, the exact line fragment): why it may stay
ALLOWED: dict[tuple[str, str], str] = {}


def _library_files() -> list[Path]:
    roots = [ROOT / "impactkit"]
    templates = [ROOT / "reports" / "templates", ROOT / "impactkit" / "pack" / "templates"]
    files = [p for r in roots for p in r.rglob("*") if p.is_file() and p.suffix in {".py", ".j2", ".lua", ".typ",
                                                                                       ".css", ".qmd", ".toml"}]
    files += [p for t in templates if t.is_dir() for p in t.rglob("*") if p.is_file()]
    return sorted(p for p in set(files) if "datasets" not in p.relative_to(ROOT).parts
                  and "__pycache__" not in p.parts)


def test_no_seed_study_words_in_the_library():
    found = []
    for path in _library_files():
        rel = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if WORDS.search(line) and not any(rel == f and fragment in line for f, fragment in ALLOWED):
                found.append(f"{rel}:{number}: {line.strip()[:100]}")
    assert not found, "seed-study words in the library:\n" + "\n".join(found)


def test_the_scan_would_catch_a_default():
    assert WORDS.search('unit_label: str = "household"')
    assert WORDS.search('currency = "PEN"  # soles')
    assert WORDS.search("effect on TAP users")
    assert not WORDS.search("taper and tapestry")  # 'tap' only as a word
