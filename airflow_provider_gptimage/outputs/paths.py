"""Where images go: the destination folder, its pre-flight check, and the names of the files.

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

#: Extensions by content type (``image/jpeg`` is written ``.jpg``).
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/pjpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
}
_IMAGE_SUFFIX = re.compile(r"\.(png|jpe?g|webp|gif|avif)$", re.IGNORECASE)
_SAFE_NAME = re.compile(r"[^\W][\w.+=@,-]*")
_UNSAFE_CHARS = re.compile(r"[^\w.+=@,-]")
MAX_FILENAME_CHARS = 200
SIDECAR_SUFFIX = ".json"
PROBE_PREFIX = ".gptimage-write-check-"


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


def check_destination(path: ObjectStoragePath, *, probe_write: bool = True) -> None:
    """Check, before any job is created (and paid for), that images can be written under ``path``.

    A local folder is created when missing. On an object store the bucket (or container) must exist:
    nothing here creates buckets. When ``probe_write`` is true (the default) a small marker object
    (``.gptimage-write-check-<uuid>``) is written and deleted: two cheap requests whose errors tell a
    missing bucket (not found) from refused credentials (permission), where an ``exists()`` probe only
    proves reading and reports refused credentials as "missing" (s3fs swallows the 403). A refused write
    found after the job would cost the credits of an image that cannot be kept. A marker that cannot be
    deleted (write-only permissions) is left with a warning. With ``probe_write=False`` only the bucket's
    existence is checked.

    :param path: the folder, from :func:`resolve_destination`.
    :param probe_write: write and delete the marker; turn off where even a marker write is unwelcome.
    :raises GPTImageConfigurationError: the bucket is missing, credentials are refused, or writing fails.
    """
    where = f"destination {path_uri(path)}" + (f" (connection {path_conn_id(path)!r})" if path_conn_id(path) else "")
    try:
        if path.protocol in LOCAL_PROTOCOLS:
            path.mkdir(parents=True, exist_ok=True)
            if not path.is_dir():
                raise GPTImageConfigurationError(f"Invalid {where}: it exists but is not a folder.")
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


def validate_filename(filename: str) -> str:
    """Check a user-given base name (e.g. a product SKU) and return it without an image extension.

    Allowed: letters, digits and ``_ . + = @ , -``, not starting with a dot or a symbol, at most 200
    characters. A trailing ``.png``/``.jpg``/``.webp`` is dropped: the extension comes from the image.

    :raises GPTImageValidationError: naming ``filename``: path separators, ``..``, NUL, hidden names...
    """
    if not isinstance(filename, str):
        raise GPTImageValidationError("filename", "must be a string", value=type(filename).__name__)
    if any(sep in filename for sep in ("/", "\\", "\x00")) or filename in (".", ".."):
        raise GPTImageValidationError(
            "filename", "must be a plain name: no path separators, '..' or NUL (path traversal)", value=filename
        )
    stem = _IMAGE_SUFFIX.sub("", filename.strip())
    if not stem or len(stem) > MAX_FILENAME_CHARS:
        raise GPTImageValidationError("filename", f"must have 1 to {MAX_FILENAME_CHARS} characters", value=filename)
    if not _SAFE_NAME.fullmatch(stem):
        raise GPTImageValidationError(
            "filename",
            "may only hold letters, digits and _ . + = @ , - and must start with a letter, digit or _",
            value=filename,
        )
    return stem


def default_stem(job_id: str) -> str:
    """The base name used without ``filename``: the job id, with unsafe characters replaced."""
    stem = _UNSAFE_CHARS.sub("_", job_id.strip()).lstrip(".")[:MAX_FILENAME_CHARS]
    return stem or "image"


def output_name(stem: str, index: int, count: int, extension: str) -> str:
    """Name of image ``index`` (1-based) of ``count``: ``stem.ext`` alone, ``stem-<index>.ext`` in a set."""
    if not re.fullmatch(r"[a-z0-9]{1,8}", extension):
        raise GPTImageValidationError("extension", "must be 1 to 8 lowercase letters or digits", value=extension)
    return f"{stem}.{extension}" if count == 1 else f"{stem}-{index}.{extension}"


def sidecar_name(image_name: str) -> str:
    """Name of the provenance sidecar of an image: ``sku-1.png`` -> ``sku-1.json``."""
    return image_name.rsplit(".", 1)[0] + SIDECAR_SUFFIX


def output_names(job_id: str, count: int, filename: str | None, extension: str) -> list[str]:
    """Names of every image of a job.

    :param job_id: the job id; the default base name.
    :param count: how many images the job returned.
    :param filename: a base name given by the user (templated in the operator), e.g. a SKU.
    :param extension: ``png``, ``jpg`` or ``webp`` (see :data:`EXTENSIONS`).
    """
    if count < 1:
        raise GPTImageValidationError("count", "must be at least 1", value=count)
    stem = validate_filename(filename) if filename is not None else default_stem(job_id)
    return [output_name(stem, i, count, extension) for i in range(1, count + 1)]
