"""The rule engine on event time, for any kind of subject (docs/time.md).

``EventTimeEngine`` feeds each subject's records and time to the rules and applies their transitions
through the alarm book. It is an ``EventConsumer`` (``consume`` runs inside the transaction that stores
the message, so alarms, the rules' state and whatever a subclass adds commit with the message) and a
``ClockWatcher`` (frames that are not stored, heartbeats, still tell it the terminal's clock).

For every subject:

- the records of a message are evaluated in device-time order; a record older than the newest one
  already evaluated (``EventClock.evaluated_s``) is late: it goes to ``late`` and never to the rules;
- before each record the rules waiting on time (``on_time``) see the subject's clock reach its time, so a
  duration that elapsed while the terminal was offline is raised, dated in the past, before the record
  that ended it is applied;
- after a message, and on every tick, they see the newest device time the terminal has reported, carried
  on by the platform clock since (``EventClock.now_s``): a batch that shows a condition long enough raises
  it at once; ``on_tick`` sees the platform clock itself (offline).

A subclass says what its subjects are (``subject_code``, ``new_context``, ``new_subject``) and may add
bookkeeping per record (``evaluate``, ``late``): the lift engine (``elevators/rules/engine.py``) keeps
daily figures and the records around alarms there.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Subject
from wuhai_iot.events import Terminal
from wuhai_iot.rules.base import Rule, SubjectContext, Transition, moment
from wuhai_iot.storage.writer import Statement

log = logging.getLogger(__name__)

EMPTY: Mapping[str, Any] = MappingProxyType({})
"""What an empty rule state is compared with (most subjects' rules have nothing going on)."""

STATE_UPSERT = (
    "INSERT INTO rule_state (rule, subject, state) VALUES (?, ?, ?)"
    " ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state"
)


def _time_of(event: ev.Event) -> datetime:
    return event.time


class SubjectRuntime:
    """The engine's memory of one subject: its context (with its event clock) and each rule's state."""

    __slots__ = ("context", "subject", "states", "idle_until", "asleep_until")

    def __init__(self, context: SubjectContext, subject: Subject, rules: int) -> None:
        self.context = context
        self.subject = subject
        self.states: list[dict[str, Any]] = [{} for _ in range(rules)]
        """Each rule's state for this subject, in the engine's order of rules."""
        self.idle_until = -math.inf
        """While every state is empty: the platform time before which no idle-ticking rule can do anything
        (``Rule.idle_until``); forgotten (-inf) when a record or a frame of the subject may have changed it
        (``EventTimeEngine.forget_idle``)."""
        self.asleep_until = math.inf
        """The time of the subject's entry in the engine's heap of idle subjects (inf: none): one a subject."""


class EventTimeEngine:
    """Runs the rules of every subject of one kind on event time."""

    subject_prefix = ""
    """The subjects' key prefix in ``rule_state`` and the alarm book (``lift``)."""
    runtime_class: type[SubjectRuntime] = SubjectRuntime

    def __init__(self, book: AlarmBook, rules: Sequence[Rule], settings: Any) -> None:
        names = [rule.name for rule in rules]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates or "" in names:
            raise ValueError(f"rule names must be unique and not empty: {sorted(duplicates)}")
        self.book = book
        self.rules = tuple(rules)
        self.settings = settings
        self.subjects: dict[str, SubjectRuntime] = {}
        self._index = {rule.name: index for index, rule in enumerate(self.rules)}
        self._rules_for: dict[type[ev.Event], list[tuple[int, Rule]]] = {}
        """Event class → the rules (and their index) whose ``on_event`` takes it."""
        self._heeded: dict[str, None] = {}
        """The subjects the next tick visits whatever their ``idle_until`` (``due``): new ones, those with
        something going on, those whose idle time a record or a frame forgot (in the order they came)."""
        self._sleeping: list[tuple[float, str]] = []
        """Idle subjects by their ``idle_until``, a heap of one live entry a subject (``asleep_until``): an
        entry whose subject's idle time has moved on since is put back at that time when it comes up; one whose
        subject was given an earlier entry since (its deadline came earlier) is dropped when it comes up."""
        book.event_clocks[self.subject_prefix] = self.event_time_s

    # --- what a subclass says about its subjects ----------------------------------------------------

    def subject_code(self, terminal: Terminal) -> str | None:
        """The subject a terminal reports for (None: not one of this engine's)."""
        raise NotImplementedError

    def new_context(self, code: str) -> SubjectContext:
        return SubjectContext(code)

    def new_subject(self, code: str) -> Subject:
        raise NotImplementedError

    def evaluate(self, runtime: SubjectRuntime, event: ev.Event, at_s: float) -> list[Statement]:
        """A record in device-time order, not late, at ``at_s`` (its time in Unix seconds): run the rules
        (a subclass adds its bookkeeping)."""
        return self.run_rules(runtime, event)

    def late(self, runtime: SubjectRuntime, event: ev.Event) -> list[Statement]:
        """A record older than the newest evaluated one: stored with its message, nothing else by default."""
        return []

    # --- subjects -----------------------------------------------------------------------------------

    def runtime(self, code: str) -> SubjectRuntime:
        runtime = self.subjects.get(code)
        if runtime is None:
            runtime = self.subjects[code] = self.runtime_class(
                self.new_context(code), self.new_subject(code), len(self.rules)
            )
            self._heeded[code] = None
        return runtime

    def forget_idle(self, runtime: SubjectRuntime) -> None:
        """A record or a frame of the subject may have moved what its idle rules wait for: the next tick
        visits it and asks them again."""
        runtime.idle_until = -math.inf
        self._heeded[runtime.context.code] = None

    def event_time_s(self, subject_key: str, platform_s: float) -> float | None:
        """A subject's clock at platform time ``platform_s`` (the alarm book forgets cleared alarms by it)."""
        runtime = self.subjects.get(subject_key.partition(":")[2])
        if runtime is None:
            return None
        now_s = runtime.context.clock.now_s(platform_s)
        return None if now_s == -float("inf") else now_s

    async def load_states(self, conn: aiosqlite.Connection) -> None:
        """The rules' stored state of this engine's subjects."""
        stored = await conn.execute(
            "SELECT rule, subject, state FROM rule_state WHERE subject LIKE ?", (f"{self.subject_prefix}:%",)
        )
        for row in await stored.fetchall():
            state = json.loads(row["state"])
            index = self._index.get(row["rule"])  # (a rule no longer registered: its state is left)
            if state and index is not None:
                self.runtime(row["subject"].partition(":")[2]).states[index] = state

    # --- records ------------------------------------------------------------------------------------

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        code = self.subject_code(terminal)
        if not code or not events:
            return []
        runtime = self.subjects.get(code) or self.runtime(code)
        self.forget_idle(runtime)  # (the records move what its idle rules wait for)
        context = runtime.context
        clock = context.clock
        if terminal.report_interval_s:
            context.report_interval_s = terminal.report_interval_s
        states = runtime.states
        statements: list[Statement] = []
        received_s = t = 0.0
        for event in events if len(events) == 1 else sorted(events, key=_time_of):
            received_at = event.received_at
            if context.last_frame_at is None or received_at > context.last_frame_at:
                context.last_frame_at = received_at
            received_s = received_at.timestamp()
            device_time = event.device_time
            if device_time is None:
                # The clock is unset or was found wrong: the record is dated at the subject's clock at
                # receipt (the receipt itself when no sane frame told it yet); it moves neither clock,
                # so that the next record on a sane clock wins.
                t = received_s if clock.reported_s == -math.inf else clock.now_s(received_s)
                if t != received_s:
                    event = dataclasses.replace(event, device_time=moment(t))
            else:
                t = device_time.timestamp()
            if t < clock.evaluated_s:
                statements += self.late(runtime, event)
                continue
            if device_time is not None:
                clock.evaluated_s = t
                if t >= clock.reported_s:  # (EventClock.report, inline: this runs for every record)
                    clock.reported_s = t
                    clock.reported_at_s = received_s
            if any(states):
                statements += self.advance(runtime, t)
            statements += self.evaluate(runtime, event, t)
        if any(states):
            now_s = clock.now_s(received_s)
            if now_s > t:  # (a live record is itself the terminal's newest clock: nothing more to see)
                statements += self.advance(runtime, now_s)
        return statements

    def heard(self, terminal: Terminal, device_time: datetime, received_at: datetime) -> bool:
        """A frame showed the terminal's clock (a heartbeat, a batch's header); True when rules wait on
        time for its subject, so that ``catch_up`` must run."""
        code = self.subject_code(terminal)
        if not code:
            return False
        runtime = self.runtime(code)
        self.forget_idle(runtime)
        context = runtime.context
        if context.last_frame_at is None or received_at > context.last_frame_at:
            context.last_frame_at = received_at
        context.clock.report(device_time.timestamp(), received_at.timestamp())
        return any(runtime.states)

    def catch_up(self, terminal: Terminal, received_at: datetime) -> list[Statement]:
        """Let the rules of the terminal's subject see its clock as of ``received_at`` (after ``heard``)."""
        code = self.subject_code(terminal)
        runtime = self.subjects.get(code) if code else None
        if runtime is None or not any(runtime.states):
            return []
        return self.advance(runtime, runtime.context.clock.now_s(received_at.timestamp()))

    def run_rules(self, runtime: SubjectRuntime, event: ev.Event) -> list[Statement]:
        """Give a record to the rules that take its class."""
        statements: list[Statement] = []
        states, context = runtime.states, runtime.context
        rules = self._rules_for.get(type(event))
        if rules is None:
            rules = self._rules_for[type(event)] = [
                (index, rule) for index, rule in enumerate(self.rules) if isinstance(event, rule.events)
            ]
        for index, rule in rules:
            state = states[index]
            before = dict(state) if state else EMPTY
            try:
                transitions = rule.on_event(context, event, state)
            except Exception:  # a faulty rule must not stop ingestion (the message would never be stored)
                log.exception("rule %s failed on %s of %s", rule.name, type(event).__name__, context.code)
                state.clear()
                state.update(before)
                continue
            # (``before is EMPTY``: the usual case, and a dict compares with a mapping proxy slowly.)
            if transitions or (state if before is EMPTY else state != before):
                statements += self._apply(runtime, rule, transitions, state, before)
        return statements

    # --- time ---------------------------------------------------------------------------------------

    def advance(self, runtime: SubjectRuntime, at_s: float) -> list[Statement]:
        """The subject's clock reached ``at_s``: ``on_time`` of every rule whose state is not empty."""
        statements: list[Statement] = []
        for rule, state in zip(self.rules, runtime.states, strict=True):
            if state:
                statements += self._call(runtime, rule, state, "on_time", at_s)
        return statements

    def due(self, now: datetime) -> list[str]:
        """The subjects a tick at ``now`` visits (``tick(now, codes)``): those with something going on and the
        idle ones whose rules can act by now. The others, most of a city's lifts every second, are not looked
        at: a tick's cost follows what happens, not the size of the registry."""
        now_s = now.timestamp()
        due, self._heeded = self._heeded, {}
        sleeping = self._sleeping
        while sleeping and sleeping[0][0] <= now_s:
            at_s, code = heapq.heappop(sleeping)
            runtime = self.subjects[code]
            if at_s != runtime.asleep_until:
                continue  # (stale: the subject was given another entry since, which stands for it)
            runtime.asleep_until = math.inf
            if runtime.idle_until <= now_s:
                due[code] = None
            else:  # (its frames moved the time on since; heeded meanwhile if they made it forget)
                self._sleep(runtime)
        return list(due)

    def _sleep(self, runtime: SubjectRuntime) -> None:
        """Keep the idle subject in the heap until its ``idle_until`` (one entry a subject: an earlier one
        stands, and puts the subject back when it comes up)."""
        if runtime.idle_until < runtime.asleep_until and runtime.idle_until != math.inf:
            runtime.asleep_until = runtime.idle_until
            heapq.heappush(self._sleeping, (runtime.idle_until, runtime.context.code))

    def tick(self, now: datetime, codes: Iterable[str] | None = None) -> list[Statement]:
        """Let time pass to ``now`` (platform clock) for every subject, or for those of ``codes`` (``due``):
        the rules waiting on time see the subject's clock (``on_time``), then the platform's (``on_tick``)."""
        statements: list[Statement] = []
        runtimes = self.subjects.values() if codes is None else (self.subjects[code] for code in codes)
        now_s = now.timestamp()
        # A subject with nothing going on (every state empty: most of a city's lifts, every second) meets
        # only the rules that tick when idle, found once here, not by walking all its rules, and only once
        # one of them can do something (``Rule.idle_until``; until then it sleeps, see ``due``).
        idle = [(index, rule) for index, rule in enumerate(self.rules) if rule.ticks_when_idle]
        for runtime in runtimes:
            states = runtime.states
            if not any(states):
                if now_s < runtime.idle_until:
                    continue
                for index, rule in idle:
                    statements += self._call(runtime, rule, states[index], "on_tick", now)
                if any(states):
                    self._heeded[runtime.context.code] = None
                else:
                    runtime.idle_until = min((rule.idle_until(runtime.context) for _, rule in idle), default=math.inf)
                    self._sleep(runtime)
                continue
            runtime.idle_until = -math.inf
            self._heeded[runtime.context.code] = None  # (visited again at the next tick while anything goes on)
            statements += self.advance(runtime, runtime.context.clock.now_s(now_s))
            for rule, state in zip(self.rules, states, strict=True):
                if state or rule.ticks_when_idle:
                    statements += self._call(runtime, rule, state, "on_tick", now)
        if codes is None:
            self.book.prune(now)
        return statements

    def _call(self, runtime: SubjectRuntime, rule: Rule, state: dict[str, Any], method: str, at: Any) -> list[Statement]:
        before = dict(state) if state else EMPTY
        try:
            transitions = getattr(rule, method)(runtime.context, at, state)
        except Exception:
            log.exception("rule %s failed in %s of %s", rule.name, method, runtime.context.code)
            state.clear()
            state.update(before)
            return []
        if transitions or (state if before is EMPTY else state != before):
            return self._apply(runtime, rule, transitions, state, before)
        return []

    # --- applying transitions -----------------------------------------------------------------------

    def _apply(
        self,
        runtime: SubjectRuntime,
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
                    vendor_code=transition.vendor_code, detail=transition.detail, undone=transition.undone,
                )  # fmt: skip
        if state != before:
            statements.append((STATE_UPSERT, (rule.name, subject.key, json.dumps(state))))
        return statements
