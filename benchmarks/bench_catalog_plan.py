"""Benchmark 9: planning a night of 10,000 unchanged products on S3 with the manifest, against reading every sidecar.

The catalog (10,000 products, each a 64 x 64 PNG and its provenance sidecar, then the manifest) is written
directly into an S3-compatible server (moto's ``ThreadedMotoServer``, in this orchestrating process) by a
setup child: boto3 ``put_object`` in parallel for the objects, then the baseline's first measurement, whose
state (``load_state(root, rebuild=True)``) is saved as the manifest. Fingerprints come from
:func:`airflow_provider_gptimage.protocol.fingerprint`, so every product is unchanged for tonight's input.

Variants, each timed around one call in a fresh child process (a new filesystem instance, so no listing
cached by an earlier measurement hides a request), warmed by one request first (credentials, client):

- ``plan (manifest)``: :func:`~airflow_provider_gptimage.catalog.run.plan_run` as a night calls it: the
  manifest, the listings of ``_catalog/commits`` and ``_catalog/journal``, then the pure plan;
- ``rebuild (every sidecar)``, the baseline of the target: the same ``plan_run`` with ``rebuild=True``, which
  lists the root and reads every sidecar with 8 threads (what a catalog without a manifest costs);
- ``find_existing per key``: :func:`~airflow_provider_gptimage.outputs.catalog.find_existing` called for each
  key in turn, as skip-if-present did before the manifest (sidecar read, then the image's ``HEAD``).
  Slow, so it runs once, over ``--sequential`` keys (default 500) and is scaled to the catalog's size.

The rebuild and the plan take turns, ``--repeats`` times each (the setup's rebuild first); the table shows
medians, and the most requests any run made.

Storage requests are counted at the server: the moto server's WSGI application is wrapped by a counter that
sees every HTTP request it answers (``HEAD``, ``GET``, ``LIST``, ``PUT``..., retries included), whichever
client made it. Counting ``before-send`` events on the s3fs client would miss requests made by any other
client (a boto3 client of the AWS hook, say) and depends on how s3fs builds its clients; the server cannot
miss one. The child reads the counter (at ``/_bench/requests``, answered by the wrapper, not counted) just
before and just after the timed call, so the figure is the call's own requests.

Targets of issue 11: the plan takes at most 5 s and at most 10 storage requests, and is at least 20x faster
than the baseline that reads every sidecar. The plan must find every product unchanged and pay for none.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.common import Check, Report, airflow_env, aws_connection, cpu_load, finish, median, parser, run_child

#: Targets of issue 11.
MAX_PLAN_SECONDS = 5.0
MAX_PLAN_REQUESTS = 10
MIN_SPEEDUP = 20.0
CONN_ID = "bench_s3"
PREFIX = "catalog"
COUNTER_PATH = "/_bench/requests"
PLAN = "plan (manifest)"
REBUILD = "rebuild (every sidecar)"
SEQUENTIAL = "find_existing per key"
#: Parallel uploads while the catalog is set up.
SETUP_THREADS = 16


# ------------------------------------------------------------------------------------------ the catalog
def product(index: int) -> tuple[str, Any]:
    """Product ``index``: its key and the request that made its image."""
    from airflow_provider_gptimage.protocol import GenerationRequest

    key = f"SKU-{index:05d}"
    prompt = f"Studio photo of product {key}, a ceramic mug in glaze number {index % 97}, on a white background"
    return key, GenerationRequest(prompt=prompt, aspect_ratio="1:1", resolution="1K")


def wanted(count: int) -> list[tuple[str, str]]:
    """Tonight's input: ``(key, fingerprint)`` of every product (all unchanged)."""
    from airflow_provider_gptimage.protocol import fingerprint

    return [(key, fingerprint(request)) for key, request in (product(i) for i in range(count))]


def _image_bytes() -> bytes:
    """A small real PNG (64 x 64)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


def _sidecar(bucket: str, index: int, image: bytes, etag: str, sha256: str) -> dict[str, Any]:
    """The sidecar ``copy_results`` would have written for product ``index`` (schema ``gptimage-output/1``)."""
    from airflow_provider_gptimage.outputs.catalog import SIDECAR_SCHEMA
    from airflow_provider_gptimage.protocol import fingerprint

    key, request = product(index)
    name = f"{key}.png"
    body = request.body()
    return {
        "schema": SIDECAR_SCHEMA,
        "name": name,
        "uri": f"s3://{bucket}/{PREFIX}/{name}",
        "filename": key,
        "index": 1,
        "count": 1,
        "job_id": f"bench-job-{index:05d}",
        "model": body["model"],
        "prompt": request.prompt,
        "parameters": {k: v for k, v in body["input"].items() if k != "prompt"},
        "fingerprint": fingerprint(request),
        "size": len(image),
        "sha256": sha256,
        "content_type": "image/png",
        "format": "png",
        "width": 64,
        "height": 64,
        "stamp": {"ETag": etag},
        "written_at": "2026-12-01T02:00:00Z",
        "provenance": {"dag_id": "bench_catalog_plan"},
    }


def setup(bucket: str, endpoint: str, count: int) -> dict[str, Any]:
    """Write ``count`` products (image, then sidecar) with boto3 in parallel, then the manifest."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    image = _image_bytes()
    sha256 = hashlib.sha256(image).hexdigest()

    def put(index: int) -> None:
        key = product(index)[0]
        etag = client.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}.png", Body=image, ContentType="image/png")["ETag"]
        sidecar = json.dumps(_sidecar(bucket, index, image, etag, sha256), indent=2, sort_keys=True).encode()
        client.put_object(Bucket=bucket, Key=f"{PREFIX}/{key}.json", Body=sidecar, ContentType="application/json")

    start = time.perf_counter()
    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        list(pool.map(put, range(count)))
    put_seconds = time.perf_counter() - start
    rebuilt = measure(REBUILD, bucket, endpoint, count, 0, save=True)
    size = client.head_object(Bucket=bucket, Key=f"{PREFIX}/_catalog/manifest.json")["ContentLength"]
    return {"put_seconds": put_seconds, "manifest_bytes": size, "rebuild": rebuilt}


