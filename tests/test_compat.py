"""What differs between the oldest supported Airflow (3.0.6) and 3.3: each fallback, on the running version.

``make test`` runs these on Airflow 3.3, ``make test-oldest`` on 3.0.6; the DAG-level tests pick the
behaviour of the version they run on.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from airflow_provider_gptimage import deferral, protocol
from airflow_provider_gptimage._compat import has_fs
from airflow_provider_gptimage.context import current_try, is_stale_resume
from airflow_provider_gptimage.deferral import (
    dag_test_drops_defer_kwargs,
    keep_defer_kwargs,
    resumed_defer_kwargs,
)
from airflow_provider_gptimage.exceptions import GPTImageError
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.gptimage import STATE_KEY, GPTImageGenerateOperator
from airflow_provider_gptimage.operators.reattach import attach_or_create
from airflow_provider_gptimage.protocol.events import batch_event
from airflow_provider_gptimage.sensors.gptimage import GPTImageTaskSensor
from tests.conftest import HAS_TASK_STATE_STORE, needs_fresh_retry_after_deferral, run_dag, xcom_value


def test_has_fs_finds_airflows_filesystem_registry():
    assert has_fs("file")
    assert not has_fs("no-such-scheme")


@pytest.mark.parametrize(
    ("context", "deferred_in_try", "stale"),
    [
        ({"ti": SimpleNamespace(try_number=2)}, 1, True),
        ({"ti": SimpleNamespace(try_number=1)}, 1, False),
        ({"task_instance": SimpleNamespace(try_number=3)}, 2, True),
        ({"ti": SimpleNamespace(try_number=2)}, None, False),  # deferred without the marker: trust it
        ({}, 1, False),  # no task instance: nothing to compare
    ],
)
def test_is_stale_resume(context, deferred_in_try, stale):
    assert is_stale_resume(context, deferred_in_try) is stale


def test_current_try():
    assert current_try({"ti": SimpleNamespace(try_number=4)}) == 4
    assert current_try({}) is None


class FakeStore:
    """Stands in for ``task_state_store`` (3.3+): ``get``/``set`` of JSON values."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str) -> object:
        return self.values.get(key)

    def set(self, key: str, value: object) -> None:
        self.values[key] = value


@pytest.fixture
def operator() -> GPTImageGenerateOperator:
    return GPTImageGenerateOperator(task_id="t", prompt="a fox in the snow")


@pytest.fixture
def request_() -> protocol.GenerationRequest:
    request, _ = protocol.build_request(prompt="a fox in the snow")
    return request


def test_without_task_state_store_the_operator_warns_and_creates_afresh(
    operator, request_, simulator, gptimage_conn, monkeypatch
):
    # What every try sees on Airflow < 3.3: a context without task_state_store.
    warnings: list[str] = []
    stub = SimpleNamespace(warning=lambda msg, *a: warnings.append(msg % a), info=lambda *a: None)
    monkeypatch.setattr(GPTImageGenerateOperator, "log", property(lambda self: stub))
    hook = GPTImageHook(gptimage_conn)
    first = attach_or_create(hook, request_, None, folder=None, key=None, log=operator.log)
    again = attach_or_create(hook, request_, None, folder=None, key=None, log=operator.log)
    assert first.record is None
    assert again.job_id != first.job_id  # nothing remembered and no destination: a retry pays for a new job
    assert len(warnings) == 2
    assert all("no task_state_store" in w and "journal" in w for w in warnings)
    assert simulator.stats().creates == 2


def test_without_task_state_store_the_destination_journal_reattaches(
    operator, request_, simulator, gptimage_conn, tmp_path
):
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(tmp_path.as_uri())
    hook = GPTImageHook(gptimage_conn)
    first = attach_or_create(hook, request_, None, folder=folder, key="SKU-1", log=operator.log)
    again = attach_or_create(hook, request_, None, folder=folder, key="SKU-1", log=operator.log)
    assert (again.job_id, again.record is not None) == (first.job_id, True)
    assert simulator.stats().creates == 1
    assert [p.name for p in (tmp_path / "_catalog" / "journal").iterdir()] == [f"{protocol.fingerprint(request_)}.json"]


