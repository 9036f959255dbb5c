"""Hostile and bad input: every case fails with a clear error naming the parameter, before any job is
created (the simulator counts zero createTask requests)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import (
    GPTImageConfigurationError,
    GPTImageError,
    GPTImageResultError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.operators.gptimage import GPTImageGenerateOperator
from airflow_provider_gptimage.protocol import JobRecord
from tests.conftest import FAKE_API_KEY

OK = {"prompt": "a calm lake"}

# (case id, operator keyword arguments, the parameter the error must name)
PARSE_TIME = [
    ("empty prompt", {"prompt": ""}, "prompt"),
    ("whitespace prompt", {"prompt": " \n\t "}, "prompt"),
    ("non-string prompt", {"prompt": 42}, "prompt"),
    ("list prompt", {"prompt": ["a", "b"]}, "prompt"),
    ("20,001-character prompt", {"prompt": "x" * 20_001}, "prompt"),
    ("unknown model", {**OK, "model": "gpt-image-1"}, "model"),
    ("model with whitespace", {**OK, "model": " gpt-image-2-text-to-image"}, "model"),
    ("resolution 8K", {**OK, "resolution": "8K"}, "resolution"),
    ("resolution 1k lowercase", {**OK, "resolution": "1k"}, "resolution"),
    ("resolution empty", {**OK, "resolution": ""}, "resolution"),
    ("resolution int", {**OK, "resolution": 2}, "resolution"),
    ("aspect 0:1", {**OK, "aspect_ratio": "0:1"}, "aspect_ratio"),
    ("aspect 1:0", {**OK, "aspect_ratio": "1:0"}, "aspect_ratio"),
    ("aspect 16/9", {**OK, "aspect_ratio": "16/9"}, "aspect_ratio"),
    ("aspect -1:2", {**OK, "aspect_ratio": "-1:2"}, "aspect_ratio"),
    ("aspect abc", {**OK, "aspect_ratio": "abc"}, "aspect_ratio"),
    ("aspect trailing newline", {**OK, "aspect_ratio": "16:9\n"}, "aspect_ratio"),
    ("aspect float", {**OK, "aspect_ratio": 1.5}, "aspect_ratio"),
    ("quality int", {**OK, "quality": 3}, "quality"),
    ("quality blank", {**OK, "quality": "  "}, "quality"),
    ("output_format list", {**OK, "output_format": ["png"]}, "output_format"),
    ("output_format dict", {**OK, "output_format": {"f": "png"}}, "output_format"),
    ("prompt with a lone surrogate", {"prompt": "a calm \ud800 lake"}, "prompt"),
    ("quality with a lone surrogate", {**OK, "quality": "hi\udfff"}, "quality"),
    ("output_format with a lone surrogate", {**OK, "output_format": "\udc80png"}, "output_format"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), [c[1:] for c in PARSE_TIME], ids=[c[0] for c in PARSE_TIME])
def test_rejected_when_the_dag_is_parsed(kwargs, parameter):
    with pytest.raises(GPTImageValidationError) as info:
        GPTImageGenerateOperator(task_id="t", **kwargs)
    assert info.value.parameter == parameter
    assert f"`{parameter}`" in str(info.value)
    assert "Nothing was sent" in str(info.value)


# Checked at execution (templated or environment-dependent): run execute() against the simulator.
EXECUTION_TIME = [
    ("destination unknown scheme", {"destination": "nosuchscheme://bucket/x/"}, "destination"),
    ("destination relative path", {"destination": "images/out"}, "destination"),
    ("destination empty scheme host", {"destination": "://nothing"}, "destination"),
    ("filename traversal", {"destination": "DEST", "filename": "../../etc/passwd"}, "filename"),
    ("filename absolute", {"destination": "DEST", "filename": "/etc/passwd"}, "filename"),
    ("filename with separator", {"destination": "DEST", "filename": "a/b"}, "filename"),
    ("filename with NUL", {"destination": "DEST", "filename": "a\x00b"}, "filename"),
]


@pytest.mark.parametrize(("kwargs", "parameter"), [c[1:] for c in EXECUTION_TIME], ids=[c[0] for c in EXECUTION_TIME])
def test_rejected_at_execution_before_any_job(gptimage_conn, simulator, tmp_path, kwargs, parameter):
    kwargs = {k: (tmp_path.as_uri() if v == "DEST" else v) for k, v in kwargs.items()}
    op = GPTImageGenerateOperator(task_id="t", prompt="a calm lake", **kwargs)
    with pytest.raises(GPTImageValidationError) as info:
        op.execute({})
    assert info.value.parameter == parameter
    assert simulator.stats().create_attempts == 0


@pytest.mark.parametrize(
    ("connection", "match"),
    [
        ({"conn_type": "gptimage", "host": "URL"}, "no API key"),
        ({"conn_type": "gptimage", "host": "URL", "password": "   "}, "no API key"),
        ({"conn_type": "gptimage", "host": "127.0.0.1:1", "password": FAKE_API_KEY}, "no scheme"),
        ({"conn_type": "gptimage", "host": "ftp://127.0.0.1:1", "password": FAKE_API_KEY}, "not http or https"),
    ],
    ids=["no password", "blank password", "host without scheme", "host with ftp scheme"],
)
def test_bad_connection_fails_before_any_job(simulator, monkeypatch, connection, match):
    connection = {k: (simulator.url if v == "URL" else v) for k, v in connection.items()}
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", json.dumps(connection))
    with pytest.raises(GPTImageConfigurationError, match=match) as info:
        GPTImageGenerateOperator(task_id="t", prompt="a calm lake").execute({})
    assert FAKE_API_KEY not in str(info.value)
    assert simulator.stats().create_attempts == 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/image.png",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "gopher://127.0.0.1:70/_x",
    ],
    ids=["file", "ftp", "cloud metadata v4", "cloud metadata v6", "gopher"],
)
def test_hostile_result_urls_are_refused_without_a_request(tmp_path, url):
    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.outputs import copy_results

    record = JobRecord(job_id="job-hostile", state="success", result_urls=(url,))
    with pytest.raises(GPTImageResultError) as info:
        copy_results(record, ObjectStoragePath(tmp_path.as_uri()))
    assert "job-hostile" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_every_error_is_a_provider_error():
    # Callers can catch one base class; validation errors are also ValueErrors.
    assert issubclass(GPTImageValidationError, GPTImageError)
    assert issubclass(GPTImageValidationError, ValueError)
