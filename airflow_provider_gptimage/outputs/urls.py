"""Which result URLs may be fetched, and how they are shown (without their signatures).

Only ``http`` and ``https`` URLs are fetched. Link-local addresses (``169.254.0.0/16``, ``fe80::/10``),
the cloud metadata endpoints (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``,
``metadata.google.internal``...), unspecified and multicast addresses are refused before any request,
for the URL and for every redirect (redirects are followed by hand, each hop checked). Host names are
resolved and every address is checked. Loopback stays allowed: the bundled simulator serves results there.

A name can resolve differently a moment later (DNS rebinding), so the address each connection actually
reaches is checked too, before a request is sent on it (:mod:`airflow_provider_gptimage.outputs.session`).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_gptimage.exceptions import GPTImageResultError

_METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


def redact(url: str) -> str:
    """The URL without its query string and fragment (signed URLs carry credentials there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def _refused_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip in _METADATA_ADDRESSES or ip.is_link_local or ip.is_unspecified or ip.is_multicast


def check_source_url(url: str, *, job_id: str | None = None, resolve: bool = True) -> None:
    """Refuse a result URL that must not be fetched; say why. Sends nothing to the URL's host.

    :param url: the result URL.
    :param job_id: named in the error.
    :param resolve: also resolve a host name and check each address (DNS only, no request to the host).
    :raises GPTImageResultError: for another scheme, a missing host, or a refused address.
    """
    parts = urlsplit(url)
    shown = redact(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise GPTImageResultError(
            f"Refused result URL {shown!r} of job {job_id}: only http and https URLs are fetched, not {scheme!r}.",
            job_id=job_id,
        )
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise GPTImageResultError(f"Refused result URL {shown!r} of job {job_id}: it has no host.", job_id=job_id)
    refused = host in _METADATA_HOSTS
    try:
        refused = refused or _refused_address(host)
    except ValueError:  # a host name, not an address
        if resolve and not refused:
            try:
                infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError):
                infos = []  # unresolvable: the request itself will fail as a transport error
            refused = any(_refused_address(str(info[4][0])) for info in infos)
    if refused:
        raise GPTImageResultError(
            f"Refused result URL {shown!r} of job {job_id}: it points to a link-local or cloud metadata "
            "address, which result images never come from.",
            job_id=job_id,
        )


def refused_address(address: str) -> bool:
    """Tell whether a connection may not use this IP address (link-local, metadata, unspecified, multicast).

    :param address: an IP address (a scope suffix such as ``%eth0`` is ignored); anything else is not refused.
    """
    try:
        return _refused_address(address)
    except ValueError:
        return False


def peer_refused(address: str, url: str, job_id: str | None) -> GPTImageResultError:
    """The error of a connection to ``url`` that reached the refused ``address`` (DNS rebinding)."""
    return GPTImageResultError(
        f"Refused result URL {redact(url)!r} of job {job_id}: its connection reached {address}, a link-local "
        "or cloud metadata address (the name resolved differently than when it was checked); no request was "
        "sent on it.",
        job_id=job_id,
    )
