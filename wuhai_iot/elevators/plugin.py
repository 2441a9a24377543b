"""Elevator monitoring wired into the platform: rule engine, rescue, maintenance, time ticks, retention.

``platform_starting`` builds the pieces (latest state, rule engine, rescues, maintenance), attaches them as
event consumers (their statements commit with the message that caused them) and starts two background tasks: the tick (every ``rules.tick_interval_s``;
duration and offline conditions fire on time without a frame) and the retention pruner (small deletes
through the writer that never stall ingestion). ``monitoring(platform)`` gives tests and the web layer
the running pieces; ``advance(now)`` runs one tick at an explicit time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from wuhai_iot.alarms.book import AlarmBook, alarm_book
from wuhai_iot.alarms.kinds import AlarmKind
from wuhai_iot.clock import cst_date, cst_midnight, cst_today
from wuhai_iot.elevators.maintenance import MaintenanceTracker
from wuhai_iot.elevators.rescue import RescueTracker
from wuhai_iot.elevators.rules.base import Rule
from wuhai_iot.elevators.rules.engine import (
    CONTEXT_MAX_SAMPLES,
    ONLINE_STEP_S,
    RuleEngine,
)
from wuhai_iot.elevators.state import LatestState
from wuhai_iot.plugins import get_plugin_manager
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.storage import figures
from wuhai_iot.storage.writer import Statement, WriteUnit
from wuhai_iot.tasks import supervised

if TYPE_CHECKING:
    import aiosqlite

    from wuhai_iot.server import Platform

LIFT_ALARM_KINDS = tuple(
    AlarmKind(name, severity, label, "elevators")
    for name, severity, label in (
        ("trapped", "critical", "困人"),
        ("door_open_moving", "critical", "开门走梯"),
        ("overshoot_top", "critical", "冲顶"),
        ("overshoot_bottom", "critical", "蹲底"),
        ("overspeed", "critical", "超速"),
        ("stopped_outside_zone", "major", "非平层停梯"),
        ("door_fault", "minor", "门故障"),
        ("power_lost", "major", "主电源断电"),
        ("safety_circuit", "major", "安全回路断开"),
        ("door_lock", "major", "门锁回路故障"),
        ("alarm_button", "major", "报警按钮"),
        ("reopening", "minor", "反复开关门"),
        ("unknown_fault", "minor", "未知故障"),
        ("offline", "minor", "终端离线"),
    )
)
"""The lift alarms of domain.md: the terminals' faults (the protocols map their codes to these names) and
the rules' findings."""

TICK_CHUNK = 200
"""Lifts whose rules tick in one writer unit (see ``advance``)."""
REGISTRY_REFRESH_S = 300.0
"""How often the lifts and workers are re-read (a census import while running)."""
PRUNE_PAUSE_S = 0.05
"""Pause between two prune steps, so ingestion batches run in between."""
PRUNE_IDLE_S = 3600.0
"""Pause once nothing is left to prune."""