def test_with_task_state_store_the_operator_reattaches(operator, request_, simulator, gptimage_conn):
    hook = GPTImageHook(gptimage_conn)
    store = FakeStore()
    attached = attach_or_create(hook, request_, store, folder=None, key=None, log=operator.log)
    job_id, first = attached.job_id, attached.record
    again_attached = attach_or_create(hook, request_, store, folder=None, key=None, log=operator.log)
    again, record = again_attached.job_id, again_attached.record
    assert first is None
    assert again == job_id
    assert record is not None
    assert store.values[STATE_KEY]["job_id"] == job_id  # type: ignore[index]
    assert simulator.stats().creates == 1


@pytest.mark.parametrize(
    "task", [GPTImageGenerateOperator(task_id="op", prompt="p"), GPTImageTaskSensor(task_id="s", job_id="j")]
)
def test_a_stale_resume_starts_the_try_afresh(task, monkeypatch):
    # Airflow < 3.1.1 resumes a retry into execute_complete with the previous try's event.
    monkeypatch.setattr(task, "execute", lambda context: "executed afresh")
    context = {"ti": SimpleNamespace(try_number=2, task_id="t", dag_id="d", run_id="r", map_index=-1)}
    stale_event = {"status": "error", "job_id": "old", "error_type": "GPTImageServerError", "message": "gave up"}
    assert task.execute_complete(context, event=stale_event, deferred_in_try=1) == "executed afresh"


@needs_fresh_retry_after_deferral
@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_a_retry_after_the_trigger_gave_up_on_this_airflow(simulator, monkeypatch, no_sleep):
    # The first try's trigger gives up (a run of 5xx longer than it tolerates), and the task is retried.
    simulator.inject("recordInfo", "http_500", times=8)
    dr = run_dag("gptimage_generate", monkeypatch, GPTIMAGE_TEST_RETRIES="1")
    assert dr.state == "success"
    (ti,) = dr.get_task_instances()
    assert ti.try_number == 2
    assert xcom_value(dr, "generate")["state"] == "success"
    # 3.3 re-attaches through task_state_store; older releases cannot, and the retry pays for a new job
    assert simulator.stats().creates == (1 if HAS_TASK_STATE_STORE else 2)


class FakeTaskInstance:
    """The XCom calls of a task instance, kept in a dict."""

    def __init__(self) -> None:
        self.task_id, self.map_index, self.try_number = "generate", -1, 1
        self.xcoms: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int) -> object:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcoms.get(key)


def test_outside_dag_test_defer_kwargs_are_not_copied():
    ti = FakeTaskInstance()
    assert not dag_test_drops_defer_kwargs()  # a plain process: no in-process supervisor
    keep_defer_kwargs({"ti": ti}, {"state": {"k": 1}})
    assert ti.xcoms == {}
    assert resumed_defer_kwargs({"ti": ti}) == {}


def test_under_dag_test_defer_kwargs_survive_in_an_xcom(monkeypatch):
    # dag.test() resumes with the trigger event alone (apache/airflow#69942): the copy brings the kwargs back.
    monkeypatch.setattr(deferral, "dag_test_drops_defer_kwargs", lambda: True)
    ti = FakeTaskInstance()
    assert resumed_defer_kwargs({"ti": ti}) == {}
    keep_defer_kwargs({"ti": ti}, {"state": {"gptimage_batch": {"v": 1}}})
    assert resumed_defer_kwargs({"ti": ti}) == {"state": {"gptimage_batch": {"v": 1}}}
    assert resumed_defer_kwargs({}) == {}


def test_a_batch_resumed_without_its_progress_fails_instead_of_starting_over(simulator, gptimage_conn):
    # No task_state_store, no `state` kwarg, no kept copy: starting over would pay for every job again.
    operator = GPTImageBatchGenerateOperator(task_id="generate", requests=[{"key": "a", "prompt": "p"}])
    event = batch_event("ended", [], 0)
    with pytest.raises(GPTImageError, match="resumed without its progress"):
        operator.execute_complete({"ti": FakeTaskInstance()}, event=event, state=None)
    assert simulator.stats().create_attempts == 0