# ------------------------------------------------------------------------------------------ child side
def _root(bucket: str) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"s3://{bucket}/{PREFIX}/", conn_id=CONN_ID)


def _requests(endpoint: str) -> Counter[str]:
    """The server's request counter now (read over plain HTTP; the wrapper does not count this read)."""
    with urllib.request.urlopen(endpoint + COUNTER_PATH, timeout=30) as response:
        return Counter(json.loads(response.read()))


def measure(variant: str, bucket: str, endpoint: str, count: int, sample: int, save: bool = False) -> dict[str, Any]:
    """Time one variant once, counting the storage requests it made.

    :param save: then write the manifest of the state read (the setup's rebuild makes the catalog's manifest).
    """
    from airflow_provider_gptimage.catalog.run import plan_run

    tonight = wanted(count)
    root = _root(bucket)
    root.fs.exists(f"{bucket}/{PREFIX}/_bench-warm-up")  # the client, its credentials: not the plan's cost
    root.fs.invalidate_cache()
    result: dict[str, Any] = {}
    before = _requests(endpoint)
    start = time.perf_counter()
    if variant == SEQUENTIAL:
        from airflow_provider_gptimage.outputs.catalog import find_existing

        found = sum(find_existing(root, key, fp) is not None for key, fp in tonight[:sample])
        result["counts"] = {"unchanged": found, "to_pay": sample - found, "keys": sample}
    else:
        planned = plan_run(root, tonight, rebuild=variant == REBUILD)
        result["counts"] = {**planned.plan.counts(), "keys": count}
    result["seconds"] = time.perf_counter() - start
    after = _requests(endpoint)
    result["requests"] = dict(after - before)
    if save and variant != SEQUENTIAL:
        planned.state.save()
    return result


def child_main(argv: list[str]) -> None:
    """``--child setup|VARIANT BUCKET ENDPOINT COUNT SAMPLE``: print the result as one JSON line."""
    variant, bucket, endpoint, count, sample = argv
    logging.getLogger("airflow_provider_gptimage").setLevel(logging.WARNING)
    if variant == "setup":
        result = setup(bucket, endpoint, int(count))
    else:
        result = measure(variant, bucket, endpoint, int(count), int(sample))
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ parent side
def request_kind(environ: dict[str, Any]) -> str:
    """What an S3 request is: ``LIST`` (a GET of a bucket), else its method (``GET``, ``HEAD``, ``PUT``...)."""
    method = str(environ.get("REQUEST_METHOD", "?"))
    path = str(environ.get("PATH_INFO", "")).strip("/")
    if method == "GET" and "/" not in path:  # path-style: /<bucket>?list-type=2&prefix=...
        return "LIST"
    return method


