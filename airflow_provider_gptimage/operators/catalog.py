"""Operators around a mapped catalog: plan the night before paying, then report it (manifest, report, gallery).

A mapped catalog is three tasks::

    plan = GPTImageCatalogPlanOperator(task_id="plan", requests=..., destination=ROOT, max_new_images=50)
    images = GPTImageGenerateOperator.partial(task_id="generate", destination=ROOT, ...).expand_kwargs(plan.output)
    report = GPTImageCatalogReportOperator(task_id="report", destination=ROOT, trigger_rule="all_done")
    plan >> images >> report

The plan maps only the new and changed products, so unchanged ones cost no task and no job; the generate
operator still checks each image's own sidecar and the destination's journal, so nothing is paid twice
even when the manifest is stale. (:class:`~.batch.GPTImageBatchGenerateOperator` does all three in one task.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_gptimage.exceptions import GPTImageBatchFailedError, GPTImageError, GPTImageValidationError
from airflow_provider_gptimage.protocol.batch import ITEM_FIELDS, build_batch
from airflow_provider_gptimage.protocol.catalog import check_force, check_max_new_images

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

    from airflow_provider_gptimage.protocol.batch import BatchItem
    from airflow_provider_gptimage.protocol.catalog import Force

#: XCom key of the plan (besides the return value, the generate kwargs of the keys to create).
PLAN_XCOM_KEY = "plan"


class GPTImageCatalogPlanOperator(BaseOperator):
    """Plan a night of a catalog: which products are new, changed, unchanged or removed; refuse to overspend.

    Reads ``<destination>/_catalog/manifest.json`` (rebuilt from the sidecars when missing, at no job's
    cost), compares each item's request fingerprint with the one its kept image was made by, logs the plan in
    one line and pushes it to XCom ``plan``. With ``max_new_images``, a plan that would pay for more jobs
    fails the task before anything is created, saying how many and why.

    .. code-block:: python

        plan = GPTImageCatalogPlanOperator(
            task_id="plan", requests=product_requests(), destination="s3://shop/catalog/", max_new_images=100
        )

    :param requests: items ``{"key", "prompt", "aspect_ratio"?, "resolution"?, "quality"?, "output_format"?}``
        with unique keys (the images' file names), as for the batch operator (templated).
    :param destination: the catalog's folder (templated).
    :param destination_conn_id: connection of its object store (templated).
    :param max_new_images: the most jobs the night may pay for (``None``: no guard).
    :param dry_run: plan only: return no request to generate.
    :param force: ``True`` counts every product as changed (generate every image again); a list of keys,
        e.g. ``["SKU-7"]``, counts those products only.
    :return: the keyword arguments of ``GPTImageGenerateOperator.expand_kwargs`` for the new and changed keys:
        ``filename`` (the key), ``prompt`` and the other fields of each item, and ``force=True`` for a key a
        list of keys names (its kept image, made by the same request, must not be reused). With such a list,
        leave ``force`` out of the generate task's ``partial()``.
    """

    template_fields: Sequence[str] = ("requests", "destination", "destination_conn_id")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        requests: Any,
        destination: Any,
        destination_conn_id: str | None = None,
        max_new_images: int | None = None,
        dry_run: bool = False,
        force: bool | Sequence[str] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.requests = requests
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.max_new_images = check_max_new_images(max_new_images)
        self.plan_only = bool(dry_run)  # BaseOperator.dry_run is a method
        self.force = check_force(force)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Plan; push the plan to XCom ``plan``; return the generate kwargs of the keys to create."""
        from airflow_provider_gptimage.catalog.run import plan_run
        from airflow_provider_gptimage.outputs import validate_filename

        folder = _folder(self.destination, self.destination_conn_id)
        items, warnings = build_batch(self.requests, key_rule=validate_filename)
        for warning in warnings[:10]:
            self.log.warning(warning)
        planned = plan_run(
            folder,
            [(item.key, item.fingerprint) for item in items],
            max_new_images=self.max_new_images,
            force=self.force,
        )
        self.log.info("%s", planned.plan.line())
        context["ti"].xcom_push(key=PLAN_XCOM_KEY, value={**planned.to_primitives(), "dry_run": self.plan_only})
        if self.plan_only:
            self.log.info("Dry run: nothing will be generated")
            return []
        wanted = set(planned.plan.to_create)
        return [_generate_kwargs(item, self.force) for item in items if item.key in wanted]


def _generate_kwargs(item: BatchItem, force: Force) -> dict[str, Any]:
    """``GPTImageGenerateOperator`` arguments of one item: its key as ``filename``, its input fields, and
    ``force`` when a list of keys names it (``force=True`` is the generate task's own to give)."""
    inputs = item.request.body()["input"]
    kwargs = {"filename": item.key, **{k: v for k, v in inputs.items() if k in ITEM_FIELDS}}
    if not isinstance(force, bool) and item.key in force:
        kwargs["force"] = True
    return kwargs


def _folder(destination: Any, conn_id: str | None) -> ObjectStoragePath:
    from airflow_provider_gptimage.outputs import resolve_destination

    if not destination:
        raise GPTImageValidationError("destination", "a catalog needs its folder", value=destination)
    return resolve_destination(destination, conn_id or None)


class GPTImageCatalogReportOperator(BaseOperator):
    """Close a night of a catalog: fold its images into the manifest, write its report and the gallery.

    Run it after the mapped generate task with ``trigger_rule="all_done"`` (a failed product must not hide
    the others); it fails, once everything is written, when the plan failed or a product got no image.
    It rewrites ``<destination>/_catalog/manifest.json`` atomically, moves products the input no
    longer lists to history when ``remove_missing``, writes ``_catalog/runs/<run>.json`` and ``latest.json``
    (new, changed, unchanged, removed and failed products, and the resolution mix), then the gallery
    (``index.html``, paged, thumbnails, tonight's new and changed images marked first).

    .. code-block:: python

        GPTImageCatalogReportOperator(task_id="report", destination="s3://shop/catalog/", trigger_rule="all_done")

    :param destination: the catalog's folder (templated).
    :param destination_conn_id: connection of its object store (templated).
    :param plan_task_id: the plan task whose XCom ``plan`` this night followed.
    :param remove_missing: move removed products to history (by default they are only reported).
    :param history: ``keep`` (to ``_history/``) or ``drop`` removed products' images.
    :param title: the gallery's title (templated).
    :param page_size: cards per gallery page.
    :param gallery: write the gallery.
    :param fail_on_failed: fail this task (after writing everything) when a product got no new image, so the
        DAG run does not look successful; ``False`` only reports them.
    """

    template_fields: Sequence[str] = ("destination", "destination_conn_id", "title")
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        destination: Any,
        destination_conn_id: str | None = None,
        plan_task_id: str = "plan",
        remove_missing: bool = False,
        history: str = "keep",
        title: str = "Catalog",
        page_size: int = 200,
        gallery: bool = True,
        fail_on_failed: bool = True,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_gptimage.protocol.catalog import check_history

        super().__init__(**kwargs)
        self.destination = destination
        self.destination_conn_id = destination_conn_id
        self.plan_task_id = plan_task_id
        self.remove_missing = bool(remove_missing)
        self.history = check_history(history)
        self.title = title
        self.page_size = page_size
        self.gallery = gallery
        self.fail_on_failed = fail_on_failed

    def execute(self, context: Context) -> dict[str, Any]:
        """Write the manifest, the report and the gallery; return the report (and the gallery's URI)."""
        from airflow_provider_gptimage.catalog.run import close_run
        from airflow_provider_gptimage.context import annotate_asset_events

        folder = _folder(self.destination, self.destination_conn_id)
        planned = context["ti"].xcom_pull(task_ids=self.plan_task_id, key=PLAN_XCOM_KEY)
        if not isinstance(planned, dict):
            raise GPTImageError(
                f"The plan task {self.plan_task_id!r} left no plan (it failed, e.g. on its spend guard, or did not "
                "run): nothing was generated tonight and the catalog is unchanged."
            )
        report = close_run(
            folder,
            planned,
            run_id=str(context.get("run_id") or "run"),
            remove_missing=self.remove_missing,
            keep_history=self.history == "keep",
        )
        self.log.info("Catalog night: %s; resolutions %s", report["counts"], report["resolutions"])
        if self.gallery:
            from airflow_provider_gptimage.outputs.gallery import write_gallery

            uri, count = write_gallery(folder, title=self.title, page_size=self.page_size)
            report = {**report, "gallery_uri": uri, "images": count}
            self.log.info("Gallery of %d images: %s", count, uri)
        extra = {"counts": report["counts"], "gallery_uri": report.get("gallery_uri")}
        annotate_asset_events(context, self.outlets, extra)
        if report["failed"] and self.fail_on_failed:
            shown = ", ".join(report["failed"][:10])
            raise GPTImageBatchFailedError(
                f"{len(report['failed'])} product(s) of the catalog got no new image tonight ({shown}); the rest "
                "of the night is in the manifest, the report and the gallery. Clear or retry their generate "
                "tasks: a job already paid for is re-attached, not paid again.",
                failed_keys=tuple(report["failed"][:10]),
            )
        return report
