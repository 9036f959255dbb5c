"""TLS of the API requests: the connection's ``verify`` extra made into what requests and aiohttp take.

What the extra may say is decided in :mod:`.protocol.connection`; this module does the I/O. A CA bundle
is loaded into one :class:`ssl.SSLContext` per file (loaded again only when the file changes), shared by
every hook and trigger of the process: thousands of triggers trusting one CA build it once, never per
poll, and share one connection pool (aiohttp keys pooled connections by their SSL context).
"""

from __future__ import annotations

import os
import ssl
import threading

from airflow_provider_gptimage.exceptions import GPTImageConfigurationError, GPTImageTLSError
from airflow_provider_gptimage.protocol.connection import VERIFY_EXTRA, TLSSettings

_lock = threading.Lock()
#: CA bundle path -> (the file's (mtime, size, inode) when loaded, the context built from it).
_contexts: dict[str, tuple[tuple[int, int, int], ssl.SSLContext]] = {}


def aiohttp_ssl(settings: TLSSettings) -> ssl.SSLContext | bool:
    """Return aiohttp's ``ssl=`` argument: ``True`` (default trust store), ``False`` (no check) or a context.

    Blocking when a CA bundle is set (a ``stat``, and a read the first time): call it from a thread.

    :raises GPTImageConfigurationError: the CA bundle cannot be read or holds no certificate.
    """
    if settings.ca_bundle is None:
        return settings.verify
    return ssl_context_for(settings.ca_bundle, extra=settings.extra)


def ssl_context_for(ca_bundle: str, *, extra: str = VERIFY_EXTRA) -> ssl.SSLContext:
    """Return the client context trusting exactly the CAs in ``ca_bundle`` (cached per file and version).

    :param ca_bundle: the path of a PEM file of CA certificates.
    :param extra: the name of the connection extra that named the file (for messages).
    :raises GPTImageConfigurationError: the file cannot be read or holds no certificate.
    """
    try:
        stat = os.stat(ca_bundle)
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with _lock:
            cached = _contexts.get(ca_bundle)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            context = ssl.create_default_context(cafile=ca_bundle)
            _contexts[ca_bundle] = (stamp, context)
            return context
    except OSError as exc:  # ssl.SSLError included: a file with no PEM certificate in it
        reason = getattr(exc, "reason", None) or exc.strerror or type(exc).__name__
        raise GPTImageConfigurationError(
            f"Invalid connection extra `{extra}`: the CA bundle {ca_bundle!r} could not be loaded ({reason}). "
            "It must be a readable PEM file of one or more CA certificates. Nothing was sent to the API."
        ) from None


def certificate_error(operation: str, exc: BaseException) -> GPTImageTLSError | None:
    """Return a :class:`GPTImageTLSError` when ``exc`` comes from a rejected server certificate, else ``None``.

    Looks through the chain of causes (``requests`` and ``urllib3`` wrap it two or three times, aiohttp once)
    for :class:`ssl.SSLCertVerificationError`.
    """
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen or len(seen) > 20:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):  # aiohttp's certificate error is one too
            original = getattr(current, "certificate_error", current)
            reason = getattr(original, "verify_message", None) or "certificate verify failed"
            return GPTImageTLSError(
                f"{operation}: the service's TLS certificate was not accepted ({reason}); nothing was sent. If it "
                f"is reached through a private or corporate CA, set the connection extra `{VERIFY_EXTRA}` to the "
                "absolute path of that CA's bundle (PEM)."
            )
        # urllib3 keeps the cause in ``reason``; requests passes the urllib3 error as its first argument.
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args[:1]]
    return None
