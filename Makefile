# hccsim: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
# Both create .venv when it is missing and install the exact versions of requirements.lock.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test test-fast lint format verify bench lock clean

help:
	@echo "make demo     run a shipped scenario and print where its results are"
	@echo "make test     run the test suite (installs from requirements.lock first)"
	@echo "make lint     ruff lint and format check"
	@echo "make verify   long statistical checks against theory (verification/)"
	@echo "make bench    engine throughput benchmark (appends to benchmarks/results.md)"
	@echo "make lock     re-resolve requirements.lock (needs network; changes fixed-seed results)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/hccsim run scenarios/anchor_ramucirumab.yaml --out results/demo --replicates 20 --jobs 2 --overwrite

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -p no:cacheprovider -n auto --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -x -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

verify: $(STAMP)
	$(BIN)/python -m verification

bench: $(STAMP)
	$(BIN)/python benchmarks/engine.py

lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --all-extras --generate-hashes \
	    --python-version 3.11 --no-header -o requirements.lock

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis .ruff_cache
