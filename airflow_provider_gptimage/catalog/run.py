"""A catalog run's two ends: the plan before anything is paid for, and the report once the night is done.

Both the batch operator and the plan/report operators of a mapped catalog call these, so a night reads the
same whichever way it was run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.catalog.history import remove_key
from airflow_provider_gptimage.catalog.layout import LATEST_REPORT, runs_dir, safe_part
from airflow_provider_gptimage.catalog.records import REPORT_SCHEMA, CatalogEntry, utc_now
from airflow_provider_gptimage.catalog.state import CatalogState, load_state, write_json
from airflow_provider_gptimage.outputs.names import is_file_name
from airflow_provider_gptimage.outputs.paths import path_uri
from airflow_provider_gptimage.protocol.catalog import (
    CatalogPlan,
    Force,
    check_spend,
    plan_catalog,
    resolution_mix,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedRun:
    """A plan and the catalog it was made from.

    :param plan: new, changed, unchanged, removed.
    :param state: the catalog as found (its entries give the unchanged keys' images).
    :param wanted: each input key's request fingerprint.
    """

    plan: CatalogPlan
    state: CatalogState
    wanted: dict[str, str]

    def to_primitives(self) -> dict[str, Any]:
        """The plan, with the fingerprints of the keys to create and, for a key forced again with the same
        request, the job its kept image came from (the report tells failures by them)."""
        primitives = self.plan.to_primitives()
        primitives["unchanged"] = []  # counted in "counts"; 10,000 keys need not be stored every night
        entries = self.state.entries
        replacing = {
            key: entries[key].job_id
            for key in self.plan.changed
            if key in entries and entries[key].fingerprint == self.wanted[key]
        }
        return {**primitives, "wanted": {k: self.wanted[k] for k in self.plan.to_create}, "replacing": replacing}


def plan_run(
    root: ObjectStoragePath,
    wanted: Sequence[tuple[str, str]],
    *,
    max_new_images: int | None = None,
    force: Force = False,
    rebuild: bool = False,
) -> PlannedRun:
    """Read the catalog, plan tonight against it, log the plan in one line, and apply the spend guard.

    :param wanted: ``(key, fingerprint)`` of each input item, in input order.
    :param force: every key, or the keys to regenerate (:func:`~.protocol.catalog.check_force`); a key it names
        that tonight's input lacks is logged (a typo regenerates nothing).
    :raises GPTImageSpendLimitError: the plan pays for more than ``max_new_images`` (nothing was created).
    """
    if not isinstance(force, bool) and (unknown := sorted(force - {key for key, _ in wanted})):
        log.warning("force names %d key(s) not in tonight's input, ignored: %s", len(unknown), ", ".join(unknown[:10]))
    state = load_state(root, rebuild=rebuild)
    plan = plan_catalog(wanted, state.fingerprints(), state.in_flight, force=force)
    log.info("%s (%s)", plan.line(), path_uri(root))
    check_spend(plan, max_new_images)
    return PlannedRun(plan, state, dict(wanted))


def close_run(
    root: ObjectStoragePath,
    planned: Mapping[str, Any],
    *,
    run_id: str,
    remove_missing: bool = False,
    keep_history: bool = True,
) -> dict[str, Any]:
    """Fold the night's commits into the manifest (atomically), archive removed keys when asked, and write
    the run's report (``_catalog/runs/<run>.json`` and ``latest.json``); return the report.

    :param planned: :meth:`PlannedRun.to_primitives` of the night's plan (``dry_run``: nothing was to be made,
        so nothing failed).
    """
    plan = CatalogPlan.from_primitives(planned) or CatalogPlan()
    raw_wanted = planned.get("wanted")
    wanted: Mapping[str, Any] = raw_wanted if isinstance(raw_wanted, Mapping) else {}
    state = load_state(root)
    removed: list[str] = []
    if remove_missing:
        for key in plan.removed:
            if not is_file_name(key):  # a key from a tampered manifest never becomes a path to delete
                log.warning("Not removing %r: not a plain file name", key)
                continue
            if key in state.entries and remove_key(root, key, keep=keep_history):
                removed.append(key)
            state.entries.pop(key, None)
    state.save()
    made = [k for k in plan.to_create if _made(state.entries.get(k), wanted.get(k), planned.get("replacing"), k)]
    failed = [] if planned.get("dry_run") else sorted(set(plan.to_create) - set(made))
    resolutions = resolution_mix(state.entries[k].parameters.get("resolution") for k in made)
    raw_counts = planned.get("counts")
    counts: Mapping[str, Any] = raw_counts if isinstance(raw_counts, Mapping) else {}
    unchanged = int(counts.get("unchanged") or len(plan.unchanged))
    report = night_report(plan, made, failed, removed, resolutions, run_id, unchanged)
    report["counts"]["catalog"] = len(state.entries)
    write_report(root, report, run_id)
    return report


def _made(entry: CatalogEntry | None, wanted: object, replacing: object, key: str) -> bool:
    """Whether tonight made ``key``'s images: the catalog holds them for the wanted request and, for a key forced
    again with the same request, from another job than the one its images came from at planning."""
    if entry is None or entry.fingerprint != wanted:
        return False
    return not isinstance(replacing, Mapping) or key not in replacing or entry.job_id != replacing[key]


def night_report(
    plan: CatalogPlan,
    made: Collection[str],
    failed: Sequence[str],
    archived: Sequence[str],
    resolutions: Mapping[str, int],
    run_id: str,
    unchanged: int,
) -> dict[str, Any]:
    """The night in numbers: new, changed, unchanged, removed and failed keys, and the resolution mix."""
    new = [k for k in plan.new if k in made]
    changed = [k for k in plan.changed if k in made]
    return {
        "schema": REPORT_SCHEMA,
        "run_id": run_id,
        "written_at": utc_now(),
        "counts": {
            "new": len(new),
            "changed": len(changed),
            "unchanged": unchanged,
            "removed": len(plan.removed),
            "archived": len(archived),
            "failed": len(failed),
        },
        "new": new,
        "changed": changed,
        "removed": list(plan.removed),
        "archived": list(archived),
        "failed": list(failed),
        "resolutions": dict(resolutions),
    }


def write_report(root: ObjectStoragePath, report: Mapping[str, Any], run_id: str) -> None:
    """Write the report under its run's name and as ``latest.json`` (the gallery marks tonight's images)."""
    folder = runs_dir(root)
    write_json(folder / f"{safe_part(run_id, 150)}.json", report)
    write_json(folder / LATEST_REPORT, report)
