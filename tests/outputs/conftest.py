"""Fixtures of the outputs tests: a local image server (the S3 fixtures are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .imageserver import ImageServer


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """A local HTTP server of result images (valid, broken, expired, cut, big) that counts requests."""
    server = ImageServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def images(image_server: ImageServer) -> ImageServer:
    """The image server with its request counts reset."""
    image_server.hits.clear()
    return image_server
