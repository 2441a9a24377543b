"""The alarm lifecycle through the alarm book, on the real platform and database."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiosqlite
import pytest

from wuhai_iot.alarms.book import acknowledge_alarm, alarm_book, resolve_alarm
from wuhai_iot.alarms.model import Alarm, AlarmAlreadyResolved, AlarmNotFound, Subject
from wuhai_iot.alarms.queries import get_alarm, list_alarms, open_alarms
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.storage import audit

LIFT = Subject(device_code="31101503022012000101")
CYLINDER = Subject(cylinder_code="LPG-YSP35.5-0012345", station_code=150301)
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[int, str]] = []

    @hookimpl
    def alarm_changed(self, platform: Platform, alarm: Alarm, change: str) -> None:
        self.changes.append((alarm.id, change))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    plugin = Recorder()
    get_plugin_manager().register(plugin, name="alarm-recorder")
    yield plugin
    get_plugin_manager().unregister(name="alarm-recorder")


async def test_one_episode_is_one_alarm_and_handling(platform: Platform, database: aiosqlite.Connection) -> None:
    book = await alarm_book(platform)
    await platform.writer.write(book.raise_alarm(LIFT, "door_lock", at(0), source="device", vendor_code="10"))
    await platform.writer.write(book.raise_alarm(LIFT, "door_lock", at(30)))
    await platform.writer.write(book.clear_alarm(LIFT, "door_lock", at(40), source="device"))
    (alarm,) = await list_alarms(database)
    assert (alarm.kind, alarm.severity, alarm.condition, alarm.repeats) == ("door_lock", "major", "active", 2)
    assert alarm.sources == {"device", "rule"} and alarm.active_sources == {"rule"}
    assert alarm.district_code == "150302"
    await platform.writer.write(book.clear_alarm(LIFT, "door_lock", at(50)))
    cleared = await get_alarm(database, alarm.id)
    assert cleared is not None
    assert (cleared.condition, cleared.cleared_at, cleared.cleared_by) == ("cleared", at(50), "rule")

    # A new episode after clearing is a new alarm.
    await platform.writer.write(book.raise_alarm(LIFT, "door_lock", at(100)))
    assert [a.id for a in await open_alarms(database)] == [alarm.id + 1, alarm.id]

    acked = await acknowledge_alarm(platform, alarm.id, user="王值班", note="已通知维保")
    assert (acked.status, acked.acknowledged_by) == ("acknowledged", "王值班")
    resolved = await resolve_alarm(platform, alarm.id, user="王值班", note="门锁已修复")
    assert (resolved.status, resolved.resolve_note) == ("resolved", "门锁已修复")
    stored = await get_alarm(database, alarm.id)
    assert stored is not None and (stored.status, stored.acknowledge_note) == ("resolved", "已通知维保")
    with pytest.raises(AlarmAlreadyResolved):
        await acknowledge_alarm(platform, alarm.id, user="x")
    with pytest.raises(AlarmAlreadyResolved):
        await resolve_alarm(platform, alarm.id, user="x")
    with pytest.raises(AlarmNotFound):
        await resolve_alarm(platform, 9999, user="x")
    with pytest.raises(AlarmNotFound):  # outside the caller's district
        await acknowledge_alarm(platform, alarm.id + 1, user="x", district_code="150304")
    assert [a.id for a in await list_alarms(database, status="resolved")] == [alarm.id]
    assert await list_alarms(database, status="open", district_code="150304") == []


async def test_cylinder_alarm_from_a_one_off_finding(platform: Platform, database: aiosqlite.Connection) -> None:
    book = await alarm_book(platform)
    await platform.writer.write(book.record_alarm(CYLINDER, "overfill", at(0), detail={"over_kg": 0.8}))
    await platform.writer.write(book.record_alarm(CYLINDER, "overfill", at(60)))
    alarms = await list_alarms(database, cylinder_code=CYLINDER.cylinder_code, station_code=150301)
    assert [(a.kind, a.severity, a.condition, a.status) for a in alarms] == [("overfill", "major", "cleared", "raised")] * 2
    assert alarms[1].detail == {"over_kg": 0.8}
    assert (await list_alarms(database, district_code="150302"))[0].cylinder_code == CYLINDER.cylinder_code


async def test_flapping_collapses_into_one_alarm(
    platform: Platform, database: aiosqlite.Connection, recorder: Recorder
) -> None:
    book = await alarm_book(platform)
    for cycle in range(7):
        await platform.writer.write(book.raise_alarm(LIFT, "power_lost", at(cycle * 60)))
        await platform.writer.write(book.clear_alarm(LIFT, "power_lost", at(cycle * 60 + 20)))
    (alarm,) = await list_alarms(database, kind="power_lost")
    assert (alarm.flapping, alarm.episodes, alarm.condition, alarm.raised_at) == (True, 7, "cleared", at(0))
    merged = await (await database.execute("SELECT count(*) FROM alarms WHERE merged_into = ?", (alarm.id,))).fetchone()
    assert merged[0] == 3
    # Quiet for longer than the window: the next episode is a new, ordinary alarm.
    await platform.writer.write(book.raise_alarm(LIFT, "power_lost", at(7 * 60 + 20 + 601)))
    newest = (await list_alarms(database, kind="power_lost"))[0]
    assert (newest.id != alarm.id, newest.flapping) == (True, False)
    await platform.stop()  # sends what is pending before the writer closes
    first = alarm.id
    assert recorder.changes[:2] == [(first, "raised"), (first, "cleared")]
    assert (first, "flapping") in recorder.changes and (first, "reactivated") in recorder.changes
    assert recorder.changes[-1] == (newest.id, "raised")


async def test_handling_and_its_audit_entry_commit_together(
    platform: Platform, database: aiosqlite.Connection, recorder: Recorder
) -> None:
    book = await alarm_book(platform)
    await platform.writer.write(book.raise_alarm(LIFT, "door_lock", at(0)))
    (alarm,) = await list_alarms(database)
    with pytest.raises(sqlite3.IntegrityError):  # an audit entry that cannot be stored ...
        await acknowledge_alarm(platform, alarm.id, user="王值班", also=lambda _: [(audit.INSERT, (None,) * 7)])
    stored = await get_alarm(database, alarm.id)
    assert stored is not None and stored.status == "raised", "... leaves the alarm unchanged"
    resolved = await resolve_alarm(platform, alarm.id, user="王值班", note="门锁已修复", also=lambda changed: [
        audit.entry("王值班", "alarm.resolve", "alarm", changed.id, district_code=changed.district_code),
    ])  # fmt: skip
    async with asyncio.timeout(5):  # changes are announced in the order they were made
        while (alarm.id, "resolved") not in recorder.changes:
            await asyncio.sleep(0.01)
    assert (alarm.id, "acknowledged") not in recorder.changes, "... and announces no change that did not happen"
    [entry] = await audit.query(database, action="alarm.")
    assert (entry.action, entry.object_id, entry.district_code) == ("alarm.resolve", str(resolved.id), "150302")
    stored = await get_alarm(database, alarm.id)
    assert stored is not None and stored.status == "resolved"
