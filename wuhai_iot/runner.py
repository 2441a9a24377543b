"""How the platform's processes run their event loop: on uvloop where it is installed.

uvloop (libuv, in C) does the event loop's own work (reading sockets, writing answers, scheduling
callbacks) in C instead of asyncio's Python selector loop; with thousands of terminals that work is a
good part of every frame's cost (ingest measured about 10 % faster). The load generator
(``wuhai-iot simulate``) runs on it too: on asyncio's loop it cost 45 µs of CPU a frame, 31 µs on uvloop,
and a generator that is the slowest part of a load test measures itself. uvloop is not available on
Windows, where asyncio's own loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None  # type: ignore[assignment]


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the platform runs on (None: asyncio's default)."""
    return uvloop.new_event_loop if uvloop is not None else None


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on the platform's event loop."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
