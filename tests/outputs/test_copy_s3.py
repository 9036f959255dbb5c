"""copy_results and check_destination against a real S3-compatible server (moto, in server mode)."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageResultError
from airflow_provider_gptimage.outputs import (
    check_destination,
    copy_results,
    find_existing,
    resolve_destination,
    uses_rename,
    verify,
)
from airflow_provider_gptimage.protocol import RetryPolicy
from tests.conftest import aws_connection

from .imageserver import PNG, SECOND_PNG, big_image_digest, job_record

FAST = RetryPolicy(max_attempts=2, initial_delay=0.5, jitter=0.0)


def keys(s3_client, bucket: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def body(s3_client, bucket: str, key: str) -> bytes:
    return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()


def copy(record, dest, **kwargs):
    return copy_results(record, dest, policy=FAST, sleep=lambda _: None, rand=lambda: 0.0, **kwargs)


def test_s3_is_published_by_one_put(s3_destination):
    assert not uses_rename(s3_destination)


def test_copies_images_and_sidecars(images, s3_destination, s3_bucket, s3_client, s3_conn_id):
    record = job_record(images.url("/ok.png"), images.url("/second.png"), job_id="job-s3")
    outs = copy(record, s3_destination, filename="sku", provenance={"dag_id": "d"})

    assert keys(s3_client, s3_bucket) == [
        "prefix/_thumbs/sku-1.jpg",
        "prefix/_thumbs/sku-2.jpg",
        "prefix/sku-1.json",
        "prefix/sku-1.png",
        "prefix/sku-2.json",
        "prefix/sku-2.png",
    ]
    assert body(s3_client, s3_bucket, "prefix/sku-1.png") == PNG
    assert body(s3_client, s3_bucket, "prefix/sku-2.png") == SECOND_PNG
    assert [o.uri for o in outs] == [f"s3://{s3_bucket}/prefix/sku-1.png", f"s3://{s3_bucket}/prefix/sku-2.png"]
    assert {o.conn_id for o in outs} == {s3_conn_id}
    sidecar = json.loads(body(s3_client, s3_bucket, "prefix/sku-2.json"))
    assert sidecar["sha256"] == hashlib.sha256(SECOND_PNG).hexdigest() == outs[1].sha256
    assert (sidecar["job_id"], sidecar["index"], sidecar["count"]) == ("job-s3", 2, 2)
    assert sidecar["provenance"] == {"dag_id": "d"}
    assert all(verify(o) for o in outs)

    found = find_existing(s3_destination, "sku")
    assert found is not None and [f.uri for f in found] == [o.uri for o in outs]
    s3_client.delete_object(Bucket=s3_bucket, Key="prefix/sku-2.json")
    assert find_existing(s3_destination, "sku") is None


def test_multipart_upload_of_a_bigger_image(images, s3_destination, s3_bucket, s3_client):
    [out] = copy(job_record(images.url("/big.png?mb=12")), s3_destination, filename="big")
    assert out.size == 12 * 1024 * 1024
    assert out.sha256 == big_image_digest(12)
    assert hashlib.sha256(body(s3_client, s3_bucket, "prefix/big.png")).hexdigest() == out.sha256


def test_a_cut_connection_leaves_no_object(images, s3_destination, s3_bucket, s3_client):
    with pytest.raises(GPTImageResultError, match="after 2 attempt"):
        copy(job_record(images.url("/cut.png")), s3_destination, filename="cut")
    assert keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_an_expired_url_leaves_no_object(images, s3_destination, s3_bucket, s3_client):
    with pytest.raises(GPTImageResultError, match="regenerate"):
        copy(job_record(images.url("/expired-403"), job_id="job-old"), s3_destination)
    assert keys(s3_client, s3_bucket) == []


def test_check_destination_passes_and_leaves_nothing(s3_destination, s3_bucket, s3_client):
    check_destination(s3_destination)
    check_destination(s3_destination, probe_write=False)
    assert keys(s3_client, s3_bucket) == []


def test_resolve_then_check_from_a_uri(s3_bucket, s3_conn_id):
    check_destination(resolve_destination(f"s3://{s3_bucket}/a/b/", conn_id=s3_conn_id))


@pytest.mark.parametrize("probe_write", [True, False])
def test_a_missing_bucket_is_reported(s3_conn_id, probe_write):
    dest = resolve_destination("s3://no-such-bucket-here/images/", conn_id=s3_conn_id)
    with pytest.raises(GPTImageConfigurationError, match="does not exist") as info:
        check_destination(dest, probe_write=probe_write)
    assert "no-such-bucket-here" in str(info.value)
    assert s3_conn_id in str(info.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def refusing_s3_endpoint():
    """A second moto server that checks credentials (``INITIAL_NO_AUTH_ACTION_COUNT=0``): it knows no key.

    It runs in its own process because moto reads that setting once, at import, for the whole process.
    """
    import requests

    port = _free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # wait for it to listen (polling a socket, not timing anything)
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    pytest.skip("moto_server could not start")
                time.sleep(0.05)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_refused_credentials_are_reported(refusing_s3_endpoint, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AWS_REFUSED", aws_connection(refusing_s3_endpoint, login="AKIAWRONG"))
    dest = resolve_destination("s3://bucket/images/", conn_id="aws_refused")
    with pytest.raises(GPTImageConfigurationError, match="credentials refused") as info:
        check_destination(dest)
    assert "aws_refused" in str(info.value)


class _FailingSource:
    """A spool that breaks after ``limit`` bytes, as a full disk or a killed read would."""

    def __init__(self, limit: int) -> None:
        self.given = 0
        self.limit = limit

    def read(self, size: int) -> bytes:
        if self.given >= self.limit:
            raise OSError("simulated read failure")
        self.given += size
        return b"\x89PNG\r\n\x1a\n".ljust(size, b"x")


def test_an_upload_failing_midway_commits_nothing(s3_destination, s3_bucket, s3_client):
    from airflow_provider_gptimage.outputs.store import UPLOAD_BLOCK_BYTES, _put

    target = s3_destination / "half.png"
    with pytest.raises(OSError, match="simulated"):
        _put(_FailingSource(2 * UPLOAD_BLOCK_BYTES + 1), target, 1024 * 1024)  # past one multipart part
    assert keys(s3_client, s3_bucket) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
