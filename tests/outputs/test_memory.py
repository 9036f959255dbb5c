"""Bounded memory: a 100 MiB image is copied by a child process whose peak RSS barely moves."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from .imageserver import big_image_digest

MIB = 1024 * 1024
IMAGE_MIB = 100
#: Far below the image size: one download chunk, one upload block, allocator slack.
MAX_GROWTH_MIB = 40
#: The repository root: the child runs ``tests.outputs.measure_copy`` as a module from there.
REPO = pathlib.Path(__file__).resolve().parents[2]


def run_copy(url: str, destination: str, conn_id: str | None = None) -> dict:
    args = [sys.executable, "-m", "tests.outputs.measure_copy", url, destination] + ([conn_id] if conn_id else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["reset"]:
        # ru_maxrss is inherited across fork + exec from the (big) pytest process: no honest baseline.
        pytest.skip("cannot reset the peak-RSS mark (/proc/self/clear_refs) on this system")
    return result


@pytest.fixture(scope="module")
def expected_digest() -> str:
    return big_image_digest(IMAGE_MIB)


def test_local_copy_of_100_mib(images, tmp_path, expected_digest):
    result = run_copy(images.url(f"/big.png?mb={IMAGE_MIB}"), str(tmp_path))
    assert result["size"] == IMAGE_MIB * MIB
    assert result["sha256"] == expected_digest
    assert (tmp_path / "big.png").stat().st_size == IMAGE_MIB * MIB
    assert result["growth_kib"] < MAX_GROWTH_MIB * 1024, result


def test_s3_copy_of_100_mib(images, s3_bucket, s3_conn_id, s3_client, expected_digest):
    result = run_copy(images.url(f"/big.png?mb={IMAGE_MIB}"), f"s3://{s3_bucket}/m/", s3_conn_id)
    assert result["sha256"] == expected_digest
    assert s3_client.head_object(Bucket=s3_bucket, Key="m/big.png")["ContentLength"] == IMAGE_MIB * MIB
    assert result["growth_kib"] < MAX_GROWTH_MIB * 1024, result
