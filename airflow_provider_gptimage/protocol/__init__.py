"""The GPT Image 2 job API as pure functions: no I/O, no Airflow, no clock, no randomness of its own.

Every decision the sync path (requests, in the worker) and the async path (aiohttp, in the triggerer)
must agree on lives in this package: input validation (:mod:`.inputs`), parsing and error mapping
(:mod:`.responses`, :mod:`.records`), making the service's text safe (:mod:`.text`), connection rules
(:mod:`.connection`), retries (:mod:`.retry`), polling (:mod:`.polling`), batch pacing (:mod:`.window`),
batch items (:mod:`.batch`) and the triggers' events (:mod:`.events`). The loops around it only send,
receive and sleep (the file check of a CA bundle path is injected by the caller).
"""

from __future__ import annotations

from airflow_provider_gptimage.protocol.connection import (
    DEFAULT_CONN_ID,
    DEFAULT_HOST,
    DEFAULT_TLS,
    VERIFY_EXTRA,
    TLSSettings,
    api_key_from,
    base_url_from,
    tls_settings_from,
)
from airflow_provider_gptimage.protocol.inputs import (
    CREATE_ENDPOINT,
    DOCUMENTED_ASPECT_RATIOS,
    MAX_PROMPT_CHARS,
    MODEL,
    RECORD_ENDPOINT,
    RESOLUTIONS,
    GenerationRequest,
    build_request,
    fingerprint,
    is_templated,
    validate_static_arguments,
    validated,
)
from airflow_provider_gptimage.protocol.polling import (
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_MAX_TRANSIENT_ERRORS,
    DEFAULT_POLL_INTERVAL,
    PollSchedule,
    PollStep,
    next_poll_at,
    poll_delay,
    poll_step,
    timeout_message,
)
from airflow_provider_gptimage.protocol.records import (
    MAX_RESULT_URLS,
    MAX_UNKNOWN_STATE_POLLS,
    JobRecord,
    parse_create,
    parse_record,
    state_kind,
    unknown_state_error,
)
from airflow_provider_gptimage.protocol.responses import (
    MAX_BODY_BYTES,
    body_too_large,
    error_for,
    excerpt,
    parse_envelope,
    parse_retry_after,
    request_id,
)
from airflow_provider_gptimage.protocol.retry import (
    CREATE,
    DEFAULT_POLICY,
    DEFAULT_REQUEST_TIMEOUT,
    DOWNLOAD,
    POLL,
    RetryPolicy,
    decide_retry,
)
from airflow_provider_gptimage.protocol.text import clean, escape_controls, scrub

__all__ = [
    "CREATE",
    "CREATE_ENDPOINT",
    "DEFAULT_CONN_ID",
    "DEFAULT_HOST",
    "DEFAULT_MAX_POLL_INTERVAL",
    "DEFAULT_MAX_TRANSIENT_ERRORS",
    "DEFAULT_POLICY",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_TLS",
    "DOCUMENTED_ASPECT_RATIOS",
    "DOWNLOAD",
    "MAX_BODY_BYTES",
    "MAX_PROMPT_CHARS",
    "MAX_RESULT_URLS",
    "MAX_UNKNOWN_STATE_POLLS",
    "MODEL",
    "POLL",
    "RECORD_ENDPOINT",
    "RESOLUTIONS",
    "VERIFY_EXTRA",
    "GenerationRequest",
    "JobRecord",
    "PollSchedule",
    "PollStep",
    "RetryPolicy",
    "TLSSettings",
    "api_key_from",
    "base_url_from",
    "body_too_large",
    "build_request",
    "clean",
    "decide_retry",
    "error_for",
    "escape_controls",
    "excerpt",
    "fingerprint",
    "is_templated",
    "next_poll_at",
    "parse_create",
    "parse_envelope",
    "parse_record",
    "parse_retry_after",
    "poll_delay",
    "poll_step",
    "request_id",
    "scrub",
    "state_kind",
    "timeout_message",
    "tls_settings_from",
    "unknown_state_error",
    "validate_static_arguments",
    "validated",
]
