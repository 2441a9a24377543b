"""The garbage collector while the platform serves: its middle generation runs on a clock, not by
allocations, and cyclic garbage that reached it is still freed."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

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
