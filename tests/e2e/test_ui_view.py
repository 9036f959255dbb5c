"""The plugin inside the real Airflow UI: a batch run's images in the DAG run's "GPT Images" tab, seen by a
headless Chromium, and the task's "Image" extra link.

The stack's api-server runs the simple auth manager with every user an admin (its middleware signs each
request); the per-user checks are in ``tests/ui``. Set ``GPTIMAGE_E2E_ARTIFACTS`` to keep the screenshots
in that folder (else they stay in the test's temporary folder); their paths are printed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from airflow_provider_gptimage.simulator.client import SimulatorClient
from airflow_provider_gptimage.ui import urls
from tests.conftest import AIRFLOW_VERSION
from tests.e2e.browser import Browser, Page, chromium_path
from tests.e2e.helpers import TASK, new_run_id, wait_for_run
from tests.e2e.stack import AirflowStack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        Version("3.1") > AIRFLOW_VERSION, reason=f"Airflow {AIRFLOW_VERSION}: plugin views need Airflow 3.1+"
    ),
    pytest.mark.skipif(chromium_path() is None, reason="chromium missing: run scripts/install-chromium.sh as root"),
]

BATCH = "gptimage_e2e_batch"
BATCH_COUNT = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: The gallery's images, inside the tab's iframe (same origin, so the page's script can read them).
IMAGES_STATE = """(() => {
  const frame = document.querySelector('iframe');
  const doc = frame && frame.contentDocument;
  if (!doc || doc.readyState !== 'complete' || !doc.querySelector('.grid')) return null;
  const images = [...doc.images];
  return {
    count: images.length,
    loaded: images.filter(i => i.complete && i.naturalWidth > 0).length,
    broken: images.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
    keys: [...doc.querySelectorAll('figure')].map(f => f.dataset.key),
    height: doc.documentElement.scrollHeight,
    title: doc.title,
  };
})()"""


def _artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("GPTIMAGE_E2E_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _view(page: Page, url: str) -> tuple[dict[str, Any], bytes]:
    """Open the run's tab, scroll through its gallery until every lazy image loaded, then screenshot it."""
    await page.navigate(url)
    state = await page.wait_for(f"(s => s && s.count > 0 && s)({IMAGES_STATE})", 90)
    for offset in range(0, int(state["height"]) + 600, 500):  # lazy images load as they come into view
        await page.evaluate(f"document.querySelector('iframe').contentWindow.scrollTo(0, {offset})")
        await page.evaluate("new Promise(r => setTimeout(r, 150))")
    final = await page.wait_for(f"(s => s && s.loaded + s.broken.length === s.count && s)({IMAGES_STATE})", 60)
    await page.evaluate("document.querySelector('iframe').contentWindow.scrollTo(0, 0)")
    await page.evaluate("new Promise(r => setTimeout(r, 500))")
    return dict(final), await page.screenshot()


async def _link(page: Page, url: str) -> tuple[str, bytes]:
    """Open the task instance's Details tab; return the ``href`` of its "Image" extra link and a screenshot."""
    await page.navigate(url)
    href = await page.wait_for(
        "(() => { const a = [...document.querySelectorAll('a')].find(a => a.textContent.trim() === 'Image');"
        " return a && a.getAttribute('href'); })()",
        90,
    )
    return str(href), await page.screenshot()


def test_the_run_tab_shows_every_image_of_a_batch(stack: AirflowStack, sim: SimulatorClient, tmp_path: Path) -> None:
    sim.reset()
    sim.configure(generation_seconds=1, active_task_limit=None, images_per_job=1)
    run_id = new_run_id("ui")
    destination = stack.home / "ui-output" / run_id
    stack.api.trigger(BATCH, run_id, {"destination": str(destination)})
    assert wait_for_run(stack, BATCH, run_id) == "success"
    files = sorted(destination.glob("sku-*.png"))
    assert len(files) == BATCH_COUNT

    # The extra links the worker stored: absolute http links into the plugin ([api] base_url is set).
    links = stack.api.call("GET", f"dags/{BATCH}/dagRuns/{run_id}/taskInstances/{TASK}/links")["extra_links"]
    base = stack.api.url
    assert links["Image"] == f"{base}{urls.image_path(BATCH, run_id, TASK, -1, 0)}"
    assert links["Gallery"] == f"{base}{urls.run_path(BATCH, run_id)}"
    opened = stack.api._session.get(links["Image"], timeout=30)
    assert opened.status_code == 200
    assert opened.content == (destination / "sku-00.png").read_bytes()

    artifacts = _artifacts(tmp_path)
    tab = f"{base}/dags/{BATCH}/runs/{run_id}/plugin/{urls.VIEW_ROUTE}"
    details = f"{base}/dags/{BATCH}/runs/{run_id}/tasks/{TASK}/details"
    browser = Browser(stack.service_log_dir).start()
    try:
        state, png = browser.run(lambda page: _view(page, tab))
        href, links_png = browser.run(lambda page: _link(page, details))
    finally:
        browser.stop()
    for name, data in (("gptimage-run-tab.png", png), ("gptimage-extra-links.png", links_png)):
        (artifacts / name).write_bytes(data)
        print(f"\nscreenshot: {artifacts / name}", file=sys.stderr)

    assert state["broken"] == []
    assert state["count"] == state["loaded"] == BATCH_COUNT
    assert state["keys"] == [f"sku-{i:02d}" for i in range(BATCH_COUNT)]
    assert href == links["Image"]  # the UI draws the link (http) and it opens the plugin's image
