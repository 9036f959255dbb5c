"""The shipped example DAGs: they parse, and the catalog runs end to end against the simulator."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import REPO, dagbag_class, needs_dag_test_assets, xcom_value

EXAMPLES = REPO / "example_dags"
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


def example_bag(monkeypatch: pytest.MonkeyPatch, **env: str):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dagbag_class()(dag_folder=str(EXAMPLES))


def test_examples_parse_without_errors(monkeypatch):
    bag = example_bag(monkeypatch)
    assert bag.import_errors == {}
    assert {
        "example_gptimage_quickstart",
        "example_gptimage_catalog",
        "example_gptimage_catalog_consumer",
        "example_gptimage_batch_catalog",
    } <= set(bag.dag_ids)
    catalog = bag.dags["example_gptimage_catalog"]
    assert catalog.catchup is False
    generate = catalog.get_task("generate")
    # No pool (a missing one stalls a run silently); deferred tasks count against this bound (Airflow 3.2+).
    assert generate.pool == "default_pool"
    assert generate.max_active_tis_per_dag == 5
    assert generate.map_index_template == "{{ task.filename }}"


def mapped_labels(dag_run, task_id: str) -> list[str]:
    """The labels the grid shows for a mapped task's instances (``rendered_map_index``), sorted."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        query = select(TaskInstance.rendered_map_index).where(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index >= 0,  # a mapped task over nothing leaves one skipped instance, -1
        )
        return sorted(str(label) for label in session.scalars(query))


class GalleryCards(HTMLParser):
    """The cards of a gallery page: each key's mark (``new``, ``changed`` or ``None``), image link and thumbnail."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: dict[str, str | None] = {}
        self.links: list[str] = []
        self.thumbnails: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "figure" and values.get("data-key"):
            self.marks[str(values["data-key"])] = values.get("class")
        elif tag == "a" and values.get("href") and self.marks and len(self.links) < len(self.marks):
            self.links.append(str(values["href"]))
        elif tag == "img" and values.get("src"):
            self.thumbnails.append(str(values["src"]))


def assert_gallery(root: Path, skus: list[str], marks: dict[str, str]) -> None:
    """The gallery shows every product once, tonight's marked, each card a real thumbnail linking to its PNG."""
    cards = GalleryCards()
    cards.feed((root / "index.html").read_text(encoding="utf-8"))
    assert sorted(cards.marks) == skus
    assert {key: mark for key, mark in cards.marks.items() if mark} == marks
    assert sorted(Path(link).stem for link in cards.links) == skus
    for link in cards.links:
        assert (root / link).read_bytes().startswith(PNG)
    for thumbnail in cards.thumbnails:
        assert thumbnail.startswith("_thumbs/") and (root / thumbnail).read_bytes().startswith(JPEG)


def skus_of(products: str) -> list[str]:
    """The SKUs of a product list in ``example_dags/data``, sorted."""
    with (EXAMPLES / "data" / products).open(newline="", encoding="utf-8") as handle:
        return sorted(row["sku"] for row in csv.DictReader(handle))


NIGHT_1, NIGHT_2 = "products.csv", "products-next-night.csv"
CHANGED, ADDED = "MUG-001", "TRY-045"


def test_the_next_night_changes_one_product_and_adds_one():
    """The second product list the demo and the tests run: exactly one description changed, one product added."""
    first = {row["sku"]: row for row in csv.DictReader((EXAMPLES / "data" / NIGHT_1).open(encoding="utf-8"))}
    second = {row["sku"]: row for row in csv.DictReader((EXAMPLES / "data" / NIGHT_2).open(encoding="utf-8"))}
    assert set(second) - set(first) == {ADDED}
    assert set(first) <= set(second)
    assert [sku for sku in first if first[sku] != second[sku]] == [CHANGED]


def night(dag, simulator, monkeypatch: pytest.MonkeyPatch, products: str):
    """Run one night of a catalog example on ``products``; return the run and the creates it sent."""
    monkeypatch.setenv("AIRFLOW_VAR_GPTIMAGE_CATALOG_PRODUCTS", products)
    before = simulator.stats().create_attempts
    run = dag.test(logical_date=None)  # as `airflow dags trigger` makes it: no logical date, no {{ ds }}
    assert run.state == "success"
    assert run.logical_date is None
    return run, simulator.stats().create_attempts - before


def assert_catalog(root: Path, skus: list[str]) -> None:
    """The stable layout: ``<root>/<sku>.png`` and its sidecar for every SKU, no dated folders."""
    assert sorted(p.stem for p in root.glob("*.png")) == skus
    for sku in skus:
        sidecar = json.loads((root / f"{sku}.json").read_text())
        assert sidecar["filename"] == sku
        assert sidecar["prompt"].startswith("Studio product photograph of")
    assert {p.name for p in root.iterdir() if p.is_dir()} <= {"_thumbs", "_history", "_catalog"}
    assert (root / "_catalog" / "manifest.json").exists()


