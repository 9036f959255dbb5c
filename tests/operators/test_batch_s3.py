"""GPTImageBatchGenerateOperator into the S3-compatible server (moto) through dag.test(): a nightly run into a
fresh, empty prefix (the README's ``{{ ds }}`` pattern), then a re-run that finds everything complete."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_dag, xcom_value

pytestmark = pytest.mark.usefixtures("airflow_db", "gptimage_conn")


def keys(s3_client, bucket: str, prefix: str = "") -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def run(monkeypatch, destination: str, conn_id: str, n: int = 4):
    return run_dag(
        "gptimage_batch",
        monkeypatch,
        GPTIMAGE_BATCH_N=str(n),
        GPTIMAGE_BATCH_DESTINATION=destination,
        GPTIMAGE_BATCH_DESTINATION_CONN_ID=conn_id,
    )


def test_a_batch_into_an_empty_prefix_then_a_rerun(simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client):
    destination = f"s3://{s3_bucket}/catalog/2026-01-01/"
    assert keys(s3_client, s3_bucket) == []  # nothing under the prefix, not even the bucket's other keys

    first = run(monkeypatch, destination, s3_conn_id)
    assert first.state == "success", {ti.task_id: ti.state for ti in first.get_task_instances()}
    result = xcom_value(first, "generate")
    assert (result["succeeded"], result["existing"]) == (4, 0)
    expected = [f"catalog/2026-01-01/sku-{i:04d}.{ext}" for i in range(4) for ext in ("json", "png")]
    thumbnails = [f"catalog/2026-01-01/_thumbs/sku-{i:04d}.jpg" for i in range(4)]
    assert [k for k in keys(s3_client, s3_bucket) if "/_catalog/" not in k] == thumbnails + expected  # no marker left
    sidecar = json.loads(s3_client.get_object(Bucket=s3_bucket, Key=expected[0])["Body"].read())
    assert (sidecar["format"], sidecar["provenance"]["batch_key"]) == ("png", "sku-0000")
    assert "ETag" in sidecar["stamp"]
    assert simulator.stats().creates == 4

    sidecars = {key: s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() for key in expected[::2]}

    simulator.reset()
    second = run(monkeypatch, destination, s3_conn_id)
    assert second.state == "success"
    assert simulator.stats().create_attempts == 0  # nothing generated again...
    assert xcom_value(second, "generate")["existing"] == 4
    assert [k for k in keys(s3_client, s3_bucket) if "/_" not in k] == expected
    for key, before in sidecars.items():  # ...found by stamp alone: no digest fallback re-stamped a sidecar
        assert s3_client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == before


def test_a_bucket_with_other_prefixes_is_no_catalog_of_this_one(
    simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client
):
    s3_client.put_object(Bucket=s3_bucket, Key="catalog/2025-12-31/sku-0000.json", Body=b"{}")
    dr = run(monkeypatch, f"s3://{s3_bucket}/catalog/2026-01-01/", s3_conn_id, n=2)
    assert dr.state == "success"
    assert simulator.stats().creates == 2
    assert [k for k in keys(s3_client, s3_bucket, "catalog/2026-01-01/") if "/_" not in k] == [
        f"catalog/2026-01-01/sku-{i:04d}.{ext}" for i in range(2) for ext in ("json", "png")
    ]
