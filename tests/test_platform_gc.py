"""The garbage collector while the platform serves: its middle generation runs on a clock, not by
allocations, and cyclic garbage that reached it is still freed; a closed connection makes none."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from conftest import TerminalClient, fixture_bytes

from wuhai_iot import server
from wuhai_iot.config import Config
from wuhai_iot.server import Platform


class Node:
    """Half of a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.other: Node | None = None


async def test_cyclic_garbage_in_the_middle_generation_is_freed_on_the_clock(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MIDDLE_GC_INTERVAL_S", 0.05)
    before = gc.get_threshold()
    async with Platform(config):
        assert gc.get_threshold() == server.GC_THRESHOLDS
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect(0)  # the pair survives a young collection: it is in the middle generation now
        freed = weakref.ref(a)
        del a, b
        gc.collect(0)  # a young collection does not look at it
        assert freed() is not None
        for _ in range(100):
            await asyncio.sleep(0.01)
            if freed() is None:
                break
        assert freed() is None
    assert gc.get_threshold() == before  # stopping gives the process its collector back


async def test_a_closed_connection_is_freed_at_once_without_the_cyclic_collector(platform: Platform) -> None:
    # The oldest generation runs rarely while serving: a closed connection caught in a reference cycle
    # (once, its own bound method kept as an attribute) stayed in memory for up to 100 minutes, and a fleet
    # that reconnects every few minutes piled them up (about 3 KB each, the province soak's growth).
    gc.collect()
    gc.disable()
    try:
        terminal = await TerminalClient.connect(platform, "elink")
        await terminal.send(fixture_bytes("elink/login_vendor_example.hex"))
        await terminal.receive()
        await terminal.send(fixture_bytes("elink/status_vendor_example.hex"))
        await terminal.receive()
        (connection,) = platform.listeners["elink"].connections
        freed, closed = weakref.ref(connection), connection.closed
        del connection
        await terminal.close()
        await closed  # its session's end is recorded
        for _ in range(5):  # the callbacks its end scheduled run and let go of it
            await asyncio.sleep(0)
        assert freed() is None
    finally:
        gc.enable()
