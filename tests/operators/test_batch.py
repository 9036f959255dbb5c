"""GPTImageBatchGenerateOperator through Airflow's own dag.test() against the simulator with limits."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.batch.records import ItemStatus, JobInFlight, ResultRow
from airflow_provider_gptimage.batch.store import LIVE_KEY, META_KEY, BatchStore, Progress
from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.operators.batch import GPTImageBatchGenerateOperator
from airflow_provider_gptimage.protocol.batch import build_batch
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


def generate_ti(dag_run):
    """The batch task's instance of ``dag_run``."""
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == "generate")


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
def test_without_deferral_the_worker_polls_and_refills_the_window(simulator, monkeypatch, tmp_path, capsys):
    simulator.configure(active_task_limit=4, generation_seconds=0.1)
    dr = run_batch(monkeypatch, n=20, max_active=4, deferrable="false", destination=str(tmp_path), fail="3")
    ti = generate_ti(dr)
    assert ti.state == "failed"  # fail_at_end: item 3 failed, the other 19 are kept
    assert_each_prompt_once(simulator, 20)
    stats = simulator.stats()
    assert stats.max_active_jobs <= 4 and stats.responses_409 == 0
    assert len(list(tmp_path.glob("sku-*.png"))) == 19
    out = capsys.readouterr().out
    assert "Batch: 20/20 done (19 succeeded, 0 existing, 1 failed)" in out
    assert "Watching" not in out  # no trigger ever ran: the worker polled


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
    # The 9th image copy gets a 502 at each of its 6 attempts: try 1 fails mid-batch with jobs in flight.
    simulator.inject("result", "slow", times=8, delay=0)
    simulator.inject("result", "html_error", times=6, status=502)
    dr = run_batch(monkeypatch, n=20, max_active=5, destination=str(tmp_path), retries=1)
    assert dr.state == "success", states(dr)
    assert generate_ti(dr).try_number == 2
    assert_each_prompt_once(simulator, 20)
    result = xcom_value(dr, "generate")
    assert result["succeeded"] == 20
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"sku-{i:04d}.png" for i in range(20)]
    assert all(e["output_uris"] == [f"file://{tmp_path}/{e['key']}.png"] for e in result["items"])


@needs_batch_resume_across_retries
@dagtest
def test_an_expired_result_fails_its_item_alone_and_the_retry_pays_for_a_new_job(
    simulator, monkeypatch, no_sleep, tmp_path
):
    # The 3rd image copy gets a 403: that item's images are gone, the others go on; its journal entry ends, and
    # the retry creates a new job for it (re-attaching could never give the image).
    simulator.inject("result", "slow", times=2, delay=0)
    simulator.inject("result", "html_error", times=1, status=403)
    dr = run_batch(monkeypatch, n=6, max_active=1, destination=str(tmp_path), retries=1)
    assert dr.state == "success", states(dr)
    assert generate_ti(dr).try_number == 2
    creates = simulator.stats().prompt_creates
    assert sorted(creates.values()) == [1, 1, 1, 1, 1, 2]  # the expired item again, nothing else
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [f"sku-{i:04d}.png" for i in range(6)]
    assert list((tmp_path / "_catalog" / "journal").glob("*.json")) == []


@needs_batch_resume_across_retries
@dagtest
def test_a_retry_generates_only_the_failed_items_again(simulator, monkeypatch, no_sleep):
    dr = run_batch(monkeypatch, n=6, fail="2", policy="fail_at_end", retries=1)
    assert dr.state == "failed"  # [sim:fail] fails every time
    assert generate_ti(dr).try_number == 2
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
    assert generate_ti(dr).try_number == 2
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
    j0, j1 = JobInFlight("j0", 1.0, items[0].fingerprint), JobInFlight("j1", 1.0, items[1].fingerprint)
    progress.flight = {"k0": j0, "k1": j1}
    progress.save_live(store)
    progress.statuses[0] = ItemStatus.SUCCEEDED
    progress.save_results(store, [ResultRow(0, "j0", "success")])  # crash here: live key still has k0
    again, notes = Progress.load(BatchStore(backend), items, 3)
    assert again.flight == {"k1": j1}  # k0 ended: not re-attached
    assert again.statuses == [ItemStatus.SUCCEEDED] + [ItemStatus.PENDING] * 3
    assert again.rows(BatchStore(backend)) == [ResultRow(0, "j0", "success")]
    assert not notes
    assert set(store.to_kwargs()) == {META_KEY, LIVE_KEY}  # defer kwargs carry the compact copy only
    assert backend.values[META_KEY]["statuses"] == "s..."
    assert backend.values[LIVE_KEY]["jobs"]["k1"] == {
        "job_id": "j1",
        "created_at": 1.0,
        "fingerprint": items[1].fingerprint,
    }


