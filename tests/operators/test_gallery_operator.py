"""The gallery operator: pages of a catalog folder, its result, and its page_size checked at parse time."""

from __future__ import annotations

import json

import pytest

from airflow_provider_gptimage.exceptions import GPTImageValidationError
from airflow_provider_gptimage.operators.gallery import GPTImageGalleryOperator
from tests.outputs.test_gallery import catalog, report


def test_result_names_the_pages(tmp_path):
    (tmp_path / "_catalog" / "runs").mkdir(parents=True)
    (tmp_path / "_catalog" / "manifest.json").write_text(json.dumps(catalog([f"K{i}" for i in range(7)])))
    (tmp_path / "_catalog" / "runs" / "latest.json").write_text(json.dumps(report(new=["K6"])))
    operator = GPTImageGalleryOperator(task_id="gallery", folder=tmp_path.as_uri(), title="Catalog", page_size=3)
    result = operator.execute({})
    assert result == {"uri": (tmp_path / "index.html").as_uri(), "images": 7, "pages": 3}
    assert sorted(p.name for p in tmp_path.glob("index*.html")) == ["index-2.html", "index-3.html", "index.html"]
    assert '<figure data-key="K6" class="new">' in (tmp_path / "index.html").read_text()


def test_an_empty_folder_is_one_page(tmp_path):
    result = GPTImageGalleryOperator(task_id="gallery", folder=tmp_path.as_uri()).execute({})
    assert (result["images"], result["pages"]) == (0, 1)


@pytest.mark.parametrize("page_size", [0, -1, 2.5, "200", True])
def test_page_size_is_a_positive_integer(page_size):
    with pytest.raises(GPTImageValidationError, match="page_size"):
        GPTImageGalleryOperator(task_id="gallery", folder="file:///tmp/x", page_size=page_size)
