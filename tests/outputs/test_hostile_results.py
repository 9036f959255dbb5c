"""A hostile or broken result host, over real HTTP: content that only looks like an image, and a host so slow
that only an overall deadline ends the download. Each case: a typed error naming the job, nothing under a
final name (and no temporary file left), no retry of a final refusal."""

from __future__ import annotations

import json
import math

import pytest
import requests

from airflow_provider_gptimage.exceptions import (
    GPTImageDownloadTimeoutError,
    GPTImageResultError,
    GPTImageValidationError,
)
from airflow_provider_gptimage.outputs import copy_results, find_existing, resolve_destination
from airflow_provider_gptimage.protocol import RetryPolicy

from .hostile import JPEG_OK, WEBP_OK
from .imageserver import PNG, job_record

FAST = RetryPolicy(max_attempts=3, initial_delay=0.5, jitter=0.0)


@pytest.fixture
def dest(tmp_path):
    return resolve_destination(str(tmp_path / "out"))


def copy(record, dest, **kwargs):
    kwargs.setdefault("sleep", lambda _: None)
    return copy_results(record, dest, policy=kwargs.pop("policy", FAST), rand=lambda: 0.0, **kwargs)


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


# ------------------------------------------------------------------------------ content that looks like an image
REFUSED = [
    ("/bom-html.png", "markup (HTML, XML or SVG) after a UTF-8 byte-order mark"),
    ("/png-garbage.png", "the PNG is broken"),
    ("/png-ihdr-only.png", "the PNG is truncated"),
    ("/png-cut-idat.png", "the PNG is truncated: its IDAT chunk"),
    ("/png-trailing.png", "bytes after its end"),
    ("/unsized-cut.png", "the PNG is truncated"),  # no Content-Length: only the PNG itself tells
    ("/jpeg-no-eoi.jpg", "the JPEG is truncated"),
    # the header read stays bounded: Pillow never gets more than 2 MiB
    ("/jpeg-late-scan.jpg", "does not reach the image data within its first 2,097,152 bytes"),
    ("/webp-lying.webp", "RIFF header says"),
    ("/image.svg", "markup (HTML, XML or SVG)"),
    ("/image.gif", "a GIF image"),
    ("/image.avif", "an AVIF/HEIF image"),
    ("/bomb.png", "claims 100,000 x 100,000 pixels"),
]


@pytest.mark.parametrize(("route", "found"), REFUSED, ids=[route for route, _ in REFUSED])
def test_content_that_only_looks_like_an_image_is_refused(images, dest, tmp_path, route, found):
    with pytest.raises(GPTImageResultError) as info:
        copy(job_record(images.url(route), job_id="job-hostile-1"), dest, filename="sku")
    message = str(info.value)
    assert found in message
    assert "job job-hostile-1" in message and info.value.job_id == "job-hostile-1"
    assert images.hits[route] == 1  # final: not fetched again
    assert files(tmp_path / "out") == []  # nothing under the final name, no temporary file
    assert find_existing(dest, "sku") is None


def test_a_refused_image_never_replaces_a_kept_one(images, dest, tmp_path):
    copy(job_record(images.url("/ok.png")), dest, filename="keep")
    with pytest.raises(GPTImageResultError, match="truncated"):
        copy(job_record(images.url("/png-cut-idat.png")), dest, filename="keep")
    assert (tmp_path / "out" / "keep.png").read_bytes() == PNG
    assert files(tmp_path / "out") == ["keep.json", "keep.png"]


def test_the_header_decides_the_type_and_the_extension(images, dest, tmp_path):
    record = job_record(images.url("/png-typed-jpeg"), images.url("/octet.jpg"), images.url("/ok.webp"))
    outs = copy(record, dest, filename="sku")
    assert [o.uri.rsplit("/", 1)[1] for o in outs] == ["sku-1.png", "sku-2.jpg", "sku-3.webp"]
    assert [(o.format, o.content_type, o.width, o.height) for o in outs] == [
        ("png", "image/png", 4, 3),
        ("jpeg", "image/jpeg", 30, 20),
        ("webp", "image/webp", 20, 30),
    ]
    assert (tmp_path / "out" / "sku-2.jpg").read_bytes() == JPEG_OK
    assert (tmp_path / "out" / "sku-3.webp").read_bytes() == WEBP_OK
    sidecar = json.loads((tmp_path / "out" / "sku-3.json").read_text())
    assert (sidecar["format"], sidecar["width"], sidecar["height"]) == ("webp", 20, 30)
    assert [(o.format, o.width) for o in find_existing(dest, "sku") or []] == [("png", 4), ("jpeg", 30), ("webp", 20)]


