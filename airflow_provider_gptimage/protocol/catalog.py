"""The catalog's decisions, pure: which products need a new image tonight, and whether the night may pay for them.

A catalog is a folder of images named by key (a SKU). Each image's sidecar records the fingerprint of the
request that made it (:func:`~.inputs.fingerprint`: the model and every input field). Tonight's input says
which request each key wants; the manifest says which fingerprint each key has. From the two:

* **new**: a key the catalog does not have;
* **changed**: a key whose kept image was made by another request (a new prompt or parameter);
* **unchanged**: the same fingerprint: the image is reused, nothing is paid;
* **removed**: a key the catalog has that the input no longer lists (reported; archived only when asked).

New and changed keys need a job, except those whose fingerprint already has a job in flight in the
destination's journal (a run that was killed, or another run of the same night): those are re-attached,
not paid again. :func:`check_spend` refuses a plan that would pay for more than ``max_new_images``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from airflow_provider_gptimage.exceptions import GPTImageSpendLimitError, GPTImageValidationError
from airflow_provider_gptimage.protocol.inputs import GenerationRequest, fingerprint

#: The resolution the service uses when a request names none.
DEFAULT_RESOLUTION = "1K"
#: What becomes of a replaced image: ``keep`` (moved to history) or ``drop`` (deleted).
HISTORY_MODES = ("keep", "drop")
#: Keys named in a log line or an error, at most.
SHOWN_KEYS = 5
PLAN_SCHEMA = "gptimage-plan/1"


def sidecar_fingerprint(document: Mapping[str, Any]) -> str | None:
    """The fingerprint of the request a sidecar describes.

    Sidecars record it (``fingerprint``); one written before fingerprints were recorded is read from the
    request it kept (``model``, ``prompt`` and ``parameters``), so upgrading does not regenerate a catalog.

    :return: ``None`` when the sidecar says too little to tell (the image then counts as changed).
    """
    recorded = document.get("fingerprint")
    if isinstance(recorded, str) and recorded:
        return recorded
    prompt, model, parameters = document.get("prompt"), document.get("model"), document.get("parameters")
    if not isinstance(prompt, str) or not isinstance(model, str) or not isinstance(parameters, Mapping):
        return None
    fields = ("aspect_ratio", "resolution", "quality", "output_format")
    if any(key not in fields or not isinstance(value, str) for key, value in parameters.items()):
        return None
    return fingerprint(GenerationRequest(prompt=prompt, model=model, **{k: parameters[k] for k in parameters}))


@dataclass(frozen=True)
class CatalogPlan:
    """What a run will do, decided before anything is created.

    :param new: keys the catalog does not have, in input order.
    :param changed: keys whose kept image was made by another request, in input order.
    :param unchanged: keys whose kept image is reused.
    :param removed: keys the catalog has that the input does not list, sorted.
    :param attached: keys among ``new`` and ``changed`` whose request has a job in flight in the journal
        (re-attached, not paid again).
    """

    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    attached: tuple[str, ...] = ()

    @property
    def to_create(self) -> tuple[str, ...]:
        """Keys that need an image tonight (new, then changed)."""
        return self.new + self.changed

    @property
    def to_pay(self) -> int:
        """Jobs the plan pays for: the keys to create, less those re-attached to a job already paid for."""
        return len(self.to_create) - len(self.attached)

    def counts(self) -> dict[str, int]:
        """The number of keys of each kind."""
        return {
            "new": len(self.new),
            "changed": len(self.changed),
            "unchanged": len(self.unchanged),
            "removed": len(self.removed),
            "attached": len(self.attached),
            "to_pay": self.to_pay,
        }

    def line(self) -> str:
        """The plan in one log line."""
        shown = ", ".join(self.to_create[:SHOWN_KEYS]) + (", ..." if len(self.to_create) > SHOWN_KEYS else "")
        return (
            f"Catalog plan: {len(self.new)} new, {len(self.changed)} changed, {len(self.unchanged)} unchanged, "
            f"{len(self.removed)} removed; {self.to_pay} job(s) to pay for"
            + (f" ({len(self.attached)} re-attached to jobs already paid for)" if self.attached else "")
            + (f": {shown}" if shown else "")
        )

    def to_primitives(self) -> dict[str, Any]:
        """JSON-serialisable form (XCom, ``task_state_store``, the run report)."""
        return {
            "schema": PLAN_SCHEMA,
            "counts": self.counts(),
            "new": list(self.new),
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
            "removed": list(self.removed),
            "attached": list(self.attached),
        }

    @classmethod
    def from_primitives(cls, value: object) -> CatalogPlan | None:
        """Read :meth:`to_primitives` back (``None`` for anything else)."""
        if not isinstance(value, Mapping) or value.get("schema") != PLAN_SCHEMA:
            return None

        def keys(name: str) -> tuple[str, ...]:
            raw = value.get(name)
            return tuple(str(k) for k in raw) if isinstance(raw, list) else ()

        return cls(keys("new"), keys("changed"), keys("unchanged"), keys("removed"), keys("attached"))


#: ``force`` validated: ``True`` (every key), ``False`` (none) or the keys to regenerate.
Force: TypeAlias = bool | frozenset[str]


def check_force(value: object) -> Force:
    """Validate ``force``: ``True`` regenerates every key, ``False`` none, and a list (tuple, set) of keys
    regenerates those keys only, e.g. ``["SKU-7"]`` for one image that came out wrong."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(key, str) and key for key in value):
        return frozenset(value)
    raise GPTImageValidationError("force", "must be True, False, or a list of the keys to regenerate", value=value)