@dataclass
class Monitoring:
    platform: Platform
    book: AlarmBook
    engine: RuleEngine
    rescue: RescueTracker
    maintenance: MaintenanceTracker
    conn: aiosqlite.Connection
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _online_at: datetime | None = None
    _seen: dict[str, float] = field(default_factory=dict)
    """Lift → the last-frame time of its terminal already told to the engine (most lifts report every
    30 s; the tick runs every second)."""

    async def advance(self, now: datetime | None = None) -> None:
        """Let time pass to ``now`` (platform clock), committed in order with the frames before it.

        Only the lifts whose rules can do something now are visited (``RuleEngine.due``: those with something
        going on, and the idle ones whose silence allowed has run out), in units of TICK_CHUNK lifts, so that
        the writer can yield to the event loop between them: a tick of the whole city at once held it for tens
        of milliseconds, and visiting 25,000 idle lifts a second cost the loop 7 ms a second."""
        at = now or datetime.now(UTC)
        writer = self.platform.writer
        units = [writer.submit(WriteUnit(on_new=lambda: self.tick(at)))]
        codes = self.engine.due(at)
        for start in range(0, len(codes), TICK_CHUNK):
            chunk = codes[start : start + TICK_CHUNK]
            units.append(writer.submit(WriteUnit(on_new=lambda chunk=chunk: self.engine.tick(at, chunk))))
        await asyncio.gather(*units)

    def tick(self, now: datetime) -> list[Statement]:
        """What a tick does beside the lifts' rules: connections seen, rescues, maintenance, online time."""
        connected: set[str] = set()
        for listener in self.platform.listeners.values():
            for connection in listener.by_terminal.values():
                terminal = connection.terminal
                if terminal is not None and terminal.device_code:
                    connected.add(terminal.device_code)
                    if self._seen.get(terminal.device_code) == connection.last_frame_at:
                        continue
                    self._seen[terminal.device_code] = connection.last_frame_at
                    self.engine.see_frame(
                        terminal.device_code,
                        datetime.fromtimestamp(connection.last_frame_at, UTC),
                        terminal.report_interval_s,
                    )
        self.engine.book.prune(now)
        statements = self.rescue.tick(now) + self.maintenance.tick(now)
        if self._online_at is None or (now - self._online_at).total_seconds() >= ONLINE_STEP_S:
            self._online_at = now
            statements += self.engine.online_time(now, connected)
        return statements

    async def refresh_registry(self) -> None:
        await self.engine.refresh_registry(self.conn)
        self.maintenance.lifts = self.engine.registry
        await self.maintenance.refresh_workers(self.conn)

    async def prune_step(self, now: datetime | None = None) -> int:
        """Delete one step of expired rows; return how many were deleted (0: nothing left)."""
        now = now or datetime.now(UTC)
        retention = self.platform.config.retention
        rows = retention.prune_step_rows
        raw_before = (now - timedelta(days=retention.raw_status_days)).timestamp()
        records_before = (now - timedelta(days=round(365.25 * retention.records_years))).timestamp()
        deleted = 0
        steps: list[tuple[str, str, float]] = [
            ("messages", "SELECT id FROM messages WHERE received_at < ? LIMIT ?", raw_before),
            ("alarm_samples", "SELECT DISTINCT alarm_id FROM alarm_samples WHERE alarm_id IN (SELECT id FROM alarms"
             " WHERE raised_at < ? AND condition = 'cleared' AND status = 'resolved') LIMIT ?", records_before),
            # Samples go first: a step deletes from one table only, so an alarm's samples are gone before it.
            ("alarms", "SELECT id FROM alarms WHERE raised_at < ? AND condition = 'cleared'"
             " AND status = 'resolved' LIMIT ?", records_before),
            ("rescues", "SELECT alarm_id FROM rescues WHERE raised_at < ? LIMIT ?", records_before),
            ("maintenance_visits", "SELECT id FROM maintenance_visits WHERE coalesce(started_at, ended_at) < ?"
             " LIMIT ?", records_before),
        ]  # fmt: skip
        for table, select, before in steps:
            # An alarm keeps at most CONTEXT_MAX_SAMPLES records: a step deletes those of a few alarms.
            limit = max(1, rows // CONTEXT_MAX_SAMPLES) if table == "alarm_samples" else rows
            # The expired rows are chosen inside SQLite, counted here and deleted by the writer, never handed to
            # Python one by one: a step of 2,000 ids read into a list and bound back into the DELETE kept the
            # event loop waiting 2.5-5 ms every step while a backlog was pruned (after a restart).
            found = (await self.conn.execute_fetchall(f"SELECT count(*) FROM ({select})", (before, limit)))[0][0]
            if not found:
                continue
            column = "alarm_id" if table in ("alarm_samples", "rescues") else "id"
            await self.platform.writer.write([(f"DELETE FROM {table} WHERE {column} IN ({select})", (before, limit))])
            deleted += found
            break
        if not deleted:
            day = cst_date(now - timedelta(days=round(365.25 * retention.records_years)))
            await self.platform.writer.write([("DELETE FROM lift_daily WHERE day < ?", (day.isoformat(),))])
        return deleted

    async def _ticking(self, interval: float) -> None:
        refreshed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(interval)
            await self.advance()
            if asyncio.get_running_loop().time() - refreshed >= REGISTRY_REFRESH_S:
                refreshed = asyncio.get_running_loop().time()
                await self.refresh_registry()

    def _folds(self, today: date) -> list[Statement]:
        """The statements that fold the day sums up to ``today``'s boundaries (``figures.fold_statements``)."""
        return figures.fold_statements(today, self.platform.config.rules.maintenance_interval_days)

    async def fold_day_sums(self) -> None:
        """Fold the day sums up to today: a sum of the days before a day then reads only the days between the
        boundary and that day (the platform does it at start, then after every CST midnight)."""
        await self.platform.writer.write(self._folds(cst_today()))

    async def _counting_online_week(self) -> None:
        """Count the lifts online ≥ 95 % of the last 7 days at start and after every CST midnight (the days
        counted are all before today: the figure changes only then), and fold the day sums up to the new day."""
        while True:
            today = cst_today()
            counts = await figures.count_online_week(self.conn, today)
            await self.platform.writer.write(figures.online_week_statements(today, counts) + self._folds(today))
            next_midnight = cst_midnight(today + timedelta(days=1))
            await asyncio.sleep(max(1.0, (next_midnight - datetime.now(UTC)).total_seconds() + 1.0))

    async def _pruning(self) -> None:
        while True:
            deleted = await self.prune_step()
            await asyncio.sleep(PRUNE_PAUSE_S if deleted else PRUNE_IDLE_S)


def monitoring(platform: Platform) -> Monitoring:
    """The running monitoring of a started platform."""
    return platform.state.get(Monitoring)


def collect_rules(platform: Platform) -> list[Rule]:
    rules: list[Rule] = []
    for contributed in get_plugin_manager().hook.register_rules(config=platform.config):
        rules.extend(contributed or ())
    return rules


@hookimpl
def register_alarm_kinds() -> list[AlarmKind]:
    return list(LIFT_ALARM_KINDS)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    book = await alarm_book(platform)
    conn = await platform.open_database()
    engine = RuleEngine(book, collect_rules(platform), platform.config.rules)
    await engine.load(conn, started_at=datetime.now(UTC))
    rescue = RescueTracker(book, platform.writer, platform.config.rules)
    await rescue.load(conn)
    maintenance = MaintenanceTracker(platform.config.rules, engine.registry)
    await maintenance.load(conn)
    running = Monitoring(platform, book, engine, rescue, maintenance, conn)
    await running.fold_day_sums()  # (before the first page: a first start after migration 0041 folds every day)
    platform.ingest.consumers += [LatestState(), engine, rescue, maintenance]
    platform.ingest.clock_watchers.append(engine)
    interval = platform.config.rules.tick_interval_s
    if interval > 0:
        running.tasks.append(supervised(lambda: running._ticking(interval), "monitoring-tick", restart_after_s=interval))
    # (A failed step waits as long as an idle pruner does: whatever failed is not likely to pass at once.)
    running.tasks.append(supervised(running._pruning, "retention", restart_after_s=PRUNE_IDLE_S))
    running.tasks.append(supervised(running._counting_online_week, "online-week-figures", restart_after_s=60.0))
    platform.state.add(running)


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    running = platform.state.pop(Monitoring)
    if running is None:
        return
    for task in running.tasks:
        task.cancel()
    await asyncio.gather(*running.tasks, return_exceptions=True)
