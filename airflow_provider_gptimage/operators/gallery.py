"""Operator that writes a contact sheet (``index.html`` and further pages) of the images in a folder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.outputs.gallery_pages import DEFAULT_PAGE_SIZE

if TYPE_CHECKING:
    from airflow.sdk import Context


class GPTImageGalleryOperator(BaseOperator):
    """Write a contact sheet (``index.html``) of the images in a folder, with each SKU, prompt and job id.

    A catalog folder's manifest (``_catalog/manifest.json``) is read once instead of every sidecar; the
    latest run's new and changed images come first, marked; cards show thumbnails (``_thumbs/``) when kept.
    Past ``page_size`` images, further pages follow: ``index-2.html``, ``index-3.html``...

    .. code-block:: python

        GPTImageGalleryOperator(task_id="gallery", folder="s3://catalog/images/",
                                folder_conn_id="aws_default", title="Catalog {{ ds }}")

    :param folder: the folder holding the images and their sidecars: a URI or ``ObjectStoragePath`` (templated).
    :param folder_conn_id: connection of the object store; empty means none (templated).
    :param title: the page's title (templated).
    :param page_size: images per page (at least 1).
    """

    template_fields: Sequence[str] = ("folder", "folder_conn_id", "title")

    def __init__(
        self,
        *,
        folder: Any,
        folder_conn_id: str | None = None,
        title: str = "Generated images",
        page_size: int = DEFAULT_PAGE_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise GPTImageValidationError("page_size", "must be a positive integer", value=page_size)
        self.folder = folder
        self.folder_conn_id = folder_conn_id
        self.title = title
        self.page_size = page_size

    def execute(self, context: Context) -> dict[str, Any]:
        """Write the gallery; return its URI, the number of images it shows and the number of pages."""
        from airflow_provider_gptimage.context import annotate_asset_events
        from airflow_provider_gptimage.outputs import resolve_destination
        from airflow_provider_gptimage.outputs.gallery import write_gallery
        from airflow_provider_gptimage.outputs.gallery_pages import page_count

        folder = resolve_destination(self.folder, self.folder_conn_id or None)
        uri, count = write_gallery(folder, title=self.title, page_size=self.page_size)
        pages = page_count(count, self.page_size)
        self.log.info("Gallery of %d images in %d page(s): %s", count, pages, uri)
        result = {"uri": uri, "images": count, "pages": pages}
        annotate_asset_events(context, self.outlets, {"gallery_uri": uri, "images": count, "pages": pages})
        return result
