"""Elevator rules: timed sequences replayed through the real ingest path (loopback TCP, real SQLite).

Time is driven by the device times in the frames and by ``monitoring(platform).advance(now)``; the
platform's own once-a-second tick is switched off (``tick_interval_s = 0``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite
import pytest
from aiohttp import web
from conftest import import_census
from lift_support import LIFT, LiftTerminal, alarm_rows, at, start_of_sequence

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import resolve_alarm
from wuhai_iot.alarms.queries import alarm_samples, list_alarms
from wuhai_iot.alarms.webhook import webhook_notifier
from wuhai_iot.config import Config
from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.elevators.queries import daily_figures, get_lift
from wuhai_iot.elevators.rescue import RescueAlreadyRecorded, list_rescues
from wuhai_iot.elevators.rules.base import LiftContext, Rule, Transition
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.server import Platform


@pytest.fixture
async def platform(config: Config) -> AsyncIterator[Platform]:
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    async with Platform(config) as running:
        yield running


@pytest.fixture
async def lift(platform: Platform) -> AsyncIterator[LiftTerminal]:
    terminal = await LiftTerminal.connect(platform)
    yield terminal
    await terminal.close()


async def test_trapped_after_40_s_then_doors_open(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("trapped_40s.jsonl", t0)
    assert await alarm_rows(database) == [("trapped", t0 + 45, t0 + 65)]
    (alarm,) = await list_alarms(database)
    assert (alarm.since, alarm.severity, alarm.sources, alarm.detail["floor"]) == (at(t0 + 5), "critical", {"rule"}, 5)
    kept = [record["device_time"] for record in await alarm_samples(database, alarm.id)]
    assert kept == [at(s).isoformat().replace("+00:00", "Z") for s in (t0, t0 + 5, t0 + 15, t0 + 30, t0 + 44, t0 + 50, t0 + 65)]
    figures = await daily_figures(database, device_code=LIFT)
    assert sum(row["faults"] for row in figures) == 1
    assert sum(row["running_s"] for row in figures) == 5


async def test_sensor_flicker_does_not_end_trapped(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.replay("trapped_flicker.jsonl", t0)
    assert await alarm_rows(database) == [("trapped", t0 + 40, t0 + 80)]


async def test_trapped_fires_on_the_tick_without_a_frame(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.status(t0, occupied=True)
    await lift.status(t0 + 30, occupied=True)
    await monitoring(platform).advance(lift.platform_time(t0 + 39))
    assert await alarm_rows(database) == []
    await monitoring(platform).advance(lift.platform_time(t0 + 41))
    assert await alarm_rows(database) == [("trapped", t0 + 40, None)]


async def test_stop_outside_zone_30_s_is_no_alarm(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("stop_outside_zone_30s.jsonl", t0)
    await monitoring(platform).advance(lift.platform_time(t0 + 200))
    assert await alarm_rows(database) == []


async def test_stop_outside_zone_45_s_alarms_on_the_tick(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("stop_outside_zone_45s.jsonl", t0)
    await monitoring(platform).advance(lift.platform_time(t0 + 44))
    assert await alarm_rows(database) == []
    await monitoring(platform).advance(lift.platform_time(t0 + 46))
    assert await alarm_rows(database) == [("stopped_outside_zone", t0 + 45, None)]
    await lift.status(t0 + 60, zone=True)
    assert await alarm_rows(database) == [("stopped_outside_zone", t0 + 45, t0 + 60)]
    (alarm,) = await list_alarms(database)
    assert (alarm.severity, alarm.detail["after_s"]) == ("major", 45)


async def test_moved_with_door_open(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.replay("door_open_moving.jsonl", t0)
    assert await alarm_rows(database) == [
        ("door_open_moving", t0 + 2, t0 + 3),  # three consecutive records
        ("door_open_moving", t0 + 105, t0 + 107),  # two records 6 s apart: 5 s reached
    ]


async def test_overspeed_needs_two_consecutive_records(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.replay("overspeed.jsonl", t0)
    assert await alarm_rows(database) == [("overspeed", t0 + 4, t0 + 5)]
    (alarm,) = await list_alarms(database)
    assert (alarm.detail["rated_speed_mps"], alarm.detail["factor"]) == (1.75, 1.2)


async def test_power_lost_10_s(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.replay("power_lost.jsonl", t0)
    assert await alarm_rows(database) == [("power_lost", t0 + 10, t0 + 20)]


async def test_terminal_faults_raise_and_clear_unknown_code_kept(
    lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("terminal_faults.jsonl", t0)
    assert await alarm_rows(database) == [("door_fault", t0, t0 + 30), ("unknown_fault", t0 + 10, None)]
    alarms = {a.kind: a for a in await list_alarms(database)}
    assert (alarms["unknown_fault"].vendor_code, alarms["unknown_fault"].severity) == ("150", "minor")
    assert (alarms["door_fault"].sources, alarms["door_fault"].cleared_by) == ({"device"}, "device")


async def test_terminal_fault_and_rule_are_one_episode(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.status(t0, occupied=True)
    await lift.fault(t0 + 20, 1, True)  # the terminal says trapped at 20 s
    await lift.status(t0 + 30, occupied=True)
    await lift.status(t0 + 45, occupied=True)  # the rule reaches 40 s
    await lift.fault(t0 + 50, 1, False)  # the terminal clears; the rule still sees the condition
    assert await alarm_rows(database) == [("trapped", t0 + 20, None)]
    await lift.status(t0 + 55, occupied=True, door="open")
    assert await alarm_rows(database) == [("trapped", t0 + 20, t0 + 55)]
    (alarm,) = await list_alarms(database)
    assert (alarm.sources, alarm.vendor_code) == ({"device", "rule"}, "1")


async def test_flapping_fault_is_one_alarm(lift: LiftTerminal, database: aiosqlite.Connection) -> None:
    t0 = start_of_sequence()
    await lift.replay("fault_flapping.jsonl", t0)
    assert await alarm_rows(database) == [("safety_circuit", t0, t0 + 320)]
    (alarm,) = await list_alarms(database)
    assert (alarm.flapping, alarm.episodes) == (True, 6)


async def test_offline_after_180_s_and_back(platform: Platform, database: aiosqlite.Connection) -> None:
    lift = await LiftTerminal.connect(platform)
    t0 = start_of_sequence()
    await lift.status(t0)
    await lift.close()
    await asyncio.sleep(0)
    row = await (await database.execute("SELECT last_frame_at FROM terminal_sessions")).fetchone()
    last = row[0]
    await monitoring(platform).advance(at(last + 179))
    assert await alarm_rows(database) == []
    await monitoring(platform).advance(at(last + 181))
    rows = await alarm_rows(database)
    assert [(kind, round(raised - last), cleared) for kind, raised, cleared in rows] == [("offline", 180, None)]
    view = await get_lift(database, LIFT)
    assert view is not None and view.open_alarms == 1
    back = await LiftTerminal.connect(platform)
    await back.status(t0 + 600)
    (alarm,) = await list_alarms(database)
    assert (alarm.kind, alarm.condition, alarm.severity) == ("offline", "cleared", "minor")
    await back.close()


async def test_offline_is_undone_by_a_late_record_dated_inside_its_window(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    """The terminal kept recording while its network was down: its first record after the alarm is dated
    100 s after the last one (the limit is 180 s), so live the same records would have raised nothing."""
    lift = await LiftTerminal.connect(platform)
    t0 = start_of_sequence()
    await lift.status(t0)
    await lift.close()
    await asyncio.sleep(0)
    row = await (await database.execute("SELECT last_frame_at FROM terminal_sessions")).fetchone()
    await monitoring(platform).advance(at(row[0] + 181))
    (raised,) = await list_alarms(database)
    assert (raised.kind, raised.condition, raised.status) == ("offline", "active", "raised")
    back = await LiftTerminal.connect(platform)
    await back.status(t0 + 100)
    (alarm,) = await list_alarms(database)
    assert (alarm.condition, alarm.status, alarm.resolved_by) == ("cleared", "resolved", "platform")
    assert alarm.detail["ended_by"] == "record_in_window"
    view = await get_lift(database, LIFT)
    assert view is not None and view.open_alarms == 0
    await monitoring(platform).advance(at(time.time() + 10))  # the next tick does not raise it again
    assert [a.id for a in await list_alarms(database)] == [alarm.id]
    await back.close()


async def test_the_tick_tells_the_engine_of_heartbeats_and_only_of_new_ones(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    lift = await LiftTerminal.connect(platform)
    t0 = start_of_sequence()
    await lift.status(t0)
    connection = next(iter(platform.listeners["elink"].by_terminal.values()))
    engine_lift = monitoring(platform).engine.runtime(LIFT).context
    await monitoring(platform).advance(at(time.time() + 60))
    assert engine_lift.last_frame_at == at(connection.last_frame_at)
    engine_lift.last_frame_at = at(0)  # the next tick must not tell the engine the same frame again
    await monitoring(platform).advance(at(time.time() + 61))
    assert engine_lift.last_frame_at == at(0)
    await asyncio.sleep(0.01)
    await lift.send(0x02, t0 + 5, bytes([20]))  # a heartbeat: read by the connection, not stored
    await monitoring(platform).advance(at(time.time() + 62))
    assert engine_lift.last_frame_at == at(connection.last_frame_at) > at(0)
    await lift.close()


async def test_restart_in_the_middle_of_trapped(config: Config) -> None:
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    t0 = start_of_sequence()
    async with Platform(config) as first:
        lift = await LiftTerminal.connect(first)
        for offset in (0, 10, 20):
            await lift.status(t0 + offset, occupied=True)
        await lift.close()
    async with Platform(config) as second:
        lift = await LiftTerminal.connect(second)
        await lift.status(t0 + 35, occupied=True)
        await monitoring(second).advance(lift.platform_time(t0 + 41))
        conn = await second.open_database()
        assert await alarm_rows(conn) == [("trapped", t0 + 40, None)]
        (alarm,) = await list_alarms(conn)
        assert alarm.since == at(t0)
        await lift.close()


async def test_rescue_arrival_by_card_and_late_flag(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence() - 7200
    await lift.replay("trapped_40s.jsonl", t0)  # raised at t0 + 45, released at t0 + 65
    await lift.maintenance_start(t0 + 45 + 12 * 60)
    second = t0 + 3600
    await lift.replay("trapped_40s.jsonl", second)
    await lift.maintenance_start(second + 45 + 35 * 60)
    rescues = await list_rescues(database, device_code=LIFT)
    assert [(r.raised_at, r.released_at, r.arrival_source, r.arrived_by, r.arrival_min, r.late) for r in rescues] == [
        (at(second + 45), at(second + 65), "card", "123456", 35.0, True),
        (at(t0 + 45), at(t0 + 65), "card", "123456", 12.0, False),
    ]
    assert [r.alarm_id for r in await list_rescues(database, late=True)] == [rescues[0].alarm_id]


async def test_rescue_without_arrival_is_flagged_then_staff_entry(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("trapped_40s.jsonl", t0)
    running = monitoring(platform)
    (rescue,) = await list_rescues(database)
    assert not rescue.late
    await running.advance(at(t0 + 45 + 31 * 60))
    (rescue,) = await list_rescues(database)
    assert (rescue.late, rescue.arrived_at) == (True, None)
    await running.rescue.record_arrival(rescue.alarm_id, user="王值班", at=at(t0 + 45 + 40 * 60))
    (rescue,) = await list_rescues(database)
    assert (rescue.arrival_source, rescue.arrived_by, rescue.arrival_min, rescue.late) == ("staff", "王值班", 40.0, True)
    with pytest.raises(RescueAlreadyRecorded):
        await running.rescue.record_arrival(rescue.alarm_id, user="王值班")


async def test_acknowledge_and_resolve_a_lift_alarm(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("power_lost.jsonl", t0)
    (alarm,) = await list_alarms(database, status="open", district_code="150302", maintenance_company="乌海市某电梯工程有限公司")
    await resolve_alarm(platform, alarm.id, user="李主管", note="市电恢复")
    assert await list_alarms(database, status="open") == []
    assert [a.resolved_by for a in await list_alarms(database, status="resolved", kind="power_lost")] == ["李主管"]


class HeavyLoad(Rule):
    """A deployment's own rule: load above 100 % is reported as a door fault (for the test)."""

    name = "heavy_load_test"

    def on_event(self, lift: LiftContext, event: ev.Event, state: dict[str, Any]) -> list[Transition]:
        if isinstance(event, ev.ElevatorStatus) and event.load_pct is not None and event.load_pct > 25:
            return [Transition("door_fault", True, event.time, detail={"load_pct": event.load_pct})]
        return []


