"""Where images go: the destination folder and its pre-flight check (file names: :mod:`.names`).

Airflow is imported inside the functions, so importing this module stays cheap at DAG-parse time.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import uuid
from typing import TYPE_CHECKING

from airflow_provider_gptimage._compat import has_fs, path_conn_id
from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageValidationError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

log = logging.getLogger(__name__)

#: Protocols whose writes are atomic per object but which have no cheap rename: an image is spooled
#: locally, checked, then uploaded with one put. Every other protocol gets a temporary name and a rename.
OBJECT_STORE_PROTOCOLS = frozenset(
    {"s3", "s3a", "s3n", "gs", "gcs", "abfs", "abfss", "az", "adl", "wasb", "wasbs", "oss", "oci", "r2"}
)
LOCAL_PROTOCOLS = frozenset({"file", "local"})

#: The Airflow provider that registers each well-known scheme with Airflow's object storage.
_PROVIDER_FOR_SCHEME = {
    "s3": "apache-airflow-providers-amazon[s3fs]",
    "s3a": "apache-airflow-providers-amazon[s3fs]",
    "s3n": "apache-airflow-providers-amazon[s3fs]",
    "gs": "apache-airflow-providers-google",
    "gcs": "apache-airflow-providers-google",
    "abfs": "apache-airflow-providers-microsoft-azure",
    "abfss": "apache-airflow-providers-microsoft-azure",
    "adl": "apache-airflow-providers-microsoft-azure",
}

PROBE_PREFIX = ".gptimage-write-check-"


def uses_rename(folder: ObjectStoragePath) -> bool:
    """Tell whether images reach ``folder`` by temporary name and rename (else: spool and one put)."""
    return folder.protocol in LOCAL_PROTOCOLS or folder.protocol not in OBJECT_STORE_PROTOCOLS


def _scheme_error(scheme: str, uri: str) -> GPTImageValidationError:
    from fsspec.registry import known_implementations

    package = _PROVIDER_FOR_SCHEME.get(scheme)
    hint = f"install {package}" if package else "install the Airflow provider that registers it"
    known = known_implementations.get(scheme)
    if known and known.get("err"):
        hint += f" ({known['err']})"
    return GPTImageValidationError(
        "destination",
        f"scheme {scheme!r} has no filesystem in Airflow's object storage: {hint}",
        value=uri,
    )


def _check_scheme(scheme: str, uri: str) -> None:
    """Check that Airflow's object storage knows ``scheme`` and that its fsspec implementation is importable."""
    from fsspec.registry import known_implementations

    if scheme in LOCAL_PROTOCOLS:
        return
    if not has_fs(scheme):
        raise _scheme_error(scheme, uri)
    known = known_implementations.get(scheme)
    if known:
        module = known["class"].rsplit(".", 1)[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise _scheme_error(scheme, uri)


def resolve_destination(destination: str | ObjectStoragePath, conn_id: str | None = None) -> ObjectStoragePath:
    """Turn the operator's ``destination`` into a folder path in Airflow's object storage.

    :param destination: a folder URI (``s3://bucket/prefix/``, ``file:///data/images``, an absolute local
        path such as ``/data/images``) or an :class:`~airflow.sdk.ObjectStoragePath`.
    :param conn_id: the connection for the store (the operator's ``destination_conn_id``); ``None`` keeps
        the path's own connection, or the store's default one.
    :raises GPTImageValidationError: naming ``destination``, for a relative path, a URI without a scheme,
        an unknown scheme (saying which package to install), or a connection given twice.
    """
    from airflow.sdk import ObjectStoragePath

    if isinstance(destination, ObjectStoragePath):
        if conn_id and path_conn_id(destination) and path_conn_id(destination) != conn_id:
            raise GPTImageValidationError(
                "destination",
                f"the path names connection {path_conn_id(destination)!r} but destination_conn_id is {conn_id!r}; "
                "give only one",
            )
        conn_id = conn_id or path_conn_id(destination)
        if destination.protocol and conn_id == path_conn_id(destination):
            _check_scheme(destination.protocol, path_uri(destination))
            return destination
        destination = path_uri(destination) if destination.protocol else destination.path
    if not isinstance(destination, str):
        raise GPTImageValidationError(
            "destination", "must be a folder URI string or an ObjectStoragePath", value=type(destination).__name__
        )
    uri = _as_uri(destination)
    _check_scheme(uri.split("://", 1)[0].lower(), destination)
    return ObjectStoragePath(uri, conn_id=conn_id)


def _as_uri(destination: str) -> str:
    text = destination.strip()
    if not text:
        raise GPTImageValidationError("destination", "must not be empty")
    if "\x00" in text:
        raise GPTImageValidationError("destination", "must not contain a NUL character", value=text)
    if "://" not in text:
        if text.startswith("/"):
            return f"file://{text}"
        raise GPTImageValidationError(
            "destination",
            "must be an absolute folder URI with a scheme, e.g. 's3://bucket/images/' or 'file:///data/images'",
            value=text,
        )
    scheme, rest = text.split("://", 1)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise GPTImageValidationError("destination", f"scheme {scheme!r} is not a valid URI scheme", value=text)
    if scheme.lower() in LOCAL_PROTOCOLS:
        host, _, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise GPTImageValidationError(
                "destination", "a file URI needs an absolute path: write 'file:///abs/path' (three slashes)", value=text
            )
        return f"file:///{path}"
    if not rest.strip("/"):
        raise GPTImageValidationError("destination", "names no bucket or container", value=text)
    return text


def check_destination(
    path: ObjectStoragePath, *, probe_write: bool = True, download_timeout: float | None = None
) -> None:
    """Check, before any job is created (and paid for), that images can be written under ``path``.

    A local folder is created when missing, and the temporary files that killed copies left in it are
    removed once clearly abandoned (see :mod:`~airflow_provider_gptimage.outputs.leftovers`: older than
    ``download_timeout`` plus a margin, and held by no writer). On an object store the bucket (or container) must exist:
    nothing here creates buckets. When ``probe_write`` is true (the default) a small marker object
    (``.gptimage-write-check-<uuid>``) is written and deleted: two cheap requests whose errors tell a
    missing bucket (not found) from refused credentials (permission), where an ``exists()`` probe only
    proves reading and reports refused credentials as "missing" (s3fs swallows the 403). A refused write
    found after the job would cost the credits of an image that cannot be kept. A marker that cannot be
    deleted (write-only permissions) is left with a warning. With ``probe_write=False`` only the bucket's
    existence is checked.

    :param path: the folder, from :func:`resolve_destination`.
    :param probe_write: write and delete the marker; turn off where even a marker write is unwelcome.
    :param download_timeout: the download deadline of the copies (seconds); default: the provider's.
    :raises GPTImageConfigurationError: the bucket is missing, credentials are refused, or writing fails.
    """
    from airflow_provider_gptimage.outputs.deadline import DEFAULT_DOWNLOAD_TIMEOUT
    from airflow_provider_gptimage.outputs.leftovers import ABANDON_MARGIN, sweep_abandoned

    where = f"destination {path_uri(path)}" + (f" (connection {path_conn_id(path)!r})" if path_conn_id(path) else "")
    try:
        if path.protocol in LOCAL_PROTOCOLS:
            path.mkdir(parents=True, exist_ok=True)
            if not path.is_dir():
                raise GPTImageConfigurationError(f"Invalid {where}: it exists but is not a folder.")
            timeout = DEFAULT_DOWNLOAD_TIMEOUT if download_timeout is None else download_timeout
            sweep_abandoned(path, older_than=timeout + ABANDON_MARGIN)
        elif not probe_write and path.bucket and not _bucket(path).exists():
            raise GPTImageConfigurationError(
                f"Invalid {where}: bucket {path.bucket!r} does not exist (or the credentials cannot see it). "
                "Create it, or fix the destination."
            )
        if probe_write:
            marker = path / f"{PROBE_PREFIX}{uuid.uuid4().hex}"
            marker.write_bytes(b"")
            try:
                marker.unlink()
            except OSError as exc:
                log.warning("Could not delete the write-check marker %s: %s", path_uri(marker), exc)
    except GPTImageConfigurationError:
        raise
    except PermissionError as exc:
        raise GPTImageConfigurationError(
            f"Cannot write to {where}: permission or credentials refused ({exc}). Fix the connection's "
            "credentials or the bucket policy."
        ) from exc
    except FileNotFoundError as exc:
        raise GPTImageConfigurationError(
            f"Cannot write to {where}: the bucket or folder does not exist ({exc}). Create it, or fix the destination."
        ) from exc
    except Exception as exc:
        raise GPTImageConfigurationError(f"Cannot write to {where}: {type(exc).__name__}: {exc}") from exc


def _bucket(path: ObjectStoragePath) -> ObjectStoragePath:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"{path.protocol}://{path.bucket}/", conn_id=path_conn_id(path))


def path_uri(path: ObjectStoragePath) -> str:
    """Return ``path`` as a plain URI (no connection id in it), e.g. ``s3://bucket/key``."""
    if path.protocol in LOCAL_PROTOCOLS or not path.protocol:
        return f"file://{path.path}"
    return f"{path.protocol}://{path.path}"
