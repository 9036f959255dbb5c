"""Watch: which running jobs of a batch are about to end (pure: times are passed in)."""

from __future__ import annotations

from airflow_provider_gptimage.protocol import PollSchedule
from airflow_provider_gptimage.protocol.records import JobRecord
from airflow_provider_gptimage.protocol.watch import Watch


def make_watch(created: dict[str, float]) -> Watch:
    return Watch(
        [(f"key-{job}", job, at) for job, at in created.items()],
        schedule=PollSchedule.of(0.5, 0.5),
        job_timeout=None,
        max_transient_errors=3,
    )


def poll(watch: Watch, job: str, state: str, now: float) -> None:
    watch.settle(watch.running[job], JobRecord(job_id=job, state=state), now, 0.0)


def test_nothing_is_about_to_end_before_a_job_was_seen_ended():
    watch = make_watch({"a": 100.0, "b": 100.1})
    assert watch.ending_within(1_000.0) == 0


def test_jobs_created_with_one_that_ended_are_about_to_end_until_polled_at_its_age():
    # a, b, c were created together (a group of one create pass), d three seconds later.
    watch = make_watch({"a": 100.0, "b": 100.05, "c": 100.1, "d": 103.0})
    poll(watch, "a", "success", 103.0)  # a ran at most 3.0 s
    assert watch.ending_within(103.2) == 2  # b and c reach 3.0 s by then; d is 3 s younger
    assert watch.ending_within(106.0) == 3  # within a longer horizon, d too
    poll(watch, "b", "generating", 103.06)  # b polled at 3.01 s and still running: merely slower
    assert watch.ending_within(103.2) == 1
    poll(watch, "c", "success", 103.1)
    assert watch.ending_within(103.2) == 0
    assert watch.shortest == 3.0


def test_a_job_polled_before_that_age_still_counts():
    watch = make_watch({"a": 100.0, "b": 100.2})
    poll(watch, "b", "generating", 102.7)  # b polled at 2.5 s
    poll(watch, "a", "success", 103.0)
    assert watch.ending_within(103.1) == 0  # b reaches 3.0 s at 103.2
    assert watch.ending_within(103.2) == 1


def ids(jobs) -> list[str]:
    return sorted(job.job_id for job in jobs)


def test_each_job_is_handed_out_at_its_turn_and_once_until_its_poll_is_recorded():
    watch = make_watch({"a": 100.0, "b": 100.2, "c": 101.0})  # first polls at 100.5, 100.7, 101.5
    assert watch.due(100.4) == ([], 100.5)
    due, next_due = watch.due(100.8)
    assert (ids(due), next_due) == (["a", "b"], 101.5)
    assert watch.due(100.9) == ([], 101.5)  # a and b are being polled: not handed out twice
    poll(watch, "a", "generating", 100.9)  # a's next turn on its schedule: 101.0
    assert watch.due(100.95) == ([], 101.0)
    due, next_due = watch.due(101.5)
    assert (ids(due), next_due) == (["a", "c"], None)  # b is still out, nothing else is queued
    poll(watch, "b", "success", 101.6)
    assert "b" not in watch.running and ids(watch.due(1_000.0)[0]) == []  # a and c are out until settled


def test_a_429_pauses_every_job_and_a_failed_poll_backs_off_one_job():
    from airflow_provider_gptimage.exceptions import GPTImageRateLimitError, GPTImageTransportError

    watch = make_watch({"a": 100.0, "b": 100.0})
    due, _ = watch.due(100.5)
    watch.settle(due[0], GPTImageRateLimitError("slow down", retry_after=3.0), 100.5, 0.0)
    watch.settle(due[1], GPTImageTransportError("reset"), 100.5, 0.0)
    assert watch.paused_until >= 103.0
    assert watch.due(102.9)[0] == []  # nothing while the key is paused
    due, _ = watch.due(watch.paused_until + 0.6)
    assert ids(due) == ["a", "b"]  # the paused poll at once; the failed one after its backoff


def test_a_job_past_its_deadline_times_out_when_its_turn_comes():
    watch = Watch([("key-a", "a", 100.0)], schedule=PollSchedule.of(1.5, 10.0), job_timeout=2.0, max_transient_errors=3)
    assert ids(watch.due(101.5)[0]) == ["a"]
    poll(watch, "a", "generating", 101.5)  # the schedule's next turn (103.75) is past the deadline
    assert watch.due(101.9) == ([], 102.0)  # so the last poll falls on the deadline
    assert ids(watch.due(102.0)[0]) == ["a"]
    poll(watch, "a", "generating", 102.0)
    assert watch.due(102.0) == ([], None) and "a" not in watch.running
    [event] = watch.take_ended()
    assert event["key"] == "key-a" and event["status"] == "timeout"