@pytest.mark.parametrize("route", ["/png-cut-idat.png", "/bom-html.png", "/bomb.png"])
def test_refused_content_leaves_no_object_on_s3(images, s3_destination, s3_bucket, s3_client, route):
    with pytest.raises(GPTImageResultError, match="job-s3-hostile"):
        copy(job_record(images.url(route), job_id="job-s3-hostile"), s3_destination, filename="sku")
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []


# ------------------------------------------------------------------------------------------ the overall deadline
@pytest.mark.parametrize("route", ["/drip.png", "/drip-headers"])
def test_a_dripping_host_is_cut_off_at_the_deadline(images, dest, tmp_path, route):
    """One byte every 0.2 s never trips a read timeout; the download deadline (1 s here) ends it."""
    with pytest.raises(GPTImageDownloadTimeoutError) as info:
        copy(job_record(images.url(route + "?sig=secret"), job_id="job-drip"), dest, download_timeout=1)
    message = str(info.value)
    assert "job job-drip" in message and "1 s" in message and "download_timeout" in message
    assert "secret" not in message
    assert info.value.deadline == 1.0 and info.value.job_id == "job-drip"
    assert isinstance(info.value, GPTImageResultError)  # callers catching result errors catch this too
    assert files(tmp_path / "out") == []


@pytest.mark.parametrize("route", ["/drip.png", "/drip-headers"])
def test_a_dripping_host_is_cut_off_over_tls(tls_image_server, dest, tmp_path, monkeypatch, route):
    server, bundle = tls_image_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    [out] = copy(job_record(server.url("/ok.png")), dest, filename="tls")  # the certificate is trusted
    assert out.size == len(PNG)
    with pytest.raises(GPTImageDownloadTimeoutError, match="job-tls"):
        copy(job_record(server.url(route), job_id="job-tls"), dest, download_timeout=1)
    assert files(tmp_path / "out") == ["tls.json", "tls.png"]


def test_the_deadline_holds_with_a_plain_requests_session(images, dest, tmp_path):
    with requests.Session() as http, pytest.raises(GPTImageDownloadTimeoutError):
        copy(job_record(images.url("/drip.png")), dest, session=http, download_timeout=1)
    assert files(tmp_path / "out") == []


def test_a_dripping_host_leaves_no_object_on_s3(images, s3_destination, s3_bucket, s3_client):
    with pytest.raises(GPTImageDownloadTimeoutError):
        copy(job_record(images.url("/drip.png")), s3_destination, download_timeout=1)
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []
    assert s3_client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


class FakeClock:
    """Monotonic time that moves only when the code under test waits (frozen time, no sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_retries_share_the_deadline(images, dest, tmp_path):
    clock = FakeClock()
    many = RetryPolicy(max_attempts=10, initial_delay=0.5, jitter=0.0)
    with pytest.raises(GPTImageDownloadTimeoutError, match="3 attempt") as info:
        copy(
            job_record(images.url("/always-500"), job_id="job-500"),
            dest,
            policy=many,
            download_timeout=3,
            sleep=clock.sleep,
            clock=clock,
        )
    assert clock.waits == [0.5, 1.0]  # the next wait (2 s) would end after the deadline: given up at once
    assert images.hits["/always-500"] == 3  # not the 10 attempts the policy allows
    assert info.value.__cause__ is not None and "HTTP 500" in str(info.value.__cause__)
    assert files(tmp_path / "out") == []


def test_each_image_has_its_own_deadline(images, dest):
    clock = FakeClock()
    record = job_record(images.url("/flaky.png"), images.url("/ok.png"))
    outs = copy(record, dest, filename="two", download_timeout=0.6, sleep=clock.sleep, clock=clock)
    assert [o.size for o in outs] == [len(PNG), len(PNG)]
    assert clock.now == 1000.5  # image 1 waited 0.5 s of its 0.6; image 2 started with a full deadline


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, "300", True])
def test_a_bad_download_timeout_is_refused_before_any_request(images, dest, bad):
    with pytest.raises(GPTImageValidationError, match="download_timeout"):
        copy(job_record(images.url("/ok.png")), dest, download_timeout=bad)
    assert sum(images.hits.values()) == 0
