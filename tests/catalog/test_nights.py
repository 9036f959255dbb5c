"""Nights of a catalog through Airflow (dag.test()), mapped and batch, on a local folder and on S3.

Each scenario counts createTask requests at the simulator: what the catalog owner pays for.
"""

from __future__ import annotations

import json
import time

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_gptimage.catalog.journal import record_job
from airflow_provider_gptimage.catalog.records import JournalEntry
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol.batch import build_batch
from tests.conftest import run_dag, xcom_value

pytestmark = pytest.mark.usefixtures("airflow_db", "gptimage_conn")

PRODUCTS = [{"key": f"SKU-{i}", "prompt": f"studio photo of product {i}", "aspect_ratio": "1:1"} for i in range(4)]
DAGS = ["gptimage_catalog_mapped", "gptimage_catalog_batch"]


def night(dag_id, monkeypatch, root, products, conn_id="", **env):
    settings = {"GPTIMAGE_CATALOG_ITEMS": json.dumps(products), "GPTIMAGE_CATALOG_ROOT": root,
                "GPTIMAGE_CATALOG_CONN_ID": conn_id, "GPTIMAGE_CATALOG_MAX_NEW": "", "GPTIMAGE_CATALOG_DRY_RUN": "",
                "GPTIMAGE_CATALOG_REMOVE": "", "GPTIMAGE_CATALOG_FORCE": ""}  # fmt: skip
    settings.update(env)
    return run_dag(dag_id, monkeypatch, **settings)


def counts(dag_id, run) -> dict:
    """The night's counts, from the report task (mapped) or the batch's return value."""
    if dag_id == "gptimage_catalog_mapped":
        return xcom_value(run, "report")["counts"]
    return xcom_value(run, "generate")["catalog"]["counts"]


def changed(products, index, prompt):
    return [dict(p, prompt=prompt) if i == index else p for i, p in enumerate(products)]


@pytest.mark.parametrize("dag_id", DAGS)
def test_second_night_pays_only_for_the_changed_and_the_new_product(dag_id, simulator, monkeypatch, tmp_path):
    root = tmp_path.as_uri()
    first = night(dag_id, monkeypatch, root, PRODUCTS)
    assert first.state == "success"
    assert simulator.stats().creates == 4
    assert counts(dag_id, first)["new"] == 4
    old_png = (tmp_path / "SKU-1.png").read_bytes()

    simulator.reset()
    added = {"key": "SKU-9", "prompt": "studio photo of a new product", "aspect_ratio": "1:1"}
    tonight = [*changed(PRODUCTS, 1, "studio photo of product 1, now in red"), added]
    second = night(dag_id, monkeypatch, root, tonight)
    assert second.state == "success"
    stats = simulator.stats()
    assert stats.create_attempts == 2  # exactly two jobs paid for
    assert stats.prompt_creates == {"studio photo of product 1, now in red": 1, "studio photo of a new product": 1}
    assert counts(dag_id, second) | {"catalog": 0} == {
        "new": 1, "changed": 1, "unchanged": 3, "removed": 0, "archived": 0, "failed": 0, "catalog": 0
    }  # fmt: skip
    sidecar = json.loads((tmp_path / "SKU-1.json").read_text())
    assert sidecar["prompt"] == "studio photo of product 1, now in red"
    [kept] = (tmp_path / "_history" / "SKU-1").iterdir()  # the previous image and its sidecar, together
    assert (kept / "SKU-1.png").read_bytes() == old_png
    assert json.loads((kept / "SKU-1.json").read_text())["prompt"] == "studio photo of product 1"
    manifest = json.loads((tmp_path / "_catalog" / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == ["SKU-0", "SKU-1", "SKU-2", "SKU-3", "SKU-9"]
    assert manifest["entries"]["SKU-1"]["fingerprint"] == sidecar["fingerprint"]
    latest = json.loads((tmp_path / "_catalog" / "runs" / "latest.json").read_text())
    assert (latest["new"], latest["changed"], latest["resolutions"]) == (["SKU-9"], ["SKU-1"], {"1K": 2})
    assert not list((tmp_path / "_catalog" / "journal").iterdir())  # every paid job committed
    assert not list((tmp_path / "_catalog" / "commits").iterdir())  # folded into the manifest

    simulator.reset()
    third = night(dag_id, monkeypatch, root, tonight)
    assert third.state == "success"
    assert simulator.stats().create_attempts == 0  # nothing changed: nothing paid
    assert counts(dag_id, third)["unchanged"] == 5


@pytest.mark.parametrize("dag_id", DAGS)
def test_a_deleted_manifest_is_rebuilt_from_the_sidecars_with_zero_creates(dag_id, simulator, monkeypatch, tmp_path):
    assert night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS).state == "success"
    (tmp_path / "_catalog" / "manifest.json").unlink()
    simulator.reset()
    again = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS)
    assert again.state == "success"
    assert simulator.stats().create_attempts == 0
    assert counts(dag_id, again)["unchanged"] == 4
    manifest = json.loads((tmp_path / "_catalog" / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == [p["key"] for p in PRODUCTS]


@pytest.mark.parametrize("dag_id", DAGS)
def test_the_spend_guard_fails_the_run_before_any_create(dag_id, simulator, monkeypatch, tmp_path, capsys):
    assert night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS).state == "success"
    simulator.reset()
    broken = [dict(p, prompt=p["prompt"] + " {{ broken }}") for p in PRODUCTS]  # every prompt changed
    run = night(dag_id, monkeypatch, tmp_path.as_uri(), broken, GPTIMAGE_CATALOG_MAX_NEW="2")
    assert run.state == "failed"
    assert simulator.stats().create_attempts == 0
    out = capsys.readouterr()
    assert "GPTImageSpendLimitError" in out.out + out.err
    assert "needs 4 new job(s)" in out.out + out.err and "max_new_images=2" in out.out + out.err


@pytest.mark.parametrize("dag_id", DAGS)
def test_a_dry_run_plans_and_creates_nothing(dag_id, simulator, monkeypatch, tmp_path):
    run = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS, GPTIMAGE_CATALOG_DRY_RUN="1")
    assert run.state == "success"
    assert simulator.stats().create_attempts == 0
    task = "plan" if dag_id == "gptimage_catalog_mapped" else "generate"
    plan = xcom_value(run, task, key="plan") if task == "plan" else xcom_value(run, task)["plan"]
    assert plan["new"] == [p["key"] for p in PRODUCTS]


