"""Control surfaces: admin endpoints, subprocess mode, the CLI, HTTPS, the pytest fixture, big images."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import trustme

from airflow_provider_gptimage.simulator import GPTImageSimulator, ManualClock, SimulatorClient
from airflow_provider_gptimage.simulator.png import PADDING_CHUNK_TYPE
from tests.memory import TracedPeak

from .conftest import Api, png_info, read_png


def test_admin_endpoints_through_the_client(sim: GPTImageSimulator, api: Api, clock: ManualClock) -> None:
    client = SimulatorClient(sim.url)
    assert client.health()
    assert client.configure(active_task_limit=1)["active_task_limit"] == 1
    assert client.config()["active_task_limit"] == 1
    task_id = api.create_id("admin", request_id="rid-1")
    assert api.create().status_code == 409
    client.advance(3)
    assert api.record(task_id)["state"] == "success"
    client.inject("recordInfo", "http_429", times=2, retry_after=3)
    assert api.poll(task_id).headers["Retry-After"] == "3"
    stats = client.stats()
    assert stats.creates == 1
    assert stats.status_counts[409] == 1
    assert stats.request_ids["createTask"] == ["rid-1"]
    assert stats.pending_faults["recordInfo"][0]["times"] == 1
    client.clear_faults()
    assert api.poll(task_id).status_code == 200
    client.reset()
    assert client.stats().creates == 0
    with pytest.raises(ValueError, match="unknown fault"):
        client.inject("createTask", "meltdown")
    with pytest.raises(ValueError, match="unknown simulator configuration"):
        client.configure(nonsense=1)
    client.close()


def test_advance_needs_a_manual_clock() -> None:
    with GPTImageSimulator(generation_seconds=0.01) as sim:
        with pytest.raises(RuntimeError, match="manual clock"):
            sim.advance(1)
        with pytest.raises(ValueError, match="409"):
            sim.client.advance(1)


def test_cli_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "airflow_provider_gptimage.simulator", "--port", "0"]
    command += ["--generation-seconds", "0", "--active-task-limit", "5", "--rate-limit", "100", "--seed", "1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("GPT Image simulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        api = Api(url)
        task_id = api.create_id("from the CLI")
        assert api.record(task_id)["state"] == "success"
        assert SimulatorClient(url).config()["active_task_limit"] == 5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_cli_rejects_a_bad_configuration() -> None:
    command = [sys.executable, "-m", "airflow_provider_gptimage.simulator", "--image-long-side", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "image_long_side" in result.stderr


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.LeafCert, Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("tls")
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return cert, ca_path, cert_path, key_path


def test_https_in_a_thread(tls: tuple[trustme.LeafCert, Path, Path, Path]) -> None:
    cert, ca_path, _, _ = tls
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    with GPTImageSimulator(ssl_context=context, generation_seconds=0) as sim:
        assert sim.url.startswith("https://127.0.0.1:")
        api = Api(sim.url, verify=str(ca_path))
        task_id = api.create_id()
        url = api.urls(task_id)[0]
        assert url.startswith("https://")
        assert png_info(api.session.get(url, timeout=10, verify=str(ca_path)).content).width == 256
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sim.url}/_sim/health", timeout=10)


def test_subprocess_mode_with_tls_and_a_manual_clock(tls: tuple[trustme.LeafCert, Path, Path, Path]) -> None:
    _, ca_path, cert_path, key_path = tls
    simulator = GPTImageSimulator(
        subprocess=True,
        tls_cert=str(cert_path),
        tls_key=str(key_path),
        verify=str(ca_path),
        manual_clock=True,
        generation_seconds=5,
        images_per_job=2,
    )
    with simulator as sim:
        assert sim.pid != 0
        assert sim.state is None
        api = Api(sim.url, verify=str(ca_path))
        task_id = api.create_id("in another process")
        assert api.record(task_id)["state"] == "waiting"
        sim.advance(5)
        assert len(api.urls(task_id)) == 2
        sim.inject("createTask", "http_503")
        assert api.create().status_code == 503
        sim.configure(credits=0)
        assert api.create().status_code == 402
        assert sim.stats().creates == 1
        sim.reset()
        assert sim.stats().create_attempts == 0
        process = sim.process
    assert process is not None
    assert process.returncode == 0


def test_padded_image_is_streamed_and_valid(sim: GPTImageSimulator, api: Api, finished: str) -> None:
    padding = 20 * 1024 * 1024
    sim.configure(result_padding_bytes=padding)
    url = api.urls(finished)[0]
    with tempfile.TemporaryFile() as file:
        # Python's allocations in the simulator's thread and in this client, from the request to the last block.
        with TracedPeak() as peak, requests.get(url, stream=True, timeout=30) as response:
            assert response.status_code == 200
            announced = int(response.headers["Content-Length"])
            for block in response.iter_content(1 << 20):
                file.write(block)
        size = file.tell()
        file.seek(0)
        info = read_png(file)
    assert size == announced > padding
    assert (PADDING_CHUNK_TYPE, padding) in info.chunks
    assert (info.width, info.height) == (256, 144)
    assert peak.mib < 10  # neither the simulator nor the client held the whole image


@pytest.mark.gptimage_simulator(active_task_limit=1, generation_seconds=60)
def test_pytest_plugin_fixture(gptimage_simulator: GPTImageSimulator) -> None:
    api = Api(gptimage_simulator.url)
    assert api.create().status_code == 200
    assert api.create().status_code == 409
    assert gptimage_simulator.stats().responses_409 == 1


def test_pytest_plugin_fixture_defaults(gptimage_simulator: GPTImageSimulator) -> None:
    assert gptimage_simulator.url.startswith("http://127.0.0.1:")
    assert gptimage_simulator.state is not None
    assert gptimage_simulator.state.config.generation_seconds == 0.1


def test_importing_the_package_is_light() -> None:
    code = (
        "import sys, airflow_provider_gptimage.simulator as s; "
        "assert 'aiohttp' not in sys.modules and 'airflow' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
