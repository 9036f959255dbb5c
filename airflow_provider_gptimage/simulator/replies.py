"""API replies before shaping, and the createTask request validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_gptimage.simulator.config import MAX_PROMPT_CHARS, MODEL, RESOLUTIONS
from airflow_provider_gptimage.simulator.png import PngPlan, parse_aspect_ratio


@dataclass
class ApiReply:
    """An API answer before shaping: a body code, a message, optional data and headers."""

    code: int
    msg: str
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultLookup:
    """Outcome of a result-image request: ``status`` 200 with a ``plan``, else 403/404."""

    status: int
    plan: PngPlan | None = None
    reason: str = ""


def validate_create_request(body: bytes) -> tuple[dict[str, Any] | None, ApiReply | None]:
    """Parse and validate a createTask body like the service: 400 for bad JSON, 422 for bad fields.

    :param body: the raw request body.
    :return: ``(request, None)`` when valid, else ``(None, refusal)``.
    """
    try:
        request = json.loads(body)
    except ValueError:
        return None, ApiReply(400, "invalid request: body is not valid JSON")
    if not isinstance(request, dict):
        return None, ApiReply(400, "invalid request: body must be a JSON object")
    if request.get("model") != MODEL:
        return None, ApiReply(422, f"model must be {MODEL!r}, got {request.get('model')!r}")
    params = request.get("input")
    if not isinstance(params, dict):
        return None, ApiReply(422, "input is required and must be an object")
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return None, ApiReply(422, "input.prompt is required")
    if len(prompt) > MAX_PROMPT_CHARS:
        return None, ApiReply(422, f"input.prompt exceeds {MAX_PROMPT_CHARS} characters")
    if "aspect_ratio" in params and parse_aspect_ratio(params["aspect_ratio"]) is None:
        return None, ApiReply(422, f"input.aspect_ratio is invalid: {params['aspect_ratio']!r}")
    if "resolution" in params and params["resolution"] not in RESOLUTIONS:
        return None, ApiReply(422, f"input.resolution must be one of {', '.join(RESOLUTIONS)}")
    return request, None
