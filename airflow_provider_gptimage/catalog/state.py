"""What a catalog holds, read cheaply: the manifest, the commits since it was written, the journal's names.

Planning 10,000 products reads three things, whatever the catalog's size: the manifest (one object), the
listing of ``_catalog/commits`` (images committed by runs that did not get to rewrite the manifest) and the
listing of ``_catalog/journal`` (jobs in flight). The sidecars stay the truth: a missing or unreadable
manifest is rebuilt from them (one listing of the root, then every sidecar read), and an image is only ever
reused after its own sidecar says it was made by the same request (see
:func:`~airflow_provider_gptimage.outputs.catalog.find_existing`), so a stale manifest can cost a read, never
a second payment.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.catalog.layout import commits_dir, journal_dir, manifest_path, safe_part
from airflow_provider_gptimage.catalog.records import CatalogEntry, manifest_document, parse_manifest
from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, path_uri
from airflow_provider_gptimage.outputs.store import write_bytes_atomic

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

COMMIT_SCHEMA = "gptimage-commit/1"
#: The largest catalog document read (a manifest of 100,000 keys is about 70 MB).
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024
#: The largest journal entry, commit record or sidecar read (each is about 1 KiB).
SMALL_DOCUMENT_BYTES = 1024 * 1024
#: Reads in parallel when rebuilding from sidecars, or folding many commits.
READ_THREADS = 8


def _read_bytes(path: ObjectStoragePath, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``: on object stores one ranged ``GET`` (``cat_file``).

    Opening the file instead first asks for its size: a ``HEAD``, or, once its folder was listed, a scan of
    the whole cached listing (s3fs), which made reading 10,000 listed sidecars quadratic.
    """
    if path.protocol in LOCAL_PROTOCOLS:
        with open(path.path, "rb") as handle:
            return handle.read(limit)
    try:
        return bytes(path.fs.cat_file(path.path, start=0, end=limit))
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or exc.errno != errno.EINVAL:
            raise
    with path.open("rb") as handle:  # an empty object: no byte range of it exists (S3 answers 416)
        return handle.read(limit)


def read_json(path: ObjectStoragePath, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """The JSON document at ``path``; ``None`` when it is missing, too large or not JSON."""
    try:
        data = _read_bytes(path, max_bytes + 1)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if len(data) > max_bytes:
        log.warning("%s is larger than %d bytes; ignored", path_uri(path), max_bytes)
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def write_json(path: ObjectStoragePath, document: Any) -> None:
    """Write a JSON document atomically (readers see all of it or the previous one)."""
    write_bytes_atomic(path, json.dumps(document, indent=1, sort_keys=True, default=str).encode() + b"\n")


def list_names(folder: ObjectStoragePath) -> list[str]:
    """The names in ``folder`` (one listing); a missing folder or prefix is empty."""
    try:
        return sorted(path.name for path in folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _read_many(paths: Iterable[ObjectStoragePath]) -> list[Any]:
    """Small documents (at most :data:`SMALL_DOCUMENT_BYTES` each), read on :data:`READ_THREADS` threads."""
    with ThreadPoolExecutor(READ_THREADS) as pool:
        return list(pool.map(lambda path: read_json(path, SMALL_DOCUMENT_BYTES), paths))


@dataclass
class CatalogState:
    """The catalog as a run finds it.

    :param root: the catalog's folder.
    :param entries: every key it holds.
    :param folded: commit records folded into ``entries`` (deleted once the manifest is written).
    :param in_flight: fingerprints with a job in the journal.
    :param rebuilt: whether the manifest was rebuilt from the sidecars.
    """

    root: ObjectStoragePath
    entries: dict[str, CatalogEntry]
    folded: list[str] = field(default_factory=list)
    in_flight: frozenset[str] = frozenset()
    rebuilt: bool = False

    def fingerprints(self) -> dict[str, str | None]:
        """Each key's fingerprint."""
        return {key: entry.fingerprint for key, entry in self.entries.items()}

    def save(self) -> None:
        """Rewrite the manifest atomically, then drop the commit records it now holds."""
        write_json(manifest_path(self.root), manifest_document(self.entries))
        folder = commits_dir(self.root)
        for name in self.folded:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        self.folded = []


def load_state(root: ObjectStoragePath, *, rebuild: bool = False) -> CatalogState:
    """Read the manifest (rebuilt from the sidecars when missing, unreadable, or ``rebuild``), fold in the
    commits made since it was written, and list the journal."""
    entries = None if rebuild else parse_manifest(read_json(manifest_path(root)))
    rebuilt = entries is None
    if entries is None:
        entries = rebuild_entries(root)
        log.info("Rebuilt the catalog manifest of %s from %d key(s) of sidecars", path_uri(root), len(entries))
    folded = list_names(commits_dir(root))
    for document in _read_many(commits_dir(root) / name for name in folded):
        entry = commit_entry(document)
        if entry is not None:
            entries[entry.key] = entry
    in_flight = frozenset(name[:-5] for name in list_names(journal_dir(root)) if name.endswith(".json"))
    return CatalogState(root, entries, folded, in_flight, rebuilt)


def rebuild_entries(root: ObjectStoragePath) -> dict[str, CatalogEntry]:
    """Every key whose sidecars and images are all in ``root`` (one listing, then each sidecar read)."""
    names = set(list_names(root))
    sidecars = sorted(n for n in names if n.endswith(".json") and not n.startswith((".", "_catalog")))
    by_key: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for document in _read_many(root / name for name in sidecars):
        if isinstance(document, Mapping) and document.get("schema") == SIDECAR_SCHEMA:
            by_key[str(document.get("filename") or "")].append(document)
    entries = {}
    for key, documents in by_key.items():
        documents = sorted(documents, key=_index)
        count = documents[0].get("count")
        complete = (
            key
            and count == len(documents)
            and [d.get("index") for d in documents] == list(range(1, len(documents) + 1))
            and all(d.get("name") in names for d in documents)
        )
        entry = CatalogEntry.from_sidecars(key, documents) if complete else None
        if entry is not None:
            entries[key] = entry
    return entries


def _index(document: Mapping[str, Any]) -> int:
    index = document.get("index")
    return index if isinstance(index, int) else 0


def commit_name(key: str) -> str:
    """The commit record of a key: ``<key>.json`` (keys are file names already; made safe regardless)."""
    return f"{safe_part(key, 200)}.json"


def record_commit(root: ObjectStoragePath, entry: CatalogEntry) -> None:
    """Note a committed key until the next manifest holds it (a failure is logged: the sidecars still tell)."""
    document = {"schema": COMMIT_SCHEMA, "key": entry.key, "entry": entry.to_primitives()}
    try:
        write_json(commits_dir(root) / commit_name(entry.key), document)
    except Exception as exc:
        log.warning("Could not record the commit of %r in %s: %s", entry.key, path_uri(root), exc)


def commit_entry(document: object) -> CatalogEntry | None:
    """The entry a commit record holds."""
    if not isinstance(document, Mapping) or document.get("schema") != COMMIT_SCHEMA:
        return None
    return CatalogEntry.from_primitives(str(document.get("key")), document.get("entry"))
