"""Publishing wired into the platform: the recorder of the terminals' days with data (installations)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.publishing.installations import record_days_statement, run_recorder
from wuhai_iot.tasks import supervised

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)


@dataclass
class DaysRecorder:
    """The running recorder of the terminals' days with data (kept on ``platform.state``)."""

    task: asyncio.Task[None]


@hookimpl
def platform_starting(platform: Platform) -> None:
    platform.state.add(DaysRecorder(supervised(lambda: run_recorder(platform), "terminal-days")))


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    """Stop the recorder and record once more (the days of a short run are kept too), unless the writer
    is already closed or failing: stopping goes on regardless."""
    recorder = platform.state.pop(DaysRecorder)
    if recorder is None:  # the platform did not get as far as starting
        return
    task = recorder.task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        await record_days(platform)
    except Exception as exc:  # noqa: BLE001 - logged; what was recorded before stays
        log.warning("the terminals' days with data were not recorded at stop: %s", exc)


async def record_days(platform: Platform, now: datetime | None = None) -> None:
    """Record the terminals' days with data now (the recorder does it every few minutes)."""
    await platform.writer.write([record_days_statement(now or datetime.now(UTC))])
