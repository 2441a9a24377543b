"""The rule engine: feeds each lift's events and time ticks to the rules and applies their transitions.

It is an ``EventConsumer``: ``consume`` runs inside the transaction that stores the message, so the alarm
rows, the rules' state and the daily figures it returns commit with the message. ``tick(now)`` runs the
time-based part (durations reached without a new frame, offline terminals); the platform calls it every
``rules.tick_interval_s`` through the writer, tests call ``advance(now)`` with an explicit time.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
from collections import deque
from collections.abc import Iterable, Mapping, Sequence, Set
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Alarm, Subject
from wuhai_iot.clock import cst_day_text, cst_day_text_of
from wuhai_iot.config import RulesConfig
from wuhai_iot.elevators.rules.base import LiftContext, Rule, Transition
from wuhai_iot.events import Terminal
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
EMPTY: Mapping[str, Any] = MappingProxyType({})
"""What an empty rule state is compared with (most lifts' rules have nothing going on)."""
NO_ALARMS: frozenset[int] = frozenset()

STATE_UPSERT = (
    "INSERT INTO rule_state (rule, subject, state) VALUES (?, ?, ?)"
    " ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state"
)
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


class LiftRuntime:
    """The engine's per-lift memory besides the rules' state."""

    __slots__ = ("lift", "subject", "running", "last_sample_s", "recent", "kept", "states")

    def __init__(self, lift: LiftContext, rules: int) -> None:
        self.lift = lift
        self.subject = Subject(device_code=lift.device_code)
        self.running: bool | None = None
        self.last_sample_s = 0.0
        """``lift.last_sample_at`` in Unix seconds."""
        self.recent: deque[tuple[Any, ...]] = deque(maxlen=CONTEXT_MAX_RECENT)
        """Compact statuses (device time in seconds first) of the last CONTEXT_BEFORE_S."""
        self.kept: dict[int, int] = {}
        """Alarm id → records kept with it so far."""
        self.states: list[dict[str, Any]] = [{} for _ in range(rules)]
        """Each rule's state for this lift, in the engine's order of rules."""


class RuleEngine:
    """Runs the rules for every lift."""

    def __init__(self, book: AlarmBook, rules: Sequence[Rule], settings: RulesConfig) -> None:
        names = [rule.name for rule in rules]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates or "" in names:
            raise ValueError(f"rule names must be unique and not empty: {sorted(duplicates)}")
        self.book = book
        self.rules = tuple(rules)
        self.settings = settings
        self.lifts: dict[str, LiftRuntime] = {}
        self.registry: dict[str, dict[str, Any]] = {}
        self._index = {rule.name: index for index, rule in enumerate(self.rules)}
        self._rules_for: dict[type[ev.Event], list[tuple[int, Rule]]] = {}
        """Event class → the rules (and their index) whose ``on_event`` takes it."""
        self._online_at: datetime | None = None
        book.observers.append(self._count_faults)

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
        states = await conn.execute("SELECT device_code, at, received_at, running FROM elevator_state")
        for row in await states.fetchall():
            runtime = self.runtime(row["device_code"])
            runtime.lift.last_sample_at = datetime.fromtimestamp(row["at"], UTC)
            runtime.last_sample_s = row["at"]
            runtime.lift.clock_offset_s = row["received_at"] - row["at"]
            runtime.running = None if row["running"] is None else bool(row["running"])
        stored = await conn.execute("SELECT rule, subject, state FROM rule_state WHERE subject LIKE 'lift:%'")
        for row in await stored.fetchall():
            state = json.loads(row["state"])
            index = self._index.get(row["rule"])  # (a rule no longer registered: its state is left)
            if state and index is not None:
                self.runtime(row["subject"].removeprefix("lift:")).states[index] = state
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

    def _apply_registry(self, lift: LiftContext, row: dict[str, Any] | None) -> None:
        if row is not None:
            lift.rated_speed_mps = row["rated_speed_mps"]
            lift.extra = row

    def runtime(self, device_code: str) -> LiftRuntime:
        runtime = self.lifts.get(device_code)
        if runtime is None:
            runtime = self.lifts[device_code] = LiftRuntime(LiftContext(device_code), len(self.rules))
            self._apply_registry(runtime.lift, self.registry.get(device_code))
        return runtime

    # --- events -----------------------------------------------------------------------------------

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        if not terminal.device_code or not events:
            return []
        runtime = self.runtime(terminal.device_code)
        lift = runtime.lift
        if terminal.report_interval_s:
            lift.report_interval_s = terminal.report_interval_s
        statements: list[Statement] = []
        for event in events:
            if lift.last_frame_at is None or event.received_at > lift.last_frame_at:
                lift.last_frame_at = event.received_at
            if isinstance(event, ev.TerminalDiagnostic):
                log.info("%s %s diagnostic %d %s", terminal.protocol, terminal.terminal_id, event.code,
                         "active" if event.active else "cleared")  # fmt: skip
            if isinstance(event, ev.ElevatorStatus):
                statements += self._status(runtime, event)
            else:
                statements += self._run_rules(runtime, event)
        return statements

    def _status(self, runtime: LiftRuntime, status: ev.ElevatorStatus) -> list[Statement]:
        lift = runtime.lift
        at = status.time
        last_sample_at = lift.last_sample_at
        if last_sample_at is not None and at < last_sample_at:
            # A late sample (a batch, a resend): kept with the alarms, not the current state.
            return self._keep_with_alarms(runtime, [status], NO_ALARMS)
        # (In seconds, not datetimes: this runs for every sample.)
        at_s = at.timestamp()
        statements: list[Statement] = []
        was_running = runtime.running
        if last_sample_at is not None and was_running is not None:
            runs = int(status.running and not was_running)
            running_s = min(at_s - runtime.last_sample_s, RUNNING_GAP_MAX_S) if was_running else 0.0
            if runs or running_s:
                statements.append(daily_add(lift.device_code, cst_day_text_of(at_s), runs, running_s))
        runtime.running = status.running
        runtime.last_sample_s = at_s
        lift.last_sample_at = at
        lift.clock_offset_s = status.received_at.timestamp() - at_s
        recent = runtime.recent
        recent.append(_compact(at_s, status))
        oldest_s = at_s - CONTEXT_BEFORE_S
        while recent[0][0] < oldest_s:
            recent.popleft()
        active = self.book.active_for(runtime.subject)
        before = {alarm.id for alarm in active} if active else NO_ALARMS
        derived = self._run_rules(runtime, status)
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

    def _run_rules(self, runtime: LiftRuntime, event: ev.Event) -> list[Statement]:
        statements: list[Statement] = []
        states, lift = runtime.states, runtime.lift
        rules = self._rules_for.get(type(event))
        if rules is None:
            rules = self._rules_for[type(event)] = [
                (index, rule) for index, rule in enumerate(self.rules) if isinstance(event, rule.events)
            ]
        for index, rule in rules:
            state = states[index]
            before = dict(state) if state else EMPTY
            try:
                transitions = rule.on_event(lift, event, state)
            except Exception:  # a faulty rule must not stop ingestion (the message would never be stored)
                log.exception("rule %s failed on %s of %s", rule.name, type(event).__name__, lift.device_code)
                state.clear()
                state.update(before)
                continue
            # (``before is EMPTY``: the usual case, and a dict compares with a mapping proxy slowly.)
            if transitions or (state if before is EMPTY else state != before):
                statements += self._apply(runtime, rule, transitions, state, before)
        return statements

    # --- time -------------------------------------------------------------------------------------

    def see_frame(self, device_code: str, at: datetime, report_interval_s: int | None) -> None:
        """A frame (a heartbeat too) was read from the lift's terminal at ``at`` (platform clock)."""
        lift = self.runtime(device_code).lift
        if lift.last_frame_at is None or at > lift.last_frame_at:
            lift.last_frame_at = at
        if report_interval_s:
            lift.report_interval_s = report_interval_s

    def tick(self, now: datetime, device_codes: Iterable[str] | None = None) -> list[Statement]:
        """Let time pass to ``now`` (platform clock) for every lift, or for those of ``device_codes``
        (the alarm book forgets old cleared alarms only on a tick of every lift)."""
        statements: list[Statement] = []
        runtimes = self.lifts.values() if device_codes is None else (self.lifts[code] for code in device_codes)
        for runtime in runtimes:
            for rule, state in zip(self.rules, runtime.states, strict=True):
                if not state and not rule.ticks_when_idle:
                    continue
                before = dict(state) if state else EMPTY
                try:
                    transitions = rule.on_tick(runtime.lift, now, state)
                except Exception:
                    log.exception("rule %s failed on a tick of %s", rule.name, runtime.lift.device_code)
                    state.clear()
                    state.update(before)
                    continue
                if transitions or (state if before is EMPTY else state != before):
                    statements += self._apply(runtime, rule, transitions, state, before)
        if device_codes is None:
            self.book.prune(now)
        return statements

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

    # --- applying transitions ---------------------------------------------------------------------

    def _apply(
        self,
        runtime: LiftRuntime,
        rule: Rule,
        transitions: list[Transition],
        state: dict[str, Any],
        before: Mapping[str, Any],
    ) -> list[Statement]:
        statements: list[Statement] = []
        subject = runtime.subject
        for transition in transitions:
            if transition.active:
                statements += self.book.raise_alarm(
                    subject, transition.kind, transition.at, source=transition.source, since=transition.since,
                    vendor_code=transition.vendor_code, detail=transition.detail,
                )  # fmt: skip
            else:
                statements += self.book.clear_alarm(
                    subject, transition.kind, transition.at, source=transition.source,
                    vendor_code=transition.vendor_code, detail=transition.detail,
                )  # fmt: skip
        if state != before:
            statements.append((STATE_UPSERT, (rule.name, subject.key, json.dumps(state))))
        return statements

    def _count_faults(self, alarm: Alarm, change: str) -> list[Statement]:
        if change == "raised" and alarm.device_code and alarm.kind != "offline":
            return [daily_add(alarm.device_code, cst_day_text(alarm.raised_at), faults=1)]
        return []