class RequestCounter:
    """A WSGI middleware counting every request the S3 server answers, by kind; it answers
    ``GET /_bench/requests`` itself (the counts so far, as JSON) without counting it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == COUNTER_PATH:
            with self.lock:
                body = json.dumps(dict(self.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        kind = request_kind(environ)
        with self.lock:
            self.counts[kind] += 1
        return self.app(environ, start_response)


def _list_moto_modules_once() -> None:
    """Make moto's server list its own modules once, not on every request.

    moto's dispatcher (5.x) calls ``moto.backends.list_of_moto_modules()`` for every request, which lists
    moto's package folder and ``stat``s each of its ~180 entries: about a third of the server's CPU per
    request here. Answering from one listing makes the server faster and so the baseline (10,000 reads)
    faster relative to the plan (4 requests): the ratio measured is the more conservative for it.
    """
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: iter(modules)  # type: ignore[assignment]


def _total(requests: dict[str, int]) -> int:
    return sum(requests.values())


def _mix(requests: dict[str, int]) -> str:
    return " ".join(f"{kind} {n}" for kind, n in sorted(requests.items())) or "none"


def main() -> int:
    """Set the catalog up in moto, then plan it with the manifest and with every sidecar, in turns."""
    options = parser(__doc__.splitlines()[0], repeats=3)
    options.add_argument("--products", type=int, default=10_000, help="products in the catalog")
    options.add_argument(
        "--sequential", type=int, default=500, help="keys checked by the find_existing baseline (0: skip it)"
    )
    opts = options.parse_args()
    import boto3
    from moto.server import ThreadedMotoServer

    count, sample = opts.products, min(opts.sequential, opts.products)
    home = Path(tempfile.mkdtemp(prefix="gptimage-bench-plan-"))
    load = cpu_load()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    _list_moto_modules_once()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    server: Any = moto._server
    server.app = RequestCounter(server.app)
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        ).create_bucket(Bucket=bucket)
        env = {
            **airflow_env(home),
            f"AIRFLOW_CONN_{CONN_ID.upper()}": aws_connection(endpoint),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

        def child(variant: str) -> dict[str, Any]:
            argv = [variant, bucket, endpoint, str(count), str(sample)]
            return run_child(["-m", "benchmarks.bench_catalog_plan", "--child", *argv], env=env, timeout=900)

        made = child("setup")
        results: dict[str, list[dict[str, Any]]] = {PLAN: [], REBUILD: [made["rebuild"]], SEQUENTIAL: []}
        print(
            f"setup: {count:,} products put in {made['put_seconds']:.1f} s; {REBUILD}: "
            f"{made['rebuild']['seconds']:.2f} s, then the manifest written ({made['manifest_bytes'] / 1e6:.1f} MB)",
            flush=True,
        )
        for round_ in range(opts.repeats):  # in turns: rebuild (the setup's first), plan, rebuild, plan...
            for variant in (REBUILD, PLAN) if round_ else (PLAN,):
                results[variant].append(child(variant))
                print(f"{variant}: {results[variant][-1]['seconds']:.2f} s", flush=True)
        if sample:
            results[SEQUENTIAL].append(child(SEQUENTIAL))
            print(f"{SEQUENTIAL}: {results[SEQUENTIAL][-1]['seconds']:.2f} s for {sample:,} keys", flush=True)
    finally:
        moto.stop()
        shutil.rmtree(home, ignore_errors=True)
    return finish(report(results, made, count, sample, opts.repeats, load), opts.json)


def report(
    results: dict[str, list[dict[str, Any]]], made: dict[str, Any], count: int, sample: int, repeats: int, load: str
) -> Report:
    """The table of medians, the notes and the checks."""
    out = Report(
        f"Benchmark 9: planning {count:,} unchanged products on S3 (moto) with the manifest, against every sidecar",
        ["variant", "runs", "median s", "min s", "max s", "requests", "request mix", "unchanged", "to pay", "x plan"],
    )
    plan_s = median(r["seconds"] for r in results[PLAN])
    for variant, runs in results.items():
        if not runs:
            continue
        scale = count / sample if variant == SEQUENTIAL else 1.0
        seconds = [r["seconds"] * scale for r in runs]
        last = runs[-1]
        requests = max(_total(r["requests"]) for r in runs)
        out.rows.append([
            variant + (f" ({sample:,} keys, x{scale:g})" if scale != 1 else ""),
            len(runs),
            median(seconds),
            min(seconds),
            max(seconds),
            round(requests * scale),
            _mix(last["requests"]),
            last["counts"]["unchanged"],
            last["counts"]["to_pay"],
            median(seconds) / plan_s,
        ])  # fmt: skip
    plan_requests = max(_total(r["requests"]) for r in results[PLAN])
    speedup = median(r["seconds"] for r in results[REBUILD]) / plan_s
    out.checks += [
        Check("plan of the unchanged catalog: median wall time", plan_s, "<=", MAX_PLAN_SECONDS, " s"),
        Check("plan: storage requests (most in any run)", plan_requests, "<=", MAX_PLAN_REQUESTS),
        Check("rebuild from every sidecar / plan with the manifest (medians)", speedup, ">=", MIN_SPEEDUP, "x"),
        Check("plan: products found unchanged (fewest in any run)",
              min(r["counts"]["unchanged"] for r in results[PLAN]), ">=", count),
        Check("plan: jobs to pay for (most in any run)", max(r["counts"]["to_pay"] for r in results[PLAN]), "<=", 0),
        Check("rebuild: products found unchanged (fewest in any run)",
              min(r["counts"]["unchanged"] for r in results[REBUILD]), ">=", count),
    ]  # fmt: skip
    if results[SEQUENTIAL]:
        out.checks.append(
            Check("find_existing: keys found complete", results[SEQUENTIAL][0]["counts"]["unchanged"], ">=", sample)
        )
        out.notes.append(
            f"find_existing per key: measured once over the first {sample:,} keys, scaled x{count / sample:g} "
            "(time and requests) to the catalog's size"
        )
    out.notes.append(
        f"catalog: {count:,} products (image + sidecar), manifest {made['manifest_bytes'] / 1e6:.1f} MB; "
        "requests counted at the moto server (every HTTP request it answered during the timed call)"
    )
    out.notes.append(
        f"rebuild and plan in turns, {repeats} fresh child processes each (new filesystem, no cached listing; the "
        f"first rebuild is the setup's, after its uploads), each warmed by one request before the timed call; {load}"
    )
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child_main(sys.argv[2:])
    else:
        sys.exit(main())