def assert_history_holds_the_old_image(root: Path) -> None:
    """Night 2 moved the changed product's night-1 image (and its sidecar) to ``_history/<sku>/``."""
    old = [p for p in (root / "_history" / CHANGED).rglob("*") if p.suffix == ".png"]
    assert len(old) == 1 and old[0].read_bytes().startswith(PNG)
    sidecars = [json.loads(p.read_text()) for p in (root / "_history" / CHANGED).rglob("*.json")]
    assert any("cream stoneware" in sidecar.get("prompt", "") for sidecar in sidecars)
    assert "charcoal stoneware" in json.loads((root / f"{CHANGED}.json").read_text())["prompt"]


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
@needs_dag_test_assets
def test_the_mapped_catalog_second_night_costs_two_jobs(simulator, monkeypatch, tmp_path):
    """Night 1 generates every product; night 2 (one changed, one added) exactly two; night 3 none.

    No pool to create first, no logical date (as ``airflow dags trigger`` makes), SKUs in the grid.
    """
    simulator.configure(generation_seconds=0.2, active_task_limit=5)
    bag = example_bag(
        monkeypatch, AIRFLOW_VAR_GPTIMAGE_CATALOG_ROOT=tmp_path.as_uri(), GPTIMAGE_EXAMPLE_POLL_SECONDS="0.1"
    )
    dag = bag.get_dag("example_gptimage_catalog")

    run, creates = night(dag, simulator, monkeypatch, NIGHT_1)
    assert creates == len(skus_of(NIGHT_1))
    assert mapped_labels(run, "generate") == skus_of(NIGHT_1)
    assert xcom_value(run, "plan", key="plan")["counts"]["new"] == len(skus_of(NIGHT_1))
    assert_catalog(tmp_path, skus_of(NIGHT_1))

    run, creates = night(dag, simulator, monkeypatch, NIGHT_2)
    assert creates == 2
    assert mapped_labels(run, "generate") == [CHANGED, ADDED]
    plan = xcom_value(run, "plan", key="plan")
    assert plan["counts"]["new"] == 1 and plan["counts"]["changed"] == 1
    assert plan["counts"]["unchanged"] == len(skus_of(NIGHT_1)) - 1
    report = xcom_value(run, "report")
    assert report["counts"]["new"] == 1 and report["counts"]["changed"] == 1 and report["counts"]["failed"] == 0
    assert_catalog(tmp_path, skus_of(NIGHT_2))
    assert_history_holds_the_old_image(tmp_path)
    assert report["gallery_uri"] == (tmp_path / "index.html").as_uri()
    assert_gallery(tmp_path, skus_of(NIGHT_2), {CHANGED: "changed", ADDED: "new"})

    run, creates = night(dag, simulator, monkeypatch, NIGHT_2)
    assert creates == 0
    assert mapped_labels(run, "generate") == []
    assert xcom_value(run, "report")["counts"]["unchanged"] == len(skus_of(NIGHT_2))


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_the_spend_guard_fails_the_plan_before_any_create(simulator, monkeypatch, tmp_path):
    """More new products than ``max_new_images``: the plan fails, nothing is created, nothing is written."""
    from airflow_provider_gptimage.operators.catalog import GPTImageCatalogPlanOperator

    dag = example_bag(monkeypatch, AIRFLOW_VAR_GPTIMAGE_CATALOG_ROOT=(tmp_path / "catalog").as_uri()).get_dag(
        "example_gptimage_catalog"
    )
    plan = dag.get_task("plan")
    assert isinstance(plan, GPTImageCatalogPlanOperator)
    too_many = tmp_path / "too-many.csv"
    rows = [f"SKU-{i:03d},Thing {i},Misc,thing number {i}" for i in range(plan.max_new_images + 1)]
    too_many.write_text("sku,name,category,description\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("AIRFLOW_VAR_GPTIMAGE_CATALOG_PRODUCTS", str(too_many))
    run = dag.test(logical_date=None)
    assert run.state == "failed"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()}["plan"] == "failed"
    assert simulator.stats().create_attempts == 0
    assert not list((tmp_path / "catalog").glob("*.png"))


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_the_batch_catalog_second_night_costs_two_jobs(simulator, monkeypatch, tmp_path):
    simulator.configure(generation_seconds=0.2, active_task_limit=5)
    bag = example_bag(
        monkeypatch, AIRFLOW_VAR_GPTIMAGE_BATCH_CATALOG_ROOT=tmp_path.as_uri(), GPTIMAGE_EXAMPLE_POLL_SECONDS="0.1"
    )
    dag = bag.get_dag("example_gptimage_batch_catalog")
    _, creates = night(dag, simulator, monkeypatch, NIGHT_1)
    assert creates == len(skus_of(NIGHT_1))
    assert simulator.stats().max_active_jobs <= 5
    assert_catalog(tmp_path, skus_of(NIGHT_1))

    run, creates = night(dag, simulator, monkeypatch, NIGHT_2)
    assert creates == 2
    night_2 = xcom_value(run, "generate_all")["catalog"]["counts"]
    assert night_2["new"] == 1 and night_2["changed"] == 1 and night_2["failed"] == 0
    assert night_2["unchanged"] == len(skus_of(NIGHT_1)) - 1
    assert_catalog(tmp_path, skus_of(NIGHT_2))
    assert_history_holds_the_old_image(tmp_path)
    assert_gallery(tmp_path, skus_of(NIGHT_2), {CHANGED: "changed", ADDED: "new"})
