"""Connection fetches shared by the hooks of one event loop for a few seconds (against the simulator).

The sharing window is measured on :data:`settings.clock`, which the tests move instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import trustme

from airflow_provider_gptimage.exceptions import GPTImageAuthError, GPTImageConfigurationError
from airflow_provider_gptimage.hooks import settings
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from tests.conftest import FAKE_API_KEY, connection_json

#: A key the simulator refuses (it refuses keys containing "invalid"), standing for a revoked one.
REVOKED_KEY = "sk-test-revoked-invalid-key"


class Clock:
    """A clock for the sharing window that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(settings, "clock", frozen)
    return frozen


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the real fetches of connections (by conn id)."""
    seen: list[str] = []
    fetch = settings.afetch_settings

    async def counted(conn_id: str, hook: object) -> settings.ConnectionSettings:
        seen.append(conn_id)
        return await fetch(conn_id, hook)

    monkeypatch.setattr(settings, "afetch_settings", counted)
    return seen


async def configured(conn_id: str = "gptimage_default") -> GPTImageHook:
    hook = GPTImageHook(conn_id)
    await hook.aconfigure()
    return hook


async def key_works(hook: GPTImageHook, job_id: str) -> None:
    assert (await hook.aget_task(job_id)).job_id == job_id  # the simulator accepted the hook's key


async def test_hooks_starting_together_fetch_the_connection_once(gptimage_conn, simulator, clock, fetches):
    job_id = GPTImageHook().create_task("shared connection")
    hooks = await asyncio.gather(*(configured() for _ in range(50)))
    assert fetches == ["gptimage_default"]
    assert {hook.base_url for hook in hooks} == {simulator.url}
    for hook in hooks[:3]:
        await key_works(hook, job_id)
    later = await configured()  # within the window: still the same fetch
    assert fetches == ["gptimage_default"]
    assert later.base_url == simulator.url


async def test_a_changed_connection_is_picked_up_once_the_window_has_passed(
    gptimage_conn, simulator, clock, fetches, monkeypatch
):
    job_id = GPTImageHook().create_task("rotated key")
    await configured()
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, REVOKED_KEY))
    clock.now += settings.SHARE_SECONDS - 0.01
    await configured()  # still within the window: the fetch before the change
    assert len(fetches) == 1
    clock.now += 0.01
    rotated = await configured()
    assert len(fetches) == 2
    with pytest.raises(GPTImageAuthError):  # the new (here: revoked) key is the one sent
        await rotated.aget_task(job_id)


async def test_two_connections_never_share(simulator, clock, fetches, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPT_A", connection_json(simulator.url))
    monkeypatch.setenv("AIRFLOW_CONN_GPT_B", connection_json(simulator.url + "/", REVOKED_KEY))
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    job_id = GPTImageHook().create_task("two connections")
    a, b = await asyncio.gather(configured("gpt_a"), configured("gpt_b"))
    assert sorted(fetches) == ["gpt_a", "gpt_b"]
    await key_works(a, job_id)
    with pytest.raises(GPTImageAuthError):
        await b.aget_task(job_id)


async def test_a_failed_fetch_reaches_every_waiter_and_is_not_kept(simulator, clock, fetches, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, key=None))
    results = await asyncio.gather(*(configured() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, GPTImageConfigurationError) for r in results)
    assert "no API key" in str(results[0])
    assert fetches == ["gptimage_default"]
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url))
    hook = await configured()  # the clock has not moved: the failure was not kept
    assert fetches == ["gptimage_default", "gptimage_default"]
    await key_works(hook, GPTImageHook().create_task("fixed connection"))


async def test_a_cancelled_caller_does_not_cancel_the_others_fetch(gptimage_conn, simulator, clock, fetches):
    first = asyncio.ensure_future(configured())
    second = asyncio.ensure_future(configured())
    await asyncio.sleep(0)  # both wait for the same fetch
    first.cancel()
    hook = await asyncio.wait_for(second, timeout=30)
    assert first.cancelled()
    assert hook.base_url == simulator.url
    assert fetches == ["gptimage_default"]


def test_event_loops_never_share(gptimage_conn, simulator, clock, fetches, monkeypatch):
    job_id = GPTImageHook().create_task("two loops")
    loops = [asyncio.new_event_loop(), asyncio.new_event_loop()]
    try:
        loops[0].run_until_complete(configured())
        monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", connection_json(simulator.url, REVOKED_KEY))
        same_loop = loops[0].run_until_complete(configured())  # within the window: the first fetch
        other_loop = loops[1].run_until_complete(configured())  # the first loop is alive, yet not shared
        assert len(fetches) == 2
        loops[0].run_until_complete(key_works(same_loop, job_id))
        with pytest.raises(GPTImageAuthError):
            loops[1].run_until_complete(other_loop.aget_task(job_id))
    finally:
        for loop in loops:
            loop.close()


async def test_the_key_leaves_memory_after_the_window(gptimage_conn, simulator, monkeypatch):
    monkeypatch.setattr(settings, "SHARE_SECONDS", 0.01)
    shared = await settings.ashared_settings("gptimage_default", GPTImageHook())
    assert FAKE_API_KEY not in repr(shared)
    assert settings._shared[asyncio.get_running_loop()]
    await asyncio.sleep(0.1)  # the loop's own timer drops the entry (nothing else holds the key)
    assert not settings._shared[asyncio.get_running_loop()]


async def test_only_a_ca_bundle_is_read_in_a_thread(simulator, clock, monkeypatch, tmp_path: Path):
    threads: list[bool] = []
    read = settings.read_settings

    def spy(*args: object) -> settings.ConnectionSettings:
        threads.append(threading.current_thread() is threading.main_thread())
        return read(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(settings, "read_settings", spy)
    bundle = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    plain = {"conn_type": "gptimage", "host": simulator.url, "password": FAKE_API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_GPT_PLAIN", json.dumps(plain))
    monkeypatch.setenv("AIRFLOW_CONN_GPT_OFF", json.dumps({**plain, "extra": {"verify": "false"}}))
    monkeypatch.setenv("AIRFLOW_CONN_GPT_CA", json.dumps({**plain, "extra": {"verify": str(bundle)}}))
    for conn_id in ("gpt_plain", "gpt_off", "gpt_ca"):
        await configured(conn_id)
    assert threads == [True, True, False]
