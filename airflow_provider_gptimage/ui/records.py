"""What the metadata DB recorded for task instances: their results and a batch's storage connection.

Runs in the api-server (blocking SQLAlchemy calls: the routes that use it are sync, so FastAPI runs them
in its thread pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.ui.results import StoredImage, is_batch, recorded_images

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

RESULT_KEY = "return_value"
#: The batch operator's templated argument naming the connection of its ``destination``.
CONN_FIELD = "destination_conn_id"


@dataclass(frozen=True)
class TaskResult:
    """The recorded result of one task instance.

    :param task_id: the task.
    :param map_index: its map index (``-1`` when not mapped).
    :param value: the deserialised ``return_value`` XCom.
    """

    task_id: str
    map_index: int
    value: Any


def _results(
    session: Session, dag_id: str, run_id: str, task_id: str | None, map_index: int | None
) -> list[TaskResult]:
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    query = select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id, XComModel.key == RESULT_KEY)
    if task_id is not None:
        query = query.where(XComModel.task_id == task_id)
    if map_index is not None:
        query = query.where(XComModel.map_index == map_index)
    query = query.order_by(XComModel.task_id, XComModel.map_index)
    return [TaskResult(row.task_id, row.map_index, XComModel.deserialize_value(row)) for row in session.scalars(query)]


def task_result(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> TaskResult | None:
    """The recorded result of one task instance, or ``None`` when it recorded none."""
    found = _results(session, dag_id, run_id, task_id, map_index)
    return found[0] if found else None


def run_results(session: Session, dag_id: str, run_id: str) -> list[TaskResult]:
    """The recorded results of every task instance of a DAG run, by task id then map index."""
    return _results(session, dag_id, run_id, None, None)


def rendered_conn_id(session: Session, dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """The ``destination_conn_id`` a task instance rendered (``None``: none, or no longer kept).

    Airflow keeps the rendered fields of the last ``[core] max_num_rendered_ti_fields_per_task`` runs of a
    task (30 by default); older runs fall back on the store's default connection.
    """
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from sqlalchemy import select

    fields = session.scalar(
        select(RTIF.rendered_fields).where(
            RTIF.dag_id == dag_id, RTIF.run_id == run_id, RTIF.task_id == task_id, RTIF.map_index == map_index
        )
    )
    value = fields.get(CONN_FIELD) if isinstance(fields, dict) else None
    return value if isinstance(value, str) and value.strip() and value != "None" else None


def images_of(session: Session, dag_id: str, run_id: str, result: TaskResult) -> list[StoredImage]:
    """The images a task instance's result names, with the connection each is read through."""
    default = None
    if is_batch(result.value):
        default = rendered_conn_id(session, dag_id, run_id, result.task_id, result.map_index)
    return recorded_images(result.value, default_conn_id=default)
