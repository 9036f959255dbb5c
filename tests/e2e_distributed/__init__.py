"""End-to-end tests on Airflow's distributed engine (``make e2e-distributed``); not part of ``pytest``'s default run."""
