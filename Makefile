# impactkit: every target sets itself up from the lock file on a fresh machine.
#   make pack   -> .venv from requirements.lock, then the Peru TAP evidence pack
#   make test   -> .venv from requirements.lock, then the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.impactkit-installed
PYTEST_WORKERS ?= 2

.PHONY: venv pack examples test test-fast docs bench lock pin rerun clean i18n

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

pack: $(STAMP)
	$(BIN)/impactkit pack analyses/peru_tap --out reports/peru_tap

# The example designs on simulated data with known truth (two-period DiD, cluster trial, encouragement).
examples: $(STAMP)
	for name in did_2x2 cluster_trial encouragement; do \
		$(BIN)/impactkit --quiet pack analyses/$$name --out reports/$$name || exit 1; done

# One BLAS/OpenMP thread per pytest worker: two workers on two cores, no oversubscription.
THREADS := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

test: $(STAMP)
	$(THREADS) MPLBACKEND=Agg $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider

test-fast: $(STAMP)
	$(THREADS) MPLBACKEND=Agg $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q -m "not slow"

docs: $(STAMP)
	$(BIN)/python -m impactkit.docs

bench: $(STAMP)
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/did.py

pin: $(STAMP)
	$(BIN)/impactkit pin analyses/peru_tap

rerun: $(STAMP)
	$(BIN)/impactkit rerun analyses/peru_tap

# Regenerate the lock from the loose ranges in pyproject.toml (needs the package registry).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,bench,docs]"
	.venv-lock/bin/python -m pip freeze --all --exclude-editable --disable-pip-version-check | grep -v -E "^(impactkit|pip)==" > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) reports/peru_tap/_build

# Re-extract the policy brief's messages and update the catalogs (Babel); new messages
# arrive untranslated and tests/test_pack_brief.py fails until they are translated.
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k t -k N_ --no-location --sort-output --project impactkit -o impactkit/pack/locale/impactkit.pot .
	$(BIN)/pybabel update -i impactkit/pack/locale/impactkit.pot -d impactkit/pack/locale -D impactkit --no-fuzzy-matching --ignore-obsolete
