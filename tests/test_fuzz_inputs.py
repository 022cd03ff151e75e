"""Fuzzing the readers, the contract loader and the spec loaders (Hypothesis).

Every input impactkit reads is untrusted. For each loader, Hypothesis generates hostile
or broken input -- random text and bytes, and mutations of the real Peru files (a value
replaced, a line duplicated, bytes flipped) -- and the test asserts the only outcomes the
CLI documents: success, or an ``impactkit.errors`` exception whose exit code is 1 or 2 and
whose message is one line. Any other exception would be exit 3 (a bug) and fails the test;
so does a hang (a SIGALRM bound per example) or a slow example (Hypothesis's deadline).

Bounded budget for ``make test``: derandomized (the same examples on every run), a fixed
number of examples per loader (``IMPACTKIT_FUZZ_EXAMPLES``, default 60), no example database.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impactkit.errors import ImpactkitError

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_TEXT = (ROOT / "data_contracts" / "peru_tap.yaml").read_text(encoding="utf-8")
ANALYSIS_TEXT = (ROOT / "analyses" / "peru_tap" / "analysis.toml").read_text(encoding="utf-8")
INTERVENTION_TEXT = (ROOT / "analyses" / "interventions" / "jita.yaml").read_text(encoding="utf-8")
HANG_SECONDS = 30

EXAMPLES = int(os.environ.get("IMPACTKIT_FUZZ_EXAMPLES", "60"))  # raise locally for a deeper run
FUZZ = settings(derandomize=True, max_examples=EXAMPLES, deadline=5000, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@contextlib.contextmanager
def no_hang(seconds: int = HANG_SECONDS):
    """Fail an example that runs longer than ``seconds`` (a hang), where SIGALRM exists."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def timeout(signum, frame):
        raise AssertionError(f"hang: an example ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def documented_outcome(work) -> int:
    """Run ``work``; 0, or the exit code (1 or 2) of the impactkit error it raised with a one-line message."""
    with no_hang():
        try:
            work()
        except ImpactkitError as exc:
            assert exc.exit_code in (1, 2), exc
            assert "\n" not in str(exc) and "Traceback" not in str(exc), str(exc)
            return exc.exit_code
    return 0


# ----------------------------------------------------------------------------- strategies

YAML_PIECES = st.sampled_from([
    "&a", "*a", "!!python/name:os.system", "!tag", "<<: *a", "[", "]", "{", "}", "- ", ": ", "\n", "  ", "'", '"',
    "~", "null", ".nan", ".inf", "-.inf", "1e999", "2020-99-99", "0x1F", "yes", "---", "...", "%YAML 1.1", "#",
    "\t", "|", ">", "? ", "=", "\x00", "\ufeff", "é", "9" * 40,
])


def mutated(text: str) -> st.SearchStrategy[str]:
    """A real file with a few edits: a slice replaced by hostile pieces or random text, a line doubled."""
    lines = text.splitlines(keepends=True)

    @st.composite
    def build(draw):
        out = list(lines)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(out) - 1))
            kind = draw(st.sampled_from(["replace", "insert", "double", "cut"]))
            piece = "".join(draw(st.lists(YAML_PIECES | st.text(max_size=12), min_size=1, max_size=5)))
            if kind == "replace":
                start = draw(st.integers(0, len(out[i])))
                out[i] = out[i][:start] + piece + out[i][start + draw(st.integers(0, 10)):]
            elif kind == "insert":
                out.insert(i, piece + "\n")
            elif kind == "double":
                out.insert(i, out[i])
            else:
                out[i] = out[i][: draw(st.integers(0, len(out[i])))]
        return "".join(out)

    return build()


TEXTS = st.text(max_size=400) | st.lists(YAML_PIECES, max_size=40).map("".join)


# ----------------------------------------------------------------------------- contract loader

@FUZZ
@given(text=TEXTS | mutated(CONTRACT_TEXT))
def test_fuzz_contract_loader(text):
    from impactkit.contracts.loader import parse_contract

    assert documented_outcome(lambda: parse_contract(text, "fuzz.yaml")) in (0, 2)


# ----------------------------------------------------------------------------- spec loaders

@FUZZ
@given(text=TEXTS | mutated(INTERVENTION_TEXT))
def test_fuzz_intervention_and_portfolio_loaders(text, tmp_path_factory):
    from impactkit.scale.spec import load_intervention, load_portfolio

    folder = tmp_path_factory.mktemp("spec")
    (folder / "x.yaml").write_text(text, encoding="utf-8")
    assert documented_outcome(lambda: load_intervention(folder / "x.yaml")) in (0, 2)
    (folder / "p.yaml").write_text(text, encoding="utf-8")
    assert documented_outcome(lambda: load_portfolio(folder / "p.yaml")) in (0, 2)


