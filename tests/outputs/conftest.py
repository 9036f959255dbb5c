"""Fixtures of the outputs tests: a real S3-compatible server (moto) and a local image server.

The S3 fixtures are written so they can move to ``tests/conftest.py`` unchanged.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator

import pytest

# Airflow reads its home when first imported: keep it away from the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="gptimage-airflow-home-"))

from .imageserver import ImageServer

S3_CONN_ID = "aws_test"


def aws_connection(endpoint_url: str, *, login: str = "testing", password: str = "testing") -> str:
    """The JSON of an Airflow AWS connection to an S3-compatible endpoint (for ``AIRFLOW_CONN_<ID>``)."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": login,
            "password": password,
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on loopback for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_conn_id(moto_endpoint: str) -> Iterator[str]:
    """The id of an Airflow AWS connection (``aws_test``) pointing at the moto server, set via env var."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(f"AIRFLOW_CONN_{S3_CONN_ID.upper()}", aws_connection(moto_endpoint))
        # Never let boto fall back on the machine's own credentials or config.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        yield S3_CONN_ID


@pytest.fixture(scope="session")
def s3_client(moto_endpoint: str):
    """A boto3 S3 client of the moto server (to create buckets and inspect what was written)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """A new, empty bucket on the moto server."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_destination(s3_bucket: str, s3_conn_id: str):
    """``s3://<new bucket>/prefix/`` through the ``aws_test`` connection."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"s3://{s3_bucket}/prefix/", conn_id=s3_conn_id)


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """A local HTTP server of result images (valid, broken, expired, cut, big) that counts requests."""
    server = ImageServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def images(image_server: ImageServer) -> ImageServer:
    """The image server with its request counts reset."""
    image_server.hits.clear()
    return image_server
