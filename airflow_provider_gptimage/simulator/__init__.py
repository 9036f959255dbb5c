"""Local simulator of the GPT Image 2 job API, for offline demos and tests.

``with GPTImageSimulator(generation_seconds=0.2) as sim:`` starts it on a free local port
(``sim.url``); see :mod:`airflow_provider_gptimage.simulator.runner`. Names are imported lazily,
so importing this package costs nothing until a simulator is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_gptimage.simulator.client import SimulatorClient
    from airflow_provider_gptimage.simulator.config import MODEL, SimulatorConfig
    from airflow_provider_gptimage.simulator.faults import FAULTS
    from airflow_provider_gptimage.simulator.jobs import DIRECTIVES, ManualClock, SimulatorStats
    from airflow_provider_gptimage.simulator.runner import GPTImageSimulator
    from airflow_provider_gptimage.simulator.state import SimulatorState

_EXPORTS = {
    "GPTImageSimulator": "runner",
    "SimulatorClient": "client",
    "SimulatorConfig": "config",
    "MODEL": "config",
    "SimulatorState": "state",
    "SimulatorStats": "jobs",
    "ManualClock": "jobs",
    "DIRECTIVES": "jobs",
    "FAULTS": "faults",
}

__all__ = [
    "DIRECTIVES",
    "FAULTS",
    "MODEL",
    "GPTImageSimulator",
    "ManualClock",
    "SimulatorClient",
    "SimulatorConfig",
    "SimulatorState",
    "SimulatorStats",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