class FaultsSeen(Rule[ev.ElevatorFault]):
    """A rule of faults only: the engine must not call it for anything else."""

    name = "faults_seen_test"
    events = (ev.ElevatorFault,)

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_event(self, lift: LiftContext, event: ev.ElevatorFault, state: dict[str, Any]) -> list[Transition]:
        self.seen.append(event.kind)
        return []


class RulePlugin:
    def __init__(self) -> None:
        self.faults_seen = FaultsSeen()

    @hookimpl
    def register_rules(self, config: Config) -> list[Rule]:
        return [HeavyLoad(), self.faults_seen]


@pytest.fixture
def rule_plugin() -> Iterator[RulePlugin]:
    plugin = RulePlugin()
    get_plugin_manager().register(plugin, name="heavy-load-rule")
    yield plugin
    get_plugin_manager().unregister(name="heavy-load-rule")


async def test_register_rules_adds_a_deployment_rule(config: Config, rule_plugin: RulePlugin) -> None:
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    async with Platform(config) as running:
        assert "heavy_load_test" in [rule.name for rule in monitoring(running).engine.rules]
        lift = await LiftTerminal.connect(running)
        t0 = start_of_sequence()
        await lift.status(t0)  # load 30 %
        conn = await running.open_database()
        assert [(a.kind, a.detail) for a in await list_alarms(conn)] == [("door_fault", {"load_pct": 30})]
        assert rule_plugin.faults_seen.seen == []  # a status is not for a rule of faults
        await lift.fault(t0 + 1, 5, True)
        await lift.status(t0 + 2)
        assert rule_plugin.faults_seen.seen == ["overspeed"]
        await lift.close()


