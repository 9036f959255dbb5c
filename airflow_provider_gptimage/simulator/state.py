"""The simulator's state machine: jobs, counters, faults and limits. Pure, clock-injected, no I/O.

Every public method takes one lock, so the HTTP thread and a test thread can share an instance.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from airflow_provider_gptimage.simulator.config import SimulatorConfig
from airflow_provider_gptimage.simulator.faults import Fault, FaultQueue
from airflow_provider_gptimage.simulator.jobs import (
    FAIL_CODE,
    FAIL_MSG,
    Job,
    SimulatorStats,
    parse_directives,
)
from airflow_provider_gptimage.simulator.png import PngPlan, image_size
from airflow_provider_gptimage.simulator.replies import ApiReply, ResultLookup, validate_create_request


class SimulatorState:
    """Jobs, counters, faults and limits of one simulator.

    :param config: the behaviour; changed later with :meth:`configure`.
    :param clock: returns the current time in epoch seconds; tests pass a
        :class:`~airflow_provider_gptimage.simulator.jobs.ManualClock`.
    """

    def __init__(self, config: SimulatorConfig | None = None, clock: Callable[[], float] | None = None):
        self._lock = threading.RLock()
        self._config = config or SimulatorConfig()
        self.clock: Callable[[], float] = clock or time.time
        self.faults = FaultQueue()
        self.reset()

    @property
    def config(self) -> SimulatorConfig:
        """The current configuration (treat as read-only; use :meth:`configure`)."""
        return self._config

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change the configuration live; ``credits`` resets the remaining credits.

        :raises ValueError: on an unknown option or an invalid value.
        """
        with self._lock:
            self._config = self._config.updated(changes)
            if "credits" in changes:
                self._credits = self._config.credits
            if {"rate_limit_per_second", "rate_limit_burst"} & set(changes):
                self._tokens, self._tokens_at = float(self._config.burst), self.clock()
            if "seed" in changes:
                self._rng = random.Random(self._config.seed)
            return self._config

    def reset(self) -> None:
        """Forget jobs, counters and queued faults; the configuration is kept."""
        with self._lock:
            self.jobs: dict[str, Job] = {}
            self.faults.clear()
            self._credits = self._config.credits
            self._tokens, self._tokens_at = float(self._config.burst), self.clock()
            self._rng = random.Random(self._config.seed)
            self._counts: Counter[str] = Counter()
            self._prompt_creates: Counter[str] = Counter()
            self._status_counts: Counter[int] = Counter()
            self._request_ids: dict[str, list[str]] = defaultdict(list)
            self._max_active = 0

    def inject(self, endpoint: str, fault: str, times: int = 1, **options: Any) -> Fault:
        """Queue a one-shot fault; see :meth:`FaultQueue.inject`."""
        with self._lock:
            return self.faults.inject(endpoint, fault, times, **options)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        with self._lock:
            self.faults.clear()

    def stats(self) -> SimulatorStats:
        """Snapshot of the counters."""
        with self._lock:
            return SimulatorStats(
                creates=self._counts["creates"],
                create_attempts=self._counts["create_attempts"],
                polls=self._counts["polls"],
                result_downloads=self._counts["result_downloads"],
                prompt_creates=dict(self._prompt_creates),
                request_ids={k: list(v) for k, v in self._request_ids.items()},
                requests_without_auth=self._counts["requests_without_auth"],
                active_jobs=self._active(),
                max_active_jobs=self._max_active,
                responses_409=self._status_counts[409],
                responses_429=self._status_counts[429],
                status_counts=dict(self._status_counts),
                credits_remaining=self._credits,
                pending_faults=self.faults.pending(),
            )

    # -- request processing -------------------------------------------------------------------

    def begin_request(self, endpoint: str, headers: Mapping[str, str]) -> Fault | None:
        """Count a request, record its ``X-Request-ID`` and pop the fault it gets, if any."""
        with self._lock:
            counter = {"createTask": "create_attempts", "recordInfo": "polls"}.get(endpoint)
            self._counts[counter or "result_downloads"] += 1
            if endpoint != "result" and "Authorization" not in headers:
                self._counts["requests_without_auth"] += 1
            request_id = headers.get("X-Request-ID")
            if request_id is not None:
                self._request_ids[endpoint].append(request_id)
            return self.faults.pop(endpoint)

    def note_status(self, code: int) -> None:
        """Count a response by its effective code."""
        with self._lock:
            self._status_counts[code] += 1

    def _check_access(self, endpoint: str, authorization: str | None) -> ApiReply | None:
        if not authorization:
            return ApiReply(401, "authentication failed: missing Authorization header")
        scheme, _, key = authorization.partition(" ")
        cfg = self._config
        if scheme.lower() != "bearer" or not key.strip():
            return ApiReply(401, "authentication failed: expected 'Authorization: Bearer <key>'")
        key = key.strip()
        if not key.startswith(cfg.api_key_prefix) or any(s in key for s in cfg.rejected_key_substrings):
            return ApiReply(401, "authentication failed: invalid API key")
        return self._take_token(endpoint)

    def _take_token(self, endpoint: str) -> ApiReply | None:
        cfg = self._config
        if cfg.rate_limit_per_second is None or endpoint not in cfg.rate_limit_endpoints:
            return None
        now = self.clock()
        elapsed = max(0.0, now - self._tokens_at)
        self._tokens = min(float(cfg.burst), self._tokens + elapsed * cfg.rate_limit_per_second)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        wait = (1.0 - self._tokens) / cfg.rate_limit_per_second
        retry_after = str(max(1, math.ceil(wait)))
        return ApiReply(429, "request rate limit exceeded", headers={"Retry-After": retry_after})

    def _active(self) -> int:
        now = self.clock()
        return sum(1 for job in self.jobs.values() if job.is_active(now))

    def create_task(self, authorization: str | None, body: bytes) -> ApiReply:
        """Handle ``POST createTask``: auth, rate limit, validation, credits, active limit, create."""
        with self._lock:
            refusal = self._check_access("createTask", authorization)
            request, invalid = validate_create_request(body)
            refusal = refusal or invalid
            if refusal is not None or request is None:
                return refusal or ApiReply(400, "invalid request")
            cfg = self._config
            if self._credits is not None and self._credits <= 0:
                return ApiReply(402, "insufficient credits")
            active = self._active()
            if cfg.active_task_limit is not None and active >= cfg.active_task_limit:
                return ApiReply(409, "active task limit exceeded")
            job = Job(
                task_id=str(uuid.uuid4()),
                request=request,
                param_json=json.dumps(request),
                created_at=self.clock(),
                generation_seconds=cfg.generation_seconds,
                image_count=cfg.images_per_job,
                directives=parse_directives(request["input"]["prompt"]),
            )
            self.jobs[job.task_id] = job
            if self._credits is not None:
                self._credits -= 1
            self._counts["creates"] += 1
            self._prompt_creates[job.prompt] += 1
            self._max_active = max(self._max_active, active + 1)
            return ApiReply(200, "success", {"taskId": job.task_id})

    def record_info(self, authorization: str | None, task_id: str | None, base_url: str) -> ApiReply:
        """Handle ``GET recordInfo``; ``base_url`` prefixes the result URLs."""
        with self._lock:
            refusal = self._check_access("recordInfo", authorization)
            if refusal is not None:
                return refusal
            if not task_id:
                return ApiReply(400, "taskId is required")
            job = self.jobs.get(task_id)
            if job is None:
                return ApiReply(404, f"task not found: {task_id}")
            return ApiReply(200, "success", self._record(job, self._config.public_url or base_url))

    def _record(self, job: Job, base_url: str) -> dict[str, Any]:
        state = job.state_at(self.clock())
        done = state in ("success", "fail")
        result_json: Any = None
        if state == "success":
            urls = [f"{base_url.rstrip('/')}/results/{job.task_id}/{n}.png" for n in range(1, job.image_count + 1)]
            if "no-urls" in job.directives:
                result_json = {}
            else:
                result_json = {"resultUrls": [] if "zero-images" in job.directives else urls}
        fail_code = FAIL_CODE if state == "fail" else None
        fail_msg = FAIL_MSG if state == "fail" else None
        if result_json is not None and not self._vary():  # varied: an already-decoded object
            result_json = json.dumps(result_json)
        if fail_code is None and self._vary():
            fail_code, fail_msg = "", ""
        complete_ms = round((job.created_at + job.generation_seconds) * 1000) if done else None
        return {
            "taskId": job.task_id,
            "model": job.request["model"],
            "state": state,
            "param": job.param_json,
            "resultJson": result_json,
            "failCode": fail_code,
            "failMsg": fail_msg,
            "costTime": round(job.generation_seconds * 1000) if done else None,
            "completeTime": complete_ms,
            "createTime": round(job.created_at * 1000),
        }

    def _vary(self) -> bool:
        cfg = self._config
        return cfg.variations and self._rng.random() < cfg.variation_probability

    def result(self, task_id: str, index: int) -> ResultLookup:
        """Look up result image ``index`` (1-based) of a job."""
        with self._lock:
            job = self.jobs.get(task_id)
            now = self.clock()
            if job is None or job.state_at(now) != "success" or not 1 <= index <= job.image_count:
                return ResultLookup(404, reason="NoSuchKey")
            if job.is_expired(now, self._config.result_url_ttl_seconds):
                return ResultLookup(403, reason="Request has expired")
            width, height = image_size(job.aspect_ratio, self._config.image_long_side)
            plan = PngPlan(width, height, f"{job.prompt}#{index}", self._config.result_padding_bytes)
            return ResultLookup(200, plan)

    def shape(self, reply: ApiReply) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Turn a reply into ``(http_status, body, headers)`` per the variation settings."""
        with self._lock:
            body: dict[str, Any] = {"code": reply.code, "msg": reply.msg}
            if reply.code == 200:
                body["data"] = reply.data
            if self._vary():
                body = {("message" if k == "msg" else k): v for k, v in body.items()}
            self._status_counts[reply.code] += 1
            status = 200 if self._config.errors_as_http_200 else reply.code
            return status, body, dict(reply.headers)
