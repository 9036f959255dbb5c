"""The triggers' import warm-up: the hook's dependencies are imported in a worker thread, never in the
triggerer's event loop (where the first trigger would stall every other one for 0.2-0.7 s).

Each case runs in a fresh interpreter, as a new triggerer would: it imports what a triggerer has (Airflow's
``BaseTrigger``), then the trigger module (checked: none of the heavy modules yet), then records, through a
``sys.meta_path`` finder, which thread first imports each heavy module while one trigger runs to its first
event (a refused poll). A trigger whose ``run()`` skipped :func:`awarm_up` imports them in the loop's thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from airflow_provider_gptimage.triggers.warmup import HOOK_MODULES
from tests.e2e.processes import free_port

#: Modules a first poll needs that a triggerer has not imported: what the warm-up must keep off the loop.
HEAVY = (*HOOK_MODULES, "requests", "airflow.providers.http.hooks.http")

CHILD = textwrap.dedent(
    """
    import asyncio, gc, importlib.abc, json, sys, threading, time
    from airflow.triggers.base import BaseTrigger  # what a triggerer has imported

    heavy = json.loads(sys.argv[1])
    preloaded = [name for name in heavy if name in sys.modules]
    module_name, class_name = sys.argv[2].rsplit(".", 1)
    module = importlib.import_module(module_name)
    by_module_import = [name for name in heavy if name in sys.modules]

    importers = {}

    class Recorder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in heavy:
                importers.setdefault(name, threading.current_thread().name)
            return None

    sys.meta_path.insert(0, Recorder())
    cls = getattr(module, class_name)
    if class_name == "GPTImageBatchTrigger":
        trigger = cls(jobs=[["key", "job-1", time.time()]], poll_interval=0.05, max_transient_errors=1,
                      min_event_delay=0, wake_fraction=1.0)
    else:
        trigger = cls(job_id="job-1", first_poll_delay=0, max_transient_errors=1, request_timeout=5)

    async def first_event():
        run = trigger.run()
        try:
            return (await asyncio.wait_for(run.__anext__(), 60)).payload
        finally:
            await run.aclose()

    payload = asyncio.run(first_event())
    print(json.dumps({"preloaded": preloaded, "by_module_import": by_module_import, "importers": importers,
                      "loop_thread": threading.main_thread().name, "event": str(payload)[:300],
                      "frozen": gc.get_freeze_count()}))
    """
)


@pytest.mark.parametrize(
    "classpath",
    [
        "airflow_provider_gptimage.triggers.gptimage.GPTImageTaskTrigger",
        "airflow_provider_gptimage.triggers.batch.GPTImageBatchTrigger",
    ],
)
def test_first_trigger_imports_the_hook_off_the_event_loop(classpath: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the first poll is refused, ending the trigger
    env = {
        **os.environ,
        "AIRFLOW_CONN_GPTIMAGE_DEFAULT": json.dumps({"conn_type": "gptimage", "host": closed, "password": "sk-x"}),
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(HEAVY), classpath],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # What a triggerer has already imported cannot block it; the hook module itself never is.
    watched = set(HEAVY) - set(result["preloaded"])
    assert "airflow_provider_gptimage.hooks.gptimage" in watched
    pulled = sorted(watched & set(result["by_module_import"]))
    assert pulled == [], f"importing the trigger module pulled these into the event loop: {pulled}"
    assert "error" in result["event"], result["event"]  # the trigger did run to its (refused) first poll
    assert set(result["importers"]) >= watched, result["importers"]
    in_loop = sorted(name for name in watched if result["importers"][name] == result["loop_thread"])
    assert in_loop == [], f"imported in the event loop's thread (warm-up skipped?): {in_loop}"
    assert result["frozen"] > 0, "the warm-up did not freeze the heap: full collections walk all of Airflow's objects"
