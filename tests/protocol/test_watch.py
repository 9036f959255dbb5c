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
