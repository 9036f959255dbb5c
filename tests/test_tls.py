"""TLS helpers: one SSL context per CA bundle file (rebuilt when the file changes), certificate errors."""

from __future__ import annotations

import os
import ssl

import pytest
import requests
import trustme

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageTLSError
from airflow_provider_gptimage.protocol import DEFAULT_TLS, TLSSettings
from airflow_provider_gptimage.tls import aiohttp_ssl, certificate_error, ssl_context_for


def test_aiohttp_ssl_without_a_bundle():
    assert aiohttp_ssl(DEFAULT_TLS) is True
    assert aiohttp_ssl(TLSSettings(verify=False)) is False


def test_one_context_per_file_until_the_file_changes(tmp_path):
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    context = aiohttp_ssl(TLSSettings(ca_bundle=str(path)))
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 1  # the bundle replaces the default store
    assert ssl_context_for(str(path)) is context
    trustme.CA().cert_pem.write_to_path(str(path))  # a rotated bundle
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ssl_context_for(str(path)) is not context


@pytest.mark.parametrize("content", ["", "not a certificate\n"])
def test_a_bundle_without_certificates_names_the_extra(tmp_path, content):
    path = tmp_path / "bad.pem"
    path.write_text(content)
    with pytest.raises(GPTImageConfigurationError, match=r"extra `verify_ssl`.*could not be loaded"):
        aiohttp_ssl(TLSSettings(ca_bundle=str(path), extra="verify_ssl"))


def test_a_vanished_bundle_names_the_extra(tmp_path):
    with pytest.raises(GPTImageConfigurationError, match=r"extra `verify`.*could not be loaded"):
        ssl_context_for(str(tmp_path / "gone.pem"))


def test_certificate_error_found_through_requests_wrapping():
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    try:
        try:
            raise cause
        except ssl.SSLError as exc:
            raise requests.exceptions.SSLError(exc) from exc
    except requests.RequestException as wrapped:
        error = certificate_error("recordInfo", wrapped)
    assert isinstance(error, GPTImageTLSError)
    assert "unable to get local issuer certificate" in str(error)
    assert "`verify`" in str(error)
    assert error.request_sent is False
    assert not error.retryable


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError("refused"),
        ssl.SSLError(1, "wrong version number"),
        TimeoutError(),
    ],
)
def test_other_failures_are_not_certificate_errors(exc):
    assert certificate_error("recordInfo", exc) is None
