"""Rules on event time (docs/time.md): the same records give the same alarms, times, flags and rescues
whether they arrive live, late one by one, or as a batch after an outage.

Every sequence of device_fixtures/sequences/ is replayed three ways through the real ingest path (ELink
frames over loopback TCP, a real SQLite file), each on a fresh platform: live (the platform's tick runs
between frames at the moment the lift's clock shows the next frame's time; gaps of a second or less are
real pauses), late (each record its own frame, two hours late, a tick at the real platform time after
each) and batch (STATUS_BATCH frames after an outage, then a heartbeat). The outcome, in seconds from the
sequence start, must be the same.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiosqlite
import pytest
from conftest import import_census
from lift_support import (
    LATE_S,
    LIFT,
    SEQUENCES,
    LiftTerminal,
    base_sequences,
    sequence,
    sequence_end,
    variant_name,
    variant_text,
)

from wuhai_iot.config import Config
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.elevators.queries import get_lift
from wuhai_iot.server import Platform

MODES = ("live", "late", "batch")
REAL_PAUSE_MAX_S = 1.0
"""Live gaps up to this long are real pauses; longer ones are the platform's tick at the right moment."""


async def deliver(platform: Platform, name: str, mode: str, late_s: int = LATE_S) -> int:
    """Send a sequence in one of the three ways (late ones ``late_s`` after the sequence's end); return
    its start (device time)."""
    lift = await LiftTerminal.connect(platform)
    running = monitoring(platform)
    lines = sequence(name)
    end = sequence_end(lines)
    now = int(time.time())
    try:
        if mode == "live":
            t0 = now - end - 5
            previous: int | None = None
            for line in lines:
                gap = None if previous is None else line["t"] - previous
                if gap is not None and 0 < gap <= REAL_PAUSE_MAX_S:
                    await asyncio.sleep(gap)  # a terminal reporting live: the frame is sent when it happens
                elif previous is not None:
                    await running.advance(lift.platform_time(t0 + line["t"]))
                await lift.frame(line, t0)
                previous = line["t"]
            await running.advance(lift.platform_time(t0 + end))
        else:
            t0 = now - end - late_s
            for line in sequence(variant_name(name, mode)):
                if "late_s" in line:
                    continue
                await lift.frame(line, t0)
                if mode == "late":
                    await running.advance(datetime.now(UTC))  # the platform's tick goes on meanwhile
            await running.advance(datetime.now(UTC))
    finally:
        await lift.close()
    return t0


async def outcome(database: aiosqlite.Connection, t0: int) -> dict[str, Any]:
    """Alarms, rescues and visits, times in seconds from the sequence start. Left out: offline alarms
    (being disconnected is what a late upload is) and the late flag of a rescue nobody has arrived at (a
    wait on the platform clock: two hours after the fact it is late, a minute after it is not yet)."""

    def rel(value: float | None) -> float | None:
        return None if value is None else round(value - t0, 3)

    alarms = await (await database.execute(
        "SELECT kind, since, raised_at, cleared_at, flapping, episodes, json_extract(detail, '$.ended_by')"
        " FROM alarms WHERE merged_into IS NULL AND kind != 'offline' ORDER BY raised_at, kind"
    )).fetchall()  # fmt: skip
    rescues = await (await database.execute(
        "SELECT raised_at, released_at, arrived_at, late FROM rescues ORDER BY raised_at"
    )).fetchall()  # fmt: skip
    visits = await (await database.execute(
        "SELECT card, started_at, ended_at, flags FROM maintenance_visits ORDER BY coalesce(started_at, ended_at)"
    )).fetchall()  # fmt: skip
    return {
        "alarms": [(k, rel(s), rel(r), rel(c), bool(f), e, by) for k, s, r, c, f, e, by in alarms],
        "rescues": [(rel(r), rel(x), rel(a), None if a is None else bool(late)) for r, x, a, late in rescues],
        "visits": [(card, rel(s), rel(e), flags) for card, s, e, flags in visits],
    }


@pytest.fixture
async def fresh(config: Config) -> AsyncIterator[Any]:
    """A function starting a fresh platform (its own database, the census imported, tick off)."""
    started: list[Platform] = []
    first = config.database.path

    async def start() -> Platform:
        config.database.path = first.with_name(f"run{len(started)}.sqlite3")
        await import_census(config.database.path)
        config.rules.tick_interval_s = 0
        platform = Platform(config)
        await platform.start()
        started.append(platform)
        return platform

    yield start
    for platform in started:
        await platform.stop()  # (stopping twice is harmless)


async def three_ways(fresh: Any, name: str, late_s: int = LATE_S) -> dict[str, dict[str, Any]]:
    results = {}
    for mode in MODES:
        platform = await fresh()
        t0 = await deliver(platform, name, mode, late_s)
        results[mode] = await outcome(await platform.open_database(), t0)
        await platform.stop()
    return results


