"""Fixtures of the plugin tests: DAG runs that really wrote images (local folder and moto S3) with
``dag.test()`` against the simulator, and a real api-server serving them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import S3_CONN_ID, aws_connection, connection_json, run_dag, xcom_value
from tests.ui.apiserver import APIServer

IMAGES_DAG = "gptimage_ui_images"
SECRET_DAG = "gptimage_ui_secret"
#: Images each simulated job returns (so numbering across several images per task is exercised).
IMAGES_PER_JOB = 2
#: What the forged result's last URI names: a file called ``.png`` that is an HTML page.
DECOY = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


@dataclass
class UIRuns:
    """What the DAG runs wrote: run ids, folders, and each task's recorded result and extra links."""

    images_run: str
    secret_run: str
    local: Path
    secret: Path
    bucket: str
    results: dict[str, Any] = field(default_factory=dict)
    links: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_result: Any = None


@pytest.fixture(scope="module")
def ui_runs(
    airflow_db: Path, simulator_server: Any, s3_conn_id: str, s3_client: Any, tmp_path_factory: pytest.TempPathFactory
) -> UIRuns:
    """Run both plugin test DAGs once; every task succeeds."""
    root = tmp_path_factory.mktemp("ui-images")
    bucket = f"ui-{os.urandom(4).hex()}"
    s3_client.create_bucket(Bucket=bucket)
    # The batch operator lists its destination first, and listing an S3 prefix that holds nothing fails
    # (NotADirectoryError from universal-pathlib; a batch-operator issue outside the plugin's scope).
    s3_client.put_object(Bucket=bucket, Key="batch/README.txt", Body=b"catalog images")
    decoy = root / "decoy" / "page.png"
    decoy.parent.mkdir()
    decoy.write_bytes(DECOY)
    simulator_server.reset()
    simulator_server.configure(generation_seconds=0.1, images_per_job=IMAGES_PER_JOB)
    env = {
        "AIRFLOW_CONN_GPTIMAGE_DEFAULT": connection_json(simulator_server.url),
        "GPTIMAGE_UI_LOCAL": str(root / "local"),
        "GPTIMAGE_UI_S3": f"s3://{bucket}/single/",
        "GPTIMAGE_UI_BATCH": f"s3://{bucket}/batch/",
        "GPTIMAGE_UI_S3_CONN": s3_conn_id,
        "GPTIMAGE_UI_SECRET": str(root / "secret"),
        "GPTIMAGE_UI_DECOY": str(decoy),
    }
    with pytest.MonkeyPatch.context() as mp:
        images = run_dag(IMAGES_DAG, mp, **env)
        secret = run_dag(SECRET_DAG, mp, **env)
    simulator_server.configure(images_per_job=1)
    assert images.state == "success", [(ti.task_id, ti.state) for ti in images.get_task_instances()]
    assert secret.state == "success"
    runs = UIRuns(images.run_id, secret.run_id, root / "local", root / "secret", bucket)
    for task_id in ("local", "s3", "batch", "no_copy", "forged"):
        runs.results[task_id] = xcom_value(images, task_id)
        runs.links[task_id] = {
            name: xcom_value(images, task_id, key=f"_link_{cls}")
            for name, cls in (("Image", "GPTImageResultLink"), ("Gallery", "GPTImageGalleryLink"))
        }
    runs.secret_result = xcom_value(secret, "local")
    return runs


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, moto_endpoint: str, request: pytest.FixtureRequest) -> Iterator[APIServer]:
    """A real api-server on the session's metadata DB, with the S3 connection of the test DAGs.

    It boots (about 15 s) while :func:`ui_runs` runs the DAGs.
    """
    env = {
        f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": aws_connection(moto_endpoint),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server = APIServer(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], env)
    try:
        server.service.start()
        request.getfixturevalue("ui_runs")
        yield server.wait()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tokens(api_server: APIServer) -> dict[str, str]:
    """A JWT for each test user."""
    return {user: api_server.token(user) for user in ("reader", "outsider")}
