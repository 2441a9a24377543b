"""Maintenance visits from card swipes over the real ingest path, their flags, and the overdue lists.

The swipes come from LMT-4 card readers (visits are protocol-neutral; the rescue tests use ELink swipes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiosqlite
import pytest
from conftest import import_census
from lift_support import (
    CARD,
    LIFT,
    LIFT_2,
    LIFT_3,
    CardReader,
    at,
    register_extra_terminals,
    start_of_sequence,
)

from wuhai_iot.config import Config
from wuhai_iot.elevators.maintenance import list_visits
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.elevators.queries import list_lifts
from wuhai_iot.server import Platform

MINUTE = 60


@pytest.fixture
async def platform(config: Config) -> AsyncIterator[Platform]:
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    await register_extra_terminals(config.database.path)
    async with Platform(config) as running:
        yield running


def summary(visits: list) -> list[tuple]:
    return [(v.device_code, v.card, v.started_at, v.ended_at, v.duration_min, v.flags) for v in visits]


async def test_normal_visit_has_no_flag(platform: Platform, database: aiosqlite.Connection) -> None:
    lift = await CardReader.connect(platform)
    t0 = start_of_sequence() - 3 * 3600
    await lift.maintenance_start(t0)
    await lift.maintenance_end(t0 + 45 * MINUTE, items=31)
    (visit,) = await list_visits(database)
    assert summary([visit]) == [(LIFT, CARD, at(t0), at(t0 + 45 * MINUTE), 45.0, [])]
    assert (visit.worker_name, visit.worker_company, visit.items) == ("张某", "乌海市某电梯工程有限公司", 31)
    assert await list_visits(database, flagged=True) == []
    await lift.close()


async def test_five_minute_visit_is_short(platform: Platform, database: aiosqlite.Connection) -> None:
    lift = await CardReader.connect(platform)
    t0 = start_of_sequence()
    await lift.maintenance_start(t0)
    await lift.maintenance_end(t0 + 5 * MINUTE, items=3)
    assert summary(await list_visits(database, flag="short")) == [
        (LIFT, CARD, at(t0), at(t0 + 5 * MINUTE), 5.0, ["short"])
    ]
    await lift.close()


async def test_one_card_at_two_lifts_20_km_apart_8_minutes_apart(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    first = await CardReader.connect(platform, LIFT)
    second = await CardReader.connect(platform, LIFT_2)
    t0 = start_of_sequence() - 3 * 3600
    await first.maintenance_start(t0)
    await first.maintenance_end(t0 + 30 * MINUTE)
    await second.maintenance_start(t0 + 38 * MINUTE)
    await second.maintenance_end(t0 + 70 * MINUTE)
    visits = {v.device_code: v for v in await list_visits(database, card=CARD)}
    assert visits[LIFT].flags == ["impossible_travel"]
    assert visits[LIFT_2].flags == ["impossible_travel"]
    assert visits[LIFT_2].detail["distance_km"] == pytest.approx(20.7, abs=0.2)
    assert visits[LIFT_2].detail["speed_kmh"] > 60
    await first.close()
    await second.close()


async def test_overlapping_visits_of_one_card(platform: Platform, database: aiosqlite.Connection) -> None:
    first = await CardReader.connect(platform, LIFT)
    second = await CardReader.connect(platform, LIFT_2)
    t0 = start_of_sequence() - 3 * 3600
    await first.maintenance_start(t0)
    await second.maintenance_start(t0 + 10 * MINUTE)
    await first.maintenance_end(t0 + 40 * MINUTE)
    await second.maintenance_end(t0 + 50 * MINUTE)
    assert sorted(v.flags for v in await list_visits(database)) == [["overlap"], ["overlap"]]
    await first.close()
    await second.close()


async def test_card_of_another_company_and_unregistered_card(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    other = await CardReader.connect(platform, LIFT_3)
    t0 = start_of_sequence() - 3 * 3600
    await other.maintenance_start(t0)
    await other.maintenance_end(t0 + 40 * MINUTE)
    await other.maintenance_start(t0 + 60 * MINUTE, card=999)
    await other.maintenance_end(t0 + 90 * MINUTE, card=999)
    unknown, foreign = await list_visits(database, device_code=LIFT_3)
    assert (foreign.flags, foreign.detail["lift_company"]) == (["other_company"], "内蒙古某机电设备有限公司")
    assert (unknown.card, unknown.flags, unknown.worker_name) == (999, ["unregistered_card"], None)
    await other.close()


async def test_visit_without_end_is_flagged_after_4_h(platform: Platform, database: aiosqlite.Connection) -> None:
    lift = await CardReader.connect(platform)
    t0 = start_of_sequence()
    await lift.maintenance_start(t0)
    running = monitoring(platform)
    await running.advance(at(t0 + 3 * 3600))
    assert (await list_visits(database))[0].flags == []
    await running.advance(at(t0 + 4 * 3600 + 1))
    (visit,) = await list_visits(database, flag="no_end")
    assert (visit.started_at, visit.ended_at, visit.flags) == (at(t0), None, ["no_end"])
    await lift.close()


async def test_overdue_and_inspection_lists(platform: Platform, database: aiosqlite.Connection) -> None:
    lift = await CardReader.connect(platform)
    visit_start = int(datetime(2026, 11, 2, 1, 0, tzinfo=UTC).timestamp())  # 09:00 CST on 2 Nov
    await lift.maintenance_start(visit_start)
    await lift.maintenance_end(visit_start + 40 * MINUTE)
    on_17th = datetime(2026, 11, 17, 3, 0, tzinfo=UTC)
    on_18th = datetime(2026, 11, 18, 3, 0, tzinfo=UTC)
    assert LIFT not in [r.device_code for r in await list_lifts(database, now=on_17th, maintenance_overdue=True)]
    overdue = {r.device_code: r for r in await list_lifts(database, now=on_18th, maintenance_overdue=True)}
    assert overdue[LIFT].days_since_maintenance == 16
    assert overdue[LIFT_2].last_maintenance_at is None
    scoped = await list_lifts(database, now=on_18th, maintenance_overdue=True,
                              maintenance_company="内蒙古某机电设备有限公司")  # fmt: skip
    assert [r.device_code for r in scoped] == [LIFT_3]
    # LIFT_2 is due for inspection on 2026-10-15.
    assert [r.device_code for r in await list_lifts(database, now=on_18th, inspection_overdue=True)] == [LIFT_2]
    soon = await list_lifts(database, now=datetime(2026, 9, 20, tzinfo=UTC), inspection_due_soon=True)
    assert [r.device_code for r in soon] == [LIFT_2]
    lifts = {view.device_code: view for view in await list_lifts(database, now=on_17th)}
    assert (lifts[LIFT].online, lifts[LIFT].maintenance_overdue, lifts[LIFT].inspection_overdue) == (True, False, False)
    assert lifts[LIFT_2].inspection_overdue and lifts[LIFT_2].maintenance_overdue
    await lift.close()
