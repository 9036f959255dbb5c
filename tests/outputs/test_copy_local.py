"""copy_results into a local folder (file://), from a real HTTP server of result images."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from airflow_provider_gptimage.exceptions import GPTImageResultError, GPTImageValidationError
from airflow_provider_gptimage.outputs import OutputFile, copy_results, find_existing, resolve_destination, verify
from airflow_provider_gptimage.protocol import JobRecord, RetryPolicy

from .hostile import JPEG_OK as JPEG
from .hostile import WEBP_OK as WEBP
from .imageserver import PNG, SECOND_PNG, job_record

FAST = RetryPolicy(max_attempts=3, initial_delay=0.5, jitter=0.0)


@pytest.fixture
def dest(tmp_path):
    return resolve_destination(str(tmp_path / "out"))


@pytest.fixture
def sleeps() -> list[float]:
    """Waits asked for between retries; recorded, never slept."""
    return []


def copy(record, dest, sleeps, **kwargs):
    return copy_results(record, dest, policy=FAST, sleep=sleeps.append, rand=lambda: 0.0, **kwargs)


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file()) if folder.exists() else []


def test_copies_bytes_with_digest_and_sidecar(images, dest, tmp_path, sleeps):
    record = job_record(images.url("/ok.png?X-Amz-Signature=secret"))
    [out] = copy(record, dest, sleeps, filename="SKU-1", provenance={"dag_id": "d", "run_id": "r", "task_id": "t"})

    image = tmp_path / "out" / "SKU-1.png"
    assert image.read_bytes() == PNG
    assert out.uri == f"file://{image}"
    assert (out.size, out.sha256, out.content_type) == (len(PNG), hashlib.sha256(PNG).hexdigest(), "image/png")
    assert out.source_url == images.url("/ok.png")  # the signature stays out of XCom and sidecar
    assert not out.skipped
    sidecar = json.loads((tmp_path / "out" / "SKU-1.json").read_text())
    assert sidecar["job_id"] == record.job_id
    assert sidecar["prompt"] == "a red bicycle, studio light"
    assert sidecar["parameters"] == {"aspect_ratio": "1:1", "resolution": "1K"}
    assert sidecar["model"] == "gpt-image-2-text-to-image"
    assert sidecar["cost_time_ms"] == 59699
    assert (sidecar["size"], sidecar["sha256"], sidecar["content_type"]) == (out.size, out.sha256, "image/png")
    assert sidecar["source_url"] == images.url("/ok.png")
    assert sidecar["provenance"] == {"dag_id": "d", "run_id": "r", "task_id": "t"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sidecar["written_at"])
    assert "secret" not in (tmp_path / "out" / "SKU-1.json").read_text()
    assert files(tmp_path / "out") == ["SKU-1.json", "SKU-1.png"]
    assert (
        sidecar["thumbnail"] == "_thumbs/SKU-1.jpg"
        and out.thumbnail_uri == (tmp_path / "out" / "_thumbs" / "SKU-1.jpg").as_uri()
    )
    assert (tmp_path / "out" / "_thumbs" / "SKU-1.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert verify(out)
    assert OutputFile.from_dict(json.loads(json.dumps(out.to_dict()))) == out
    assert sleeps == []


def test_several_images_get_indexed_names_and_types_from_magic(images, dest, tmp_path, sleeps):
    record = job_record(images.url("/ok.png"), images.url("/octet.jpg"), images.url("/ok.webp"))
    outs = copy(record, dest, sleeps, filename="sku")
    assert [o.uri.rsplit("/", 1)[1] for o in outs] == ["sku-1.png", "sku-2.jpg", "sku-3.webp"]
    assert [o.content_type for o in outs] == ["image/png", "image/jpeg", "image/webp"]
    assert (tmp_path / "out" / "sku-2.jpg").read_bytes() == JPEG
    assert (tmp_path / "out" / "sku-3.webp").read_bytes() == WEBP
    assert json.loads((tmp_path / "out" / "sku-3.json").read_text())["index"] == 3


def test_default_name_is_the_job_id(images, dest, tmp_path, sleeps):
    copy(job_record(images.url("/ok.png"), job_id="3ebe82c2-9f"), dest, sleeps)
    assert files(tmp_path / "out") == ["3ebe82c2-9f.json", "3ebe82c2-9f.png"]


def test_a_redirect_is_followed(images, dest, tmp_path, sleeps):
    copy(job_record(images.url("/redirect-ok")), dest, sleeps, filename="r")
    assert (tmp_path / "out" / "r.png").read_bytes() == PNG


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/ok.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ],
)
def test_refused_urls_make_no_request_and_write_nothing(images, dest, tmp_path, sleeps, url):
    record = job_record(images.url("/ok.png"), url)
    with pytest.raises(GPTImageResultError, match="Refused result URL"):
        copy(record, dest, sleeps, filename="x")
    assert sleeps == []
    assert images.hits["/ok.png"] == 1  # the first image was fetched, the refused one never was
    assert sum(images.hits.values()) == 1


def test_a_redirect_to_the_metadata_address_is_refused(images, dest, tmp_path, sleeps):
    with pytest.raises(GPTImageResultError, match="metadata"):
        copy(job_record(images.url("/redirect-metadata")), dest, sleeps)
    assert sum(images.hits.values()) == 1
    assert [n for n in files(tmp_path / "out") if not n.startswith(".")] == files(tmp_path / "out") == []


def test_a_name_rebound_to_a_refused_address_after_the_check_is_not_read(images, dest, tmp_path, sleeps, monkeypatch):
    """DNS rebinding: the name passes the check (a public address), then connects elsewhere.

    Nothing here can listen on a metadata address, so loopback stands in for one: it is added to the refused
    addresses, and the fake DNS answers the check with a public address and the connection with loopback.
    """
    import ipaddress
    import socket

    from airflow_provider_gptimage.outputs import urls

    real_getaddrinfo, answers = socket.getaddrinfo, []

    def rebinding_dns(host, port, *args, **kwargs):  # DNS is the one thing not made real here
        if host != "cdn.rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        answers.append("203.0.113.7" if not answers else "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[-1], port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_dns)
    monkeypatch.setattr(urls, "_METADATA_ADDRESSES", urls._METADATA_ADDRESSES | {ipaddress.ip_address("127.0.0.1")})
    with pytest.raises(GPTImageResultError, match=r"reached 127\.0\.0\.1") as info:
        copy(job_record(images.url("/ok.png?sig=secret", host="cdn.rebind.test"), job_id="job-rebound"), dest, sleeps)
    message = str(info.value)
    assert "job job-rebound" in message and "no request was sent" in message and "secret" not in message
    assert answers[0] == "203.0.113.7" and "127.0.0.1" in answers  # checked one address, connected to another
    assert sum(images.hits.values()) == 0  # the connection was refused before any request
    assert sleeps == []  # refused for good, not retried
    assert files(tmp_path / "out") == []  # nothing kept, no temporary file left


def test_the_download_session_lets_a_checked_loopback_connection_through(images, dest, sleeps):
    from airflow_provider_gptimage.outputs.session import download_session

    with download_session() as http:
        [out] = copy(job_record(images.url("/ok.png")), dest, sleeps, session=http)
    assert out.size == len(PNG)


@pytest.mark.parametrize(("route", "status"), [("/expired-410", "410"), ("/expired-403", "403"), ("/expired-200", "")])
def test_expired_url_names_the_job_and_says_regenerate(images, dest, tmp_path, sleeps, route, status):
    with pytest.raises(GPTImageResultError) as info:
        copy(job_record(images.url(route), job_id="job-expired-7"), dest, sleeps)
    message = str(info.value)
    assert "job-expired-7" in message
    assert "expired" in message
    assert "regenerate" in message
    assert status in message
    assert info.value.job_id == "job-expired-7"
    assert images.hits[route] == 1  # final: not retried
    assert files(tmp_path / "out") == []


def test_an_html_page_is_not_an_image(images, dest, tmp_path, sleeps):
    with pytest.raises(GPTImageResultError, match="not an image"):
        copy(job_record(images.url("/page")), dest, sleeps)
    assert files(tmp_path / "out") == []


def test_an_empty_body_is_refused(images, dest, tmp_path, sleeps):
    with pytest.raises(GPTImageResultError, match="empty"):
        copy(job_record(images.url("/empty.png")), dest, sleeps)
    assert files(tmp_path / "out") == []


def test_a_cut_connection_is_retried_then_leaves_nothing(images, dest, tmp_path, sleeps):
    with pytest.raises(GPTImageResultError, match="after 3 attempt") as info:
        copy(job_record(images.url("/cut.png"), job_id="job-cut"), dest, sleeps, filename="cut")
    assert "job-cut" in str(info.value)
    assert images.hits["/cut.png"] == FAST.max_attempts
    assert sleeps == [0.5, 1.0]
    assert files(tmp_path / "out") == []  # no truncated file under the final name, no temporary left


def test_a_cut_connection_does_not_damage_an_older_complete_image(images, dest, tmp_path, sleeps):
    copy(job_record(images.url("/ok.png")), dest, sleeps, filename="keep")
    with pytest.raises(GPTImageResultError):
        copy(job_record(images.url("/cut.png")), dest, sleeps, filename="keep")
    assert (tmp_path / "out" / "keep.png").read_bytes() == PNG
    assert files(tmp_path / "out") == ["keep.json", "keep.png"]


@pytest.mark.parametrize("route", ["/flaky.png", "/cut-once.png"])
def test_a_transient_failure_is_retried(images, dest, tmp_path, sleeps, route):
    [out] = copy(job_record(images.url(route)), dest, sleeps, filename="f")
    assert images.hits[route] == 2
    assert sleeps == [0.5]
    assert (tmp_path / "out" / "f.png").read_bytes() == PNG
    assert out.size == len(PNG)
    assert files(tmp_path / "out") == ["f.json", "f.png"]


@pytest.mark.parametrize("route", ["/big.png?mb=5", "/unsized.png?mb=5"])
def test_an_image_over_max_bytes_is_abandoned(images, dest, tmp_path, sleeps, route):
    with pytest.raises(GPTImageResultError, match="max_bytes"):
        copy(job_record(images.url(route)), dest, sleeps, max_bytes=2 * 1024 * 1024)
    assert sleeps == []
    assert files(tmp_path / "out") == []


def test_bad_arguments(images, dest, sleeps):
    record = job_record(images.url("/ok.png"))
    with pytest.raises(GPTImageValidationError, match="filename"):
        copy(record, dest, sleeps, filename="../escape")
    with pytest.raises(GPTImageValidationError, match="max_bytes"):
        copy(record, dest, sleeps, max_bytes=0)
    with pytest.raises(GPTImageResultError, match="no result URLs"):
        copy(JobRecord(job_id="j", state="success"), dest, sleeps)
    assert sum(images.hits.values()) == 0


class TestFindExisting:
    def test_complete_outputs_are_found(self, images, dest, sleeps):
        record = job_record(images.url("/ok.png"), images.url("/second.png"))
        written = copy(record, dest, sleeps, filename="sku")
        found = find_existing(dest, "sku")
        assert found is not None
        assert [f.skipped for f in found] == [True, True]
        assert [(f.uri, f.size, f.sha256, f.job_id) for f in found] == [
            (w.uri, w.size, w.sha256, w.job_id) for w in written
        ]
        assert [verify(f) for f in found] == [True, True]

    def test_single_image(self, images, dest, sleeps):
        copy(job_record(images.url("/ok.png")), dest, sleeps, filename="one")
        found = find_existing(dest, "one.png")
        assert found is not None and len(found) == 1

    def test_nothing_there(self, dest):
        assert find_existing(dest, "sku") is None

    def test_an_image_without_sidecar_is_not_complete(self, images, dest, tmp_path, sleeps):
        copy(job_record(images.url("/ok.png")), dest, sleeps, filename="sku")
        (tmp_path / "out" / "sku.json").unlink()
        assert find_existing(dest, "sku") is None

    def test_a_truncated_image_is_not_complete(self, images, dest, tmp_path, sleeps):
        copy(job_record(images.url("/ok.png")), dest, sleeps, filename="sku")
        (tmp_path / "out" / "sku.png").write_bytes(PNG[:10])
        assert find_existing(dest, "sku") is None

    def test_a_missing_member_of_a_set_is_not_complete(self, images, dest, tmp_path, sleeps):
        copy(job_record(images.url("/ok.png"), images.url("/second.png")), dest, sleeps, filename="sku")
        (tmp_path / "out" / "sku-2.png").unlink()
        assert find_existing(dest, "sku") is None

    def test_rewriting_replaces_images_and_sidecars(self, images, dest, tmp_path, sleeps):
        copy(job_record(images.url("/ok.png"), job_id="old"), dest, sleeps, filename="sku")
        copy(job_record(images.url("/second.png"), job_id="new"), dest, sleeps, filename="sku")
        assert (tmp_path / "out" / "sku.png").read_bytes() == SECOND_PNG
        [found] = find_existing(dest, "sku") or []
        assert found.job_id == "new"

    def test_traversal_is_refused(self, dest):
        with pytest.raises(GPTImageValidationError, match="filename"):
            find_existing(dest, "../sku")


def test_a_replaced_image_is_kept_in_history_or_dropped(images, dest, tmp_path, sleeps):
    copy(job_record(images.url("/ok.png"), job_id="job-1"), dest, sleeps, filename="SKU")
    copy(job_record(images.url("/second.png"), job_id="job-2"), dest, sleeps, filename="SKU")
    [kept] = (tmp_path / "out" / "_history" / "SKU").iterdir()
    assert kept.name.endswith("-job-1") and (kept / "SKU.png").read_bytes() == PNG
    assert json.loads((kept / "SKU.json").read_text())["job_id"] == "job-1"
    copy(job_record(images.url("/ok.png"), job_id="job-3"), dest, sleeps, filename="SKU", history="drop")
    assert len(list((tmp_path / "out" / "_history" / "SKU").iterdir())) == 1  # job-2's image was dropped
    assert json.loads((tmp_path / "out" / "SKU.json").read_text())["job_id"] == "job-3"
    again = copy(job_record(images.url("/ok.png"), job_id="job-3"), dest, sleeps, filename="SKU")
    assert again and len(list((tmp_path / "out" / "_history" / "SKU").iterdir())) == 1  # same job: nothing set aside
