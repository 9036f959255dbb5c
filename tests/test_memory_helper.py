"""The shared memory helper (tests/memory.py) sees memory that a block touches, and only that block's."""

from __future__ import annotations

import os

import pytest

from tests.memory import PeakGrowth, TracedPeak, process_rss_kib, rss_kib

MIB = 1024 * 1024


def test_peak_growth_sees_a_block_that_touches_memory() -> None:
    with PeakGrowth() as growth:
        block = bytearray(48 * MIB)  # zero-filled pages, written so they are resident
        block[::4096] = b"x" * len(block[::4096])
        del block
    if not growth.reset:
        pytest.skip("cannot reset the peak-RSS mark (/proc/self/clear_refs) on this system")
    assert 40 <= growth.mib < 200, growth.kib


def test_peak_growth_of_an_idle_block_is_small() -> None:
    with PeakGrowth() as growth:
        pass
    if not growth.reset:
        pytest.skip("cannot reset the peak-RSS mark (/proc/self/clear_refs) on this system")
    assert growth.mib < 4


def test_rss_of_this_process_and_of_a_missing_one() -> None:
    assert rss_kib() > 0
    if process_rss_kib(os.getpid()) is None:
        pytest.skip("no /proc on this system")
    assert process_rss_kib(os.getpid()) == pytest.approx(rss_kib(), rel=0.2)
    assert process_rss_kib(2**22 + 1) is None  # above the kernel's largest pid


def test_traced_peak_sees_python_allocations_of_the_block_only() -> None:
    kept = bytes(16 * MIB)  # allocated before: not counted
    with TracedPeak() as peak:
        block = bytes(8 * MIB)
        del block
    assert 8 <= peak.mib < 12, peak.bytes
    del kept
