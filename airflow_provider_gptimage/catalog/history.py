"""Replaced and removed images: kept under ``<root>/_history/<key>/<when>-<job>/`` (or dropped, when asked).

When a changed request replaces a key's image, the previous image and its sidecar are copied to history,
then the current sidecar is deleted, and only then is the new image published and its sidecar written. A
reader therefore sees the old pair, then an image without a sidecar (not complete), then the new pair:
never a new image beside an old sidecar. Old images whose names the new set does not reuse (another
extension, another number of images) are deleted once the new set is committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_provider_gptimage.catalog.layout import history_dir
from airflow_provider_gptimage.outputs.catalog import current_sidecars
from airflow_provider_gptimage.outputs.names import sidecar_name
from airflow_provider_gptimage.outputs.paths import LOCAL_PROTOCOLS, path_uri

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)


def _copy(source: ObjectStoragePath, target: ObjectStoragePath) -> None:
    if source.protocol in LOCAL_PROTOCOLS:
        target.parent.mkdir(parents=True, exist_ok=True)
    source.fs.copy(source.path, target.path)


def _unlink(path: ObjectStoragePath) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def set_aside(root: ObjectStoragePath, stem: str, *, job_id: str | None, keep: bool) -> list[str]:
    """Take the current set of ``stem`` out of the catalog before another job's images replace it.

    With ``keep``, its images and sidecars are copied to history first; then its sidecars are deleted (the
    images stay until the new ones replace them). Nothing happens when the set was made by ``job_id``
    itself (a copy made again from the same job).

    :return: the names of the old images, for :func:`drop_leftovers` once the new set is committed.
    """
    documents = current_sidecars(root, stem)
    if not documents or (job_id is not None and documents[0].get("job_id") == job_id):
        return []
    names = [str(d.get("name")) for d in documents if isinstance(d.get("name"), str) and d.get("name")]
    if keep:
        _archive(root, stem, documents, names)
    for name in names:
        _unlink(root / sidecar_name(name))
    return names


def _archive(root: ObjectStoragePath, stem: str, documents: list[dict[str, Any]], names: list[str]) -> None:
    first = documents[0]
    folder = history_dir(root, stem, str(first.get("written_at") or ""), str(first.get("job_id") or "unknown"))
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            _copy(root / name, folder / name)
        with contextlib.suppress(FileNotFoundError):
            _copy(root / sidecar_name(name), folder / sidecar_name(name))
    log.info("Previous image(s) of %r kept in %s", stem, path_uri(folder))


def drop_leftovers(root: ObjectStoragePath, old_names: Iterable[str], new_names: Iterable[str]) -> None:
    """Delete old images (and their thumbnails) that the new set did not overwrite."""
    from airflow_provider_gptimage.outputs.thumbnails import thumbnail_name

    kept = set(new_names)
    for name in old_names:
        if name not in kept:
            _unlink(root / name)
            _unlink(root / thumbnail_name(name))


def remove_key(root: ObjectStoragePath, stem: str, *, keep: bool) -> bool:
    """Take a product out of the catalog (``remove_missing``): to history with ``keep``, else deleted.

    :return: whether it had images.
    """
    names = set_aside(root, stem, job_id=None, keep=keep)
    drop_leftovers(root, names, ())
    return bool(names)
