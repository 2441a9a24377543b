"""The platform's own alarms: its disk filling up, as an alarm like any other (the alarm book, the pages,
the webhook), about the ``system`` subject ``disk`` rather than a lift, cylinder, station or vehicle.

storage/disk.py samples the disk and says whether its alarm is on (under 30 days left at the 7-day growth,
or under 5 % free). This module raises the ``disk_space`` alarm when it goes on; when it goes off (space is
back), the alarm is cleared and resolved by the platform, with a note: nobody has anything left to do. The
alarm has no district, and the alarm queries leave it out unless asked (``platform_alarms``): the web
layer asks for users who may see the system page (the admin role).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.alarms.kinds import AlarmKind
from wuhai_iot.alarms.model import Subject
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.storage.disk import DiskForecast, disk_watch

if TYPE_CHECKING:
    from wuhai_iot.alarms.book import AlarmBook
    from wuhai_iot.server import Platform

DISK = Subject(system="disk")
DISK_SPACE = "disk_space"


@hookimpl
def register_alarm_kinds() -> list[AlarmKind]:
    return [AlarmKind(DISK_SPACE, "major", "磁盘空间不足", "platform")]


def disk_detail(forecast: DiskForecast) -> dict[str, Any]:
    """What the alarm shows: the free space, the database, its growth and the days left, as measured."""
    days, rate = forecast.days_left, forecast.growth_per_day
    return {
        "free_bytes": forecast.free_bytes,
        "free_pct": round(forecast.free_pct, 1),
        "database_bytes": forecast.database_bytes,
        "growth_bytes_per_day": None if rate is None else round(rate),
        "days_left": None if days is None else round(days, 1),
    }


class DiskAlarm:
    """One ``disk_space`` alarm while the disk watch's alarm is on."""

    def __init__(self, book: AlarmBook) -> None:
        self.book = book

    async def follow(self, forecast: DiskForecast, alarm_on: bool) -> None:
        """A disk watch listener (called after every sample)."""
        active = self.book.active(DISK, DISK_SPACE)
        if alarm_on and active is None:
            statements = self.book.raise_alarm(DISK, DISK_SPACE, forecast.at, detail=disk_detail(forecast))
        elif not alarm_on and active is not None:
            free = f"{forecast.free_bytes / 2**30:.1f} GB（{forecast.free_pct:.1f}%）"
            statements = self.book.clear_alarm(DISK, DISK_SPACE, forecast.at, detail=disk_detail(forecast),
                                               resolve_note=f"磁盘空间已恢复：可用 {free}")  # fmt: skip
        else:
            return
        await self.book.writer.write(statements)


@hookimpl(trylast=True)
async def platform_starting(platform: Platform) -> None:
    """(Last: the alarm book is loaded and the disk watch has taken its first sample.) An alarm still
    active from before a restart stays the one alarm while the disk has not recovered."""
    watch = disk_watch(platform)
    if watch is None:
        return
    book = await alarm_book(platform)
    active = book.active(DISK, DISK_SPACE)
    if active is not None and watch.latest is not None and not watch.latest.recovered:
        watch.alarm_since = active.since
    alarm = DiskAlarm(book)
    watch.listeners.append(alarm.follow)
    if watch.latest is not None:
        await alarm.follow(watch.latest, watch.alarm)
