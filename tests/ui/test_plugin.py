"""The plugin's registration, URLs and page rendering, without a server."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
from packaging.version import Version

from airflow_provider_gptimage.outputs.gallery import GalleryEntry, render_gallery
from airflow_provider_gptimage.ui import urls
from airflow_provider_gptimage.ui.plugin import RUN_VIEW, GPTImagePlugin, LazyApp
from airflow_provider_gptimage.ui.view import page_bounds
from tests.conftest import AIRFLOW_VERSION


def test_the_plugin_is_registered_through_its_entry_point():
    (entry,) = [e for e in entry_points(group="airflow.plugins") if e.name == "gptimage"]
    assert entry.load() is GPTImagePlugin
    (app,) = GPTImagePlugin.fastapi_apps
    assert app["url_prefix"] == urls.URL_PREFIX == "/gptimage"
    assert isinstance(app["app"], LazyApp)


def test_the_run_view_needs_airflow_3_1():
    expected = [RUN_VIEW] if Version("3.1") <= AIRFLOW_VERSION else []
    assert expected == GPTImagePlugin.external_views
    assert urls.ui_sessions() == (Version("3.1") <= AIRFLOW_VERSION)
    assert RUN_VIEW["destination"] == "dag_run"
    assert RUN_VIEW["href"] == "/gptimage/runs/{DAG_ID}/{RUN_ID}"


def test_loading_the_plugin_stays_cheap():
    """Every Airflow process loads plugins: loading this one imports nothing heavy that ``AirflowPlugin``
    itself does not (on Airflow 3.0 that already includes FastAPI): neither the API server nor the app."""
    heavy = ("fastapi", "airflow.api_fastapi.core_api.security", "airflow_provider_gptimage.ui.app")
    code = (
        "import sys\n"
        f"def loaded(): return sorted(m for m in {heavy!r} if m in sys.modules)\n"
        "import airflow.plugins_manager\n"
        "before = loaded()\n"
        "import airflow_provider_gptimage.ui.plugin\n"
        "print(before, loaded())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    before, after = run.stdout.strip().splitlines()[-1].split("] [")
    assert before + "]" == "[" + after
    assert "core_api" not in after
    assert "ui.app" not in after


def test_urls_encode_every_id():
    path = urls.image_path("d", "manual__2026-01-01T00:00:00+00:00", "t/x", 3, 2)
    assert path == "/gptimage/images/d/manual__2026-01-01T00%3A00%3A00%2B00%3A00/t%2Fx/3/2"
    assert urls.run_path("d", "r", page=2, per_page=50) == "/gptimage/runs/d/r?page=2&per_page=50"
    assert urls.absolute("/gptimage/x", "https://a.example/base/") == "https://a.example/base/gptimage/x"
    assert urls.absolute("/gptimage/x", "") == "/gptimage/x"


@pytest.mark.parametrize(
    ("base_url", "href"),
    [
        ("", "/gptimage/runs/{DAG_ID}/{RUN_ID}"),
        ("http://127.0.0.1:8080/", "/gptimage/runs/{DAG_ID}/{RUN_ID}"),
        ("https://example.com/airflow/", "/airflow/gptimage/runs/{DAG_ID}/{RUN_ID}"),
    ],
)
def test_the_tab_is_framed_from_the_api_servers_own_path(base_url, href):
    assert urls.view_href(base_url) == href


@pytest.mark.parametrize(
    ("total", "page", "per_page", "expected"),
    [
        (0, 1, 60, (0, 0, 1)),
        (12, 1, 5, (0, 5, 3)),
        (12, 3, 5, (10, 12, 3)),
        (12, 99, 5, (10, 12, 3)),
        (5, 1, 5, (0, 5, 1)),
    ],
)
def test_page_bounds(total, page, per_page, expected):
    assert page_bounds(total, page, per_page) == expected


def test_the_page_policy_allows_only_the_gallery_style():
    from airflow_provider_gptimage.ui.app import page_policy

    entry = GalleryEntry("a.png", "<b>sku</b>", "p", "j", {}, 1, "", href="../../images/x", thumbnail="../../t/x")
    page = render_gallery([entry], title="t", summary="1 of 1", pages=[("Next", "?page=2&per_page=1")])
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = page_policy(page)
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "img-src 'self'" in policy
    assert 'href="../../images/x"' in page
    assert 'src="../../t/x"' in page
    assert "&lt;b&gt;sku" in page
    assert '<a href="?page=2&amp;per_page=1">Next</a>' in page
