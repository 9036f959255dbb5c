"""Pytest plugin with a ``gptimage_simulator`` fixture.

Enable it in a ``conftest.py``::

    pytest_plugins = ["airflow_provider_gptimage.simulator.pytest_plugin"]

Each test gets its own running simulator (thread mode, short generation time). Change its
configuration with ``@pytest.mark.gptimage_simulator(active_task_limit=1, ...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_gptimage.simulator.runner import GPTImageSimulator

#: Configuration the fixture starts from; a marker's keyword arguments override it.
FIXTURE_DEFAULTS: dict[str, Any] = {"generation_seconds": 0.1}


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``gptimage_simulator`` marker."""
    config.addinivalue_line("markers", "gptimage_simulator(**config): configuration of the gptimage_simulator fixture")


@pytest.fixture
def gptimage_simulator(request: pytest.FixtureRequest) -> Iterator[GPTImageSimulator]:
    """A running GPT Image simulator for one test; its URL is ``gptimage_simulator.url``."""
    config = dict(FIXTURE_DEFAULTS)
    marker = request.node.get_closest_marker("gptimage_simulator")
    if marker is not None:
        config.update(marker.kwargs)
    with GPTImageSimulator(**config) as simulator:
        yield simulator
