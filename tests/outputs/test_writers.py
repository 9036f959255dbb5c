"""Racing writers and killed copies: the sidecar names the exact bytes it describes, so an image and a sidecar
of two different writers never count as complete; temporary files of killed copies go once abandoned."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_gptimage.outputs import check_destination, copy_results, find_existing, resolve_destination
from airflow_provider_gptimage.outputs import copy as copy_module
from tests.conftest import REPO

from .imageserver import RACE_FIRST, RACE_SECOND, job_record

HEX32 = "0123456789abcdef" * 2


@pytest.fixture
def dest(tmp_path):
    return resolve_destination(str(tmp_path / "out"))


def race(monkeypatch, images, destination) -> None:
    """Writer A (job-A) publishes its image, then stalls before its sidecar; writer B (job-B) copies the same
    name in full; then A writes its sidecar. The two images have the same size."""
    real_write, stalled, resume = copy_module.write_sidecar, threading.Event(), threading.Event()

    def write_sidecar(folder, name, document):
        if document["job_id"] == "job-A":
            stalled.set()
            assert resume.wait(30)
        return real_write(folder, name, document)

    monkeypatch.setattr(copy_module, "write_sidecar", write_sidecar)
    with ThreadPoolExecutor(1) as writer_a:
        first = writer_a.submit(
            copy_results, job_record(images.url("/race-1.png"), job_id="job-A"), destination, filename="sku"
        )
        assert stalled.wait(30)
        copy_results(job_record(images.url("/race-2.png"), job_id="job-B"), destination, filename="sku")
        resume.set()
        first.result()


def test_racing_writers_never_leave_a_complete_mismatched_pair(monkeypatch, images, dest, tmp_path):
    race(monkeypatch, images, dest)
    out = tmp_path / "out"
    sidecar = json.loads((out / "sku.json").read_text())
    assert (out / "sku.png").read_bytes() == RACE_SECOND  # B's image...
    assert sidecar["job_id"] == "job-A"  # ...beside A's sidecar, which records the very same size
    assert sidecar["sha256"] == hashlib.sha256(RACE_FIRST).hexdigest()
    assert sidecar["size"] == (out / "sku.png").stat().st_size
    assert find_existing(dest, "sku") is None  # so the pair is not complete: it is made again
    [again] = copy_results(job_record(images.url("/race-2.png"), job_id="job-C"), dest, filename="sku")
    [found] = find_existing(dest, "sku") or []
    assert (found.job_id, found.sha256) == ("job-C", again.sha256)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["sku.json", "sku.png"]  # no temporary file left
    assert [p.name for p in (out / "_history" / "sku").iterdir()] == [
        f"{sidecar['written_at'].replace('-', '').replace(':', '')}-job-A"
    ]


def test_racing_writers_on_s3(monkeypatch, images, s3_destination, s3_bucket, s3_client):
    race(monkeypatch, images, s3_destination)
    body = s3_client.get_object(Bucket=s3_bucket, Key="prefix/sku.png")["Body"].read()
    sidecar = json.loads(s3_client.get_object(Bucket=s3_bucket, Key="prefix/sku.json")["Body"].read())
    assert (body, sidecar["job_id"], sidecar["size"]) == (RACE_SECOND, "job-A", len(RACE_SECOND))
    assert "ETag" in sidecar["stamp"]
    assert find_existing(s3_destination, "sku") is None


def test_a_complete_pair_records_the_stamp_of_its_own_file(images, dest, tmp_path):
    [out] = copy_results(job_record(images.url("/race-1.png"), job_id="job-A"), dest, filename="sku")
    image = tmp_path / "out" / "sku.png"
    stamp = json.loads((tmp_path / "out" / "sku.json").read_text())["stamp"]
    assert stamp == {
        "dev": str(image.stat().st_dev),
        "ino": str(image.stat().st_ino),
        "mtime_ns": str(image.stat().st_mtime_ns),
    }
    assert [o.sha256 for o in find_existing(dest, "sku") or []] == [out.sha256]


def test_an_image_replaced_by_other_bytes_of_the_same_size_is_not_complete(images, dest, tmp_path):
    copy_results(job_record(images.url("/race-1.png"), job_id="job-A"), dest, filename="sku")
    other = tmp_path / "other.png"
    other.write_bytes(RACE_SECOND)
    os.replace(other, tmp_path / "out" / "sku.png")  # what a writer without a sidecar would leave
    assert find_existing(dest, "sku") is None


def test_a_copied_folder_is_checked_by_digest_once_then_by_stamp(images, dest, tmp_path):
    """Copying a catalog changes every inode: the digest decides, then the sidecar records the new stamp."""
    copy_results(job_record(images.url("/race-1.png"), job_id="job-A"), dest, filename="sku")
    shutil.copytree(tmp_path / "out", tmp_path / "copied")
    copied = resolve_destination(str(tmp_path / "copied"))
    [found] = find_existing(copied, "sku") or []
    assert found.job_id == "job-A"
    stamp = json.loads((tmp_path / "copied" / "sku.json").read_text())["stamp"]
    assert stamp["ino"] == str((tmp_path / "copied" / "sku.png").stat().st_ino)


def test_a_sidecar_without_a_stamp_is_checked_by_digest(images, dest, tmp_path):
    """Sidecars written before stamps existed: complete when the bytes match, and stamped from then on."""
    copy_results(job_record(images.url("/race-1.png"), job_id="job-A"), dest, filename="sku")
    sidecar = tmp_path / "out" / "sku.json"
    old = {k: v for k, v in json.loads(sidecar.read_text()).items() if k not in ("stamp", "format", "width", "height")}
    sidecar.write_text(json.dumps(old))
    assert [o.job_id for o in find_existing(dest, "sku") or []] == ["job-A"]
    assert "stamp" in json.loads(sidecar.read_text())
    (tmp_path / "out" / "sku.png").write_bytes(RACE_SECOND)  # same size, other bytes
    sidecar.write_text(json.dumps(old))
    assert find_existing(dest, "sku") is None


# ------------------------------------------------------------------------ temporary files of killed copies
def aged(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_abandoned_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    abandoned, young, held = (folder / f".sku-{n}.part-{HEX32}" for n in (1, 2, 3))
    foreign = [folder / ".sku.part-notmine", folder / "notes.txt"]
    for path in (abandoned, young, held, *foreign):
        path.write_bytes(b"partial")
    for path in (abandoned, held, *foreign):
        aged(path, 3 * 3600)
    import fcntl

    with open(held, "rb") as writer:  # a live writer with a longer deadline holds its lock
        fcntl.flock(writer.fileno(), fcntl.LOCK_EX)
        check_destination(resolve_destination(str(folder)), download_timeout=300)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in (young, held, *foreign))


def test_a_killed_copy_leaves_a_temporary_file_that_goes_once_abandoned(images, tmp_path):
    """A real copy, SIGKILLed mid-download (from a dripping host), in its own process."""
    folder = tmp_path / "out"
    script = (
        "import sys\n"
        "from airflow_provider_gptimage.outputs import copy_results, resolve_destination\n"
        "from tests.outputs.imageserver import job_record\n"
        "copy_results(job_record(sys.argv[1]), resolve_destination(sys.argv[2]), filename='sku', download_timeout=60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", script, images.url("/drip.png"), str(folder)], env=env)
    try:
        for _ in range(600):  # wait for its temporary file (polling the folder, not timing anything)
            leftovers = [p for p in folder.glob(".sku.part-*")] if folder.exists() else []
            if leftovers or child.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert len(leftovers) == 1, "the copy never started"
    destination = resolve_destination(str(folder))
    check_destination(destination, download_timeout=60)
    assert leftovers[0].exists()  # younger than the deadline plus the margin: it may still be someone's
    aged(leftovers[0], 60 + 601)
    check_destination(destination, download_timeout=60)
    assert list(folder.iterdir()) == []
