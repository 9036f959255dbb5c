"""Polling as one pure rule: :func:`poll_step` (poll, wait or time out), the schedule, the timeout words."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.protocol import PollSchedule, next_poll_at, poll_delay, poll_step, timeout_message
from airflow_provider_gptimage.protocol.polling import POLL, TIMEOUT, WAIT, PollStep, event_hold

SCHEDULE = PollSchedule(initial=5.0, maximum=30.0, factor=1.5)
T0 = 1_000.0


# --- poll_step -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("last_poll_at", "now", "deadline", "expected"),
    [
        pytest.param(None, T0, None, PollStep(WAIT, 5.0), id="just created: wait the first interval"),
        pytest.param(None, T0 + 5.0, None, PollStep(POLL), id="first poll due"),
        pytest.param(None, T0 + 400.0, None, PollStep(POLL), id="never polled, long overdue: poll at once"),
        pytest.param(T0 + 5.0, T0 + 6.0, None, PollStep(WAIT, 6.5), id="second wait grows by half"),
        pytest.param(T0 + 5.0, T0 + 13.0, None, PollStep(POLL), id="second poll a little late"),
        pytest.param(T0 + 5.0, T0 + 6.0, T0 + 8.0, PollStep(WAIT, 2.0), id="a wait never passes the deadline"),
        pytest.param(T0 + 5.0, T0 + 8.0, T0 + 8.0, PollStep(POLL), id="at the deadline: one last poll"),
        pytest.param(T0 + 8.0, T0 + 8.5, T0 + 8.0, PollStep(TIMEOUT), id="polled at the deadline: time out"),
        pytest.param(None, T0 + 100.0, T0 + 50.0, PollStep(POLL), id="deadline passed unpolled: look once"),
        pytest.param(T0 + 40.0, T0 + 100.0, T0 + 50.0, PollStep(POLL), id="last poll before the deadline: look"),
    ],
)
def test_poll_step(last_poll_at, now, deadline, expected):
    step = poll_step(SCHEDULE, created_at=T0, last_poll_at=last_poll_at, now=now, deadline=deadline)
    assert step.action == expected.action
    assert step.seconds == pytest.approx(expected.seconds)


def test_a_loop_following_poll_step_polls_on_the_schedule_then_times_out_once():
    """Drive the rule as the three loops do (with a frozen clock): the polls fall on the job's schedule."""
    now, last, polls = T0, None, []
    while True:
        step = poll_step(SCHEDULE, created_at=T0, last_poll_at=last, now=now, deadline=T0 + 60.0)
        if step.action == TIMEOUT:
            break
        if step.action == WAIT:
            now += step.seconds
            continue
        polls.append(now - T0)
        last = now
    assert polls == pytest.approx([5.0, 12.5, 23.75, 40.625, 60.0])


def test_event_hold():
    assert event_hold(T0, 5.0) == T0 + 5.0
    assert event_hold(T0, -1.0) == T0


def test_timeout_message_names_the_job_state_and_limit():
    message = timeout_message("job-1", "generating", 3600)
    assert "Job job-1 did not finish before its deadline (3600s from its creation)" in message
    assert "(last state: generating)" in message
    assert "GPTImageTaskSensor" in message
    assert "(last state: unknown)" in timeout_message("job-1", None)


def test_schedule_of_raises_a_maximum_below_the_interval():
    assert PollSchedule.of(10, 3) == PollSchedule(initial=10.0, maximum=10.0)


# --- next_poll_at ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("after", "expected"),
    [(0.0, 5.0), (4.9, 5.0), (5.0, 12.5), (12.5, 23.75), (60.0, 65.9375), (3600.0, 3605.9375), (-10.0, 5.0)],
)
def test_next_poll_at_follows_the_jobs_own_schedule(after, expected):
    assert next_poll_at(SCHEDULE, T0, T0 + after) == pytest.approx(T0 + expected)


@pytest.mark.parametrize(
    ("polls_done", "expected"),
    [(0, 5.0), (1, 7.5), (2, 11.25), (3, 16.875), (4, 25.3125), (5, 30.0), (100, 30.0), (100_000, 30.0)],
)
def test_poll_delay_grows_to_the_cap(polls_done, expected):
    assert poll_delay(PollSchedule(), polls_done) == pytest.approx(expected)


def test_poll_delay_is_monotonic_and_capped():
    schedule = PollSchedule(initial=2.0, maximum=20.0, factor=1.3)
    delays = [poll_delay(schedule, n) for n in range(60)]
    assert delays == sorted(delays)
    assert delays[0] == 2.0
    assert max(delays) == 20.0


def test_constant_schedule():
    schedule = PollSchedule(initial=3.0, maximum=3.0, factor=1.0)
    assert {poll_delay(schedule, n) for n in range(20)} == {3.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"initial": 0.0}, id="zero-initial"),
        pytest.param({"initial": -1.0}, id="negative-initial"),
        pytest.param({"initial": 10.0, "maximum": 5.0}, id="maximum-below-initial"),
        pytest.param({"factor": 0.5}, id="shrinking-factor"),
        pytest.param({"factor": 0.0}, id="zero-factor"),
        pytest.param({"initial": float("nan")}, id="nan-initial"),
        pytest.param({"maximum": float("nan")}, id="nan-maximum"),
        pytest.param({"factor": float("nan")}, id="nan-factor"),
        pytest.param({"maximum": float("inf")}, id="infinite-maximum"),
        pytest.param({"factor": float("inf")}, id="infinite-factor"),
    ],
)
def test_poll_schedule_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="poll schedule"):
        PollSchedule(**kwargs)


def test_default_poll_schedule_matches_the_api_advice():
    schedule = PollSchedule()
    # "start at a few seconds, back off gradually": the first minute holds several polls.
    assert 1 <= schedule.initial <= 10
    total, polls = 0.0, 0
    while total < 60:
        total += poll_delay(schedule, polls)
        polls += 1
    assert polls >= 4