def is_forced(force: Force, key: str) -> bool:
    """Whether ``force`` regenerates ``key``."""
    return force is True or (not isinstance(force, bool) and key in force)


def plan_catalog(
    wanted: Iterable[tuple[str, str]],
    known: Mapping[str, str | None],
    in_flight: Collection[str] = (),
    *,
    force: Force = False,
) -> CatalogPlan:
    """Compare tonight's requests with the catalog.

    :param wanted: ``(key, fingerprint)`` of each input item, in input order.
    :param known: the catalog's fingerprint of each key it holds (``None``: unknown, counts as changed).
    :param in_flight: fingerprints with a job in flight in the journal.
    :param force: regenerate the keys it names, or every key (:func:`check_force`): they count as changed.
    """
    new, changed, unchanged, attached, seen = [], [], [], [], set()
    for key, wanted_fp in wanted:
        seen.add(key)
        if key not in known:
            new.append(key)
        elif is_forced(force, key) or known[key] != wanted_fp:
            changed.append(key)
        else:
            unchanged.append(key)
            continue
        if wanted_fp in in_flight:
            attached.append(key)
    removed = sorted(key for key in known if key not in seen)
    return CatalogPlan(tuple(new), tuple(changed), tuple(unchanged), tuple(removed), tuple(attached))


def check_max_new_images(value: object) -> int | None:
    """Validate ``max_new_images``: ``None`` (no guard) or a whole number of jobs, zero or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GPTImageValidationError("max_new_images", "must be None or a whole number >= 0", value=value)
    return value


def check_history(value: object) -> str:
    """Validate the ``history`` argument (one of :data:`HISTORY_MODES`)."""
    if value not in HISTORY_MODES:
        raise GPTImageValidationError("history", f"must be one of {', '.join(HISTORY_MODES)}", value=value)
    return str(value)


@dataclass(frozen=True)
class CatalogOptions:
    """A catalog run's arguments, validated when the DAG is parsed.

    :param max_new_images: the most jobs a run may pay for (``None``: no guard).
    :param force: regenerate every key (``True``) or the keys it names (:func:`check_force`).
    :param remove_missing: archive keys the input no longer lists.
    :param history: ``keep`` or ``drop`` replaced images.
    """

    max_new_images: int | None = None
    force: Force = False
    remove_missing: bool = False
    history: str = "keep"

    @classmethod
    def of(
        cls,
        *,
        max_new_images: object = None,
        force: object = False,
        remove_missing: object = False,
        history: object = "keep",
    ) -> CatalogOptions:
        """Validate and build (errors name the argument)."""
        guard, keys = check_max_new_images(max_new_images), check_force(force)
        return cls(guard, keys, bool(remove_missing), check_history(history))


def check_spend(plan: CatalogPlan, max_new_images: int | None) -> None:
    """Refuse a plan that pays for more jobs than ``max_new_images``, before anything is created.

    :raises GPTImageSpendLimitError: saying how many jobs, why, and what to do.
    """
    if max_new_images is None or plan.to_pay <= max_new_images:
        return
    sample = ", ".join(plan.changed[:SHOWN_KEYS] or plan.new[:SHOWN_KEYS])
    raise GPTImageSpendLimitError(
        f"The catalog plan needs {plan.to_pay:,} new job(s) ({len(plan.new):,} new and {len(plan.changed):,} "
        f"changed product(s), {len(plan.attached):,} already in flight), more than max_new_images="
        f"{max_new_images:,}; nothing was created. A changed product is one whose prompt or parameters differ "
        f"from the image kept (e.g. {sample}): if that is not expected, check the input (a broken template "
        "changes every prompt); if it is, raise max_new_images, or run with dry_run=True to see the plan.",
        needed=plan.to_pay,
        allowed=max_new_images,
    )


def resolution_mix(resolutions: Iterable[object]) -> dict[str, int]:
    """How many images of each resolution (resolution drives credits); ``None`` is the service default."""
    return dict(sorted(Counter(str(r or DEFAULT_RESOLUTION) for r in resolutions).items()))
