"""The package refuses to load on an Airflow older than it supports, as first-party providers do."""

from __future__ import annotations

import importlib.metadata

import pytest

import airflow_provider_gptimage


@pytest.mark.parametrize("installed", ["2.10.5", "3.0.5", "3.0.0rc1"])
def test_an_older_airflow_is_refused_with_the_versions(monkeypatch, installed):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed)
    with pytest.raises(RuntimeError, match=rf"needs Apache Airflow 3\.0\.6\+ \(installed: {installed}\)"):
        airflow_provider_gptimage._check_airflow_version()


@pytest.mark.parametrize("installed", ["3.0.6", "3.3.2", "3.4.0.dev0"])
def test_supported_releases_load(monkeypatch, installed):
    monkeypatch.setattr(importlib.metadata, "version", lambda name: installed)
    airflow_provider_gptimage._check_airflow_version()


def test_every_error_class_is_in_the_errors_table():
    import inspect

    from airflow_provider_gptimage import exceptions
    from tests.conftest import REPO

    page = (REPO / "docs" / "reliability.md").read_text()
    classes = [n for n, c in inspect.getmembers(exceptions, inspect.isclass) if issubclass(c, exceptions.GPTImageError)]
    assert [name for name in classes if f"`{name}`" not in page] == []
