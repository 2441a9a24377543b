"""The lifts' rule engine: the event-time engine (``wuhai_iot.rules.engine``) with a lift's bookkeeping.

Beside the rules it keeps, per status record, the lift's daily figures (runs, running time) and the
records around each alarm (the minute before it and every record while it is active, late ones too).
``tick(now)`` runs the time-based part (durations reached without a new frame, offline terminals); the
platform calls it every ``rules.tick_interval_s`` through the writer, tests call ``advance(now)`` with an
explicit time.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
from collections import deque
from collections.abc import Sequence, Set
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Alarm, Subject
from wuhai_iot.clock import cst_day_text, cst_day_text_of
from wuhai_iot.config import RulesConfig
from wuhai_iot.elevators.rules.base import LiftContext
from wuhai_iot.events import Terminal
from wuhai_iot.rules.base import Rule
from wuhai_iot.rules.engine import EventTimeEngine, SubjectRuntime
from wuhai_iot.storage.writer import Statement

log = logging.getLogger(__name__)

CONTEXT_BEFORE_S = 60.0
"""Status records kept with an alarm start this long before it was raised."""
CONTEXT_MAX_SAMPLES = 500
"""At most this many records are kept with one alarm (a lift out of service for weeks stays bounded)."""
CONTEXT_MAX_RECENT = 60
"""At most this many of a lift's recent records are held for a future alarm (a flooding terminal's
minute stays small in memory and for the garbage collector)."""
RUNNING_GAP_MAX_S = 300.0
"""A gap between two samples longer than this is not counted as running time."""
ONLINE_STEP_S = 60.0
"""Online time is added to the daily figures this often."""
NO_ALARMS: frozenset[int] = frozenset()

DAILY_ADD = (
    "INSERT INTO lift_daily (device_code, day, runs, running_s, faults, online_s) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (device_code, day) DO UPDATE SET runs = runs + excluded.runs,"
    " running_s = running_s + excluded.running_s, faults = faults + excluded.faults,"
    " online_s = online_s + excluded.online_s"
)
"""Additive, so the order of these statements in a batch never matters."""

_STATUS_FIELDS = tuple(field.name for field in dataclasses.fields(ev.ElevatorStatus))
_ENUM_FIELDS = {_STATUS_FIELDS.index("direction"): ev.Direction, _STATUS_FIELDS.index("door"): ev.Door}
_status_values = operator.attrgetter(
    *(f"{name}._value_" if index in _ENUM_FIELDS else name for index, name in enumerate(_STATUS_FIELDS))
)


def _compact(at_s: float, status: ev.ElevatorStatus) -> tuple[Any, ...]:
    """A status as one flat tuple of plain values, its device time in seconds first (enums as their
    values, read as ``_value_``: the public ``value`` property costs ten times more). The garbage
    collector stops tracking such a tuple at its first look, so a lift's minute of recent records is
    walked by none of its older collections (a tuple holding another tuple takes it two looks)."""
    return (at_s,) + _status_values(status)  # type: ignore[no-any-return]


def _expand(record: tuple[Any, ...]) -> ev.ElevatorStatus:
    fields = list(record[1:])
    for index, kind in _ENUM_FIELDS.items():
        fields[index] = kind(fields[index])
    return ev.ElevatorStatus(**dict(zip(_STATUS_FIELDS, fields, strict=True)))


def daily_add(device_code: str, day: str, runs: int = 0, running_s: float = 0.0, faults: int = 0,
              online_s: float = 0.0) -> Statement:  # fmt: skip
    """Add to a lift's figures of a CST day ('YYYY-MM-DD', ``cst_day_text``)."""
    return DAILY_ADD, (device_code, day, runs, running_s, faults, online_s)



class LiftRuntime(SubjectRuntime):
    """The engine's per-lift memory besides the rules' state."""

    __slots__ = ("running", "last_sample_s", "recent", "kept")

    def __init__(self, context: LiftContext, subject: Subject, rules: int) -> None:
        super().__init__(context, subject, rules)
        self.running: bool | None = None
        self.last_sample_s: float | None = None
        """Device time of the newest status record evaluated, in Unix seconds."""
        self.recent: deque[tuple[Any, ...]] = deque(maxlen=CONTEXT_MAX_RECENT)
        """Compact statuses (device time in seconds first) of the last CONTEXT_BEFORE_S."""
        self.kept: dict[int, int] = {}
        """Alarm id → records kept with it so far."""

    @property
    def lift(self) -> LiftContext:
        return self.context  # type: ignore[return-value]


