"""Publishing wired into the platform: the recorder of the terminals' days with data, and what it counts over
the whole registry after each recording: the installations' totals, the evaluation report's registry-wide
figures."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aiosqlite

from wuhai_iot.clock import cst_today
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.publishing import evaluation
from wuhai_iot.publishing import installations as installs
from wuhai_iot.storage import db
from wuhai_iot.tasks import supervised

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)


@dataclass
class DaysRecorder:
    """The running recorder of the terminals' days with data (kept on ``platform.state``), and the
    installations' totals as last counted."""

    task: asyncio.Task[None] | None = None
    counted: installs.Counted | None = None
    registry: evaluation.RegistryCounts | None = None
    """The evaluation report's registry-wide counts, as last counted."""
    conn: aiosqlite.Connection | None = None
    """Its own read connection: counting reads every terminal, which would hold up the pages' reads."""
    counting: asyncio.Lock = field(default_factory=asyncio.Lock)


@hookimpl
def platform_starting(platform: Platform) -> None:
    recorder = platform.state.add(DaysRecorder())
    recorder.task = supervised(lambda: _recording(platform), "terminal-days")


async def _recording(platform: Platform) -> None:
    await count_installations(platform)
    await count_registry(platform)
    while True:
        await asyncio.sleep(installs.RECORD_INTERVAL_S)
        await record_days(platform)


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    """Stop the recorder and record once more (the days of a short run are kept too), unless the writer
    is already closed or failing: stopping goes on regardless."""
    recorder = platform.state.pop(DaysRecorder)
    if recorder is None or recorder.task is None:  # the platform did not get as far as starting
        return
    task = recorder.task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        await _record(platform, recorder, datetime.now(UTC))
    except Exception as exc:  # noqa: BLE001 - logged; what was recorded before stays
        log.warning("the terminals' days with data were not recorded at stop: %s", exc)


async def _connection(platform: Platform, recorder: DaysRecorder) -> aiosqlite.Connection:
    """The recorder's own read connection, opened on first use."""
    if recorder.conn is None:
        recorder.conn = await platform.open_database()
    return recorder.conn


async def _record(platform: Platform, recorder: DaysRecorder, now: datetime) -> None:
    last = await db.fetch_one(await _connection(platform, recorder), "SELECT max(rowid) FROM terminal_sessions")
    for statement in installs.record_days_statements(now, int(last[0] or 0) if last else 0):
        await platform.writer.write([statement])


async def record_days(platform: Platform, now: datetime | None = None) -> None:
    """Record the terminals' days with data now (the recorder does it every few minutes), a chunk of sessions
    at a time, then count the installations' totals again."""
    await _record(platform, platform.state.get(DaysRecorder), now or datetime.now(UTC))
    await count_installations(platform)
    await count_registry(platform)


async def count_installations(platform: Platform) -> installs.Counted:
    """Judge and count every terminal now (one grouped read, on the recorder's own connection)."""
    recorder = platform.state.get(DaysRecorder)
    async with recorder.counting:
        recorder.counted = await installs.count_installations(await _connection(platform, recorder), today=cst_today(),
                                                              rules=platform.config.acceptance)  # fmt: skip
        return recorder.counted


async def installation_counts(platform: Platform) -> installs.Counted:
    """The installations' totals as last counted (counted now when there are none yet, or they were counted
    on an earlier day: acceptances lapse at midnight)."""
    counted = platform.state.get(DaysRecorder).counted
    if counted is None or counted.today != cst_today():
        counted = await count_installations(platform)
    return counted


async def count_registry(platform: Platform) -> evaluation.RegistryCounts:
    """Count the evaluation report's registry-wide figures now (on the recorder's own connection)."""
    recorder = platform.state.get(DaysRecorder)
    async with recorder.counting:
        recorder.registry = await evaluation.count_registry(await _connection(platform, recorder))
        return recorder.registry


async def registry_counts(platform: Platform) -> evaluation.RegistryCounts:
    """The evaluation report's registry-wide figures as last counted (counted now when there are none yet, or
    they were counted on an earlier day)."""
    counts = platform.state.get(DaysRecorder).registry
    if counts is None or cst_today(counts.taken_at) != cst_today():
        counts = await count_registry(platform)
    return counts
