"""Where a catalog keeps what it knows, under its root folder.

::

    <root>/<key>.<ext>              the current image of each product (``<key>-1.<ext>``... for a set)
    <root>/<key>.json               its provenance sidecar: the single commit point, with the request fingerprint
    <root>/_thumbs/<key>.jpg        its thumbnail (for galleries)
    <root>/_history/<key>/<when>-<job>/   images (and sidecars) a changed request replaced, or a removed product
    <root>/_catalog/manifest.json   every key: fingerprint, URIs, sha256, size, format, width, height, job id, time
    <root>/_catalog/commits/<key>.json       images committed since the manifest was last written
    <root>/_catalog/journal/<fingerprint>.json   jobs paid for and not yet committed (re-attached by any run)
    <root>/_catalog/runs/<run>.json, latest.json  each run's report

Names starting with ``_`` are the catalog's own; keys may still start with ``_``: a key's files always carry
an extension, and none of these folders do.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

CATALOG_DIR = "_catalog"
HISTORY_DIR = "_history"
MANIFEST_NAME = "manifest.json"
JOURNAL_DIR = "journal"
COMMITS_DIR = "commits"
RUNS_DIR = "runs"
LATEST_REPORT = "latest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=@,-]")


def safe_part(text: str, limit: int = 100) -> str:
    """``text`` as one path component: characters other than ``A-Za-z0-9_.+=@,-`` replaced, no leading dot."""
    return _UNSAFE.sub("_", text).lstrip(".")[:limit] or "_"


def catalog_dir(root: ObjectStoragePath) -> ObjectStoragePath:
    """``<root>/_catalog``."""
    return root / CATALOG_DIR


def manifest_path(root: ObjectStoragePath) -> ObjectStoragePath:
    """``<root>/_catalog/manifest.json``."""
    return root / CATALOG_DIR / MANIFEST_NAME


def journal_dir(root: ObjectStoragePath) -> ObjectStoragePath:
    """``<root>/_catalog/journal``."""
    return root / CATALOG_DIR / JOURNAL_DIR


def commits_dir(root: ObjectStoragePath) -> ObjectStoragePath:
    """``<root>/_catalog/commits``."""
    return root / CATALOG_DIR / COMMITS_DIR


def runs_dir(root: ObjectStoragePath) -> ObjectStoragePath:
    """``<root>/_catalog/runs``."""
    return root / CATALOG_DIR / RUNS_DIR


def history_dir(root: ObjectStoragePath, stem: str, written_at: str, job_id: str) -> ObjectStoragePath:
    """``<root>/_history/<stem>/<when>-<job>``: one replaced version of a key."""
    when = re.sub(r"[^0-9TZ]", "", written_at) or "unknown"
    return root / HISTORY_DIR / stem / f"{when}-{safe_part(job_id, 64)}"
