"""GPTImageBatchGenerateOperator through Airflow's own dag.test() against the simulator with limits."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.operators.batch_create import CreateSettings, create_jobs
from airflow_provider_gptimage.operators.batch_state import LIVE_KEY, META_KEY, BatchStore, Progress
from airflow_provider_gptimage.protocol.batch import FAILED, PENDING, SUCCESS, build_batch
from tests.conftest import (
    FAKE_API_KEY,
    needs_batch_resume_across_retries,
    needs_batch_start_over_on_retry,
    run_dag,
    xcom_value,
)

dagtest = pytest.mark.usefixtures("airflow_db", "gptimage_conn")


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def run_batch(monkeypatch, *, n: int, dag_id: str = "gptimage_batch", **env: str):
    env = {f"GPTIMAGE_BATCH_{k.upper()}": str(v) for k, v in env.items()}
    return run_dag(dag_id, monkeypatch, GPTIMAGE_BATCH_N=str(n), **env)


def assert_each_prompt_once(simulator, n: int) -> None:
    stats = simulator.stats()
    assert stats.creates == n
    assert len(stats.prompt_creates) == n
    assert set(stats.prompt_creates.values()) == {1}


# ------------------------------------------------------------------------------------------------ limits
@dagtest
def test_fifty_items_within_an_active_task_limit_of_five(simulator, monkeypatch, capsys):
    simulator.configure(active_task_limit=5, generation_seconds=0.1)
    dr = run_batch(monkeypatch, n=50, max_active=5)
    assert dr.state == "success", states(dr)
    assert_each_prompt_once(simulator, 50)
    stats = simulator.stats()
    assert stats.max_active_jobs <= 5
    assert stats.responses_409 == 0  # the window never oversteps a limit it was told
    result = xcom_value(dr, "generate")
    assert (result["total"], result["succeeded"], result["failed"]) == (50, 50, 0)
    assert [e["key"] for e in result["items"]] == [f"sku-{i:04d}" for i in range(50)]
    assert all(e["state"] == "success" and e["job_id"] and e["result_urls"] for e in result["items"])
    out = capsys.readouterr().out
    assert "Batch: 50/50 done (50 succeeded" in out
    assert "ETA" in out
    assert FAKE_API_KEY not in out
    request_ids = stats.request_ids["createTask"]
    assert any(rid.endswith(":sku-0007:createTask") for rid in request_ids)  # support can name the item


@dagtest
def test_overstated_limit_gets_409s_that_never_become_failures(simulator, monkeypatch):
    simulator.configure(active_task_limit=4, generation_seconds=0.6)
    dr = run_batch(monkeypatch, n=16, max_active=9)
    assert dr.state == "success", states(dr)
    stats = simulator.stats()
    assert stats.responses_409 > 0
    assert stats.max_active_jobs <= 4
    assert_each_prompt_once(simulator, 16)
    assert xcom_value(dr, "generate")["succeeded"] == 16


@dagtest
def test_429_storm_on_create_waits_retry_after_and_recovers(simulator, monkeypatch, no_sleep):
    simulator.inject("createTask", "http_429", times=12, retry_after=1)
    dr = run_batch(monkeypatch, n=10, max_active=5)
    assert dr.state == "success", states(dr)
    assert_each_prompt_once(simulator, 10)
    assert simulator.stats().responses_429 == 12
    assert no_sleep and min(no_sleep) >= 1.0  # Retry-After honoured (plus jitter), slept in short steps
    assert sum(no_sleep) < 12  # long pauses were deferred to the trigger, not slept in the worker


@dagtest
def test_rate_limited_service_on_creates_and_polls(simulator, monkeypatch, no_sleep):
    simulator.configure(rate_limit_per_second=8, rate_limit_burst=3, generation_seconds=0.1)
    dr = run_batch(monkeypatch, n=10, max_active=5)
    assert dr.state == "success", states(dr)
    assert_each_prompt_once(simulator, 10)
    assert simulator.stats().responses_429 > 0


# ------------------------------------------------------------------------------------------------ failures
@dagtest
def test_report_policy_succeeds_with_the_failure_listed(simulator, monkeypatch):
    dr = run_batch(monkeypatch, n=8, fail="3", policy="report")
    assert dr.state == "success", states(dr)
    result = xcom_value(dr, "generate")
    assert (result["succeeded"], result["failed"]) == (7, 1)
    failed = result["items"][3]
    assert failed["key"] == "sku-0003" and failed["state"] == "fail" and failed["job_id"]
    assert "[sim:fail]" in failed["error"]
    assert simulator.stats().creates == 8


@dagtest
def test_fail_at_end_finishes_the_rest_then_fails(simulator, monkeypatch):
    dr = run_batch(monkeypatch, n=8, fail="3", policy="fail_at_end")
    assert dr.state == "failed"
    assert simulator.stats().creates == 8  # every other item was still generated
    report = xcom_value(dr, "generate", key="batch_report")
    assert (report["succeeded"], report["failed"]) == (7, 1)
    assert report["items"][3]["state"] == "fail"


@dagtest
def test_fail_fast_stops_creating_after_the_first_failure(simulator, monkeypatch):
    dr = run_batch(monkeypatch, n=15, fail="0", policy="fail_fast")
    assert dr.state == "failed"
    assert simulator.stats().creates < 15
    report = xcom_value(dr, "generate", key="batch_report")
    assert report["failed"] == 1 and report["not_started"] > 0


# ------------------------------------------------------------------------------------------------ resume
@needs_batch_resume_across_retries
@dagtest
def test_retry_after_a_failure_mid_batch_resumes_without_duplicates(simulator, monkeypatch, no_sleep, tmp_path):
    # The 9th image copy gets a 403 (an "expired" URL): try 1 fails mid-batch with jobs in flight.
    simulator.inject("result", "slow", times=8, delay=0)
    simulator.inject("result", "html_error", times=1, status=403)
    dr = run_batch(monkeypatch, n=20, max_active=5, destination=str(tmp_path), retries=1)
    assert dr.state == "success", states(dr)
    ti = next(t for t in dr.get_task_instances() if t.task_id == "generate")
    assert ti.try_number == 2
    assert_each_prompt_once(simulator, 20)
    result = xcom_value(dr, "generate")
    assert result["succeeded"] == 20
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"sku-{i:04d}.png" for i in range(20)]
    assert all(e["output_uris"] == [f"file://{tmp_path}/{e['key']}.png"] for e in result["items"])


@needs_batch_resume_across_retries
@dagtest
def test_a_retry_generates_only_the_failed_items_again(simulator, monkeypatch, no_sleep):
    dr = run_batch(monkeypatch, n=6, fail="2", policy="fail_at_end", retries=1)
    assert dr.state == "failed"  # [sim:fail] fails every time
    ti = next(t for t in dr.get_task_instances() if t.task_id == "generate")
    assert ti.try_number == 2
    creates = simulator.stats().prompt_creates
    assert sorted(creates.values()) == [1, 1, 1, 1, 1, 2]  # the failed item again, nothing else
    assert [prompt for prompt, count in creates.items() if count == 2] == [
        next(p for p in creates if "[sim:fail]" in p)
    ]


@needs_batch_start_over_on_retry
@dagtest
def test_without_task_state_store_a_retry_generates_every_item_again(simulator, monkeypatch, no_sleep):
    # What the README says of 3.1.1 to 3.2.x: the progress lived in the first try's defer kwargs only.
    dr = run_batch(monkeypatch, n=6, fail="2", policy="fail_at_end", retries=1)
    assert dr.state == "failed"
    ti = next(t for t in dr.get_task_instances() if t.task_id == "generate")
    assert ti.try_number == 2
    assert sorted(simulator.stats().prompt_creates.values()) == [2, 2, 2, 2, 2, 2]


@dagtest
def test_rerun_with_outputs_already_in_destination_creates_nothing(simulator, monkeypatch, tmp_path):
    first = run_batch(monkeypatch, n=6, destination=str(tmp_path))
    assert first.state == "success", states(first)
    simulator.reset()
    second = run_batch(monkeypatch, n=6, destination=str(tmp_path))
    assert second.state == "success", states(second)
    assert simulator.stats().create_attempts == 0
    result = xcom_value(second, "generate")
    assert (result["existing"], result["succeeded"]) == (6, 0)
    sidecar = json.loads((tmp_path / "sku-0002.json").read_text())
    assert result["items"][2]["job_id"] == sidecar["job_id"]
    assert sidecar["prompt"] == "product shot 2" and sidecar["provenance"]["batch_key"] == "sku-0002"


@dagtest
def test_bad_item_fails_before_any_request(simulator, monkeypatch, capsys):
    extra = [{"key": "bad-1", "prompt": "x", "resolution": "1k"}, {"key": "sku-0001", "prompt": "dup"}]
    dr = run_batch(monkeypatch, n=5, extra=json.dumps(extra))
    assert dr.state == "failed"
    assert simulator.stats().create_attempts == 0
    out = capsys.readouterr()
    text = out.out + out.err
    assert "2 of 7 items are invalid" in text
    assert "item 5 (key 'bad-1'): `resolution`" in text
    assert "item 6 (key 'sku-0001'): `key` duplicates item 1" in text


@dagtest
def test_requests_rendered_from_an_xcom_template(simulator, monkeypatch):
    dr = run_batch(monkeypatch, n=6, dag_id="gptimage_batch_templated")
    assert dr.state == "success", states(dr)
    assert_each_prompt_once(simulator, 6)


@dagtest
def test_one_thousand_prompts_with_limits(simulator, monkeypatch, tmp_path):
    simulator.configure(active_task_limit=50, generation_seconds=0.2, image_long_side=16)
    try:
        dr = run_batch(
            monkeypatch, n=1000, max_active=50, destination=str(tmp_path), persist_every=10, poll=0.1, max_poll=0.2
        )
    finally:
        simulator.configure(image_long_side=256)
    assert dr.state == "success", states(dr)
    assert_each_prompt_once(simulator, 1000)  # zero duplicates
    stats = simulator.stats()
    assert stats.max_active_jobs <= 50
    result = xcom_value(dr, "generate")
    assert (result["succeeded"], result["failed"], result["not_started"]) == (1000, 0, 0)  # zero lost
    assert len(list(tmp_path.glob("sku-*.png"))) == 1000
    assert len(list(tmp_path.glob("sku-*.json"))) == 1000


# ------------------------------------------------------------------------------------------------ units
@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"failure_policy": "ignore"}, "failure_policy"),
        ({"max_active_jobs": 0}, "max_active_jobs"),
        ({"requests": [{"key": "a", "prompt": ""}]}, "requests"),
    ],
)
def test_static_arguments_fail_at_parse_time(kwargs, parameter):
    kwargs.setdefault("requests", [{"key": "a", "prompt": "p"}])
    with pytest.raises(GPTImageValidationError) as info:
        GPTImageBatchGenerateOperator(task_id="t", **kwargs)
    assert info.value.parameter == parameter


def test_templated_requests_wait_for_execution():
    op = GPTImageBatchGenerateOperator(task_id="t", requests="{{ ti.xcom_pull('plan') }}")
    assert op.requests == "{{ ti.xcom_pull('plan') }}"
    assert set(op.template_fields) == {"requests", "destination", "destination_conn_id"}


class DictBackend:
    """Stands in for task_state_store (get/set of JSON values) in these DB-free checks."""

    def __init__(self) -> None:
        self.values: dict = {}
        self.writes = 0

    def get(self, key):
        return json.loads(json.dumps(self.values.get(key)))

    def set(self, key, value):
        self.writes += 1
        self.values[key] = json.loads(json.dumps(value))


def test_progress_round_trip_and_crash_between_status_and_live_key():
    items, _ = build_batch([{"key": f"k{i}", "prompt": f"p{i}"} for i in range(4)])
    backend = DictBackend()
    store = BatchStore(backend)
    progress, _ = Progress.load(store, items, 3)
    progress.start_try(1)
    progress.flight = {"k0": ["j0", 1.0, items[0].digest], "k1": ["j1", 1.0, items[1].digest]}
    progress.save_live(store)
    progress.status[0] = SUCCESS
    progress.save_results(store, [[0, "j0", "success", [], None]])  # crash here: live key still has k0
    again, notes = Progress.load(BatchStore(backend), items, 3)
    assert again.flight == {"k1": ["j1", 1.0, items[1].digest]}  # k0 ended: not re-attached
    assert again.status == [SUCCESS, PENDING, PENDING, PENDING]
    assert again.rows(BatchStore(backend)) == [[0, "j0", "success", [], None]]
    assert not notes
    assert set(store.to_kwargs()) == {META_KEY, LIVE_KEY}  # defer kwargs carry the compact copy only
    assert len(json.dumps(backend.values[META_KEY])) < 200


def test_progress_survives_without_task_state_store_through_the_defer_kwargs():
    items, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "q"}])
    store = BatchStore(None)
    progress, _ = Progress.load(store, items, 2)
    progress.status[1] = FAILED
    progress.save_results(store, [[1, "j", "fail", [], "boom"]])
    carried = json.loads(json.dumps(store.to_kwargs()))
    again, _ = Progress.load(BatchStore(None, carried), items, 2)
    assert again.status == [PENDING, FAILED]
    assert again.start_try(2) and again.status == [PENDING, PENDING]  # a retry retries failed items


def test_edited_batch_keeps_unchanged_jobs_in_flight_only():
    items, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "q"}])
    backend = DictBackend()
    progress, _ = Progress.load(BatchStore(backend), items, 2)
    progress.flight = {"a": ["ja", 1.0, items[0].digest], "b": ["jb", 1.0, items[1].digest]}
    progress.save_live(BatchStore(backend))
    edited, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "changed"}])
    again, notes = Progress.load(BatchStore(backend), edited, 2)
    assert again.flight == {"a": ["ja", 1.0, items[0].digest]}
    assert any("jb" in note for note in notes)


# ------------------------------------------------------------------------------------------------ groups
def _create_setup(n: int, window: int, width: int, backend):
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook

    items, _ = build_batch([{"key": f"k{i:02d}", "prompt": f"group {i}"} for i in range(n)])
    op = GPTImageBatchGenerateOperator(
        task_id="t", requests=[{"key": "x", "prompt": "p"}], max_active_jobs=window, max_concurrent_creates=width
    )
    store = BatchStore(backend)
    progress, _ = Progress.load(store, items, window)
    return op, GPTImageHook(request_id_prefix="test"), items, store, progress


def _settings(op: GPTImageBatchGenerateOperator) -> CreateSettings:
    return CreateSettings(op.max_concurrent_creates, op.persist_every, op.max_worker_wait)


class LiveWrites(DictBackend):
    """Records the jobs in flight of every live-key write; ``fail_on`` makes that write die (a kill)."""

    def __init__(self, fail_on: int | None = None) -> None:
        super().__init__()
        self.live: list[set] = []
        self.fail_on = fail_on

    def set(self, key, value):
        if key == LIVE_KEY:
            if self.fail_on is not None and len(self.live) + 1 == self.fail_on:
                raise KeyboardInterrupt("worker killed before the write")
            self.live.append(set(value["jobs"]))
        super().set(key, value)


def test_concurrent_creates_stay_in_the_window_and_each_group_is_stored(gptimage_conn, simulator):
    backend = LiveWrites()
    op, hook, items, store, progress = _create_setup(20, window=10, width=4, backend=backend)
    create_jobs(hook, items, store, progress, _settings(op), stale=False)
    stats = simulator.stats()
    assert stats.creates == 10 and len(progress.flight) == 10  # never past the window
    assert stats.max_active_jobs <= 10
    assert [len(jobs) for jobs in backend.live] == [4, 8, 10]  # one write per group, none redundant
    stored = backend.values[LIVE_KEY]["jobs"]
    assert set(stored) == {f"k{i:02d}" for i in range(10)}
    assert {key: job[0] for key, job in stored.items()} == {key: job[0] for key, job in progress.flight.items()}
    assert any(rid.endswith(":k03:createTask") for rid in stats.request_ids["createTask"])


def test_one_at_a_time_stores_each_create_before_the_next(gptimage_conn, simulator):
    backend = LiveWrites()
    op, hook, items, store, progress = _create_setup(5, window=5, width=1, backend=backend)
    create_jobs(hook, items, store, progress, _settings(op), stale=False)
    assert [len(jobs) for jobs in backend.live] == [1, 2, 3, 4, 5]


def test_a_crash_mid_group_loses_at_most_that_group(gptimage_conn, simulator):
    backend = LiveWrites(fail_on=2)  # killed while storing the second group's ids
    op, hook, items, store, progress = _create_setup(12, window=12, width=4, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        create_jobs(hook, items, store, progress, _settings(op), stale=False)
    stored = backend.values[LIVE_KEY]["jobs"]
    assert len(stored) == 4  # the first group survived
    assert simulator.stats().creates - len(stored) <= 4  # orphaned: at most one group
    again, _ = Progress.load(BatchStore(backend), items, 12)
    assert set(again.flight) == set(stored)  # a retry re-attaches the stored group, creates the rest


@pytest.mark.parametrize(
    ("resumable", "needle"), [(True, "only the failed and unfinished"), (False, "start the batch over")]
)
def test_failure_message_says_what_a_retry_will_do(resumable, needle):
    from airflow_provider_gptimage.operators.batch_steps import failure_error

    items = [{"key": "a", "state": "success", "error": None}, {"key": "b", "state": "fail", "error": "boom"}]
    result = {"items": items, "total": 2, "succeeded": 1, "existing": 0}
    error = failure_error(result, "fail_at_end", resumable=resumable)
    assert "1 of 2 batch items failed (fail_at_end): 'b': fail (boom)" in str(error)
    assert needle in str(error)
    assert error.failed_keys == ("b",)


def test_min_wake_delay_reaches_the_trigger_and_defaults_to_the_poll_interval(gptimage_conn, simulator):
    try:
        from airflow.sdk.exceptions import TaskDeferred
    except ImportError:  # Airflow < 3.1
        from airflow.exceptions import TaskDeferred

    from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger

    def deferred_trigger(**kwargs) -> GPTImageBatchTrigger:
        op = GPTImageBatchGenerateOperator(task_id="t", requests=[{"key": "x", "prompt": "p"}], **kwargs)
        with pytest.raises(TaskDeferred) as info:
            op.execute({"task_state_store": None})
        assert isinstance(info.value.trigger, GPTImageBatchTrigger)
        return info.value.trigger

    assert deferred_trigger(poll_interval=3).min_event_delay == 3
    assert deferred_trigger(poll_interval=3, min_wake_delay=0).min_event_delay == 0
