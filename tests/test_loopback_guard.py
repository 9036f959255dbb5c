"""The session-wide guard: a test can never send a packet beyond loopback (see tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest
import requests

from tests import conftest


def test_a_connect_beyond_loopback_is_refused_and_recorded():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("192.0.2.1", 80))  # TEST-NET-1: would never answer anyway
    assert conftest.REFUSED_CONNECTS == ["('192.0.2.1', 80)"]
    conftest.REFUSED_CONNECTS.clear()  # this test expected it; any other test would fail here


def test_the_metadata_address_is_refused_through_requests_too():
    with pytest.raises(requests.ConnectionError):
        requests.get("http://169.254.169.254/latest/meta-data/", timeout=1)
    assert conftest.REFUSED_CONNECTS
    conftest.REFUSED_CONNECTS.clear()


def test_names_other_than_this_machine_are_not_resolved():
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("metadata.google.internal", 80)
    assert socket.getaddrinfo("localhost", 80)
    assert socket.getaddrinfo("127.0.0.1", 80)


def test_loopback_connects_work(simulator):
    assert requests.get(f"{simulator.url}/_sim/stats", timeout=5).ok
