"""Vehicle supervision wired into the platform: the consumer of vehicle positions, the tick and retention.

A message's positions are stored as track points, the newest by device time becomes the vehicle's
current position, and the rules run over them in device-time order; everything commits with the
message. The tick (platform clock) raises ``offline`` for silent terminals and looks up the FILL_RESULT
of each fill seen at a station once its window has passed. Retention deletes old track points one
vehicle range at a time, and old daily figures and collisions, in small steps through the writer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.clock import cst_date
from wuhai_iot.events import Terminal
from wuhai_iot.storage.db import fetch_one
from wuhai_iot.storage.writer import Statement, WriterClosed
from wuhai_iot.vehicles.registry import Fleet, Registrar
from wuhai_iot.vehicles.rules import RULE, DayFigures, PendingFill, VehicleRules, VehicleState

if TYPE_CHECKING:
    import aiosqlite

    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)

TRACK_INSERT = (  # one point a device second: the later record of a second replaces the earlier one
    "INSERT OR REPLACE INTO vehicle_track (plate, at, latitude, longitude, speed_kmh, course, status, alarm_flags,"
    " pressure_mpa, gas_lel_pct) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
STATE_UPSERT = (
    "INSERT INTO vehicle_state (plate, terminal_id, at, received_at, latitude, longitude, speed_kmh, course, acc_on,"
    " fixed, alarm_flags, odometer_km, pressure_mpa, pressure_fault, gas_lel_pct, gas_fault, tags)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (plate) DO UPDATE SET terminal_id = excluded.terminal_id, at = excluded.at,"
    " received_at = excluded.received_at, latitude = excluded.latitude, longitude = excluded.longitude,"
    " speed_kmh = excluded.speed_kmh, course = excluded.course, acc_on = excluded.acc_on, fixed = excluded.fixed,"
    " alarm_flags = excluded.alarm_flags, odometer_km = excluded.odometer_km, pressure_mpa = excluded.pressure_mpa,"
    " pressure_fault = excluded.pressure_fault, gas_lel_pct = excluded.gas_lel_pct, gas_fault = excluded.gas_fault,"
    " tags = coalesce(excluded.tags, vehicle_state.tags) WHERE excluded.at >= vehicle_state.at"
)
DAILY_ADD = (
    "INSERT INTO vehicle_daily (plate, day, records, distance_km, driving_s, max_pressure_mpa, fills_seen)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (plate, day) DO UPDATE SET records = records + excluded.records,"
    " distance_km = distance_km + excluded.distance_km, driving_s = driving_s + excluded.driving_s,"
    " max_pressure_mpa = max(coalesce(max_pressure_mpa, excluded.max_pressure_mpa),"
    " coalesce(excluded.max_pressure_mpa, max_pressure_mpa)), fills_seen = fills_seen + excluded.fills_seen"
)
FILL_FOUND = (
    "SELECT 1 FROM fills WHERE station_code = ? AND ended_at BETWEEN ? AND ?"
    " AND cylinder_code IN (SELECT cylinder_code FROM cylinders WHERE vehicle_plate = ?) LIMIT 1"
)
REGISTRY_REFRESH_S = 300.0
STATE_SAVE_S = 10.0
"""How often the rules' changed vehicle states are written (not with every message: a JSON upsert per report
halved the vehicle ingest rate). A crash loses at most this much of them, never a stored record."""
TICK_S = 1.0
PRUNE_PLATES = 50
"""Vehicles whose old track points one prune step deletes."""
PRUNE_PAUSE_S = 0.05
PRUNE_IDLE_S = 3600.0


def _status_bits(record: ev.VehiclePosition) -> int:
    return int(record.acc_on) | int(record.fixed) << 1


def track_row(plate: str, record: ev.VehiclePosition) -> tuple[object, ...]:
    return (plate, record.time.timestamp(), record.latitude, record.longitude, record.speed_kmh, record.course,
            _status_bits(record), record.alarm_flags, record.pressure_mpa, record.gas_lel_pct)  # fmt: skip


def state_row(terminal: Terminal, plate: str, record: ev.VehiclePosition) -> tuple[object, ...]:
    tags = json.dumps(list(record.tags)) if record.tags is not None else None
    return (plate, terminal.terminal_id, record.time.timestamp(), record.received_at.timestamp(), record.latitude,
            record.longitude, record.speed_kmh, record.course, int(record.acc_on), int(record.fixed),
            record.alarm_flags, record.odometer_km, record.pressure_mpa, int(record.pressure_fault),
            record.gas_lel_pct, int(record.gas_fault), tags)  # fmt: skip


@dataclass
class VehicleMonitor:
    """The consumer of vehicle positions, and what waits on the platform clock."""

    events = (ev.VehiclePosition,)

    platform: Platform
    rules: VehicleRules
    fleet: Fleet
    conn: aiosqlite.Connection
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    """Vehicles whose rule state changed since it was last written."""
    _saved_at: float = 0.0
    _prune_after: str = ""
    """Keyset position of the track pruner among the plates."""

    # --- the consumer (inside the message's transaction) ---------------------------------------------

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        plate = terminal.plate
        if plate is None:
            return []
        positions = [event for event in events if isinstance(event, ev.VehiclePosition)]
        if not positions:
            return []
        positions.sort(key=lambda record: record.time)
        statements = self.rules.records_arrived(
            plate, positions[0].received_at.timestamp(), positions[0].time.timestamp()
        )
        days: dict[str, DayFigures] = {}
        for record in positions:
            statements.append((TRACK_INSERT, track_row(plate, record)))
            statements += self.rules.evaluate(plate, record, days)
        statements.append((STATE_UPSERT, state_row(terminal, plate, positions[-1])))
        for day, figures in days.items():
            statements.append((DAILY_ADD, (plate, day, figures.records, figures.distance_km, figures.driving_s,
                                           figures.max_pressure_mpa, figures.fills_seen)))  # fmt: skip
        self.dirty.add(plate)
        return statements

    # --- the platform clock --------------------------------------------------------------------------

    async def advance(self, now: datetime | None = None) -> None:
        """Let time pass to ``now``: silent terminals and the fills whose window has passed."""
        at = (now or datetime.now(UTC)).timestamp()
        for listener in self.platform.listeners.values():
            for connection in listener.by_terminal.values():
                terminal = connection.terminal
                if terminal is not None and terminal.plate:
                    state = self.rules.state(terminal.plate)
                    if connection.last_frame_at > state.last_frame:
                        state.last_frame = connection.last_frame_at
        statements: list[Statement] = []
        for plate in list(self.rules.states):
            if raised := self.rules.offline(plate, at):
                statements += raised
                self.dirty.add(plate)  # the wait's end on the terminal's clock is kept across a restart
            for pending in list(self.rules.states[plate].pending):
                statements += await self._check_fill(plate, pending, at)
        if at - self._saved_at >= STATE_SAVE_S:
            statements += self.saved_states()
            self._saved_at = at
        if statements:
            await self.platform.writer.write(statements)

    def saved_states(self) -> list[Statement]:
        """The changed vehicle states, to write."""
        dirty, self.dirty = self.dirty, set()
        return [self.rules.save(plate) for plate in dirty if plate in self.rules.states]

    async def _check_fill(self, plate: str, pending: PendingFill, now: float) -> list[Statement]:
        window = self.rules.rules.fill_window_min * 60
        found = await fetch_one(
            self.conn, FILL_FOUND, (pending.station_code, pending.started - window, pending.at + window, plate)
        ) is not None
        if not found and now < pending.at + window:
            return []  # the station may still report it
        self.dirty.add(plate)
        return self.rules.fill_checked(plate, pending, found)

    async def _ticking(self) -> None:
        refreshed = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self.advance()
                if asyncio.get_running_loop().time() - refreshed >= REGISTRY_REFRESH_S:
                    refreshed = asyncio.get_running_loop().time()
                    await self.fleet.load(self.conn)
            except WriterClosed:
                return  # the writer is closed
            except Exception:
                log.exception("vehicle tick failed")

    # --- retention -----------------------------------------------------------------------------------

    async def prune_step(self, now: datetime | None = None) -> int:
        """Delete the expired track points of the next PRUNE_PLATES vehicles; return how many plates were
        visited (0: a round is complete, and the old daily figures and collisions went too)."""
        now = now or datetime.now(UTC)
        retention = self.platform.config.retention
        raw_before = (now - timedelta(days=retention.raw_status_days)).timestamp()
        plates = [row[0] for row in await self.conn.execute_fetchall(
            "SELECT plate FROM vehicles WHERE plate > ? ORDER BY plate LIMIT ?", (self._prune_after, PRUNE_PLATES)
        )]  # fmt: skip
        if plates:
            self._prune_after = plates[-1]
            await self.platform.writer.write(
                [("DELETE FROM vehicle_track WHERE plate = ? AND at < ?", (plate, raw_before)) for plate in plates]
            )
            return len(plates)
        self._prune_after = ""
        records_before = now - timedelta(days=round(365.25 * retention.records_years))
        await self.platform.writer.write([
            ("DELETE FROM vehicle_daily WHERE day < ?", (cst_date(records_before).isoformat(),)),
            ("DELETE FROM vehicle_collisions WHERE at < ?", (records_before.timestamp(),)),
        ])  # fmt: skip
        return 0

    async def _pruning(self) -> None:
        while True:
            try:
                visited = await self.prune_step()
            except WriterClosed:
                return
            except Exception:
                log.exception("vehicle retention step failed")
                visited = 0
            await asyncio.sleep(PRUNE_PAUSE_S if visited else PRUNE_IDLE_S)


def vehicle_monitor(platform: Platform) -> VehicleMonitor:
    """The running vehicle monitor of a started platform (kept in ``platform.state``)."""
    return platform.state.get(VehicleMonitor)


async def start(platform: Platform) -> VehicleMonitor:
    book = await alarm_book(platform)
    conn = await platform.open_database()
    fleet = Fleet(lookup=platform.ingest.lookup)
    await fleet.load(conn)
    rules = VehicleRules(book, fleet, platform.config.rules)
    for plate, text in await conn.execute_fetchall("SELECT subject, state FROM rule_state WHERE rule = ?", (RULE,)):
        rules.states[plate] = VehicleState.from_json(text)
    for plate, last_frame in await conn.execute_fetchall(
        "SELECT t.plate, s.last_frame_at FROM terminal_sessions s JOIN terminals t USING (protocol, terminal_id)"
        " WHERE t.plate IS NOT NULL AND s.last_frame_at IS NOT NULL"
    ):
        state = rules.state(plate)
        state.last_frame = max(state.last_frame, last_frame)
    registrar = Registrar(platform.ingest.lookup, platform.writer)
    platform.ingest.answer_requests(ev.Register, registrar.register)  # type: ignore[arg-type]
    platform.ingest.answer_requests(ev.Unregister, registrar.unregister)  # type: ignore[arg-type]
    monitor = VehicleMonitor(platform, rules, fleet, conn)
    platform.ingest.consumers.append(monitor)
    if platform.config.rules.tick_interval_s > 0:
        monitor.tasks.append(asyncio.create_task(monitor._ticking(), name="vehicle-tick"))
    monitor.tasks.append(asyncio.create_task(monitor._pruning(), name="vehicle-retention"))
    platform.state.add(monitor)
    return monitor


async def stop(platform: Platform) -> None:
    monitor = platform.state.pop(VehicleMonitor)
    if monitor is None:
        return
    for task in monitor.tasks:
        task.cancel()
    await asyncio.gather(*monitor.tasks, return_exceptions=True)
    saves = monitor.saved_states()
    if saves:
        await platform.writer.write(saves)
