"""Apache Airflow provider for the GPT Image 2 text-to-image job API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

#: The oldest Apache Airflow this release supports (as ``pyproject.toml`` says).
MIN_AIRFLOW_VERSION = "3.0.6"


def _check_airflow_version() -> None:
    """Refuse to load on an older Airflow, as first-party providers do (read from the installed metadata, so
    importing the package stays cheap: the simulator and the example copier do not import Airflow)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    for distribution in ("apache-airflow-core", "apache-airflow"):
        try:
            installed = Version(version(distribution))
        except PackageNotFoundError:
            continue
        if Version(installed.base_version) < Version(MIN_AIRFLOW_VERSION):
            raise RuntimeError(
                f"The package airflow-provider-gptimage:{__version__} needs Apache Airflow {MIN_AIRFLOW_VERSION}+ "
                f"(installed: {installed})."
            )
        return


_check_airflow_version()
