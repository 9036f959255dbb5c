# Two commands on a fresh machine: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv venv-oldest venv-distributed demo test test-oldest test-matrix lint typecheck pytest e2e e2e-distributed bench bench-distributed docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	touch $(STAMP)

demo: venv
	$(PY) scripts/demo.py --output demo-output

lint: venv
	$(VENV)/bin/ruff check airflow_provider_gptimage example_dags tests scripts benchmarks
	$(VENV)/bin/ruff format --check airflow_provider_gptimage example_dags tests scripts benchmarks

typecheck: venv
	$(VENV)/bin/mypy

pytest: venv
	$(VENV)/bin/pytest

test: lint typecheck pytest

# The documentation (Sphinx + MyST, docs/), warnings as errors; HTML in docs/_build/html.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -E -a -q -b html docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

# End-to-end scenarios against real Airflow services (api-server, scheduler, dag-processor, triggerer)
# started on loopback in a temporary AIRFLOW_HOME; deselected from `make pytest` by the e2e marker.
# The plugin's view is checked in headless Chromium (Debian's chromium, installed when missing: needs root).
e2e: venv
	./scripts/install-chromium.sh
	$(VENV)/bin/pytest tests/e2e -m e2e -v

# The same provider on Airflow's distributed engine: CeleryExecutor, a Redis broker, a private PostgreSQL 15
# cluster, two Celery workers and two triggerers, all on loopback (tests/e2e_distributed). Its own venv
# (the `distributed` extra), so `make test` never needs Celery or PostgreSQL; scripts/ensure-services.sh
# installs redis-server (and PostgreSQL 15) from Debian when missing.
DIST_VENV ?= .venv-distributed
DIST_STAMP := $(DIST_VENV)/.installed-$(AIRFLOW_VERSION)

venv-distributed: $(DIST_STAMP)

$(DIST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DIST_VENV)
	$(DIST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DIST_VENV)/bin/python -m pip install --quiet "apache-airflow[celery,postgres]==$(AIRFLOW_VERSION)" -e ".[distributed]"
	touch $(DIST_STAMP)

e2e-distributed: venv-distributed
	scripts/ensure-services.sh
	$(DIST_VENV)/bin/pytest tests/e2e_distributed -m e2e -v

# The benchmarks of issues 4, 10 and 11 (benchmarks/, numbers in BENCHMARKS.md): each prints its table of
# medians and PASS/FAIL against its target, then one PASS/FAIL table of every check; exits non-zero if a target
# is missed. About 12-15 minutes on 2 cores (bench_catalog_plan, 10,000 products on moto, about 5 of them).
# BENCH_ARGS="--markdown FILE" also writes the tables as Markdown; BENCH_ARGS="bench_copy" runs one.
bench: venv
	$(PY) -m benchmarks.run_all $(BENCH_ARGS)

# Benchmark 7 (benchmarks/bench_distributed.py): 10,000 jobs waiting at once in the two real triggerers of the
# e2e-distributed stack; RSS per waiting job, CPU per poll, event-loop lag. About 6-8 minutes; not in CI.
# BENCH_ARGS="--mode mapped --count 500" measures one GPTImageTaskTrigger per job instead of batches.
bench-distributed: venv-distributed
	scripts/ensure-services.sh
	$(DIST_VENV)/bin/python -m benchmarks.bench_distributed $(BENCH_ARGS)

# The oldest releases pyproject.toml claims (Airflow 3.0.6, its lower bounds for the HTTP provider and
# common-compat) in a second venv, pinned by .ci/constraints-oldest.txt; CI runs both venvs' suites.
OLDEST_VENV ?= .venv-oldest
OLDEST_CONSTRAINTS := .ci/constraints-oldest.txt
OLDEST_STAMP := $(OLDEST_VENV)/.installed-oldest

venv-oldest: $(OLDEST_STAMP)

$(OLDEST_STAMP): pyproject.toml $(OLDEST_CONSTRAINTS)
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install --quiet -c $(OLDEST_CONSTRAINTS) -e ".[test]"
	touch $(OLDEST_STAMP)

test-oldest: venv-oldest
	$(OLDEST_VENV)/bin/pytest --ignore=tests/e2e --ignore=tests/e2e_distributed

# The releases between those two (Airflow 3.1.8 and 3.2.2, newest providers pip resolves), each in its own
# venv (.venv-3.1, .venv-3.2) pinned by .ci/constraints-<version>.txt. Not run by .ci/run: about 1.5 min
# of tests per release on 2 cores, plus each venv's first install. Runs every release, fails if one did.
MATRIX ?= 3.1 3.2

.venv-%/.installed-matrix: pyproject.toml .ci/constraints-%.txt
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -c .ci/constraints-$*.txt -e ".[test]"
	touch $@

test-matrix: $(foreach v,$(MATRIX),.venv-$(v)/.installed-matrix)
	@status=0; for v in $(MATRIX); do \
		echo "== Airflow $$v: $$(.venv-$$v/bin/python -c 'from importlib.metadata import version; print(version("apache-airflow"))')"; \
		.venv-$$v/bin/pytest --ignore=tests/e2e --ignore=tests/e2e_distributed || status=1; \
	done; exit $$status

clean:
	rm -rf docs/_build $(VENV) $(OLDEST_VENV) $(DIST_VENV) $(foreach v,$(MATRIX),.venv-$(v)) demo-output .pytest_cache .mypy_cache .ruff_cache
