"""The shared connection pools: one per event loop and TLS setting, closed after their last user."""

from __future__ import annotations

import asyncio
import ssl

from airflow_provider_gptimage.triggers import session as shared
from airflow_provider_gptimage.triggers.session import shared_client_session


async def test_one_pool_per_tls_setting():
    corporate, other = ssl.create_default_context(), ssl.create_default_context()
    async with (
        shared_client_session() as default,
        shared_client_session(True) as default_again,
        shared_client_session(False) as unchecked,
        shared_client_session(corporate) as first,
        shared_client_session(corporate) as first_again,
        shared_client_session(other) as second,
    ):
        assert default is default_again
        assert first is first_again
        sessions = {id(s) for s in (default, unchecked, first, second)}
        assert len(sessions) == 4  # different CA settings never share connections
        assert len(shared._pools[asyncio.get_running_loop()]) == 4
    assert shared._pools.get(asyncio.get_running_loop()) is None
    for session in (default, unchecked, first, second):
        assert session.closed


async def test_a_pool_outlives_other_settings_pools():
    context = ssl.create_default_context()
    async with shared_client_session() as default:
        async with shared_client_session(context) as private:
            assert private is not default
        assert private.closed
        assert not default.closed
        assert list(shared._pools[asyncio.get_running_loop()]) == [True]
    assert default.closed
