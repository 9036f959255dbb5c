"""Batch inputs and results as pure functions: item validation, fingerprints, the per-key report.

A batch is a list of items, each a mapping with a unique ``key`` (e.g. a SKU, also the output file name),
a ``prompt`` and the per-item options of ``createTask``. Every item is checked before any request is sent;
the error names the first bad items by position, key and parameter.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.protocol.inputs import GenerationRequest, build_request, fingerprint
from airflow_provider_gptimage.protocol.text import escape_controls, unicode_problem

#: Fields an item may have.
ITEM_FIELDS = ("key", "prompt", "aspect_ratio", "resolution", "quality", "output_format")
#: Longest key accepted when keys are not file names.
MAX_KEY_CHARS = 200
#: Bad items named in the error message.
SHOWN_PROBLEMS = 10

#: Per-item progress codes, one character per item in the persisted status string.
PENDING, SUCCESS, FAILED, EXISTING = ".", "s", "f", "k"
#: Item states in the report.
STATE_SUCCESS, STATE_EXISTING, STATE_NOT_STARTED = "success", "existing", "not_started"


@dataclass(frozen=True)
class BatchItem:
    """One validated item of a batch.

    :param key: the unique key (the output file name when there is a destination).
    :param request: the validated ``createTask`` request.
    """

    key: str
    request: GenerationRequest

    @cached_property
    def fingerprint(self) -> str:
        """The request's :func:`~.inputs.fingerprint`: tells a re-attached job apart from one made for an
        edited item."""
        return fingerprint(self.request)

    @property
    def digest(self) -> str:
        """The first 12 characters of :attr:`fingerprint`, as progress stored by 0.1.0 names a request."""
        return self.fingerprint[:12]


def decode_requests(requests: object) -> object:
    """Accept the rendered ``requests`` argument: a list, or the text of one (JSON or a Python literal).

    A Jinja template such as ``{{ ti.xcom_pull('plan') }}`` renders to the ``repr`` of the list unless the
    DAG sets ``render_template_as_native_obj=True``; both forms are read back here.
    """
    if not isinstance(requests, str):
        return requests
    try:
        return json.loads(requests)
    except ValueError:
        pass
    try:
        return ast.literal_eval(requests.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return requests


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _item(raw: object, key_rule: Callable[[str], str] | None) -> tuple[BatchItem | None, str | None, list[str]]:
    """Validate one item: return (item, problem, warnings)."""
    if not isinstance(raw, Mapping):
        return None, f"must be a mapping with `key` and `prompt`, got {type(raw).__name__}", []
    key = raw.get("key")
    unknown = sorted(str(name) for name in raw if name not in ITEM_FIELDS)
    if unknown:
        return None, f"unknown field(s) {', '.join(unknown)} (allowed: {', '.join(ITEM_FIELDS)})", []
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_CHARS:
        return None, f"`key` must be a non-empty string of at most {MAX_KEY_CHARS} characters", []
    if unicode_problem(key) or escape_controls(key) != key:
        return None, "`key` must be printable Unicode text (no control characters or lone surrogates)", []
    try:
        if key_rule is not None:
            key_rule(key)
        request, notes = build_request(
            raw.get("prompt"),
            aspect_ratio=raw.get("aspect_ratio"),
            resolution=raw.get("resolution"),
            quality=raw.get("quality"),
            output_format=raw.get("output_format"),
        )
    except GPTImageValidationError as exc:
        name = "key" if exc.parameter == "filename" else exc.parameter
        got = f" (got {_short(raw.get(name))})" if raw.get(name) is not None else ""
        return None, f"`{name}` {exc.rule}{got}", []
    return BatchItem(key=key, request=request), None, notes


def build_batch(requests: object, *, key_rule: Callable[[str], str] | None = None) -> tuple[list[BatchItem], list[str]]:
    """Validate every item and build the batch; nothing is sent.

    :param requests: a sequence of item mappings (or its JSON / Python-literal text).
    :param key_rule: checks a key and returns its canonical form (e.g. a file-name rule when the keys name
        output files); keys whose canonical forms collide are duplicates.
    :return: the items, in order, and the warnings to log (e.g. undocumented aspect ratios).
    :raises GPTImageValidationError: naming ``requests``, the count of bad items and the first of them.
    """
    requests = decode_requests(requests)
    if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
        raise GPTImageValidationError("requests", "must be a list of items with `key` and `prompt`", value=requests)
    if not requests:
        raise GPTImageValidationError("requests", "must hold at least one item")
    items: list[BatchItem] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    warnings: list[str] = []
    for position, raw in enumerate(requests):
        item, problem, notes = _item(raw, key_rule)
        key = raw.get("key") if isinstance(raw, Mapping) else None
        shown = repr(key) if isinstance(key, str) else "?"
        if item is not None:
            canonical = key_rule(item.key) if key_rule is not None else item.key
            if canonical in seen:
                problem = f"`key` duplicates item {seen[canonical]} (keys must be unique)"
            else:
                seen[canonical] = position
                items.append(item)
                warnings.extend(f"item {position} (key {shown}): {note}" for note in notes)
        if problem is not None:
            problems.append(f"item {position} (key {shown}): {problem}")
    if problems:
        shown_problems = "; ".join(problems[:SHOWN_PROBLEMS])
        more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        rule = f"{len(problems)} of {len(requests)} items are invalid: {shown_problems}{more}"
        error = GPTImageValidationError("requests", rule)
        error.problems = problems  # type: ignore[attr-defined]
        raise error
    return items, warnings


def batch_fingerprint(items: Sequence[BatchItem]) -> str:
    """A hash of the whole batch (keys and requests, in order): persisted progress is reused only for it."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.key}\x00{item.digest}\x01".encode())
    return digest.hexdigest()[:24]


