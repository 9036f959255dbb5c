"""The key as the hook uses it is registered with Airflow's secrets masker, on both paths (worker and
triggerer), even when the connection's password holds it with surrounding whitespace."""

from __future__ import annotations

import json
import uuid

import pytest

from airflow_provider_gptimage.hooks.gptimage import GPTImageHook


def redact(text: str) -> str:
    try:
        from airflow.sdk.log import redact as _redact
    except ImportError:  # Airflow 3.0
        from airflow.sdk.execution_time.secrets_masker import redact as _redact  # type: ignore[no-redef]
    return str(_redact(text))


@pytest.fixture
def padded_key(simulator, monkeypatch) -> str:
    key = f"sk-mask-{uuid.uuid4().hex}"
    conn = {"conn_type": "gptimage", "host": simulator.url, "password": f"  {key}\n"}
    monkeypatch.setenv("AIRFLOW_CONN_GPTIMAGE_DEFAULT", json.dumps(conn))
    return key


def test_the_sync_path_masks_the_key_it_uses(padded_key):
    assert padded_key in redact(f"said {padded_key}")  # not known to the masker yet
    GPTImageHook().get_conn()
    assert redact(f"said {padded_key} twice") == "said *** twice"


async def test_the_async_path_masks_the_key_it_uses(padded_key):
    await GPTImageHook().aconfigure()
    assert redact(f"said {padded_key}") == "said ***"
