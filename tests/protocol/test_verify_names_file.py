"""``verify_names_file``: whether reading a connection's TLS settings needs file I/O (then done in a thread)."""

from __future__ import annotations

import contextlib

import pytest

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError
from airflow_provider_gptimage.protocol.connection import tls_settings_from, verify_names_file

EXTRAS = [
    pytest.param(None, False, id="no-extra"),
    pytest.param({}, False, id="empty-extra"),
    pytest.param({"verify": None}, False, id="null"),
    pytest.param({"verify": "  "}, False, id="blank"),
    pytest.param({"verify": True}, False, id="true"),
    pytest.param({"verify": " TRUE "}, False, id="true-string"),
    pytest.param({"verify": False}, False, id="false"),
    pytest.param({"verify_ssl": "false"}, False, id="alias-false"),
    pytest.param({"verify": 1}, False, id="number"),
    pytest.param({"verify": "/etc/corp/ca.pem"}, True, id="bundle"),
    pytest.param({"verify_ssl": "/etc/corp/ca.pem"}, True, id="alias-bundle"),
    pytest.param({"verify": "/etc/corp/ca.pem", "verify_ssl": False}, True, id="verify-wins"),
    pytest.param({"verify": None, "verify_ssl": "/etc/corp/ca.pem"}, True, id="null-verify-alias"),
    pytest.param({"verify": "certs/ca.pem"}, True, id="relative"),
]


@pytest.mark.parametrize(("extra", "expected"), EXTRAS)
def test_verify_names_file(extra, expected):
    assert verify_names_file(extra) is expected


@pytest.mark.parametrize(("extra", "expected"), EXTRAS)
def test_no_file_is_checked_when_none_is_named(extra, expected):
    checked: list[str] = []

    def is_file(path: str) -> bool:
        checked.append(path)
        return True

    with contextlib.suppress(GPTImageConfigurationError):
        tls_settings_from(extra, "c", is_file=is_file)
    if not verify_names_file(extra):
        assert checked == []  # so reading these settings in the event loop does no I/O