class QuietWatch(Rule):
    """A deployment's rule that ticks while idle and says until when its tick can do nothing for a lift: 50 s
    after the lift's last frame (never, before a first frame)."""

    name = "quiet_watch_test"
    ticks_when_idle = True

    def __init__(self) -> None:
        self.ticked: list[tuple[str, datetime]] = []

    def idle_until(self, lift: LiftContext) -> float:
        return math.inf if lift.last_frame_at is None else lift.last_frame_at.timestamp() + 50

    def on_tick(self, lift: LiftContext, now: Any, state: dict[str, Any]) -> list[Transition]:
        self.ticked.append((lift.code, now))
        return []


async def test_an_idle_lift_is_ticked_only_once_its_rules_can_act(config: Config) -> None:
    """The tick skips an idle lift until the time its idle-ticking rules give (Rule.idle_until): a city's
    idle lifts are not visited at all until then, let alone a call of each such rule; a record or a frame of
    the lift makes the engine ask again."""
    watch = QuietWatch()

    class WatchPlugin:
        @hookimpl
        def register_rules(self, config: Config) -> list[Rule]:
            return [watch]

    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    get_plugin_manager().register(WatchPlugin(), name="quiet-watch-rule")
    try:
        async with Platform(config) as running:
            lift = await LiftTerminal.connect(running)
            await lift.status(start_of_sequence())
            await lift.close()
            await asyncio.sleep(0)
            conn = await running.open_database()
            [(last,)] = await conn.execute_fetchall("SELECT last_frame_at FROM terminal_sessions")
            lifts = len(monitoring(running).engine.lifts)
            for offset in (10, 20, 49, 51, 60):
                await monitoring(running).advance(at(last + offset))
                if offset == 10:  # after the first tick, no lift is even looked at before its rules can act
                    assert monitoring(running).engine.due(at(last + 49)) == []
            mine = [round(now.timestamp() - last) for code, now in watch.ticked if code == LIFT]
            others = [code for code, _ in watch.ticked if code != LIFT]
            assert mine == [10, 51, 60], "asked again at 10 s (first tick), then from 50 s on"
            assert len(others) == len(set(others)) == lifts - 1, "a lift never heard from: once, at the first tick"
            back = await LiftTerminal.connect(running)
            await back.status(start_of_sequence() + 70)
            await back.close()
            watch.ticked.clear()
            await monitoring(running).advance(at(last + 75))
            assert [code for code, _ in watch.ticked] == [LIFT], "its record made the engine ask again"
    finally:
        get_plugin_manager().unregister(name="quiet-watch-rule")


