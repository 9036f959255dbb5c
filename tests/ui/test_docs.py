"""The documentation served by the plugin (the package's Documentation URL): every page renders, with the
example DAGs' code included, and nothing outside the documentation is ever read."""

from __future__ import annotations

import pytest

from airflow_provider_gptimage.ui import docs
from tests.conftest import REPO


def pages() -> list[str]:
    root = REPO / "docs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.md") if "_build" not in p.parts)


@pytest.mark.parametrize("page", pages())
def test_every_page_renders_without_myst_left_over(page):
    html = docs.render(page)
    assert html is not None and "<h1>" in html
    assert "```{" not in html and "{literalinclude}" not in html and "{toctree}" not in html


def test_the_how_to_pages_show_the_example_dags_code():
    html = docs.render("howto/sensor.md")
    assert "GPTImageTaskSensor(" in html and "[START" not in html
    index = docs.render("index.md")
    assert 'href="howto/generate.md"' in index and "Generate an image" in index


@pytest.mark.parametrize(
    "page", ["../pyproject.toml", "../README", "/etc/passwd", "howto/../../Makefile.md", "x.md", "index.html", ""]
)
def test_nothing_outside_the_docs_is_served(page):
    assert page == "" or docs.render(page) is None
    assert docs.render("") is not None  # the index


def test_raw_html_in_a_page_is_escaped(tmp_path, monkeypatch):
    (tmp_path / "index.md").write_text("# Hi\n\n<script>alert(1)</script>\n")
    monkeypatch.setattr(docs, "docs_folder", lambda: tmp_path)
    assert "<script>" not in docs.render("index.md")


def test_the_app_serves_the_docs_without_login():
    from starlette.testclient import TestClient

    from airflow_provider_gptimage.ui.app import create_app

    client = TestClient(create_app())
    response = client.get("/docs/")
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert client.get("/docs/howto/batch.md").status_code == 200
    assert client.get("/docs/../../etc/passwd").status_code == 404
