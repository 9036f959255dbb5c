"""Input rules of ``createTask``: validation and the request body (pure)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_gptimage.exceptions import (
    GPTImageValidationError,
)
from airflow_provider_gptimage.protocol.text import unicode_problem

CREATE_ENDPOINT = "/api/v1/jobs/createTask"
RECORD_ENDPOINT = "/api/v1/jobs/recordInfo"
MODEL = "gpt-image-2-text-to-image"
MAX_PROMPT_CHARS = 20_000
RESOLUTIONS = ("1K", "2K", "4K")
DOCUMENTED_ASPECT_RATIOS = ("auto", "1:1", "4:5", "3:4", "2:3", "16:9", "9:16", "21:9")

_RATIO = re.compile(r"([0-9]+):([0-9]+)")


@dataclass(frozen=True)
class GenerationRequest:
    """A validated ``createTask`` request.

    :param prompt: the description of the image.
    :param aspect_ratio: ``auto`` or ``W:H``; ``None`` lets the model choose.
    :param resolution: ``1K``, ``2K`` or ``4K``; ``None`` means the service default (``1K``).
    :param quality: passed through to the image backend.
    :param output_format: passed through to the image backend.
    :param model: the model name; only :data:`MODEL` exists.
    """

    prompt: str
    aspect_ratio: str | None = None
    resolution: str | None = None
    quality: str | None = None
    output_format: str | None = None
    model: str = MODEL

    def body(self) -> dict[str, Any]:
        """Return the JSON body of ``createTask``, leaving out options that were not set."""
        inputs: dict[str, Any] = {"prompt": self.prompt}
        for key in ("aspect_ratio", "resolution", "quality", "output_format"):
            value = getattr(self, key)
            if value is not None:
                inputs[key] = value
        return {"model": self.model, "input": inputs}


def fingerprint(request: GenerationRequest) -> str:
    """The fingerprint of a request: SHA-256 (hex) of its body (model and every input field) as canonical JSON.

    Two requests that would make the same image have the same fingerprint; any change of prompt or
    parameter changes it. Everything that compares requests (re-attaching a retry to its job, a batch's
    progress, the catalog's "unchanged" test) compares this.
    """
    canonical = json.dumps(request.body(), sort_keys=True, separators=(",", ":"))  # ASCII: \u escapes
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_templated(value: object) -> bool:
    """Tell whether ``value`` is a Jinja template still to be rendered (checked at execution, not parse)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def validate_prompt(prompt: object) -> str:
    """Check the prompt: a non-empty, non-blank string of at most 20,000 characters."""
    if not isinstance(prompt, str):
        raise GPTImageValidationError("prompt", "must be a string", value=type(prompt).__name__)
    if not prompt.strip():
        raise GPTImageValidationError("prompt", "must not be empty or only whitespace")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise GPTImageValidationError("prompt", f"must be at most {MAX_PROMPT_CHARS:,} characters, got {len(prompt):,}")
    problem = unicode_problem(prompt)
    if problem:
        raise GPTImageValidationError("prompt", problem)
    return prompt


def validate_model(model: object) -> str:
    """Check the model name: exactly :data:`MODEL`."""
    if model != MODEL:
        raise GPTImageValidationError("model", f"must be exactly {MODEL!r}", value=model)
    return MODEL


def validate_resolution(resolution: object) -> str | None:
    """Check the resolution: ``None`` or one of ``1K``, ``2K``, ``4K`` (case matters)."""
    if resolution is None:
        return None
    if resolution not in RESOLUTIONS:
        raise GPTImageValidationError("resolution", f"must be one of {', '.join(RESOLUTIONS)}", value=resolution)
    return str(resolution)


def validate_aspect_ratio(aspect_ratio: object) -> tuple[str | None, list[str]]:
    """Check the aspect ratio: ``None``, ``auto`` or ``W:H`` with positive integers.

    :return: the ratio and warnings (a valid ratio outside the documented list is allowed, with a warning).
    """
    if aspect_ratio is None:
        return None, []
    if not isinstance(aspect_ratio, str):
        raise GPTImageValidationError("aspect_ratio", "must be a string such as '16:9' or 'auto'", value=aspect_ratio)
    if aspect_ratio == "auto":
        return aspect_ratio, []
    match = _RATIO.fullmatch(aspect_ratio)
    if not match or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise GPTImageValidationError(
            "aspect_ratio", "must be 'auto' or 'W:H' with positive integers, e.g. '16:9'", value=aspect_ratio
        )
    if aspect_ratio not in DOCUMENTED_ASPECT_RATIOS:
        return aspect_ratio, [
            f"aspect_ratio {aspect_ratio!r} is not one of the documented values "
            f"({', '.join(DOCUMENTED_ASPECT_RATIOS)}); the service may reject or adjust it."
        ]
    return aspect_ratio, []


def validate_passthrough(name: str, value: object) -> str | None:
    """Check a pass-through option (``quality``, ``output_format``): ``None`` or a non-empty string."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise GPTImageValidationError(name, "must be a non-empty string when given", value=value)
    problem = unicode_problem(value)
    if problem:
        raise GPTImageValidationError(name, problem)
    return value


def build_request(
    prompt: object,
    *,
    aspect_ratio: object = None,
    resolution: object = None,
    quality: object = None,
    output_format: object = None,
    model: object = MODEL,
) -> tuple[GenerationRequest, list[str]]:
    """Validate every argument and build the request.

    :return: the request and a list of warnings to log.
    :raises GPTImageValidationError: naming the first offending parameter and its rule.
    """
    checked_model = validate_model(model)
    checked_prompt = validate_prompt(prompt)
    checked_ratio, warnings = validate_aspect_ratio(aspect_ratio)
    request = GenerationRequest(
        prompt=checked_prompt,
        aspect_ratio=checked_ratio,
        resolution=validate_resolution(resolution),
        quality=validate_passthrough("quality", quality),
        output_format=validate_passthrough("output_format", output_format),
        model=checked_model,
    )
    return request, warnings


def validated(request: GenerationRequest) -> GenerationRequest:
    """Check a request built elsewhere (e.g. a :class:`GenerationRequest` made by hand) by the same rules.

    :raises GPTImageValidationError: naming the first offending field and its rule.
    """
    checked, _ = build_request(
        request.prompt,
        aspect_ratio=request.aspect_ratio,
        resolution=request.resolution,
        quality=request.quality,
        output_format=request.output_format,
        model=request.model,
    )
    return checked


def validate_static_arguments(arguments: Mapping[str, object]) -> list[str]:
    """Check, at DAG-parse time, every argument that is not a template; templates wait for execution.

    :param arguments: argument name to value, for the names :func:`build_request` knows.
    :return: warnings to log.
    """
    checks = {
        "model": validate_model,
        "prompt": validate_prompt,
        "resolution": validate_resolution,
        "quality": lambda v: validate_passthrough("quality", v),
        "output_format": lambda v: validate_passthrough("output_format", v),
    }
    warnings: list[str] = []
    for name, value in arguments.items():
        if is_templated(value) or (name == "prompt" and value is None):
            continue
        if name == "aspect_ratio":
            warnings.extend(validate_aspect_ratio(value)[1])
        elif name in checks:
            checks[name](value)
    return warnings
