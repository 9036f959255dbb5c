"""The ``gptimage`` connection: base URL, API key and TLS rules (pure)."""

from __future__ import annotations

import os.path
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_gptimage.exceptions import (
    GPTImageConfigurationError,
)

DEFAULT_HOST = "https://aigptimage.com"
#: The connection every hook, operator, sensor and trigger uses unless told otherwise.
DEFAULT_CONN_ID = "gptimage_default"


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


# --- TLS: the ``verify`` extra ----------------------------------------------------------------------------
#: The connection extra saying how to check the service's certificate (the HTTP provider's name for it).
VERIFY_EXTRA = "verify"
#: The HTTP provider's other spelling, accepted too; ``verify`` wins when both are set.
VERIFY_EXTRA_ALIAS = "verify_ssl"

INSECURE_WARNING = (
    "Connection {conn_id!r} sets the extra `{extra}` to false: the service's TLS certificate is NOT checked, "
    "so anyone on the network path can read the API key and forge answers. Point `{extra}` at your CA "
    "bundle instead."
)


@dataclass(frozen=True)
class TLSSettings:
    """How the API requests check the service's TLS certificate (from the connection's ``verify`` extra).

    :param verify: ``False`` when certificates are not checked at all (insecure).
    :param ca_bundle: absolute path of a PEM file holding the CAs to trust, in place of the default store.
    :param extra: the name of the extra the settings were read from (for messages).
    """

    verify: bool = True
    ca_bundle: str | None = None
    extra: str = field(default=VERIFY_EXTRA, compare=False)

    @property
    def requests_verify(self) -> bool | str:
        """The ``verify=`` argument of a ``requests`` call."""
        return self.ca_bundle if self.ca_bundle is not None else self.verify


#: Certificates checked against the default trust store.
DEFAULT_TLS = TLSSettings()


def tls_settings_from(
    extra: Mapping[str, Any] | None, conn_id: str, *, is_file: Callable[[str], bool]
) -> tuple[TLSSettings, list[str]]:
    """Read the ``verify`` extra: ``true`` (default), ``false``, or the absolute path of a CA bundle file.

    Booleans may be JSON booleans or the strings ``"true"``/``"false"``; a missing, null or blank value
    means ``true``. Return the settings and the warnings to log (``false`` is allowed, with a warning).

    :param extra: the connection's extra, as a mapping.
    :param conn_id: the connection id, for messages.
    :param is_file: tells whether a path names an existing file (the caller's I/O, e.g. ``os.path.isfile``).
    :raises GPTImageConfigurationError: naming the extra, for any other value, a relative path or a path
        that is not an existing file.
    """
    name, value = _verify_extra(extra)
    if value is None:
        return DEFAULT_TLS, []
    if isinstance(value, bool):
        if value:
            return DEFAULT_TLS, []
        return TLSSettings(verify=False, extra=name), [INSECURE_WARNING.format(conn_id=conn_id, extra=name)]
    if not isinstance(value, str):
        raise _verify_error(name, conn_id, value, "it is neither a boolean nor a path")
    path = value.strip()
    if not os.path.isabs(path):
        raise _verify_error(
            name, conn_id, value, "a CA bundle path must be absolute (workers and triggerers run in other folders)"
        )
    if not is_file(path):
        raise _verify_error(name, conn_id, value, "no CA bundle file exists at that path")
    return TLSSettings(ca_bundle=path, extra=name), []


def verify_names_file(extra: Mapping[str, Any] | None) -> bool:
    """Whether the ``verify`` extra names a file (reading the settings then needs file I/O), not a boolean.

    :param extra: the connection's extra, as a mapping.
    """
    return isinstance(_verify_extra(extra)[1], str)


def _verify_extra(extra: Mapping[str, Any] | None) -> tuple[str, object]:
    """Return the name of the ``verify`` extra in use and its value: ``None`` when unset or blank, a bool for
    a boolean (or ``"true"``/``"false"``), else the value as written."""
    extra = extra or {}
    name = VERIFY_EXTRA if extra.get(VERIFY_EXTRA) is not None else VERIFY_EXTRA_ALIAS
    value = extra.get(name)
    if isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return name, None
        if text in ("true", "false"):
            return name, text == "true"
    return name, value


def _verify_error(name: str, conn_id: str, value: object, rule: str) -> GPTImageConfigurationError:
    shown = repr(value) if len(repr(value)) <= 200 else f"{repr(value)[:197]}..."
    return GPTImageConfigurationError(
        f"Invalid connection extra `{name}` of connection {conn_id!r}: {rule} (got {shown}). Set it to true, "
        "false, or the absolute path of a CA bundle file (PEM). Nothing was sent to the API."
    )