class RuleEngine(EventTimeEngine):
    """Runs the rules for every lift (subject ``lift:<device code>``)."""

    subject_prefix = "lift"
    runtime_class = LiftRuntime

    def __init__(self, book: AlarmBook, rules: Sequence[Rule], settings: RulesConfig) -> None:
        super().__init__(book, rules, settings)
        self.registry: dict[str, dict[str, Any]] = {}
        self._online_at: datetime | None = None
        book.observers.append(self._count_faults)

    @property
    def lifts(self) -> dict[str, LiftRuntime]:
        return self.subjects  # type: ignore[return-value]

    def subject_code(self, terminal: Terminal) -> str | None:
        return terminal.device_code

    def new_context(self, code: str) -> LiftContext:
        lift = LiftContext(code)
        self._apply_registry(lift, self.registry.get(code))
        return lift

    def new_subject(self, code: str) -> Subject:
        return Subject(device_code=code)

    def runtime(self, code: str) -> LiftRuntime:
        return super().runtime(code)  # type: ignore[return-value]

    # --- loading ----------------------------------------------------------------------------------

    async def load(self, conn: aiosqlite.Connection, started_at: datetime | None = None) -> None:
        """Registry, terminals, latest states and the rules' stored state.

        A terminal not already offline gets its offline delay counted from ``started_at`` (the platform
        was down: it needs a moment to reconnect)."""
        await self.refresh_registry(conn)
        sessions = await conn.execute(
            "SELECT t.device_code, s.last_frame_at, s.report_interval_s FROM terminal_sessions s"
            " JOIN terminals t ON t.protocol = s.protocol AND t.terminal_id = s.terminal_id"
            " WHERE t.device_code IS NOT NULL"
        )
        for row in await sessions.fetchall():
            lift = self.runtime(row["device_code"]).lift
            if row["last_frame_at"] is not None:
                lift.last_frame_at = datetime.fromtimestamp(row["last_frame_at"], UTC)
            lift.report_interval_s = row["report_interval_s"]
        states = await conn.execute(
            "SELECT device_code, at, received_at, running, dated_on_receipt FROM elevator_state"
        )
        for row in await states.fetchall():
            runtime = self.runtime(row["device_code"])
            runtime.last_sample_s = row["at"]
            if not row["dated_on_receipt"]:
                clock = runtime.lift.clock
                clock.evaluated_s = row["at"]
                clock.report(row["at"], row["received_at"])
            runtime.running = None if row["running"] is None else bool(row["running"])
        await self.load_states(conn)
        if started_at is not None:
            for runtime in self.lifts.values():
                lift = runtime.lift
                already_offline = any(state.get("offline") for state in runtime.states)
                if lift.last_frame_at is not None and not already_offline:
                    lift.last_frame_at = max(lift.last_frame_at, started_at)

    async def refresh_registry(self, conn: aiosqlite.Connection) -> None:
        """Re-read the lifts' registry columns (a census import may have changed them)."""
        cursor = await conn.execute("SELECT * FROM elevators")
        self.registry = {row["device_code"]: dict(row) for row in await cursor.fetchall()}
        for device_code, runtime in self.lifts.items():
            self._apply_registry(runtime.lift, self.registry.get(device_code))

    @staticmethod
    def _apply_registry(lift: LiftContext, row: dict[str, Any] | None) -> None:
        if row is not None:
            lift.rated_speed_mps = row["rated_speed_mps"]
            lift.extra = row

    # --- records ----------------------------------------------------------------------------------

    def evaluate(self, runtime: SubjectRuntime, event: ev.Event, at_s: float) -> list[Statement]:
        if isinstance(event, ev.ElevatorStatus):
            return self._status(runtime, event, at_s)  # type: ignore[arg-type]
        if isinstance(event, ev.TerminalDiagnostic):
            log.info("%s %s diagnostic %d %s", event.protocol, event.terminal_id, event.code,
                     "active" if event.active else "cleared")  # fmt: skip
        return self.run_rules(runtime, event)

    def late(self, runtime: SubjectRuntime, event: ev.Event) -> list[Statement]:
        """A late status is kept with the lift's active alarms; it changes neither state nor alarms."""
        if isinstance(event, ev.ElevatorStatus):
            return self._keep_with_alarms(runtime, [event], NO_ALARMS)  # type: ignore[arg-type]
        return []

    def _status(self, runtime: LiftRuntime, status: ev.ElevatorStatus, at_s: float) -> list[Statement]:
        # (In seconds, not datetimes: this runs for every sample.)
        statements: list[Statement] = []
        was_running = runtime.running
        if runtime.last_sample_s is not None and was_running is not None:
            runs = int(status.running and not was_running)
            running_s = min(max(0.0, at_s - runtime.last_sample_s), RUNNING_GAP_MAX_S) if was_running else 0.0
            if runs or running_s:
                statements.append(daily_add(runtime.lift.code, cst_day_text_of(at_s), runs, running_s))
        runtime.running = status.running
        runtime.last_sample_s = at_s
        recent = runtime.recent
        recent.append(_compact(at_s, status))
        oldest_s = at_s - CONTEXT_BEFORE_S
        while recent[0][0] < oldest_s:
            recent.popleft()
        active = self.book.active_for(runtime.subject)
        before = {alarm.id for alarm in active} if active else NO_ALARMS
        derived = self.run_rules(runtime, status)
        # (An alarm can have become active only through a transition, which derives statements.)
        if before or runtime.kept or (derived and self.book.active_for(runtime.subject)):
            derived += self._keep_with_alarms(runtime, [status], before)
        return statements + derived if statements else derived

    def _keep_with_alarms(
        self, runtime: LiftRuntime, records: list[ev.ElevatorStatus], also: Set[int]
    ) -> list[Statement]:
        """Keep records with the lift's active alarms (and ``also``: those just cleared by them);
        an alarm seen for the first time also gets the records of the minute before."""
        active = {alarm.id: alarm for alarm in self.book.active_for(runtime.subject)}
        statements: list[Statement] = []
        for alarm_id in active.keys() | also:
            kept = runtime.kept.get(alarm_id)
            batch = records if kept is not None else [_expand(record) for record in runtime.recent]
            kept = kept or 0
            batch = batch[: max(0, CONTEXT_MAX_SAMPLES - kept)]
            runtime.kept[alarm_id] = kept + len(batch)
            if batch:
                statements += self.book.samples(alarm_id, batch)
        for alarm_id in list(runtime.kept):
            if alarm_id not in active:
                del runtime.kept[alarm_id]
        return statements

    # --- time -------------------------------------------------------------------------------------

    def see_frame(self, device_code: str, at: datetime, report_interval_s: int | None) -> None:
        """A frame (a heartbeat too) was read from the lift's terminal at ``at`` (platform clock)."""
        runtime = self.runtime(device_code)
        self.forget_idle(runtime)  # (its idle rules' deadlines move with the frame and the interval)
        lift = runtime.lift
        if lift.last_frame_at is None or at > lift.last_frame_at:
            lift.last_frame_at = at
        if report_interval_s:
            lift.report_interval_s = report_interval_s

    def online_time(self, now: datetime, connected: set[str]) -> list[Statement]:
        """Add the time since the previous call to the online time of the lifts connected now."""
        previous, self._online_at = self._online_at, now
        if previous is None:
            return []
        step = min((now - previous).total_seconds(), 2 * ONLINE_STEP_S)
        if step <= 0:
            return []
        day = cst_day_text(now)
        return [daily_add(code, day, online_s=step) for code in sorted(connected)]

    def _count_faults(self, alarm: Alarm, change: str) -> list[Statement]:
        if change == "raised" and alarm.device_code and alarm.kind != "offline":
            return [daily_add(alarm.device_code, cst_day_text(alarm.raised_at), faults=1)]
        return []
