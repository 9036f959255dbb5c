"""The ``verify`` extra against the simulator served over HTTPS by a private CA (made with ``trustme``).

The CA is made afresh for this module, so no trust store of the machine can know it: a test passes
only through the extra. The CA variables of the environment are removed for every test anyway, and one
test points ``REQUESTS_CA_BUNDLE`` at another CA to show the connection's setting wins over it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageTLSError
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol.events import batch_jobs, outcome
from airflow_provider_gptimage.simulator import GPTImageSimulator
from airflow_provider_gptimage.triggers import batch as batch_module
from airflow_provider_gptimage.triggers import session as shared
from airflow_provider_gptimage.triggers.batch import GPTImageBatchTrigger
from tests.conftest import FAKE_API_KEY
from tests.triggers.test_gptimage_trigger import first_event, make_trigger

CA_ENVIRONMENT = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("private-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(scope="module")
def https_simulator(private_ca: tuple[trustme.CA, Path]) -> Iterator[GPTImageSimulator]:
    ca, path = private_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with GPTImageSimulator(ssl_context=context, verify=str(path), generation_seconds=0) as sim:
        assert sim.url.startswith("https://")
        yield sim


@pytest.fixture
def sim(https_simulator: GPTImageSimulator, monkeypatch: pytest.MonkeyPatch) -> GPTImageSimulator:
    """The HTTPS simulator, reset, with no CA setting left in the environment."""
    for name in CA_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    https_simulator.reset()
    return https_simulator


def use_connection(monkeypatch: pytest.MonkeyPatch, url: str, **extra: object) -> None:
    conn: dict[str, object] = {"conn_type": "gptimage", "host": url, "password": FAKE_API_KEY}
    if extra:
        conn["extra"] = extra
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", json.dumps(conn))


# --- trusted through the extra --------------------------------------------------------------------------
def test_sync_path_trusts_the_ca_bundle_of_the_extra(sim, private_ca, monkeypatch, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))  # would win over a session's verify; not over ours
    use_connection(monkeypatch, sim.url, verify=str(private_ca[1]))
    hook = GPTImageHook()
    job_id = hook.create_task("a fox behind a corporate proxy")
    assert hook.get_task(job_id).job_id == job_id
    assert sim.stats().creates == 1


async def test_async_path_trusts_the_ca_bundle_of_the_extra(sim, private_ca, monkeypatch):
    use_connection(monkeypatch, sim.url, verify=str(private_ca[1]))
    job_id = GPTImageHook().create_task("an async fox")
    record = await GPTImageHook().aget_task(job_id)
    assert record.job_id == job_id


async def test_trigger_trusts_the_ca_bundle_of_the_extra(sim, private_ca, monkeypatch):
    use_connection(monkeypatch, sim.url, verify_ssl=str(private_ca[1]))  # the HTTP provider's other name
    job_id = GPTImageHook().create_task("a triggered fox")
    payload = await first_event(make_trigger(job_id))
    assert payload["status"] == "success", payload
    assert outcome(payload).job_id == job_id
    assert shared._pools.get(asyncio.get_running_loop()) is None  # its pool closed with it


async def test_batch_trigger_polls_through_the_pool_of_the_ca_bundle(sim, private_ca, monkeypatch):
    use_connection(monkeypatch, sim.url, verify=str(private_ca[1]))
    hook = GPTImageHook()
    jobs = [[f"k{i}", hook.create_task(f"a batch fox {i}"), time.time()] for i in range(3)]
    trigger = GPTImageBatchTrigger(jobs=jobs, poll_interval=0.05, max_poll_interval=0.1, wake_fraction=1.0)
    seen: list[object] = []
    borrow = shared.shared_client_session

    def spy(ssl_setting: object = True):
        seen.append(ssl_setting)
        return borrow(ssl_setting)

    monkeypatch.setattr(batch_module, "shared_client_session", spy)
    run = trigger.run()
    event = await asyncio.wait_for(run.__anext__(), timeout=30)
    await run.aclose()  # as the triggerer does after the first event
    assert sorted(entry["key"] for entry in batch_jobs(event.payload)) == ["k0", "k1", "k2"]
    assert all(outcome(entry).job_id == job[1] for entry, job in zip(batch_jobs(event.payload), jobs, strict=True))
    assert len(seen) == 1 and isinstance(seen[0], ssl.SSLContext)  # the CA's pool, not the default one
    assert shared._pools.get(asyncio.get_running_loop()) is None


async def test_one_context_per_ca_bundle_whichever_hook(sim, private_ca, monkeypatch):
    use_connection(monkeypatch, sim.url, verify=str(private_ca[1]))
    first, second = GPTImageHook(), GPTImageHook()
    await first.aconfigure()
    await second.aconfigure()
    assert isinstance(first.aiohttp_ssl, ssl.SSLContext)
    assert first.aiohttp_ssl is second.aiohttp_ssl  # so every trigger of this connection shares one pool


# --- not trusted without it -----------------------------------------------------------------------------
def test_sync_path_without_the_extra_fails_with_a_tls_error(sim, monkeypatch, no_sleep):
    use_connection(monkeypatch, sim.url)
    with pytest.raises(GPTImageTLSError) as info:
        GPTImageHook().create_task("untrusted")
    assert "`verify`" in str(info.value)
    assert "certificate" in str(info.value)
    assert info.value.request_sent is False
    assert no_sleep == []  # the same certificate fails the same way: not retried
    assert sim.stats().create_attempts == 0


async def test_async_path_without_the_extra_fails_with_a_tls_error(sim, private_ca, monkeypatch, no_sleep):
    use_connection(monkeypatch, sim.url, verify=str(private_ca[1]))
    job_id = GPTImageHook().create_task("made through a trusting connection")
    use_connection(monkeypatch, sim.url)
    with pytest.raises(GPTImageTLSError, match="`verify`"):
        await GPTImageHook().aget_task(job_id)
    payload = await first_event(make_trigger(job_id))
    assert payload["status"] == "error"
    assert payload["error_type"] == "GPTImageTLSError"
    assert no_sleep == []
    assert sim.stats().polls == 0


# --- verify=false ---------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("value", [False, "false", " FALSE "])
async def test_verify_false_works_with_a_warning(sim, monkeypatch, capsys, value):
    use_connection(monkeypatch, sim.url, verify=value)
    hook = GPTImageHook()
    job_id = hook.create_task("an insecure fox")
    assert hook.get_task(job_id).job_id == job_id
    assert (await GPTImageHook().aget_task(job_id)).job_id == job_id
    logged = capsys.readouterr()
    warnings = [line for line in (logged.out + logged.err).splitlines() if "NOT checked" in line]
    assert len(warnings) == 2  # once per hook, not once per request
    assert "warning" in warnings[0].lower()
    assert "`verify`" in warnings[0]
    assert FAKE_API_KEY not in logged.out + logged.err


# --- bad values: refused before any request -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "needle"),
    [
        pytest.param("/no/such/ca.pem", "no CA bundle file exists", id="missing-file"),
        pytest.param("ca.pem", "must be absolute", id="relative"),
        pytest.param("/", "no CA bundle file exists", id="directory"),
        pytest.param(1, "neither a boolean nor a path", id="number"),
        pytest.param(["a"], "neither a boolean nor a path", id="list"),
        pytest.param("yes", "must be absolute", id="unknown-word"),
    ],
)
async def test_bad_values_are_refused_before_any_request(sim, monkeypatch, value, needle):
    use_connection(monkeypatch, sim.url, verify=value)
    with pytest.raises(GPTImageConfigurationError, match=needle) as info:
        GPTImageHook().create_task("never sent")
    assert "extra `verify`" in str(info.value)
    with pytest.raises(GPTImageConfigurationError, match="extra `verify`"):
        await GPTImageHook().aget_task("any-job")
    payload = await first_event(make_trigger("any-job"))
    assert payload["status"] == "error"
    assert payload["error_type"] == "GPTImageConfigurationError"
    assert "extra `verify`" in payload["message"]
    stats = sim.stats()
    assert (stats.create_attempts, stats.polls) == (0, 0)


def test_a_file_without_certificates_is_refused_before_any_request(sim, monkeypatch, tmp_path):
    junk = tmp_path / "not-a-ca.pem"
    junk.write_text("this is not a certificate\n")
    use_connection(monkeypatch, sim.url, verify=str(junk))
    with pytest.raises(GPTImageConfigurationError, match=r"extra `verify`.*could not be loaded"):
        GPTImageHook().create_task("never sent")
    assert sim.stats().create_attempts == 0
