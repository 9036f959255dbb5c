"""Text from the service made safe to keep, show and log (pure).

Every string the API returns is hostile until cleaned: it may echo the API key (a job record's
``failMsg`` or ``param``), carry a newline or an ANSI escape that forges log lines, or be nested or
long enough to exhaust memory or the recursion limit. The parsers in :mod:`.responses` pass every
value through these functions before it reaches an error, a record, a sidecar or a log line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: What replaces a secret found in text from the service.
MASK = "***"
#: The deepest nesting of lists and objects accepted in an API body (real answers nest 3 levels).
MAX_DEPTH = 32
#: Characters kept of a short text from the service (a state, a code, a model name).
SHORT_CHARS = 100

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` with :data:`MASK` (longest secret first)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def scrub_value(value: object, secrets: tuple[str, ...]) -> object:
    """Scrub every string (keys included) of a JSON value; the value must be at most :data:`MAX_DEPTH` deep."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {scrub(str(k), secrets): scrub_value(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v, secrets) for v in value]
    return value


def escape_controls(text: str) -> str:
    """Show control characters (newlines, ANSI escapes, line separators...) as ``\\xNN`` / ``\\uNNNN``.

    A log line or an error message built from the result holds exactly one line, whatever the service sent.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def clean(value: object, secrets: tuple[str, ...] = (), *, limit: int = SHORT_CHARS) -> str | None:
    """A short text from the service, safe for logs and messages: scrubbed, escaped, cut to ``limit``.

    ``None`` and ``""`` give ``None``; other values are converted with ``str``.
    """
    if value is None or value == "":
        return None
    text = escape_controls(scrub(str(value), secrets))
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def is_plain_id(value: str, *, limit: int = 256) -> bool:
    """Whether an id is safe to use as it is: printable, no whitespace, at most ``limit`` characters."""
    return 0 < len(value) <= limit and value.isprintable() and not any(ch.isspace() for ch in value)


def depth_exceeds(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether a decoded JSON value nests lists/objects more than ``limit`` levels (checked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Iterable[object] = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def unicode_problem(text: str) -> str | None:
    """Describe why ``text`` cannot be sent as UTF-8 (a lone surrogate), or ``None`` when it can."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"must be valid Unicode text: it holds a lone surrogate at character {exc.start}"
    return None
