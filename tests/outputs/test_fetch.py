"""Which result URLs are fetched, and how an image is recognised (nothing here writes to storage)."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.exceptions import GPTImageResultError
from airflow_provider_gptimage.outputs import check_source_url, redact, sniff

from .imageserver import JPEG, PNG, WEBP


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
    def test_magic_bytes_win(self):
        assert sniff(PNG[:16], "application/octet-stream") == ("image/png", "png")
        assert sniff(JPEG[:16], "image/png") == ("image/jpeg", "jpg")
        assert sniff(WEBP[:16], "") == ("image/webp", "webp")

    def test_image_header_alone_is_enough(self):
        assert sniff(b"\x00\x00\x00\x1cftypavif", "image/avif") == ("image/avif", "avif")

    @pytest.mark.parametrize(
        ("head", "content_type"),
        [
            (b"<html><body>hi", "text/html"),
            (b"<html><body>hi", "image/png"),  # an error page sent with an image type
            (b'<svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml"),
            (b"RIFF\x00\x00\x00\x00WAVEfmt ", "application/octet-stream"),
            (b"plain text, no type", ""),
        ],
    )
    def test_not_an_image(self, head, content_type):
        assert sniff(head, content_type) is None