async def test_an_idle_lift_waits_for_the_tick_once_whatever_its_frames(config: Config) -> None:
    """Each frame of a lift moves its offline deadline on; the tick's heap of idle lifts still holds one entry
    for it (put back at its new deadline when the old one comes up), so what the tick keeps stays one entry a
    lift however often the lifts report."""
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    async with Platform(config) as running:
        engine = monitoring(running).engine
        lift = await LiftTerminal.connect(running)
        t0 = start_of_sequence()
        for n in range(5):
            await lift.status(t0 + 30 * n)
            await monitoring(running).advance(datetime.now(UTC))
        await lift.close()
        entries = [code for _, code in engine._sleeping]
        assert entries.count(LIFT) == 1
        assert len(entries) == len(set(entries))


async def test_a_lift_whose_deadline_came_earlier_still_has_one_entry(config: Config) -> None:
    """A shorter report interval brings a lift's offline deadline earlier: it gets an earlier entry in the
    tick's heap, and the later one, when it comes up, is found stale and dropped instead of putting the lift
    back a second time."""
    config.rules.tick_interval_s = 0
    config.rules.offline_interval_factor = 3
    config.rules.offline_min_s = 60
    await import_census(config.database.path)
    async with Platform(config) as running:
        engine = monitoring(running).engine
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        engine.see_frame(LIFT, t0 + timedelta(seconds=5), 600)  # offline deadline t0 + 1805 s
        for s in range(5, 2000, 10):  # a tick every 10 s, a frame every 30 s: the deadline 90 s after it
            at = t0 + timedelta(seconds=s)
            if s % 30 == 15:
                engine.see_frame(LIFT, at, 30)
            engine.tick(at, engine.due(at))
        assert [code for _, code in engine._sleeping].count(LIFT) == 1


