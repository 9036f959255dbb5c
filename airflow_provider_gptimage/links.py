"""Operator extra link: a button in the Airflow UI that opens the image a task produced."""

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


class GPTImageResultLink(BaseOperatorLink):
    """``Image``: the first copy written to ``destination``, or the service's result URL when none was.

    Airflow evaluates the link in the worker when the task ends and stores it as an XCom
    (``_link_GPTImageResultLink``) that the UI reads. Result URLs expire within about a day; copies in
    ``destination`` do not.
    """

    name = "Image"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the link for the task instance ``ti_key`` from its ``return_value`` XCom."""
        from airflow.sdk.execution_time.xcom import XCom

        return image_link(XCom.get_value(ti_key=ti_key, key="return_value"))
