"""Operator extra links: buttons in the Airflow UI that open the images a task produced.

Airflow evaluates a link in the worker when the task ends and stores it as an XCom (``_link_<class>``)
that the UI reads. On Airflow 3.1+ both links point at the provider's plugin in the api-server
(:mod:`airflow_provider_gptimage.ui`), which serves the copies in ``destination`` behind Airflow's own
login: ``http(s)`` links (or same-origin ones when ``[api] base_url`` is unset) that the UI shows and
that never expire. Elsewhere, and for a task that kept no copy, "Image" is the stored URI or the
service's result URL (which expires within about a day).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


def image_link(result: Any) -> str:
    """Return where a task's result points: its first copy in ``destination``, else the first result URL.

    :param result: the task's ``return_value`` XCom (see :func:`~.protocol.events.result_payload`, or a batch's
        report, :func:`~.protocol.batch.report`: its first item with an image).
    :return: the URI, or ``""`` when the task produced no image (failed, fire-and-forget, still running).
    """
    if not isinstance(result, Mapping):
        return ""
    items = result.get("items")
    if isinstance(items, list):  # a batch's report: the first item with an image
        return next((link for link in map(image_link, items) if link), "")
    for key in ("output_uris", "result_urls"):
        values = result.get(key)
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0]
    return ""


def first_served_image(result: Any) -> int | None:
    """The number of the first image of ``result`` the plugin serves, or ``None`` when it serves none."""
    from airflow_provider_gptimage.ui.results import recorded_images

    for number, image in enumerate(recorded_images(result)):
        if image.servable:
            return number
    return None


def plugin_image_link(result: Any, ti_key: TaskInstanceKey, *, base_url: str | None = None) -> str:
    """The plugin's URL of the first stored image of ``result`` (``""`` when it has none).

    :param result: the task's ``return_value`` XCom.
    :param ti_key: the task instance.
    :param base_url: the api-server's base URL (default: ``[api] base_url``; empty: a same-origin link).
    """
    from airflow_provider_gptimage.ui import urls

    number = first_served_image(result)
    if number is None:
        return ""
    path = urls.image_path(ti_key.dag_id, ti_key.run_id, ti_key.task_id, ti_key.map_index, number)
    return urls.absolute(path, base_url)


def _result(ti_key: TaskInstanceKey) -> Any:
    """The task instance's return value; ``None`` while it is deferred.

    Airflow evaluates the links at every deferral too (the task runner's ``finalize``, with the running task
    instance as ``ti_key``): a deferred task has no return value yet, and asking for it costs a round trip to
    the API server and logs an ``XCom not found`` error in the task's log at each deferral of a batch.
    """
    if getattr(ti_key, "state", None) == "deferred":  # TaskInstanceState is a str enum
        return None
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key="return_value")


class GPTImageResultLink(BaseOperatorLink):
    """``Image``: the first image the task kept in ``destination``, through the provider's plugin (Airflow
    3.1+); else the stored URI, or the service's result URL when no copy was kept."""

    name = "Image"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the link for the task instance ``ti_key`` from its ``return_value`` XCom."""
        from airflow_provider_gptimage.ui.urls import ui_sessions

        result = _result(ti_key)
        return (plugin_image_link(result, ti_key) if ui_sessions() else "") or image_link(result)


class GPTImageGalleryLink(BaseOperatorLink):
    """``Gallery``: every image the tasks of the DAG run kept, in the provider's plugin (Airflow 3.1+; empty
    when this task kept no image)."""

    name = "Gallery"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the gallery of the run of ``ti_key`` when this task instance kept an image."""
        from airflow_provider_gptimage.ui import urls

        if not urls.ui_sessions() or first_served_image(_result(ti_key)) is None:
            return ""
        return urls.absolute(urls.run_path(ti_key.dag_id, ti_key.run_id))