@pytest.mark.parametrize("dag_id", DAGS)
def test_removed_products_are_reported_and_archived_only_when_asked(dag_id, simulator, monkeypatch, tmp_path):
    assert night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS).state == "success"
    kept = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS[:3])
    assert counts(dag_id, kept)["removed"] == 1 and (tmp_path / "SKU-3.png").exists()
    gone = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS[:3], GPTIMAGE_CATALOG_REMOVE="1")
    assert counts(dag_id, gone)["archived"] == 1
    assert not (tmp_path / "SKU-3.png").exists() and not (tmp_path / "SKU-3.json").exists()
    [archived] = (tmp_path / "_history" / "SKU-3").iterdir()
    assert sorted(p.name for p in archived.iterdir()) == ["SKU-3.json", "SKU-3.png"]
    manifest = json.loads((tmp_path / "_catalog" / "manifest.json").read_text())
    assert "SKU-3" not in manifest["entries"]
    assert simulator.stats().creates == 4


@pytest.mark.parametrize("dag_id", DAGS)
def test_a_catalog_on_s3(dag_id, simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client):
    root = f"s3://{s3_bucket}/shop/catalog/"
    assert night(dag_id, monkeypatch, root, PRODUCTS, s3_conn_id).state == "success"
    simulator.reset()
    second = night(dag_id, monkeypatch, root, changed(PRODUCTS, 2, "product 2 on a blue background"), s3_conn_id)
    assert second.state == "success"
    assert simulator.stats().prompt_creates == {"product 2 on a blue background": 1}
    listed = s3_client.list_objects_v2(Bucket=s3_bucket, Prefix="shop/catalog/_history/SKU-2/")["Contents"]
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed) == ["SKU-2.json", "SKU-2.png"]
    manifest = json.loads(
        s3_client.get_object(Bucket=s3_bucket, Key="shop/catalog/_catalog/manifest.json")["Body"].read()
    )
    assert manifest["entries"]["SKU-2"]["prompt"] == "product 2 on a blue background"


@pytest.mark.parametrize("dag_id", DAGS)
def test_on_s3_no_change_costs_nothing_a_lost_manifest_is_rebuilt_and_the_guard_holds(
    dag_id, simulator, monkeypatch, s3_bucket, s3_conn_id, s3_client
):
    root = f"s3://{s3_bucket}/night/"
    assert night(dag_id, monkeypatch, root, PRODUCTS, s3_conn_id).state == "success"
    simulator.reset()
    assert night(dag_id, monkeypatch, root, PRODUCTS, s3_conn_id).state == "success"
    assert simulator.stats().create_attempts == 0  # no change: nothing paid
    s3_client.delete_object(Bucket=s3_bucket, Key="night/_catalog/manifest.json")
    rebuilt = night(dag_id, monkeypatch, root, PRODUCTS, s3_conn_id)
    assert rebuilt.state == "success" and counts(dag_id, rebuilt)["unchanged"] == len(PRODUCTS)
    assert simulator.stats().create_attempts == 0  # rebuilt from the sidecars: still nothing paid
    s3_client.head_object(Bucket=s3_bucket, Key="night/_catalog/manifest.json")
    added = [*PRODUCTS, *({"key": f"NEW-{i}", "prompt": f"new product {i}"} for i in range(3))]
    guarded = night(dag_id, monkeypatch, root, added, s3_conn_id, GPTIMAGE_CATALOG_MAX_NEW="2")
    assert guarded.state == "failed"
    assert simulator.stats().create_attempts == 0
    assert night(dag_id, monkeypatch, root, added, s3_conn_id, GPTIMAGE_CATALOG_MAX_NEW="3").state == "success"
    assert simulator.stats().prompt_creates == {f"new product {i}": 1 for i in range(3)}


