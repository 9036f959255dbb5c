"""The ``gptimage`` connection: base URL and API key rules."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageError
from airflow_provider_gptimage.protocol import (
    DEFAULT_HOST,
    DEFAULT_TLS,
    TLSSettings,
    api_key_from,
    base_url_from,
    tls_settings_from,
)


def test_default_host_is_the_documented_https_host():
    assert DEFAULT_HOST == "https://aigptimage.com"


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        pytest.param(None, None, None, DEFAULT_HOST, id="none"),
        pytest.param("", None, None, DEFAULT_HOST, id="empty"),
        pytest.param("   ", None, None, DEFAULT_HOST, id="blank"),
        pytest.param("/", None, None, DEFAULT_HOST, id="only-slash"),
        pytest.param(None, "http", 8080, DEFAULT_HOST, id="none-ignores-schema-and-port"),
        pytest.param("http://127.0.0.1:8089", None, None, "http://127.0.0.1:8089", id="simulator-as-is"),
        pytest.param("https://aigptimage.com", None, None, "https://aigptimage.com", id="https-as-is"),
        pytest.param("https://aigptimage.com/", None, None, "https://aigptimage.com", id="trailing-slash"),
        pytest.param("https://aigptimage.com///", None, None, "https://aigptimage.com", id="trailing-slashes"),
        pytest.param(" https://aigptimage.com ", None, None, "https://aigptimage.com", id="padded"),
        pytest.param("https://proxy.example.com/gpt/", None, None, "https://proxy.example.com/gpt", id="path"),
        pytest.param("HTTPS://Example.com", None, None, "HTTPS://Example.com", id="uppercase-scheme"),
        pytest.param("reseller.example.com", "https", None, "https://reseller.example.com", id="bare-https"),
        pytest.param("localhost", "http", None, "http://localhost", id="bare-http"),
        pytest.param("reseller.example.com/", "https", None, "https://reseller.example.com", id="bare-slash"),
        pytest.param("reseller.example.com", "https", 8443, "https://reseller.example.com:8443", id="bare-port"),
        pytest.param("https://reseller.example.com", None, 8443, "https://reseller.example.com:8443", id="port"),
        pytest.param("http://127.0.0.1:8089", None, 9999, "http://127.0.0.1:8089", id="explicit-port-wins"),
        pytest.param("https://example.com", "http", None, "https://example.com", id="scheme-in-host-wins"),
        pytest.param(
            "https://proxy.example.com/gpt", None, 8443, "https://proxy.example.com:8443/gpt", id="port-before-path"
        ),
        pytest.param("https://[::1]", None, 8443, "https://[::1]:8443", id="ipv6-port"),
        pytest.param("https://[::1]:9000", None, 8443, "https://[::1]:9000", id="ipv6-explicit-port"),
        pytest.param("https://example.com", None, 0, "https://example.com", id="port-zero-ignored"),
    ],
)
def test_base_url_from(host, schema, port, expected):
    assert base_url_from(host, schema=schema, port=port) == expected


@pytest.mark.parametrize(
    ("host", "schema", "needle"),
    [
        pytest.param("aigptimage.com", None, "no scheme", id="bare-no-schema"),
        pytest.param("aigptimage.com", "", "no scheme", id="bare-empty-schema"),
        pytest.param("aigptimage.com", "ftp", "no scheme", id="bare-ftp-schema"),
        pytest.param("127.0.0.1:8089", None, "no scheme", id="bare-with-port"),
        pytest.param("ftp://files.example.com", None, "ftp", id="ftp"),
        pytest.param("file:///etc/passwd", None, "file", id="file"),
        pytest.param("ws://example.com", None, "ws", id="websocket"),
        pytest.param("https://example.com:abc", None, "abc", id="bad-port-in-host"),
    ],
)
def test_base_url_from_refuses(host, schema, needle):
    with pytest.raises(GPTImageConfigurationError) as info:
        base_url_from(host, schema=schema, port=443 if "abc" in host else None)
    assert needle in str(info.value)
    assert isinstance(info.value, GPTImageError)
    assert not info.value.retryable


def test_bare_host_error_suggests_https():
    with pytest.raises(GPTImageConfigurationError, match=r"https://aigptimage\.com"):
        base_url_from("aigptimage.com")


# --- API key ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("password", "expected"),
    [
        pytest.param("sk-abc123", "sk-abc123", id="plain"),
        pytest.param("  sk-abc123\n", "sk-abc123", id="surrounding-whitespace-stripped"),
        pytest.param("\tsk-abc123 ", "sk-abc123", id="tabs"),
    ],
)
def test_api_key_from(password, expected):
    assert api_key_from(password, "gptimage_default") == expected


@pytest.mark.parametrize("password", [None, "", "   ", "\n\t "])
def test_missing_api_key_names_the_connection(password):
    with pytest.raises(GPTImageConfigurationError) as info:
        api_key_from(password, "my_gptimage")
    message = str(info.value)
    assert "'my_gptimage'" in message
    assert "password" in message
    assert "sk-..." in message


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("sk-SECRET\nX-Injected: 1", id="lf"),
        pytest.param("sk-SECRET\r\nX-Injected: 1", id="crlf"),
        pytest.param("sk-SECRET\rrest", id="cr"),
    ],
)
def test_api_key_with_a_line_break_is_refused_without_echoing_it(password):
    with pytest.raises(GPTImageConfigurationError) as info:
        api_key_from(password, "my_gptimage")
    message = str(info.value)
    assert "'my_gptimage'" in message
    assert "line break" in message
    assert "SECRET" not in message
    assert "Injected" not in message
    assert "SECRET" not in repr(info.value)


# --- the ``verify`` extra ---------------------------------------------------------------------------------
BUNDLE = "/etc/corp/ca.pem"


def exists(path: str) -> bool:
    return path == BUNDLE


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param(None, DEFAULT_TLS, id="no-extra"),
        pytest.param({}, DEFAULT_TLS, id="empty-extra"),
        pytest.param({"verify": None}, DEFAULT_TLS, id="null"),
        pytest.param({"verify": "  "}, DEFAULT_TLS, id="blank-form-field"),
        pytest.param({"verify": True}, DEFAULT_TLS, id="true"),
        pytest.param({"verify": "True"}, DEFAULT_TLS, id="true-string"),
        pytest.param({"verify": False}, TLSSettings(verify=False), id="false"),
        pytest.param({"verify": " false "}, TLSSettings(verify=False), id="false-string"),
        pytest.param({"verify": BUNDLE}, TLSSettings(ca_bundle=BUNDLE), id="bundle"),
        pytest.param({"verify": f" {BUNDLE} "}, TLSSettings(ca_bundle=BUNDLE), id="bundle-padded"),
        pytest.param({"verify_ssl": BUNDLE}, TLSSettings(ca_bundle=BUNDLE), id="http-provider-alias"),
        pytest.param({"verify": BUNDLE, "verify_ssl": False}, TLSSettings(ca_bundle=BUNDLE), id="verify-wins"),
        pytest.param({"verify": None, "verify_ssl": False}, TLSSettings(verify=False), id="null-verify-alias"),
    ],
)
def test_tls_settings_from(extra, expected):
    settings, _ = tls_settings_from(extra, "gptimage_default", is_file=exists)
    assert settings == expected


def test_requests_verify_argument():
    assert DEFAULT_TLS.requests_verify is True
    assert TLSSettings(verify=False).requests_verify is False
    assert TLSSettings(ca_bundle=BUNDLE).requests_verify == BUNDLE


@pytest.mark.parametrize("extra", [{"verify": False}, {"verify_ssl": "false"}])
def test_verify_false_is_allowed_with_a_warning(extra):
    settings, warnings = tls_settings_from(extra, "my_gptimage", is_file=exists)
    assert settings.verify is False
    assert len(warnings) == 1
    assert "'my_gptimage'" in warnings[0]
    assert f"`{next(iter(extra))}`" in warnings[0]
    assert "NOT checked" in warnings[0]


def test_no_warning_when_checking():
    assert tls_settings_from({"verify": BUNDLE}, "c", is_file=exists)[1] == []
    assert tls_settings_from({}, "c", is_file=exists)[1] == []


def test_no_file_check_without_a_path():
    def refuse(path: str) -> bool:
        raise AssertionError("no disk access expected")

    for extra in ({}, {"verify": True}, {"verify": "false"}):
        tls_settings_from(extra, "c", is_file=refuse)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        pytest.param({"verify": "/etc/corp/missing.pem"}, "no CA bundle file exists", id="missing"),
        pytest.param({"verify": "certs/ca.pem"}, "must be absolute", id="relative"),
        pytest.param({"verify": "~/ca.pem"}, "must be absolute", id="home"),
        pytest.param({"verify": "no"}, "must be absolute", id="unknown-word"),
        pytest.param({"verify": 0}, "neither a boolean nor a path", id="zero"),
        pytest.param({"verify": 1}, "neither a boolean nor a path", id="one"),
        pytest.param({"verify": {"path": BUNDLE}}, "neither a boolean nor a path", id="object"),
        pytest.param({"verify_ssl": "/nope.pem"}, "no CA bundle file exists", id="alias"),
    ],
)
def test_bad_verify_values_name_the_extra(extra, needle):
    name = next(iter(extra))
    with pytest.raises(GPTImageConfigurationError) as info:
        tls_settings_from(extra, "my_gptimage", is_file=exists)
    message = str(info.value)
    assert f"Invalid connection extra `{name}` of connection 'my_gptimage'" in message
    assert needle in message
    assert "true, false, or the absolute path of a CA bundle file" in message
    assert not info.value.retryable


def test_a_long_bad_value_is_shortened():
    with pytest.raises(GPTImageConfigurationError) as info:
        tls_settings_from({"verify": "/" + "x" * 5000}, "c", is_file=exists)
    assert len(str(info.value)) < 500