TOML_PIECES = st.sampled_from(["[", "]", "[[x]]", "=", '"', "'''", "\n", "1e999", "nan", "inf", "-0", "0x",
                               "1979-05-27T07:32:00Z", "{", "}", ",", "#", "\x7f", "é", "10" * 12])


@FUZZ
@given(text=st.text(max_size=300) | st.lists(TOML_PIECES, max_size=30).map("".join) | mutated(ANALYSIS_TEXT),
       raw=st.binary(max_size=40))
def test_fuzz_analysis_spec_and_costs_loaders(text, raw, tmp_path_factory):
    from impactkit.analysis.spec import load_analysis
    from impactkit.scale.accounts import load_accounts

    folder = tmp_path_factory.mktemp("analysis")
    (folder / "analysis.toml").write_bytes(text.encode("utf-8") + raw)
    assert documented_outcome(lambda: load_analysis(folder)) in (0, 2)
    (folder / "costs.toml").write_bytes(raw + text.encode("utf-8"))
    assert documented_outcome(lambda: load_accounts(folder / "costs.toml")) in (0, 2)


@FUZZ
@given(doc=st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                            st.sampled_from(["inputs", "numbers", "numbers_digest", "seeds", "environment", "x"]),
                            inner, max_size=6), max_leaves=20))
def test_fuzz_lock_reader(doc, tmp_path_factory):
    from impactkit.pin.lock import read_lock

    folder = tmp_path_factory.mktemp("lock")
    (folder / "analysis.lock.json").write_text(json.dumps(doc), encoding="utf-8")
    assert documented_outcome(lambda: read_lock(folder)) in (0, 2)


# ----------------------------------------------------------------------------- readers

SUFFIXES = [".csv", ".tsv", ".txt", ".parquet", ".pq", ".dta", ".xlsx", ".xlsm", ".json", ""]


@pytest.fixture(scope="module")
def contract():
    from impactkit.contracts import load_contract

    return load_contract(ROOT / "data_contracts" / "peru_tap.yaml")


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    """One small valid file per format, whose bytes the fuzzer flips."""
    from impactkit.datasets.peru_tap import simulate_peru_tap

    frame = simulate_peru_tap().head(12)
    folder = tmp_path_factory.mktemp("valid")
    frame.to_csv(folder / "p.csv", index=False)
    frame.to_parquet(folder / "p.parquet")
    frame.to_stata(folder / "p.dta", write_index=False)
    frame.to_excel(folder / "p.xlsx", index=False, engine="openpyxl")
    return {suffix: (folder / f"p{suffix}").read_bytes() for suffix in (".csv", ".parquet", ".dta", ".xlsx")}


@FUZZ
@given(data=st.data())
def test_fuzz_readers_with_broken_bytes(data, valid_files, contract, tmp_path_factory):
    from impactkit.io import read_table

    suffix = data.draw(st.sampled_from(SUFFIXES))
    base = valid_files.get({".tsv": ".csv", ".txt": ".csv", ".pq": ".parquet", ".xlsm": ".xlsx"}.get(suffix, suffix), b"")
    blob = bytearray(base) or bytearray(data.draw(st.binary(max_size=200)))
    for _ in range(data.draw(st.integers(0, 4))):
        if blob:
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    path = tmp_path_factory.mktemp("read") / f"f{suffix}"
    path.write_bytes(bytes(blob))
    with_contract = data.draw(st.booleans())
    assert documented_outcome(lambda: read_table(path, contract=contract if with_contract else None)) in (0, 2)


CELLS = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=6) | st.sampled_from(
    ["n/a", "1,200", "3,5", "inf", "-inf", "nan", "1e999", "", " ", "\"", "\"\"", ",", ";", "\t", "é", "9" * 30])


@FUZZ
@given(header=st.lists(st.sampled_from(["household_id", "wave", "income", "dni", "notes", "x", "", "income"]) | CELLS,
                       min_size=1, max_size=6),
       rows=st.lists(st.lists(CELLS, max_size=7), max_size=6), sep=st.sampled_from([",", "\t", ";"]))
def test_fuzz_csv_structure(header, rows, sep, contract, tmp_path_factory):
    """Tables a field team might produce: odd headers (duplicates, blanks), ragged rows, odd cells."""
    from impactkit.io import read_table

    def line(cells):
        return sep.join('"' + c.replace('"', '""') + '"' if any(ch in c for ch in sep + '"\n\r') else c for c in cells)

    path = tmp_path_factory.mktemp("csv") / ("f.tsv" if sep == "\t" else "f.csv")
    path.write_text("\n".join([line(header), *map(line, rows)]) + "\n", encoding="utf-8")
    assert documented_outcome(lambda: read_table(path, contract=contract)) in (0, 2)
    assert documented_outcome(lambda: read_table(path)) in (0, 2)