async def test_webhook_notifier_retries_until_delivered(config: Config) -> None:
    received: list[dict[str, Any]] = []
    answers = iter([500])

    async def hook(request: web.Request) -> web.Response:
        status = next(answers, 200)
        if status == 200:
            received.append(await request.json())
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/alarms", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config.rules.tick_interval_s = 0
    config.notify.webhook_url = f"http://127.0.0.1:{port}/alarms"
    await import_census(config.database.path)
    try:
        async with Platform(config) as running:
            notifier = webhook_notifier(running)
            assert notifier is not None
            notifier.backoff_s = 0.01
            lift = await LiftTerminal.connect(running)
            t0 = start_of_sequence()
            await lift.replay("power_lost.jsonl", t0)
            async with asyncio.timeout(5):
                while len(received) < 2:
                    await asyncio.sleep(0.01)
            await lift.close()
    finally:
        await runner.cleanup()
    assert [(r["change"], r["alarm"]["kind"], r["alarm"]["condition"]) for r in received] == [
        ("raised", "power_lost", "active"),
        ("cleared", "power_lost", "cleared"),
    ]
    assert received[0]["alarm"]["raised_at"] == at(t0 + 10).isoformat().replace("+00:00", "Z")


async def test_retention_prunes_old_messages_in_steps(
    platform: Platform, lift: LiftTerminal, database: aiosqlite.Connection
) -> None:
    t0 = start_of_sequence()
    await lift.replay("power_lost.jsonl", t0)
    old = (datetime.now(UTC) - timedelta(days=8)).timestamp()
    await platform.writer.write(
        [("INSERT INTO messages (protocol, terminal_id, dedup_key, type, seq, device_time, received_at)"
          " VALUES ('elink', 'x', ?, 'STATUS', 1, 0, ?)", (f"old-{n}", old)) for n in range(5)]
    )  # fmt: skip
    running = monitoring(platform)
    platform.config.retention.prune_step_rows = 2
    assert [await running.prune_step() for _ in range(4)] == [2, 2, 1, 0]
    remaining = await (await database.execute("SELECT count(*) FROM messages")).fetchone()
    assert remaining[0] == 4  # this test's frames, a day old at most
    assert len(await list_alarms(database)) == 1


