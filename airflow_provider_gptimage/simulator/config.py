"""Configuration of the GPT Image simulator: one dataclass, validated, JSON-friendly."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The only model name the service accepts.
MODEL = "gpt-image-2-text-to-image"
#: Accepted ``input.resolution`` values.
RESOLUTIONS = ("1K", "2K", "4K")
#: Longest accepted prompt, in characters.
MAX_PROMPT_CHARS = 20_000
#: Endpoint names used by fault injection, rate limiting and the counters.
ENDPOINTS = ("createTask", "recordInfo", "result")


@dataclass
class SimulatorConfig:
    """Behaviour of a simulator; every field can be changed live with ``configure``.

    :param generation_seconds: time a job takes from creation to ``success``; the job shows
        ``waiting``, ``queuing`` then ``generating`` for a third of it each.
    :param api_key_prefix: a valid API key starts with this.
    :param rejected_key_substrings: keys containing any of these are refused with 401.
    :param credits: accepted creates left before 402 "insufficient credits"; ``None`` = unlimited.
        One credit per job.
    :param active_task_limit: maximum unfinished jobs; creating one more gives 409.
    :param rate_limit_per_second: token-bucket refill rate; ``None`` disables rate limiting.
    :param rate_limit_burst: bucket capacity; ``None`` means ``max(1, int(rate_limit_per_second))``.
    :param rate_limit_endpoints: API endpoints sharing the one bucket, among ``createTask`` and
        ``recordInfo`` (default: both, like a per-key API rate limit). Result downloads are never
        rate limited (inject ``http_429`` on ``result`` for that).
    :param images_per_job: result URLs per successful job.
    :param image_long_side: longest side of result images in pixels (whatever the resolution).
    :param result_url_ttl_seconds: result URLs answer 403 "expired" this long after the job
        completed; ``None`` = never expire.
    :param result_padding_bytes: size of an ignorable chunk added to every result PNG.
    :param variations: randomly use the response variations seen in the wild.
    :param variation_probability: chance of each variation, per response.
    :param seed: seed of the variations' random generator.
    :param errors_as_http_200: send API errors as HTTP 200 with the error in the body ``code``.
    :param public_url: base URL for result URLs; ``None`` = the URL the request came in on.
    :param stream_block_size: block size when streaming result images.
    """

    generation_seconds: float = 3.0
    api_key_prefix: str = "sk-"
    rejected_key_substrings: tuple[str, ...] = ("invalid",)
    credits: int | None = None
    active_task_limit: int | None = None
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None
    rate_limit_endpoints: tuple[str, ...] = ("createTask", "recordInfo")
    images_per_job: int = 1
    image_long_side: int = 256
    result_url_ttl_seconds: float | None = None
    result_padding_bytes: int = 0
    variations: bool = False
    variation_probability: float = 0.5
    seed: int = 0
    errors_as_http_200: bool = False
    public_url: str | None = None
    stream_block_size: int = field(default=1 << 20)

    def __post_init__(self) -> None:
        self.rejected_key_substrings = tuple(self.rejected_key_substrings)
        self.rate_limit_endpoints = tuple(self.rate_limit_endpoints)
        self._validate()

    def _validate(self) -> None:
        checks = {
            "generation_seconds": self.generation_seconds >= 0,
            "credits": self.credits is None or self.credits >= 0,
            "active_task_limit": self.active_task_limit is None or self.active_task_limit >= 0,
            "rate_limit_per_second": self.rate_limit_per_second is None or self.rate_limit_per_second > 0,
            "rate_limit_burst": self.rate_limit_burst is None or self.rate_limit_burst >= 1,
            "rate_limit_endpoints": all(e in ENDPOINTS[:2] for e in self.rate_limit_endpoints),
            "images_per_job": self.images_per_job >= 0,
            "image_long_side": 1 <= self.image_long_side <= 16384,
            "result_url_ttl_seconds": self.result_url_ttl_seconds is None or self.result_url_ttl_seconds >= 0,
            "result_padding_bytes": self.result_padding_bytes >= 0,
            "variation_probability": 0.0 <= self.variation_probability <= 1.0,
            "stream_block_size": self.stream_block_size >= 1024,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid simulator configuration value(s): {', '.join(bad)}")

    @property
    def burst(self) -> int:
        """Effective token-bucket capacity."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, int(self.rate_limit_per_second or 1))

    def updated(self, changes: Mapping[str, Any]) -> SimulatorConfig:
        """Return a validated copy with ``changes`` applied.

        :param changes: field names and new values.
        :raises ValueError: on an unknown field or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown simulator configuration option(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