def test_progress_stored_by_release_0_1_0_is_resumed():
    """A batch interrupted across the upgrade: 0.1.0's positional state is read, its jobs re-attached."""
    items, _ = build_batch([{"key": f"k{i}", "prompt": f"p{i}"} for i in range(4)])
    from airflow_provider_gptimage.protocol.batch import batch_fingerprint

    fp = batch_fingerprint(items)
    backend = DictBackend()
    backend.values = {  # exactly what 0.1.0 wrote (operators/batch_state.py, _VERSION = 1)
        META_KEY: {"v": 1, "fp": fp, "status": "sf..", "segments": 1, "try": 1, "t0": 1700000000.0, "d0": 0},
        LIVE_KEY: {
            "v": 1,
            "fp": fp,
            "jobs": {"k2": ["job-2", 1700000100.0, items[2].digest], "k3": ["job-3", 1700000101.0, "0123456789ab"]},
            "window": [3, 4, 1, 0],
            "create_after": 0.0,
        },
        "gptimage_batch_results_0": [
            [0, "job-0", "success", ["file:///x/k0.png"], None],
            [1, "job-1", "fail", [], "boom"],
        ],
    }
    progress, notes = Progress.load(BatchStore(backend), items, 4)
    assert progress.statuses == [ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.PENDING, ItemStatus.PENDING]
    assert progress.flight == {"k2": JobInFlight("job-2", 1700000100.0, items[2].digest)}  # re-attached, not paid again
    assert progress.flight["k2"].made_for(items[2].fingerprint)
    assert any("job-3" in note for note in notes)  # made for another request: left alone
    assert (progress.window.size, progress.try_number, progress.segments) == (3, 1, 1)
    rows = progress.rows(BatchStore(backend))
    assert rows == [ResultRow(0, "job-0", "success", ("file:///x/k0.png",)), ResultRow(1, "job-1", "fail", (), "boom")]
    progress.save_live(BatchStore(backend))  # written back in this release's named format
    assert backend.values[LIVE_KEY]["version"] == 2


def test_progress_survives_without_task_state_store_through_the_defer_kwargs():
    items, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "q"}])
    store = BatchStore(None)
    progress, _ = Progress.load(store, items, 2)
    progress.statuses[1] = ItemStatus.FAILED
    progress.save_results(store, [ResultRow(1, "j", "fail", (), "boom")])
    carried = json.loads(json.dumps(store.to_kwargs()))
    again, _ = Progress.load(BatchStore(None, carried), items, 2)
    assert again.statuses == [ItemStatus.PENDING, ItemStatus.FAILED]
    assert again.start_try(2) and again.statuses == [ItemStatus.PENDING] * 2  # a retry retries failed items


def test_edited_batch_keeps_unchanged_jobs_in_flight_only():
    items, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "q"}])
    backend = DictBackend()
    progress, _ = Progress.load(BatchStore(backend), items, 2)
    ja, jb = JobInFlight("ja", 1.0, items[0].fingerprint), JobInFlight("jb", 1.0, items[1].fingerprint)
    progress.flight = {"a": ja, "b": jb}
    progress.save_live(BatchStore(backend))
    edited, _ = build_batch([{"key": "a", "prompt": "p"}, {"key": "b", "prompt": "changed"}])
    again, notes = Progress.load(BatchStore(backend), edited, 2)
    assert again.flight == {"a": ja}
    assert any("jb" in note for note in notes)


# ------------------------------------------------------------------------------------------------ groups
def _create_setup(n: int, window: int, width: int, backend):
    import logging

    from airflow_provider_gptimage.batch.run import BatchRun, BatchSettings
    from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
    from airflow_provider_gptimage.operators.batch import _CREATE_POLICY
    from airflow_provider_gptimage.protocol import PollSchedule

    items, _ = build_batch([{"key": f"k{i:02d}", "prompt": f"group {i}"} for i in range(n)])
    store = BatchStore(backend)
    progress, _ = Progress.load(store, items, window)
    settings = BatchSettings("fail_at_end", PollSchedule(), None, 5.0, width, 1)
    hook = GPTImageHook(request_id_prefix="test", retry_policy=_CREATE_POLICY)
    return BatchRun(
        items=items, folder=None, store=store, progress=progress, hook=hook, settings=settings,
        log=logging.getLogger("test"), provenance={},
    )  # fmt: skip


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
    run = _create_setup(20, window=10, width=4, backend=backend)
    created = run.create(stale=False)
    stats = simulator.stats()
    assert stats.creates == 10 and len(run.progress.flight) == 10 == len(created)  # never past the window
    assert stats.max_active_jobs <= 10
    assert [len(jobs) for jobs in backend.live] == [4, 8, 10]  # one write per group, none redundant
    stored = backend.values[LIVE_KEY]["jobs"]
    assert set(stored) == {f"k{i:02d}" for i in range(10)}
    assert {key: job["job_id"] for key, job in stored.items()} == {k: j.job_id for k, j in run.progress.flight.items()}
    assert any(rid.endswith(":k03:createTask") for rid in stats.request_ids["createTask"])
    assert run.hook.request_id_prefix == "test"  # named per call: the hook itself is never changed


def test_one_at_a_time_stores_each_create_before_the_next(gptimage_conn, simulator):
    backend = LiveWrites()
    run = _create_setup(5, window=5, width=1, backend=backend)
    run.create(stale=False)
    assert [len(jobs) for jobs in backend.live] == [1, 2, 3, 4, 5]


def test_a_crash_mid_group_loses_at_most_that_group(gptimage_conn, simulator):
    backend = LiveWrites(fail_on=2)  # killed while storing the second group's ids
    run = _create_setup(12, window=12, width=4, backend=backend)
    with pytest.raises(KeyboardInterrupt):
        run.create(stale=False)
    stored = backend.values[LIVE_KEY]["jobs"]
    assert len(stored) == 4  # the first group survived
    assert simulator.stats().creates - len(stored) <= 4  # orphaned: at most one group
    again, _ = Progress.load(BatchStore(backend), run.items, 12)
    assert set(again.flight) == set(stored)  # a retry re-attaches the stored group, creates the rest


@pytest.mark.parametrize(
    ("resumable", "needle"), [(True, "only the failed and unfinished"), (False, "start the batch over")]
)
def test_failure_message_says_what_a_retry_will_do(resumable, needle):
    from airflow_provider_gptimage.batch.summary import failure_error

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