def test_every_sequence_has_its_late_and_batch_variant() -> None:
    """The variant files hold exactly the base sequence's records, delivered as the README says."""
    for name in base_sequences():
        for kind in ("late", "batch"):
            path = SEQUENCES / variant_name(name, kind)
            assert path.read_text(encoding="utf-8") == variant_text(name, kind), path.name


@pytest.mark.parametrize("name", base_sequences())
async def test_live_late_and_batch_give_the_same_outcome(fresh: Any, name: str) -> None:
    results = await three_ways(fresh, name)
    assert results["late"] == results["live"], "late"
    assert results["batch"] == results["live"], "batch"


# --- the items of issue 14, each: the expected outcome, the same in all three ways ----------------------


async def test_1_trapped_during_an_outage_is_raised_the_moment_the_batch_arrives(fresh: Any) -> None:
    results = await three_ways(fresh, "trapped_outage.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [
            ("trapped", 0, 40, None, False, 1, None),
            ("stopped_outside_zone", 0, 45, None, False, 1, None),
        ], mode
        assert [(raised, released) for raised, released, _, _ in results[mode]["rescues"]] == [(40, None)], mode


async def test_1_a_heartbeat_on_the_terminal_clock_raises_at_once(fresh: Any) -> None:
    """One sample 600 s ago, then a heartbeat showing 60 s later: raised on the heartbeat, dated +40 s."""
    platform = await fresh()
    lift = await LiftTerminal.connect(platform)
    start = int(time.time()) - 600
    await lift.batch(start, [(start, {"zone": False, "occupied": True})])
    database = await platform.open_database()
    assert await outcome(database, start) == {"alarms": [], "rescues": [], "visits": []}
    await lift.heartbeat(start + 60)
    await platform.writer.write([])  # the heartbeat's catch-up is queued before this unit
    alarms = (await outcome(database, start))["alarms"]
    assert alarms == [("trapped", 0, 40, None, False, 1, None), ("stopped_outside_zone", 0, 45, None, False, 1, None)]
    await lift.close()


async def test_2_a_whole_past_episode_in_a_batch_is_raised_cleared_and_rescued(fresh: Any) -> None:
    results = await three_ways(fresh, "trapped_40s.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [("trapped", 5, 45, 65, False, 1, "doors_open")], mode
        assert [(raised, released) for raised, released, _, _ in results[mode]["rescues"]] == [(45, 65)], mode


async def test_3_moving_with_the_doors_closed_is_not_a_release(fresh: Any) -> None:
    results = await three_ways(fresh, "trapped_moving.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [("trapped", 0, 40, 70, False, 1, "doors_open")], mode
        assert [(raised, released) for raised, released, _, _ in results[mode]["rescues"]] == [(40, 70)], mode


async def test_3_the_person_sensor_clear_for_10_s_releases(fresh: Any) -> None:
    results = await three_ways(fresh, "trapped_flicker.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [("trapped", 0, 40, 80, False, 1, "person_clear")], mode


async def test_4_a_late_cleared_fault_does_not_clear_a_later_alarm(fresh: Any) -> None:
    results = await three_ways(fresh, "fault_late_clear.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [("door_fault", 100, 100, None, False, 1, None)], mode


async def test_5_flapping_is_measured_in_device_time(fresh: Any) -> None:
    results = await three_ways(fresh, "fault_flapping.jsonl")
    for mode in MODES:
        assert results[mode]["alarms"] == [("safety_circuit", 0, 0, 320, True, 6, None)], mode


async def test_6_a_maint_end_within_4_hours_undoes_no_end(fresh: Any) -> None:
    """Five hours late: the tick between the two frames flags no_end (platform clock), the end undoes it."""
    results = await three_ways(fresh, "maint_end_late.jsonl", late_s=5 * 3600 - 2460)
    for mode in MODES:
        assert results[mode]["visits"] == [(123456, 0, 2400, "")], mode


async def test_6_no_maint_end_within_4_hours_of_device_time_is_flagged(fresh: Any) -> None:
    results = await three_ways(fresh, "maint_no_end.jsonl")
    for mode in MODES:
        assert results[mode]["visits"] == [(123456, 0, 17940, "no_end")], mode


async def test_7_only_a_visit_without_flag_resets_the_15_day_clock(fresh: Any) -> None:
    for mode in MODES:
        platform = await fresh()
        database = await platform.open_database()
        sixteen_days_ago = time.time() - 16 * 86400
        await platform.writer.write([(
            "INSERT INTO maintenance_visits (id, device_code, card, started_at, ended_at, duration_min, flags, detail)"
            " VALUES (1000, ?, 123456, ?, ?, 40, '', '{}')", (LIFT, sixteen_days_ago - 2400, sixteen_days_ago),
        )])  # fmt: skip
        t0 = await deliver(platform, "maint_not_maintenance.jsonl", mode)
        visits = (await outcome(database, t0))["visits"]
        assert [(card, flags) for card, _, _, flags in visits] == [
            (123456, ""), (999999, "unregistered_card"), (123456, "short")
        ], mode
        view = await get_lift(database, LIFT)
        assert view is not None and view.maintenance_overdue and view.days_since_maintenance == 16, mode
        await platform.stop()
