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


@pytest.fixture(scope="session")
def tls_image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ImageServer, str]]:
    """The image server over HTTPS with a certificate of a test CA; yields it and the CA bundle's path."""
    import ssl

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = ImageServer(ssl_context=context)
    server.start()
    try:
        yield server, str(bundle)
    finally:
        server.stop()
