# Two commands for a fresh clone:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: demo test test-all bench clean

$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing hifm with its dependencies (torch is the large one: 1-3 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --progress-bar on -e ".[test]"
	@echo "== installed; next runs of make demo / make test start at once"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hifm demo -o demo_out

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) experiments/bench_solver.py

clean:
	rm -rf $(VENV) demo_out