async def test_retention_prunes_expired_records_table_by_table(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    """Records older than ``records_years`` go in steps too, one table a step: an alarm's samples before the
    alarm, then the alarms, the rescues and the visits; younger ones stay."""
    now = datetime.now(UTC)
    expired, kept = (now - timedelta(days=5 * 366)).timestamp(), (now - timedelta(days=30)).timestamp()
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for alarm_id, raised in ((9001, expired), (9002, expired), (9003, kept)):
        statements.append(("INSERT INTO alarms (id, kind, severity, device_code, sources, active_sources, condition,"
                           " status, since, raised_at, updated_at, created_at) VALUES (?, 'trapped', 'critical', ?,"
                           " '[]', '[]', 'cleared', 'resolved', ?, ?, ?, ?)", (alarm_id, LIFT, *[raised] * 4)))
        statements += [("INSERT INTO alarm_samples (alarm_id, at, record) VALUES (?, ?, '{}')", (alarm_id, raised + n))
                       for n in range(3)]  # fmt: skip
        statements.append(("INSERT INTO rescues (alarm_id, device_code, raised_at) VALUES (?, ?, ?)",
                           (alarm_id, LIFT, raised)))  # fmt: skip
        statements.append(("INSERT INTO maintenance_visits (device_code, card, started_at) VALUES (?, 7, ?)",
                           (LIFT, raised)))  # fmt: skip
    await platform.writer.write(statements)
    running = monitoring(platform)
    platform.config.retention.prune_step_rows = 1000
    # Samples (of two alarms), alarms, rescues, visits; then nothing.
    assert [await running.prune_step() for _ in range(5)] == [2, 2, 2, 2, 0]
    left = {table: [row[0] for row in await database.execute_fetchall(f"SELECT {key} FROM {table} ORDER BY 1")]
            for table, key in (("alarms", "id"), ("alarm_samples", "alarm_id"), ("rescues", "alarm_id"),
                               ("maintenance_visits", "started_at"))}  # fmt: skip
    assert left == {"alarms": [9003], "alarm_samples": [9003] * 3, "rescues": [9003], "maintenance_visits": [kept]}


async def test_after_a_restart_terminals_get_time_to_reconnect(config: Config) -> None:
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)
    async with Platform(config) as first:
        lift = await LiftTerminal.connect(first)
        await lift.status(start_of_sequence())
        await lift.close()
    long_ago = datetime.now(UTC).timestamp() - 3600  # the platform was down for an hour
    conn = await aiosqlite.connect(config.database.path)
    await conn.execute("UPDATE terminal_sessions SET last_frame_at = ?", (long_ago,))
    await conn.commit()
    await conn.close()
    async with Platform(config) as second:
        started = datetime.now(UTC)
        await monitoring(second).advance(started + timedelta(seconds=170))
        database = await second.open_database()
        assert await alarm_rows(database) == []
        await monitoring(second).advance(started + timedelta(seconds=190))
        assert [kind for kind, _, _ in await alarm_rows(database)] == ["offline"]


def test_trapped_rule_alone() -> None:
    """A rule is a plain object: events and a state dict in, transitions out."""
    from wuhai_iot.config import RulesConfig
    from wuhai_iot.elevators.rules.builtin import Trapped

    rule, lift, state = Trapped(RulesConfig()), LiftContext(LIFT), {}
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)

    def sample(offset: int, occupied: bool) -> ev.ElevatorStatus:
        return ev.ElevatorStatus(protocol="elink", terminal_id="t", seq=offset, device_time=now + timedelta(seconds=offset),
                                 received_at=now, floor=2, direction=ev.Direction.STOPPED, door=ev.Door.CLOSED,
                                 running=False, door_zone=True, occupied=occupied, speed_mps=0.0)  # fmt: skip

    def seconds(offset: int) -> float:
        return (now + timedelta(seconds=offset)).timestamp()

    assert rule.on_event(lift, sample(0, True), state) == []
    assert rule.on_time(lift, seconds(35), state) == []
    assert rule.on_event(lift, sample(35, False), state) == []
    (raised,) = rule.on_time(lift, seconds(42), state)  # the engine: the lift's clock before each record
    assert (raised.kind, raised.active, raised.at, raised.since) == ("trapped", True, now + timedelta(seconds=40), now)
    assert rule.on_event(lift, sample(42, True), state) == []
    rule.on_event(lift, sample(50, False), state)
    (cleared,) = rule.on_time(lift, seconds(61), state)
    assert (cleared.active, cleared.at, state) == (False, now + timedelta(seconds=60), {})
