"""Every fault switch of the simulator, through the real create -> trigger -> copy path, with the outcome
it must have: retryable faults recover within the retry budget; the others fail with a typed error that
says what happened. None loses a generated image or pays for one twice."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_gptimage import exceptions as exc
from airflow_provider_gptimage.hooks.gptimage import GPTImageHook
from airflow_provider_gptimage.protocol.events import outcome
from airflow_provider_gptimage.triggers.gptimage import GPTImageTaskTrigger

pytestmark = pytest.mark.usefixtures("gptimage_conn")


async def first_event(trigger: GPTImageTaskTrigger) -> dict:
    """The trigger's one event; the generator is closed afterwards, as the triggerer does."""
    run = trigger.run()
    try:
        return (await asyncio.wait_for(run.__anext__(), timeout=30)).payload
    finally:
        await run.aclose()


def generate(prompt: str, *, deadline: float | None = None, tmp_path=None, request_timeout: float = 30.0):
    """Create a job, wait for it with the trigger, copy it: the operator's path without Airflow around it."""
    import time

    from airflow.sdk import ObjectStoragePath

    from airflow_provider_gptimage.outputs import copy_results

    job_id = GPTImageHook(request_timeout=request_timeout).create_task(prompt)
    trigger = GPTImageTaskTrigger(
        job_id=job_id,
        poll_interval=0.05,
        max_poll_interval=0.1,
        deadline=None if deadline is None else time.time() + deadline,
        request_timeout=request_timeout,
    )
    event = asyncio.run(first_event(trigger))
    record = outcome(event)
    if tmp_path is not None:
        copy_results(record, ObjectStoragePath(tmp_path.as_uri()), sleep=lambda _: None)
    return record


# (fault id, endpoint, fault, options, times)
RECOVERED = [
    ("429 with Retry-After", "createTask", "http_429", {"retry_after": 2}, 3),
    ("429 without Retry-After", "recordInfo", "http_429", {"retry_after": None}, 3),
    ("429 storm on polls", "recordInfo", "http_429", {"retry_after": 1}, 7),
    ("409 active-task limit", "createTask", "http_409", {}, 4),
    ("455 maintenance", "createTask", "http_455", {}, 2),
    ("500 burst on polls", "recordInfo", "http_500", {}, 5),
    ("502 burst on polls", "recordInfo", "http_502", {}, 5),
    ("503 burst on polls", "recordInfo", "http_503", {}, 5),
    ("HTML error page", "recordInfo", "html_error", {}, 2),
    ("empty body", "recordInfo", "empty_body", {}, 2),
    ("invalid JSON", "recordInfo", "invalid_json", {}, 2),
    ("body code 500 with HTTP 200", "recordInfo", "body_code", {"code": 500}, 2),
    ("slower than the client timeout", "recordInfo", "slow", {"delay": 31}, 1),
    ("reset mid-response", "recordInfo", "reset", {}, 2),
    ("single 500 on create", "createTask", "http_500", {}, 1),
    ("result download cut midway", "result", "truncate", {}, 2),
    ("result download 503", "result", "http_503", {}, 2),
]


@pytest.mark.parametrize(
    ("endpoint", "fault", "options", "times"), [c[1:] for c in RECOVERED], ids=[c[0] for c in RECOVERED]
)
def test_retryable_faults_recover(simulator, no_sleep, tmp_path, endpoint, fault, options, times):
    timeout = 30.0
    if fault == "slow":  # keep the test fast: a 0.5 s client timeout against a 1 s stall
        timeout, options = 0.5, {"delay": 1.0}
    simulator.inject(endpoint, fault, times=times, **options)
    record = generate("a resilient lighthouse", tmp_path=tmp_path, request_timeout=timeout)
    assert record.is_success
    assert len(list(tmp_path.glob("*.png"))) == 1
    stats = simulator.stats()
    assert stats.creates == 1  # never paid twice
    assert stats.pending_faults.get(endpoint, []) == []  # the fault really happened


# (fault id, prompt or injected fault, expected error, words the message must contain)
FINAL = [
    ("job fails", "[sim:fail]", exc.GPTImageJobFailedError, "failCode"),
    ("resultJson without resultUrls", "[sim:no-urls]", exc.GPTImageResultError, "no result URLs"),
    ("success with zero images", "[sim:zero-images]", exc.GPTImageResultError, "no result URLs"),
    ("expired result URL", "[sim:expired]", exc.GPTImageResultError, "regenerate"),
    ("never leaves waiting", "[sim:stuck]", exc.GPTImageTimeoutError, "did not finish"),
]


@pytest.mark.parametrize(("prompt", "error", "words"), [c[1:] for c in FINAL], ids=[c[0] for c in FINAL])
def test_final_faults_fail_clearly(simulator, no_sleep, tmp_path, prompt, error, words):
    with pytest.raises(error) as info:
        generate(f"a fragile vase {prompt}", deadline=0.5, tmp_path=tmp_path)
    assert words in str(info.value)
    assert info.value.job_id
    assert simulator.stats().creates == 1
    assert list(tmp_path.glob("*.png")) == []


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (400, exc.GPTImageBadRequestError),
        (401, exc.GPTImageAuthError),
        (402, exc.GPTImageInsufficientCreditsError),
        (422, exc.GPTImageBadRequestError),
        (501, exc.GPTImageUnsupportedError),
        (505, exc.GPTImageUnsupportedError),
    ],
)
def test_final_error_codes_on_create_are_not_retried(simulator, no_sleep, code, error):
    simulator.inject("createTask", "body_code", times=1, code=code)
    with pytest.raises(error):
        GPTImageHook().create_task("a refused request")
    assert no_sleep == []
    assert simulator.stats().creates == 0


def test_lost_create_response_is_retried_once_and_logged(simulator, no_sleep, capsys):
    # The service created (and billed) the job but the answer was lost: the API has no idempotency key,
    # so one retry may pay twice; the budget is one such retry, and it is logged.
    simulator.inject("createTask", "reset", times=3, process=True)
    with pytest.raises(exc.GPTImageTransportError):
        GPTImageHook().create_task("a lost answer")
    assert simulator.stats().creates == 2
    assert "createTask attempt 1 failed" in capsys.readouterr().out
