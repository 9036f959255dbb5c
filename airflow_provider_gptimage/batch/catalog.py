"""A batch's duties to the catalog at its destination: plan before paying, journal each job, report the night.

See :mod:`airflow_provider_gptimage.catalog`: the batch plans from the manifest (unchanged keys are reused
without reading their sidecars), refuses a plan over ``max_new_images`` before any create, re-attaches to
jobs any run journaled for the same request, journals each job it creates as soon as its id is known,
records each commit, and at the end folds the night into the manifest and writes the run's report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.batch.records import ItemStatus, JobInFlight, ResultRow
from airflow_provider_gptimage.catalog.commit import committed
from airflow_provider_gptimage.catalog.journal import end_job, find_job, record_job
from airflow_provider_gptimage.catalog.records import JournalEntry
from airflow_provider_gptimage.catalog.run import PlannedRun, close_run, plan_run
from airflow_provider_gptimage.protocol.catalog import CatalogOptions

if TYPE_CHECKING:
    import logging

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.batch.store import BatchStore, Progress
    from airflow_provider_gptimage.protocol.batch import BatchItem

#: ``task_state_store`` key holding the try's plan (for the night's report).
PLAN_KEY = "catalog_plan"


class BatchCatalog:
    """The catalog side of one batch run.

    :param folder: the destination (the catalog's root).
    :param options: the operator's arguments.
    :param store: the batch's store (the plan is kept there across resumes).
    :param log: the task's logger.
    """

    def __init__(self, folder: ObjectStoragePath, options: CatalogOptions, store: BatchStore, log: Any) -> None:
        self.folder, self.options, self.store, self.log = folder, options, store, log

    def plan(self, items: Sequence[BatchItem]) -> PlannedRun:
        """Plan the try against the catalog (raises the spend guard's error before anything is created)."""
        return plan_run(
            self.folder,
            [(item.key, item.fingerprint) for item in items],
            max_new_images=self.options.max_new_images,
            force=self.options.force,
        )

    def begin(self, items: Sequence[BatchItem], progress: Progress) -> list[ResultRow]:
        """Plan a new try: unchanged keys are done (their images reused), keys with a journaled job are put in
        flight; return the rows of the reused keys."""
        planned = self.plan(items)
        self.store.set(PLAN_KEY, planned.to_primitives())
        unchanged, attached = set(planned.plan.unchanged), set(planned.plan.attached)
        rows = []
        for index, item in enumerate(items):
            if progress.statuses[index] is not ItemStatus.PENDING or item.key in progress.flight:
                continue
            if item.key in unchanged:
                entry = planned.state.entries[item.key]
                progress.statuses[index] = ItemStatus.EXISTING
                rows.append(ResultRow(index, entry.job_id, "existing", tuple(i.uri for i in entry.images)))
            elif item.key in attached:
                found = find_job(self.folder, item.fingerprint)
                if found is not None:
                    self.log.info("Re-attaching key %r to journaled job %s", item.key, found.job_id)
                    progress.flight[item.key] = JobInFlight(found.job_id, found.created_at, item.fingerprint)
        return rows

    def journal(self, item: BatchItem, job: JobInFlight) -> None:
        """Journal a job just created (one object per request)."""
        record_job(self.folder, JournalEntry(item.fingerprint, item.key, job.job_id, job.created_at))

    def committed(self, item: BatchItem, job_id: str, outputs: Sequence[Mapping[str, Any]]) -> None:
        """Record a key's new images and end its journal entry."""
        committed(self.folder, item.key, item.request, item.fingerprint, job_id, outputs)

    def failed(self, item: BatchItem, job_id: str) -> None:
        """End the journal entry of a job that failed (the next run creates a new one)."""
        end_job(self.folder, item.fingerprint, job_id)

    def close(self, run_id: str) -> dict[str, Any]:
        """Fold the night into the manifest and write the run's report; return it."""
        planned = self.store.get(PLAN_KEY)
        return close_run(
            self.folder,
            planned if isinstance(planned, Mapping) else {},
            run_id=run_id,
            remove_missing=self.options.remove_missing,
            keep_history=self.options.history == "keep",
        )


def log_plan(log: logging.Logger | Any, planned: PlannedRun) -> dict[str, Any]:
    """A dry run's result: the plan, logged and returned; nothing created."""
    log.info("Dry run: %s", planned.plan.line())
    return {"dry_run": True, "plan": planned.to_primitives()}
