# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv demo test lint typecheck pytest clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	touch $(STAMP)

demo: venv
	$(PY) scripts/demo.py --output demo-output

lint: venv
	$(VENV)/bin/ruff check airflow_provider_gptimage example_dags tests scripts
	$(VENV)/bin/ruff format --check airflow_provider_gptimage example_dags tests scripts

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
