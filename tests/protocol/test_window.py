"""Batch pacing tables: the AIMD create window, the wake-up rule, age-based poll times, batch validation."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.protocol import PollSchedule
from airflow_provider_gptimage.protocol.batch import batch_fingerprint, build_batch, decode_requests
from airflow_provider_gptimage.protocol.window import (
    WAKE_ALL,
    WAKE_FRACTION,
    WAKE_LINGER,
    WAKE_TIMER,
    CreateWindow,
    WakePolicy,
)


# ------------------------------------------------------------------------------------------------ window
@pytest.mark.parametrize(
    ("size", "maximum", "credit", "expected_size", "expected_credit"),
    [
        (5, 5, 0, 5, 1),  # at the ceiling: count, never grow
        (5, 5, 4, 5, 5),
        (3, 5, 0, 3, 1),  # below: one more accepted create of a full window grows it by one
        (3, 5, 2, 4, 0),
        (1, 5, 0, 2, 0),
        (4, 10, 3, 5, 0),
    ],
)
def test_accepted_grows_additively(size, maximum, credit, expected_size, expected_credit):
    window = CreateWindow(size=size, maximum=maximum, credit=credit, conflicts=2).accepted()
    assert (window.size, window.credit, window.conflicts) == (expected_size, expected_credit, 0)


@pytest.mark.parametrize(
    ("size", "in_flight", "expected"),
    [
        (8, 5, 5),  # the service holds 5 of ours: shrink to what it proved, not below
        (8, 2, 4),  # multiplicative decrease (8 * 0.5)
        (10, 0, 5),
        (5, 4, 4),
        (2, 0, 1),
        (1, 0, 1),  # never below the floor
        (6, 6, 6),  # at capacity: no change to the size, but the conflict is counted
    ],
)
def test_conflict_shrinks_multiplicatively_but_not_below_in_flight(size, in_flight, expected):
    window = CreateWindow(size=size, maximum=10, credit=3).conflict(in_flight)
    assert window.size == expected
    assert window.credit == 0
    assert window.conflicts == 1


def test_aimd_converges_to_the_real_limit():
    # The user says 8, the account holds 5: after the first 409 the window sits at 5 and probes 6 rarely.
    limit, window, in_flight, conflicts = 5, CreateWindow.start(8), 0, 0
    sizes = []
    for _ in range(200):
        if window.room(in_flight) == 0:
            in_flight = 0  # a round ends: every job finished
            continue
        if in_flight >= limit:
            window, conflicts = window.conflict(in_flight), conflicts + 1
            in_flight = 0
        else:
            window, in_flight = window.accepted(), in_flight + 1
        sizes.append(window.size)
    assert conflicts <= 40
    assert min(sizes[10:]) >= limit


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0, "maximum": 5}, "minimum <= size"),
        ({"size": 6, "maximum": 5}, "size <= maximum"),
        ({"size": 2, "maximum": 5, "minimum": 3}, "minimum <= size"),
        ({"size": 2, "maximum": 5, "decrease": 1.0}, "decrease"),
    ],
)
def test_window_rejects_nonsense(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CreateWindow(**kwargs)


def test_window_round_trips_through_named_primitives_and_reads_0_1_0_lists():
    window = CreateWindow(size=3, maximum=7, credit=2, conflicts=1)
    assert window.to_primitives() == {"size": 3, "maximum": 7, "credit": 2, "conflicts": 1}
    assert CreateWindow.from_primitives(window.to_primitives(), 7) == window
    assert CreateWindow.from_primitives([3, 7, 2, 1], 7) == window  # as 0.1.0 stored it
    assert CreateWindow.from_primitives(window.to_primitives(), 9) is None  # max_active_jobs changed: restart
    assert CreateWindow.from_primitives(None, 4) is None
    assert CreateWindow.from_primitives([9, 7, 0, 0], 7) is None  # corrupt: restart
    assert CreateWindow.start(3).room(1) == 2
    assert CreateWindow.start(3).room(5) == 0


# ------------------------------------------------------------------------------------------------ wake-up
POLICY = WakePolicy(fraction=0.25, linger=5.0)


@pytest.mark.parametrize(
    ("total", "ended", "first", "now", "wake_at", "expected"),
    [
        (8, 8, 0.0, 1.0, None, WAKE_ALL),
        (8, 0, None, 100.0, None, None),
        (8, 1, 10.0, 12.0, None, None),  # one ended, lingering for others
        (8, 1, 10.0, 15.0, None, WAKE_LINGER),
        (8, 2, 10.0, 10.5, None, WAKE_FRACTION),  # 2 of 8 = 25%
        (50, 12, 10.0, 10.5, None, None),
        (50, 13, 10.0, 10.5, None, WAKE_FRACTION),
        (8, 0, None, 20.0, 20.0, WAKE_TIMER),  # the task asked to be woken (a 429 pause ends)
        (8, 0, None, 19.0, 20.0, None),
        (0, 0, None, 19.0, 20.0, None),  # nothing to watch: wait for the timer only
        (0, 0, None, 20.0, 20.0, WAKE_TIMER),
        (0, 0, None, 0.0, None, WAKE_TIMER),
        (1, 1, 5.0, 5.0, None, WAKE_ALL),
    ],
)
def test_wake_reason(total, ended, first, now, wake_at, expected):
    assert POLICY.reason(total=total, ended=ended, first_ended_at=first, now=now, wake_at=wake_at) == expected


def test_wake_next_check_and_validation():
    assert POLICY.next_check(first_ended_at=None, wake_at=None) is None
    assert POLICY.next_check(first_ended_at=10.0, wake_at=None) == 15.0
    assert POLICY.next_check(first_ended_at=10.0, wake_at=12.0) == 12.0
    assert POLICY.threshold(1) == 1
    assert POLICY.threshold(10) == 3
    with pytest.raises(ValueError, match="fraction"):
        WakePolicy(fraction=0)
    with pytest.raises(ValueError, match="linger"):
        WakePolicy(linger=-1)


# ------------------------------------------------------------------------------------------------ polls
SCHEDULE = PollSchedule(initial=5.0, maximum=30.0, factor=1.5)


# ------------------------------------------------------------------------------------------------ items
def test_build_batch_keeps_order_and_options():
    items, warnings = build_batch(
        [{"key": "a", "prompt": "one", "resolution": "2K"}, {"key": "b", "prompt": "two", "aspect_ratio": "5:7"}]
    )
    assert [i.key for i in items] == ["a", "b"]
    assert items[0].request.body()["input"] == {"prompt": "one", "resolution": "2K"}
    assert warnings and "item 1" in warnings[0] and "5:7" in warnings[0]
    assert items[0].digest != items[1].digest
    assert batch_fingerprint(items) != batch_fingerprint(items[::-1])


def test_build_batch_names_every_bad_item_by_position_key_and_parameter():
    raw = [
        {"key": "ok", "prompt": "fine"},
        {"key": "sku-1", "prompt": "x", "resolution": "1k"},
        {"key": "sku-2", "prompt": "   "},
        {"key": "ok", "prompt": "dup"},
        {"prompt": "no key"},
        {"key": "sku-5", "prompt": "x", "colour": "red"},
        "not a mapping",
    ]
    with pytest.raises(GPTImageValidationError) as info:
        build_batch(raw)
    error = info.value
    assert error.parameter == "requests"
    text = str(error)
    assert "6 of 7 items are invalid" in text
    assert "item 1 (key 'sku-1'): `resolution`" in text and "'1k'" in text
    assert "item 2 (key 'sku-2'): `prompt`" in text
    assert "item 3 (key 'ok'): `key` duplicates item 0" in text
    assert "item 4 (key ?): `key`" in text
    assert "colour" in text
    assert "Nothing was sent" in text


def test_build_batch_key_rule_and_limits():
    from airflow_provider_gptimage.outputs import validate_filename

    with pytest.raises(GPTImageValidationError, match=r"item 0 \(key '../x'\): `key`"):
        build_batch([{"key": "../x", "prompt": "p"}], key_rule=validate_filename)
    with pytest.raises(GPTImageValidationError, match="duplicates"):  # same file name: a.png and a
        build_batch([{"key": "a.png", "prompt": "p"}, {"key": "a", "prompt": "q"}], key_rule=validate_filename)
    with pytest.raises(GPTImageValidationError, match="at least one"):
        build_batch([])
    with pytest.raises(GPTImageValidationError, match="must be a list"):
        build_batch({"key": "a"})
    many = [{"key": f"k{i}", "prompt": ""} for i in range(25)]
    with pytest.raises(GPTImageValidationError, match="and 15 more"):
        build_batch(many)


@pytest.mark.parametrize(
    "text",
    ['[{"key": "a", "prompt": "p"}]', "[{'key': 'a', 'prompt': 'p'}]"],
)
def test_requests_rendered_as_text_are_read_back(text):
    assert decode_requests(text) == [{"key": "a", "prompt": "p"}]
    assert build_batch(text)[0][0].key == "a"


def test_linger_is_cut_short_when_no_running_job_can_end_within_it():
    policy = WakePolicy(fraction=0.5, linger=1.0)
    common = {"total": 10, "ended": 2, "first_ended_at": 100.0, "now": 100.1, "wake_at": None}
    assert policy.reason(**common) is None  # unknown: linger
    assert policy.reason(**common, next_end_at=100.5) is None  # another job may end within the linger
    assert policy.reason(**common, next_end_at=101.5) == WAKE_LINGER  # none can: waiting only idles slots
    assert policy.reason(**{**common, "ended": 0, "first_ended_at": None}, next_end_at=200.0) is None


def test_the_fraction_waits_for_jobs_about_to_end_but_not_the_linger_or_the_end_of_all():
    """A group created together ends together: waking for its first part leaves the rest idle a whole cycle."""
    common = {"total": 50, "first_ended_at": 100.0, "now": 100.05, "wake_at": None}
    assert POLICY.reason(**common, ended=13) == WAKE_FRACTION
    assert POLICY.reason(**common, ended=13, ending=37) is None  # the rest of the group is about to end
    assert POLICY.reason(**common, ended=50, ending=0) == WAKE_ALL
    assert POLICY.reason(**{**common, "now": 105.0}, ended=13, ending=37) == WAKE_LINGER  # never past the linger


def test_no_reason_counts_before_the_hold_ends_and_the_next_check_waits_for_it():
    everything = {"total": 4, "ended": 4, "first_ended_at": 100.0, "wake_at": None}
    assert POLICY.reason(**everything, now=100.2, not_before=100.5) is None  # all ended, but held
    assert POLICY.reason(**everything, now=100.5, not_before=100.5) == WAKE_ALL
    assert POLICY.reason(total=4, ended=0, first_ended_at=None, now=50.0, wake_at=40.0, not_before=60.0) is None
    # The hold's end is the next check while it lies ahead; no earlier time counts; then it drops out.
    assert POLICY.next_check(first_ended_at=None, wake_at=None, now=100.0, not_before=100.5) == 100.5
    assert POLICY.next_check(first_ended_at=None, wake_at=100.2, now=100.0, not_before=100.5) == 100.5
    assert POLICY.next_check(first_ended_at=100.0, wake_at=None, now=100.0, not_before=101.0) == 101.0
    assert POLICY.next_check(first_ended_at=100.0, wake_at=None, now=110.0, not_before=101.0) == 105.0
    assert POLICY.next_check(first_ended_at=None, wake_at=None, now=110.0, not_before=101.0) is None


@pytest.mark.parametrize(
    ("item", "words"),
    [
        pytest.param({"key": "sku\n1", "prompt": "p"}, "printable", id="key with a line break"),
        pytest.param({"key": "sku\x1b[31m", "prompt": "p"}, "printable", id="key with an ANSI escape"),
        pytest.param({"key": "sku-\ud800", "prompt": "p"}, "printable", id="key with a lone surrogate"),
        pytest.param({"key": "sku-1", "prompt": "p \udfff"}, "lone surrogate", id="prompt with a lone surrogate"),
    ],
)
def test_build_batch_refuses_keys_and_prompts_that_cannot_be_sent_or_logged(item, words):
    with pytest.raises(GPTImageValidationError, match=words):
        build_batch([item])