@pytest.mark.parametrize("dag_id", DAGS)
def test_force_regenerates_every_image_and_keeps_the_old_ones(dag_id, simulator, monkeypatch, tmp_path):
    assert night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS).state == "success"
    simulator.reset()
    forced = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS, GPTIMAGE_CATALOG_FORCE="1")
    assert forced.state == "success"
    assert simulator.stats().prompt_creates == {p["prompt"]: 1 for p in PRODUCTS}
    assert counts(dag_id, forced)["changed"] == len(PRODUCTS)
    assert sorted(p.name for p in (tmp_path / "_history").iterdir()) == [p["key"] for p in PRODUCTS]


@pytest.mark.parametrize("dag_id", DAGS)
def test_force_with_keys_regenerates_those_products_only(dag_id, simulator, monkeypatch, tmp_path):
    assert night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS).state == "success"
    old_png = (tmp_path / "SKU-2.png").read_bytes()
    simulator.reset()
    forced = night(dag_id, monkeypatch, tmp_path.as_uri(), PRODUCTS, GPTIMAGE_CATALOG_FORCE='["SKU-2", "SKU-77"]')
    assert forced.state == "success"
    assert simulator.stats().prompt_creates == {"studio photo of product 2": 1}  # the same request, a new image
    assert counts(dag_id, forced) | {"catalog": 0} == {
        "new": 0, "changed": 1, "unchanged": 3, "removed": 0, "archived": 0, "failed": 0, "catalog": 0
    }  # fmt: skip
    [kept] = (tmp_path / "_history" / "SKU-2").iterdir()
    assert (kept / "SKU-2.png").read_bytes() == old_png
    assert (
        json.loads((tmp_path / "SKU-2.json").read_text())["job_id"]
        != json.loads((kept / "SKU-2.json").read_text())["job_id"]
    )


@pytest.mark.parametrize("dag_id", DAGS)
def test_a_journaled_job_whose_images_are_gone_is_paid_again_once_in_the_same_night(
    dag_id, simulator, monkeypatch, tmp_path
):
    # An earlier night paid for SKU-1 and SKU-X and died before copying their images, which are gone by the
    # time tonight copies them. Tonight re-attaches to both and creates one new job for each at once: SKU-1's
    # old job ended long ago (collected at once), SKU-X's is still running (collected when the wait ends).
    # SKU-X's new job expires too: it fails (its next try pays again), and nothing is created a third time.
    products = [*PRODUCTS, {"key": "SKU-X", "prompt": "studio photo of product X [sim:expired]", "aspect_ratio": "1:1"}]
    items = {item.key: item for item in build_batch(products)[0]}
    hook = GPTImageHook()
    for key, generation_seconds in (("SKU-1", 0.0), ("SKU-X", 3.0)):
        simulator.configure(generation_seconds=generation_seconds)
        job_id = hook.create_task(f"last night's {key} [sim:expired]")
        entry = JournalEntry(items[key].fingerprint, key, job_id, time.time() - 1)
        record_job(ObjectStoragePath(tmp_path.as_uri()), entry)
    simulator.configure(generation_seconds=0.3)

    run = night(dag_id, monkeypatch, tmp_path.as_uri(), products)

    assert run.state == "failed"  # SKU-X alone
    creates = simulator.stats().prompt_creates
    assert creates == {
        **{p["prompt"]: 1 for p in products},  # one new job each tonight; SKU-1's and SKU-X's paid again once
        "last night's SKU-1 [sim:expired]": 1,
        "last night's SKU-X [sim:expired]": 1,
    }
    assert sorted(p.name for p in tmp_path.glob("SKU-*.png")) == ["SKU-0.png", "SKU-1.png", "SKU-2.png", "SKU-3.png"]
    assert "product 1" in json.loads((tmp_path / "SKU-1.json").read_text())["prompt"]
    assert not list((tmp_path / "_catalog" / "journal").iterdir())  # no job left to re-attach to
