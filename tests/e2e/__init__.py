"""End-to-end tests against real Airflow services (``make e2e``); not part of the default ``pytest`` run."""
