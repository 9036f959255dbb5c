"""Benchmarks of airflow-provider-gptimage (issues 4 and 11); run them all with ``make bench``."""
