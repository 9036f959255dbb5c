"""The ``gptimage`` connection: base URL and API key rules (pure)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from airflow_provider_gptimage.exceptions import (
    GPTImageConfigurationError,
)

DEFAULT_HOST = "https://aigptimage.com"


def base_url_from(host: str | None, *, schema: str | None = None, port: int | None = None) -> str:
    """Return the API base URL for a connection's host (default :data:`DEFAULT_HOST`).

    A host with a scheme (``http://127.0.0.1:8089``) is used as is; a bare host needs the connection's
    schema (``http`` or ``https``), so that plain HTTP is never chosen by accident.
    """
    host = (host or "").strip().rstrip("/")
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        if schema not in ("http", "https"):
            raise GPTImageConfigurationError(
                f"Invalid connection `host` {host!r}: it has no scheme. Write it as 'https://{host}' "
                "(or set the connection's schema to 'https')."
            )
        host = f"{schema}://{host}"
    scheme = host.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise GPTImageConfigurationError(f"Invalid connection `host`: scheme {scheme!r} is not http or https.")
    if port:
        parts = urlsplit(host)
        try:
            has_port = parts.port is not None
        except ValueError as exc:
            raise GPTImageConfigurationError(f"Invalid connection `host` {host!r}: {exc}.") from exc
        if not has_port:
            host = urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))
    return host


def api_key_from(password: str | None, conn_id: str) -> str:
    """Return the API key kept in the connection's password, or say how to set it."""
    key = (password or "").strip()
    if not key:
        raise GPTImageConfigurationError(
            f"Connection {conn_id!r} has no API key: put the key (sk-...) in the connection's password, e.g. "
            'AIRFLOW_CONN_GPTIMAGE_DEFAULT=\'{"conn_type": "gptimage", "password": "sk-..."}\'.'
        )
    if any(ch in key for ch in "\r\n"):
        raise GPTImageConfigurationError(f"Connection {conn_id!r}: the API key contains a line break.")
    return key
