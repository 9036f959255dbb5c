"""The plugin in a real api-server: authentication, per-DAG authorization, only recorded images, exact bytes.

The results were written by real DAG runs (``dag.test()`` against the simulator) into a local folder and
the moto S3 server; the api-server is a separate ``airflow api-server`` process on loopback.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
from packaging.version import Version

from airflow_provider_gptimage.outputs.thumbnails import make_thumbnail, thumbnail_name
from airflow_provider_gptimage.ui import urls
from tests.conftest import AIRFLOW_VERSION
from tests.ui.apiserver import APIServer
from tests.ui.conftest import IMAGES_DAG, IMAGES_PER_JOB, SECRET_DAG, UIRuns

pytestmark = pytest.mark.dagtest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Images the run stored: two single tasks and a batch of four items, each job making IMAGES_PER_JOB.
STORED = 6 * IMAGES_PER_JOB


def image(run: str, task_id: str, number: int, map_index: int = -1, dag_id: str = IMAGES_DAG) -> str:
    return urls.image_path(dag_id, run, task_id, map_index, number)


def local_path(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


# ---------------------------------------------------------------------------------------- authentication
def test_no_token_is_refused(api_server: APIServer, ui_runs: UIRuns) -> None:
    for path in (
        image(ui_runs.images_run, "local", 0),
        urls.thumbnail_path(IMAGES_DAG, ui_runs.images_run, "local", -1, 0),
        urls.run_path(IMAGES_DAG, ui_runs.images_run),
    ):
        response = api_server.get(path)
        assert response.status_code in (401, 403), (path, response.status_code)
        assert PNG_MAGIC not in response.content


def test_a_forged_token_is_refused(api_server: APIServer, ui_runs: UIRuns) -> None:
    response = api_server.get(image(ui_runs.images_run, "local", 0), token="not.a.jwt")
    assert response.status_code in (401, 403)
    cookie = api_server.get(image(ui_runs.images_run, "local", 0), cookies={"_token": "not.a.jwt"})
    assert cookie.status_code in (401, 403)


def test_a_user_who_may_not_read_the_dag_gets_nothing(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    secret = [
        image(ui_runs.secret_run, "local", 0, dag_id=SECRET_DAG),
        urls.thumbnail_path(SECRET_DAG, ui_runs.secret_run, "local", -1, 0),
        urls.run_path(SECRET_DAG, ui_runs.secret_run),
        image(ui_runs.secret_run, "local", 99, dag_id=SECRET_DAG),  # refused before anything is looked up
    ]
    for path in secret:
        refused = api_server.get(path, tokens["outsider"])
        assert refused.status_code == 403, (path, refused.status_code, refused.text)
        assert PNG_MAGIC not in refused.content
    # The same user reads the other DAG, and another user reads this one: the decision is per DAG and user.
    assert api_server.get(image(ui_runs.images_run, "local", 0), tokens["outsider"]).status_code == 200
    allowed = api_server.get(secret[0], tokens["reader"])
    assert allowed.status_code == 200
    assert allowed.content == local_path(ui_runs.secret_result["output_uris"][0]).read_bytes()


def test_the_session_cookie_of_the_ui_is_accepted(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    if Version("3.1") > AIRFLOW_VERSION:
        pytest.skip(f"Airflow {AIRFLOW_VERSION} authenticates API calls by bearer token only (cookie: 3.1+)")
    response = api_server.get(image(ui_runs.images_run, "local", 0), cookies={"_token": tokens["reader"]})
    assert response.status_code == 200
    assert response.content.startswith(PNG_MAGIC)


# ---------------------------------------------------------------------------------------- the bytes
def test_local_images_are_served_byte_for_byte(api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]) -> None:
    outputs = ui_runs.results["local"]["outputs"]
    assert len(outputs) == IMAGES_PER_JOB
    for number, output in enumerate(outputs):
        response = api_server.get(image(ui_runs.images_run, "local", number), tokens["reader"])
        assert response.status_code == 200
        assert response.content == local_path(output["uri"]).read_bytes()
        assert response.headers["content-type"] == output["content_type"] == "image/png"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert len(response.content) == output["size"]
        if "content-encoding" not in response.headers:  # Airflow 3.0's api-server gzips responses
            assert response.headers["content-length"] == str(output["size"])
        assert "sandbox" in response.headers["content-security-policy"]
        assert "private" in response.headers["cache-control"]


def test_s3_images_are_served_byte_for_byte(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str], s3_client
) -> None:
    outputs = ui_runs.results["s3"]["outputs"]
    assert [o["conn_id"] for o in outputs] == ["aws_test"] * IMAGES_PER_JOB
    for number, output in enumerate(outputs):
        key = output["uri"].removeprefix(f"s3://{ui_runs.bucket}/")
        stored = s3_client.get_object(Bucket=ui_runs.bucket, Key=key)["Body"].read()
        response = api_server.get(image(ui_runs.images_run, "s3", number), tokens["reader"])
        assert response.status_code == 200
        assert response.content == stored
        assert response.headers["content-type"] == "image/png"


def test_batch_images_are_numbered_across_items_and_read_with_the_rendered_connection(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str], s3_client
) -> None:
    # The batch's report records no connection per item: the plugin reads the task's rendered
    # destination_conn_id (aws_test), without which the moto bucket could not be read at all.
    uris = [uri for item in ui_runs.results["batch"]["items"] for uri in item["output_uris"]]
    assert len(uris) == 4 * IMAGES_PER_JOB
    for number, uri in enumerate(uris):
        stored = s3_client.get_object(Bucket=ui_runs.bucket, Key=uri.removeprefix(f"s3://{ui_runs.bucket}/"))
        response = api_server.get(image(ui_runs.images_run, "batch", number), tokens["reader"])
        assert response.status_code == 200, response.text
        assert response.content == stored["Body"].read()


def test_a_thumbnail_is_the_one_the_copy_made_and_recorded(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    output = ui_runs.results["local"]["outputs"][1]
    thumb = api_server.get(urls.thumbnail_path(IMAGES_DAG, ui_runs.images_run, "local", -1, 1), tokens["reader"])
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content == local_path(output["thumbnail_uri"]).read_bytes()
    assert thumb.content[:3] == b"\xff\xd8\xff"  # a JPEG, not the PNG itself


def test_a_thumbnail_the_sidecar_names_is_served(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    stored = local_path(ui_runs.results["local"]["output_uris"][0])
    sidecar = stored.with_suffix(".json")
    original = sidecar.read_text()
    kept = stored.parent / thumbnail_name(stored.name)
    with stored.open("rb") as source:
        small = make_thumbnail(source)
    kept.parent.mkdir(exist_ok=True)
    kept.write_bytes(small)
    path = urls.thumbnail_path(IMAGES_DAG, ui_runs.images_run, "local", -1, 0)
    try:
        sidecar.write_text(json.dumps({**json.loads(original), "thumbnail": thumbnail_name(stored.name)}))
        thumb = api_server.get(path, tokens["reader"])
        assert thumb.status_code == 200, thumb.text
        assert (thumb.headers["content-type"], thumb.content) == ("image/jpeg", small)
        kept.unlink()  # named, but gone: the image itself
        fallback = api_server.get(path, tokens["reader"])
        assert (fallback.status_code, fallback.content) == (200, stored.read_bytes())
    finally:
        sidecar.write_text(original)
        kept.unlink(missing_ok=True)


def test_a_recorded_digest_makes_an_etag(api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]) -> None:
    path = image(ui_runs.images_run, "local", 0)
    first = api_server.get(path, tokens["reader"])
    assert first.headers["etag"] == f'"sha256-{ui_runs.results["local"]["outputs"][0]["sha256"]}"'
    again = api_server.get(path, tokens["reader"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


# ---------------------------------------------------------------------------------------- refusals
def test_only_uris_of_the_task_instance_result_are_served(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    run = ui_runs.images_run
    refused = {
        image(run, "local", IMAGES_PER_JOB): 404,  # one past the last image
        image(run, "local", 10**6): 404,
        image(run, "local", 0, map_index=0): 404,  # another task instance (not mapped)
        image(run, "local", 0, map_index=7): 404,
        image(run, "no_copy", 0): 404,  # kept no copy: its result URL is never fetched
        image(run, "missing_task", 0): 404,
        image("manual__not-a-run", "local", 0): 404,
        image(run, "local", 0, dag_id=SECRET_DAG): 404,  # the same ids under another DAG
        f"/gptimage/images/{IMAGES_DAG}/{run}/local/-1/-1": 404,
        f"/gptimage/images/{IMAGES_DAG}/{run}/local/-1/first": 422,
        f"/gptimage/images/{IMAGES_DAG}/{quote(run, safe='')}/local/-1/..%2F..%2Fetc%2Fpasswd": 404,
        f"/gptimage/images/{IMAGES_DAG}/{quote(run, safe='')}/..%2F..%2Fetc%2Fpasswd/-1/0": 404,
        "/gptimage/images/..%2F..%2F..%2Fetc%2Fpasswd": 422,  # decoded: ids "..", map index "etc"
        "/gptimage/files?uri=file:///etc/passwd": 404,
    }
    for path, status in refused.items():
        response = api_server.get(path, tokens["reader"])
        assert response.status_code == status, (path, response.status_code, response.text)
        assert PNG_MAGIC not in response.content
        assert b"root:" not in response.content
    # A URI in the query string is ignored: the path alone names the image, and the bytes are the task's.
    with_query = api_server.get(
        image(run, "local", 0), tokens["reader"], params={"uri": "file:///etc/passwd", "path": "/etc/passwd"}
    )
    assert with_query.content == local_path(ui_runs.results["local"]["output_uris"][0]).read_bytes()


def test_a_forged_result_serves_nothing(api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]) -> None:
    """A task may return anything: traversal, other schemes, system files, HTML named .png; none is served."""
    forged = ui_runs.results["forged"]["output_uris"]
    assert len(forged) == 7
    for number in range(len(forged) + 1):
        response = api_server.get(image(ui_runs.images_run, "forged", number), tokens["reader"])
        assert response.status_code == 404, (forged[number] if number < len(forged) else number, response.text)
        assert b"root:" not in response.content
        assert b"<script>" not in response.content
    # Only the decoy (an HTML page named .png) looks like an image until it is read: it is listed in the
    # gallery, where it loads nothing. No other forged entry is listed.
    page = api_server.get(urls.run_path(IMAGES_DAG, ui_runs.images_run, per_page=500), tokens["reader"]).text
    assert re.findall(r"/forged/-1/(\d+)", page) == ["6", "6"]  # its link and its thumbnail


# ---------------------------------------------------------------------------------------- the run's gallery
def test_the_run_gallery_lists_every_stored_image_with_sku_and_prompt(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    response = api_server.get(urls.run_path(IMAGES_DAG, ui_runs.images_run), tokens["reader"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'self'" in policy
    page = response.text
    assert "<script" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == STORED + 1  # local, s3, the batch, and the forged decoy
    assert all('loading="lazy"' in tag for tag in re.findall(r"<img [^>]+>", page))
    for key in ("sku-000", "sku-003", "hero", "kettle"):
        assert f'data-key="{key}' in page
    assert "catalog shot of sku-002" in page
    assert "a kettle on S3 for the plugin test" in page
    # Each thumbnail, resolved against the page as a browser does, is an image the reader may load.
    page_url = f"{api_server.url}{urls.run_path(IMAGES_DAG, ui_runs.images_run)}"
    loaded = 0
    for source in sources:
        resolved = urljoin(page_url, html.unescape(source)).removeprefix(api_server.url)
        assert resolved.startswith("/gptimage/thumbnails/")
        fetched = api_server.get(resolved, tokens["reader"])
        assert fetched.status_code == (404 if "/forged/" in resolved else 200), (resolved, fetched.text)
        loaded += fetched.content.startswith((PNG_MAGIC, b"\xff\xd8\xff"))  # a thumbnail, or the image
    assert loaded == STORED


def test_the_run_gallery_pages(api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]) -> None:
    total = STORED + 1
    seen = []
    for number in (1, 2, 3):
        page = api_server.get(urls.run_path(IMAGES_DAG, ui_runs.images_run, page=number, per_page=5), tokens["reader"])
        assert page.status_code == 200
        seen += re.findall(r'<img src="([^"]+)"', page.text)
        assert f"of {total} (page {number} of 3)" in page.text
    assert len(seen) == total == len(set(seen))
    assert (
        "page=2&amp;per_page=5"
        in api_server.get(urls.run_path(IMAGES_DAG, ui_runs.images_run, per_page=5), tokens["reader"]).text
    )
    too_many = api_server.get(urls.run_path(IMAGES_DAG, ui_runs.images_run, per_page=10**6), tokens["reader"])
    assert too_many.status_code == 422


# ---------------------------------------------------------------------------------------- extra links
def test_the_extra_links_open_the_images_in_the_plugin(
    api_server: APIServer, ui_runs: UIRuns, tokens: dict[str, str]
) -> None:
    links = ui_runs.links
    if Version("3.1") > AIRFLOW_VERSION:
        assert links["local"]["Image"] == ui_runs.results["local"]["output_uris"][0]
        assert links["local"]["Gallery"] == ""
        return
    # [api] base_url is unset in the test session: same-origin links, which the 3.3 UI shows.
    assert links["local"]["Image"] == image(ui_runs.images_run, "local", 0)
    assert links["batch"]["Image"] == image(ui_runs.images_run, "batch", 0)
    assert links["local"]["Gallery"] == links["batch"]["Gallery"] == urls.run_path(IMAGES_DAG, ui_runs.images_run)
    assert links["no_copy"]["Image"] == ui_runs.results["no_copy"]["result_urls"][0]  # nothing kept: the result URL
    assert links["no_copy"]["Gallery"] == ""
    opened = api_server.get(links["s3"]["Image"], tokens["reader"])
    assert opened.status_code == 200
    assert opened.content.startswith(PNG_MAGIC)
    assert api_server.get(links["batch"]["Gallery"], tokens["reader"]).status_code == 200


def test_the_api_server_lists_the_plugin(api_server: APIServer, tokens: dict[str, str]) -> None:
    plugins = api_server.get("/api/v2/plugins", tokens["reader"]).json()["plugins"]
    (plugin,) = [p for p in plugins if p["name"] == "gptimage"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == urls.URL_PREFIX
    views = [v for v in plugin.get("external_views", []) if v.get("url_route") == urls.VIEW_ROUTE]  # 3.1+
    assert len(views) == (1 if Version("3.1") <= AIRFLOW_VERSION else 0)
    if views:
        assert views[0]["destination"] == "dag_run"
        assert views[0]["href"] == "/gptimage/runs/{DAG_ID}/{RUN_ID}"
