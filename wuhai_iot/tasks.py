"""Background tasks that outlive their bugs: ``supervised`` logs an unexpected exception and starts the
work again, so that one bad tick does not end the ticking (or the pruning, or the notifications) for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from wuhai_iot.storage.writer import WriterClosed

log = logging.getLogger(__name__)


def supervised(
    work: Callable[[], Coroutine[Any, Any, None]],
    name: str,
    *,
    restart_after_s: float = 1.0,
    ends_on: tuple[type[BaseException], ...] = (WriterClosed,),
) -> asyncio.Task[None]:
    """Run ``work()`` as a background task named ``name``; cancel the task to stop it.

    ``work`` returning, or raising one of ``ends_on`` (the writer closed: the platform is stopping), ends
    the task. Any other exception is logged with its traceback and ``work()`` is started again after
    ``restart_after_s``."""

    async def supervise() -> None:
        while True:
            try:
                await work()
                return
            except ends_on as stop:
                log.info("%s ends: %s", name, stop)
                return
            except Exception:
                log.exception("%s failed; restarting it in %g s", name, restart_after_s)
            await asyncio.sleep(restart_after_s)

    return asyncio.create_task(supervise(), name=name)
