"""Per-platform plugin state: ``platform.state``, one object per class.

The one way a plugin keeps what belongs to a running platform (its tracker, its database connection,
its counters): create the object in ``platform_starting`` and ``platform.state.add(obj)``; find it
anywhere through the platform with ``platform.state.get(Cls)``; take it back in ``platform_stopping``
with ``platform.state.pop(Cls)``. Never a module-level dictionary keyed by the platform: two platforms
(tests run many) would share it, and nothing says when its entries go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class PluginState:
    """Objects kept for one running platform, found by their class."""

    def __init__(self) -> None:
        self._objects: dict[type[Any], Any] = {}
        self._creating: dict[type[Any], asyncio.Future[Any]] = {}

    def add(self, obj: T) -> T:
        """Keep ``obj`` under its class; a second object of the same class is a bug (ValueError)."""
        cls = type(obj)
        if cls in self._objects:
            raise ValueError(f"the platform already has a {cls.__qualname__}")
        self._objects[cls] = obj
        return obj

    def get(self, cls: type[T]) -> T:
        """The object of class ``cls``; LookupError when its plugin has not started (or has stopped)."""
        try:
            return self._objects[cls]  # type: ignore[no-any-return]
        except KeyError:
            raise LookupError(f"no {cls.__qualname__} on this platform: its plugin has not started") from None

    def find(self, cls: type[T]) -> T | None:
        """The object of class ``cls``, or None (an optional feature that is switched off)."""
        return self._objects.get(cls)

    def pop(self, cls: type[T]) -> T | None:
        """Take the object of class ``cls`` back (``platform_stopping``); None when there is none."""
        return self._objects.pop(cls, None)

    async def get_or_create(self, cls: type[T], create: Callable[[], Awaitable[T]]) -> T:
        """The object of class ``cls``, created by ``create()`` on first use: for an object several
        plugins need in their ``platform_starting``, whichever of them runs first."""
        if cls in self._objects:
            return self._objects[cls]  # type: ignore[no-any-return]
        pending = self._creating.get(cls)
        if pending is not None:
            return await asyncio.shield(pending)  # type: ignore[no-any-return]
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._creating[cls] = future
        try:
            obj = await create()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # (retrieved: the waiters, if any, see it)
            raise
        finally:
            del self._creating[cls]
        if type(obj) is not cls:
            raise TypeError(f"create() made a {type(obj).__qualname__}, not a {cls.__qualname__}")
        self._objects[cls] = obj
        future.set_result(obj)
        return obj
