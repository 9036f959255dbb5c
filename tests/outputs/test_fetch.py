"""Which result URLs are fetched, and how an image is recognised at first sight (nothing here writes)."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs import check_source_url, redact, sniff

from .hostile import JPEG_OK as JPEG
from .hostile import WEBP_OK as WEBP
from .imageserver import PNG


class TestCheckSourceUrl:
    @pytest.mark.parametrize(
        "url",
        [
            "file:///etc/passwd",
            "ftp://example.com/1.png",
            "gopher://example.com/",
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.10.1/x.png",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "http://[fe80::1]/x.png",
            "http://[::ffff:169.254.169.254]/x.png",
            "http://100.100.100.200/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://0.0.0.0:8080/x.png",
            "http:///nohost.png",
        ],
    )
    def test_refused(self, url):
        with pytest.raises(GPTImageResultError, match="job job-1") as info:
            check_source_url(url, job_id="job-1")
        assert info.value.job_id == "job-1"

    @pytest.mark.parametrize(
        "url", ["http://127.0.0.1:8089/results/1.png", "http://localhost/x.png", "https://[::1]/x.png"]
    )
    def test_loopback_is_allowed(self, url):
        check_source_url(url, job_id="job-1")

    def test_a_name_resolving_to_link_local_is_refused(self, monkeypatch):
        import socket

        def fake_getaddrinfo(host, port, *args, **kwargs):  # DNS is the one thing not made real here
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
        with pytest.raises(GPTImageResultError, match="metadata"):
            check_source_url("https://cdn.example.com/1.png", job_id="job-1")

    def test_redact_drops_signatures(self):
        url = "https://user:pw@cdn.example.com/a/1.png?X-Amz-Signature=secret#frag"
        assert redact(url) == "https://cdn.example.com/a/1.png"


class TestSniff:
    def test_magic_bytes_decide(self):
        assert sniff(PNG[:16]) == "png"
        assert sniff(JPEG[:16]) == "jpeg"
        assert sniff(WEBP[:16]) == "webp"

    @pytest.mark.parametrize(
        "head",
        [
            b"<html><body>hi",
            b"\xef\xbb\xbf<!doctype html>",  # markup behind a UTF-8 byte-order mark
            b'<svg xmlns="http://www.w3.org/2000/svg">',
            b"RIFF\x00\x00\x00\x00WAVEfmt ",
            b"GIF89a\x01\x00\x01\x00",
            b"\x00\x00\x00\x1cftypavif",  # AVIF: an image, but not one the API produces
            b"plain text, no type",
        ],
    )
    def test_anything_else_is_not_kept(self, head):
        assert sniff(head) is None