def result_row(
    index: int, job_id: str | None, state: str, uris: Sequence[str] = (), error: str | None = None
) -> list[Any]:
    """One compact persisted result: ``[index, job_id, state, uris, error]``."""
    return [index, job_id, state, list(uris), error]


def report(
    items: Sequence[BatchItem],
    status: str,
    rows: Sequence[Sequence[Any]],
    *,
    uris_are_outputs: bool,
) -> dict[str, Any]:
    """The batch's return value: one entry per key (in request order) and the totals.

    :param items: the batch.
    :param status: the progress codes, one per item (:data:`PENDING`, :data:`SUCCESS`...).
    :param rows: persisted result rows (:func:`result_row`); a later row for an index replaces an earlier one.
    :param uris_are_outputs: the rows' URIs are copies in the destination (else the service's result URLs).
    """
    latest: dict[int, Sequence[Any]] = {}
    for written in rows:
        latest[int(written[0])] = written
    entries = []
    for index, item in enumerate(items):
        code = status[index] if index < len(status) else PENDING
        row: Sequence[Any] | None = latest.get(index) if code != PENDING else None
        uris = list(row[3]) if row is not None else []
        entries.append(
            {
                "key": item.key,
                "job_id": row[1] if row is not None else None,
                "state": str(row[2]) if row is not None else STATE_NOT_STARTED,
                "output_uris": uris if uris_are_outputs else [],
                "result_urls": [] if uris_are_outputs else uris,
                "error": row[4] if row is not None else None,
            }
        )
    totals = {
        "total": len(items),
        "succeeded": status.count(SUCCESS),
        "existing": status.count(EXISTING),
        "failed": status.count(FAILED),
        "not_started": len(items) - status.count(SUCCESS) - status.count(EXISTING) - status.count(FAILED),
    }
    return {**totals, "items": entries}


#: Output URIs listed at most in a batch's asset event (the report in XCom lists them all).
MAX_EVENT_URIS = 1000


def batch_asset_extra(report: Mapping[str, Any], destination: str | None = None) -> dict[str, Any]:
    """The ``extra`` of the asset events a batch emits: its totals and the images it wrote in this run.

    :param report: the batch's :func:`report`.
    :param destination: the URI of the destination folder, if any.
    """
    written = [uri for item in report["items"] if item["state"] == STATE_SUCCESS for uri in item["output_uris"]]
    extra: dict[str, Any] = {k: report[k] for k in ("total", "succeeded", "existing", "failed", "not_started")}
    extra["output_uris"] = written[:MAX_EVENT_URIS]
    if len(written) > MAX_EVENT_URIS:
        extra["output_uris_truncated"] = True
    if destination is not None:
        extra["destination"] = destination
    return extra
