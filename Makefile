# Two commands do all the set-up on a fresh machine with Python >= 3.10:
#   make demo   creates .venv, installs cdr, runs the main job on the embedded data
#   make test   creates/reuses .venv, installs the test extras, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
OUT    ?= out/demo
# Tests run with a non-interactive Matplotlib backend and no network.
export MPLBACKEND := Agg

.PHONY: demo test venv install install-test docs bench catalog clean help

help:
	@echo "make demo   - install and run footprints + annual statistics on embedded data (synthetic records)"
	@echo "make test   - install test extras and run the whole test suite (incl. notebooks)"
	@echo "make docs   - build the documentation site (warnings are errors)"
	@echo "make bench  - run the benchmarks against peer libraries"
	@echo "make catalog - regenerate footprints/ designs built by the library"

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test,parquet,dask]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-docs: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[bench,test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The main job, on the embedded data: expected deaths per LA, an optimal footprint design,
# synthetic records (clearly labelled), and a partnership's annual statistics report.
demo: $(VENV)/.installed
	$(VENV)/bin/cdr data expected --out $(OUT)/expected_deaths.csv --map $(OUT)/expected_deaths.png
	$(VENV)/bin/cdr footprints build --min-deaths 60 --seed 0 --out $(OUT)/footprints
	$(VENV)/bin/cdr footprints compare $(OUT)/footprints/footprints.csv footprints/cdop_2019_real.csv --out $(OUT)/compare
	$(VENV)/bin/cdr data synth --years 2018-2023 --seed 0 --out $(OUT)/synthetic_records.csv
	$(VENV)/bin/cdr report --records $(OUT)/synthetic_records.csv --design $(OUT)/footprints/footprints.csv \
		--footprint auto --year 2022-23 --out $(OUT)/report
	@echo "demo: outputs in $(OUT)/ ; open $(OUT)/report/report.html"

test: $(VENV)/.installed-test
	CI=1 HYPOTHESIS_PROFILE=ci $(PY) -m pytest

docs: $(VENV)/.installed-docs $(VENV)/.installed
	$(PY) -m mkdocs build --strict

bench: $(VENV)/.installed-bench
	$(PY) benchmarks/indicators.py
	$(PY) benchmarks/footprints_vs_peers.py
	$(PY) benchmarks/joinpoint.py
	$(PY) benchmarks/disclosure.py

catalog: $(VENV)/.installed
	$(PY) -m cdr.footprints.catalog

clean:
	rm -rf $(VENV) out site .pytest_cache .hypothesis build *.egg-info
