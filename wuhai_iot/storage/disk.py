"""The disk, forecast: the database's size, the free space on its file system, the growth over the last
7 days and the days left at that rate, sampled every SAMPLE_INTERVAL_S while serving.

Below ALARM_DAYS_LEFT days left, or below ALARM_FREE_PCT % free, the disk alarm is on: admins see it on
every page (the dashboard too) and on the system page, ``/metrics`` has ``wuhai_disk_alarm 1``, the log has
a warning, and the listeners hear of it (alarms/system.py raises the ``disk_space`` alarm, which goes
through the alarm book, the alarm pages and the webhook like any other). It goes off, and the log says so,
once space is back past RECOVERED_DAYS_LEFT and RECOVERED_FREE_PCT.

The growth is that of the database file, which is what fills the disk: once retention deletes old rows,
SQLite reuses their pages, and the file stops growing.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.storage.db import fetch_one
from wuhai_iot.storage.writer import WriterClosed

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 600.0
GROWTH_WINDOW = timedelta(days=7)
MIN_GROWTH_SPAN = timedelta(hours=1)
"""Less than this between the oldest sample in the window and now: no rate yet (a fresh start)."""
KEEP_SAMPLES = timedelta(days=35)
ALARM_DAYS_LEFT = 30
ALARM_FREE_PCT = 5.0
RECOVERED_DAYS_LEFT = 35
RECOVERED_FREE_PCT = 6.0
"""The alarm goes off only a little beyond where it goes on: a disk hovering at a threshold raises one
alarm, not one every sample."""

SAMPLE_INSERT = "INSERT OR REPLACE INTO disk_samples (at, database_bytes, free_bytes, total_bytes) VALUES (?, ?, ?, ?)"


class Usage(NamedTuple):
    """``shutil.disk_usage``'s answer (total, used, free bytes)."""

    total: int
    used: int
    free: int


@dataclass(frozen=True, slots=True)
class DiskForecast:
    at: datetime
    database_bytes: int
    free_bytes: int
    total_bytes: int
    growth_bytes: int | None
    """Growth of the database since the oldest sample of the last 7 days (None: not an hour of samples yet)."""
    growth_span: timedelta
    """How long that growth took (7 days once the platform has run that long)."""

    @property
    def free_pct(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def growth_per_day(self) -> float | None:
        if self.growth_bytes is None:
            return None
        return self.growth_bytes / (self.growth_span / timedelta(days=1))

    @property
    def days_left(self) -> float | None:
        """Days until the disk is full at the growth rate; None when the database does not grow."""
        rate = self.growth_per_day
        if rate is None or rate <= 0:
            return None
        return self.free_bytes / rate

    @property
    def alarm_reasons(self) -> list[str]:
        """Why the disk alarm is on (empty: it is off)."""
        reasons = []
        days = self.days_left
        if days is not None and days < ALARM_DAYS_LEFT:
            reasons.append(f"{days:.1f} days left at {self.growth_per_day / 2**20:.1f} MiB a day")  # type: ignore[operator]
        if self.free_pct < ALARM_FREE_PCT:
            reasons.append(f"{self.free_pct:.1f} % free")
        return reasons

    @property
    def recovered(self) -> bool:
        """Whether an alarm that is on may go off (see RECOVERED_DAYS_LEFT)."""
        days = self.days_left
        return (days is None or days >= RECOVERED_DAYS_LEFT) and self.free_pct >= RECOVERED_FREE_PCT


def forecast(now: datetime, database_bytes: int, usage: Usage, oldest: tuple[float, int] | None) -> DiskForecast:
    """The forecast from today's figures and ``oldest`` = (time, database bytes) of the oldest sample
    within the growth window."""
    growth, span = None, timedelta(0)
    if oldest is not None:
        span = now - datetime.fromtimestamp(oldest[0], UTC)
        if span >= MIN_GROWTH_SPAN:
            growth = database_bytes - oldest[1]
    return DiskForecast(now, database_bytes, usage.free, usage.total, growth, span)


def database_bytes(path: Path) -> int:
    """The database file and its WAL."""
    total = 0
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            total += file.stat().st_size
        except FileNotFoundError:
            pass
    return total


Listener = Callable[[DiskForecast, bool], Awaitable[None]]
"""Awaited after every sample with the forecast and whether the alarm is on."""


class DiskWatch:
    """Samples the disk for one running platform and keeps the latest forecast."""

    def __init__(self, platform: Platform, usage: Callable[[Path], Usage] = shutil.disk_usage) -> None:  # type: ignore[assignment]
        self.platform = platform
        self.usage = usage
        self.latest: DiskForecast | None = None
        self.alarm_since: datetime | None = None
        self.task: asyncio.Task[None] | None = None
        self.listeners: list[Listener] = []

    @property
    def alarm(self) -> bool:
        return self.alarm_since is not None

    async def sample(self, now: datetime | None = None) -> DiskForecast:
        """Measure, record the sample, and turn the alarm on or off."""
        now = now or datetime.now(UTC)
        path = self.platform.config.database.path
        size = database_bytes(path)
        usage = Usage(*self.usage(path.parent))
        row = await fetch_one(
            self.platform.reader, "SELECT at, database_bytes FROM disk_samples WHERE at >= ? ORDER BY at LIMIT 1",
            ((now - GROWTH_WINDOW).timestamp(),),
        )  # fmt: skip
        found = forecast(now, size, usage, None if row is None else (row[0], row[1]))
        await self.platform.writer.write([
            (SAMPLE_INSERT, (now.timestamp(), size, usage.free, usage.total)),
            ("DELETE FROM disk_samples WHERE at < ?", ((now - KEEP_SAMPLES).timestamp(),)),
        ])  # fmt: skip
        self.latest = found
        reasons = found.alarm_reasons
        if reasons and self.alarm_since is None:
            self.alarm_since = now
            log.warning("disk alarm: %s on the file system of %s (%.1f GiB free)", "; ".join(reasons), path,
                        usage.free / 2**30)  # fmt: skip
        elif self.alarm_since is not None and found.recovered:
            self.alarm_since = None
            log.info("disk alarm over: %.1f GiB free (%.1f %%) on the file system of %s", usage.free / 2**30,
                     found.free_pct, path)  # fmt: skip
        for listener in self.listeners:
            await listener(found, self.alarm)
        return found

    async def _sampling(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL_S)
            try:
                await self.sample()
            except WriterClosed:
                return  # the platform is stopping
            except Exception:
                log.exception("sampling the disk failed")


def disk_watch(platform: Platform) -> DiskWatch | None:
    """The running platform's disk watch (None before it started)."""
    return platform.state.find(DiskWatch)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    watch = platform.state.add(DiskWatch(platform))
    await watch.sample()
    watch.task = asyncio.create_task(watch._sampling(), name="disk-watch")


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    watch = platform.state.pop(DiskWatch)
    if watch is not None and watch.task is not None:
        watch.task.cancel()
        await asyncio.gather(watch.task, return_exceptions=True)
