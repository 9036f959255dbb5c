"""The shipped example DAGs: they parse, and the catalog runs end to end against the simulator."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import REPO, dagbag_class, needs_dag_test_assets

EXAMPLES = REPO / "example_dags"
PNG = b"\x89PNG\r\n\x1a\n"


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
        )
        return sorted(str(label) for label in session.scalars(query))


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.keys: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img" and values.get("src"):
            self.images.append(str(values["src"]))
        if tag == "figure" and values.get("data-key"):
            self.keys.append(str(values["data-key"]))


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
@needs_dag_test_assets
def test_catalog_end_to_end_with_gallery_and_idempotent_rerun(simulator, monkeypatch, tmp_path):
    """No pool to create first, no logical date (as ``airflow dags trigger`` makes), SKUs in the grid."""
    simulator.configure(generation_seconds=0.2, active_task_limit=5)
    bag = example_bag(
        monkeypatch, AIRFLOW_VAR_GPTIMAGE_CATALOG_ROOT=tmp_path.as_uri(), GPTIMAGE_EXAMPLE_POLL_SECONDS="0.1"
    )
    dag = bag.get_dag("example_gptimage_catalog")
    run = dag.test(logical_date=None)
    assert run.state == "success"
    assert run.logical_date is None
    products = (EXAMPLES / "data" / "products.csv").read_text().splitlines()[1:]
    skus = sorted(line.split(",")[0] for line in products)
    assert mapped_labels(run, "generate") == skus
    (night,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert night.name == run.run_after.date().isoformat()
    assert sorted(p.stem for p in night.glob("*.png")) == skus
    assert simulator.stats().creates == len(skus)
    for sku in skus:
        sidecar = json.loads((night / f"{sku}.json").read_text())
        assert sidecar["filename"] == sku
        assert sidecar["prompt"].startswith("Studio product photograph of")

    refs = _Refs()
    refs.feed((night / "index.html").read_text())
    assert sorted(refs.keys) == skus
    assert sorted(Path(src).stem for src in refs.images) == skus
    for src in refs.images:  # every card shows the image's thumbnail, a small JPEG made when it was written
        assert src.startswith("_thumbs/") and (night / src).read_bytes().startswith(b"\xff\xd8\xff")

    again = dag.test(logical_date=None)
    assert again.state == "success"
    assert simulator.stats().create_attempts == len(skus)  # the re-run paid for nothing
    assert len(list(night.glob("*.png"))) == len(skus)


@pytest.mark.usefixtures("airflow_db", "gptimage_conn")
def test_batch_catalog_end_to_end(simulator, monkeypatch, tmp_path):
    simulator.configure(generation_seconds=0.2, active_task_limit=5)
    bag = example_bag(
        monkeypatch, AIRFLOW_VAR_GPTIMAGE_BATCH_CATALOG_ROOT=tmp_path.as_uri(), GPTIMAGE_EXAMPLE_POLL_SECONDS="0.1"
    )
    run = bag.get_dag("example_gptimage_batch_catalog").test(logical_date=None)
    assert run.state == "success"
    (night,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    products = (EXAMPLES / "data" / "products.csv").read_text().splitlines()[1:]
    assert sorted(p.stem for p in night.glob("*.png")) == sorted(line.split(",")[0] for line in products)
    stats = simulator.stats()
    assert stats.creates == len(products)
    assert stats.max_active_jobs <= 5
    assert (night / "index.html").exists()
