"""Benchmarks of airflow-provider-gptimage (issue 4); run them all with ``make bench``."""
