"""Apache Airflow provider for the GPT Image 2 text-to-image job API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
