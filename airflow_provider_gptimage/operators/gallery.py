"""Operator that writes a contact sheet (``index.html``) of the images in a folder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class GPTImageGalleryOperator(BaseOperator):
    """Write a contact sheet (``index.html``) of the images in a folder, with each SKU, prompt and job id.

    .. code-block:: python

        GPTImageGalleryOperator(task_id="gallery", folder="s3://catalog/images/{{ ds }}/",
                                folder_conn_id="aws_default", title="Catalog {{ ds }}")

    :param folder: the folder holding the images and their sidecars: a URI or ``ObjectStoragePath`` (templated).
    :param folder_conn_id: connection of the object store; empty means none (templated).
    :param title: the page's title (templated).
    """

    template_fields: Sequence[str] = ("folder", "folder_conn_id", "title")

    def __init__(
        self, *, folder: Any, folder_conn_id: str | None = None, title: str = "Generated images", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.folder = folder
        self.folder_conn_id = folder_conn_id
        self.title = title

    def execute(self, context: Context) -> dict[str, Any]:
        """Write the gallery; return its URI and the number of images it shows."""
        from airflow_provider_gptimage.outputs import resolve_destination
        from airflow_provider_gptimage.outputs.gallery import write_gallery
        from airflow_provider_gptimage.runtime import annotate_asset_events

        uri, count = write_gallery(resolve_destination(self.folder, self.folder_conn_id or None), title=self.title)
        self.log.info("Gallery of %d images: %s", count, uri)
        result = {"uri": uri, "images": count}
        annotate_asset_events(context, self.outlets, {"gallery_uri": uri, "images": count})
        return result
