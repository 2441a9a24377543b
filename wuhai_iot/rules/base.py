"""What a rule is, and the event clock every subject's rules run on (docs/time.md).

A rule is a small named unit that turns a subject's records and time into alarm transitions. It keeps no
state of its own: the engine hands it a per-subject ``state`` dict (flat, JSON-ready values) that it may
change; the engine stores the dict in the same transaction whenever it changed and reloads it at start, so
"doors closed with a person inside since ..." survives a restart.

Rules run on **event time**: the device time of each record. The engine gives a rule the records of a
subject in device-time order and never one older than the newest it already evaluated, and tells it how far
the subject's own clock has run (``on_time``) before each record and whenever time passes without one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from wuhai_iot import events as ev
from wuhai_iot.clock import utc

E = TypeVar("E", bound=ev.Event)


@dataclass(frozen=True, slots=True)
class Transition:
    """A condition became active (``active=True``, the alarm is raised or updated) or ended."""

    kind: str
    active: bool
    at: datetime
    since: datetime | None = None
    source: str = "rule"
    """``device`` for faults the terminal reported itself."""
    vendor_code: str | None = None
    detail: dict[str, Any] | None = None
    undone: bool = False
    """An ended wait on the platform clock that proved wrong: the awaited record arrived late, dated inside
    the window. The alarm is cleared and resolved by the platform (the same records live raise nothing)."""


class EventClock:
    """A subject's event time (the watermark of stream processors).

    ``evaluated_s`` is the device time of the newest record evaluated: a record older than it is late and
    changes neither live state nor alarms. ``reported_s`` is the newest device time any frame of the
    subject's terminal reported (records, heartbeats, a batch's header), read at ``reported_at_s`` on the
    platform clock, which carries the subject's clock on between frames. Times are Unix seconds.
    """

    __slots__ = ("evaluated_s", "reported_s", "reported_at_s")

    def __init__(self) -> None:
        self.evaluated_s = -math.inf
        self.reported_s = -math.inf
        self.reported_at_s = 0.0

    def report(self, device_s: float, received_s: float) -> None:
        """A frame read at ``received_s`` (platform clock) showed the terminal's clock at ``device_s``."""
        if device_s >= self.reported_s:
            self.reported_s = device_s
            self.reported_at_s = received_s

    def now_s(self, platform_s: float) -> float:
        """The subject's clock at platform time ``platform_s``: the newest device time reported, carried on
        by the platform clock since it was read (never before the newest record evaluated)."""
        carried = self.reported_s + max(0.0, platform_s - self.reported_at_s)
        return carried if carried > self.evaluated_s else self.evaluated_s


@dataclass(slots=True)
class SubjectContext:
    """What the engine knows about one subject (a lift, a vehicle), shared by its rules (read-only for them)."""

    code: str
    """The subject's code (a lift's device code, a vehicle's plate)."""
    report_interval_s: int | None = None
    last_frame_at: datetime | None = None
    """Platform clock of the newest frame from the subject's terminal (heartbeats included)."""
    clock: EventClock = field(default_factory=EventClock)
    extra: dict[str, Any] = field(default_factory=dict)
    """Registry columns a deployment's rules may need."""

    def device_now(self, now: datetime) -> datetime:
        """The subject's own clock at platform time ``now`` (what ``on_time`` is given on a tick)."""
        return moment(self.clock.now_s(now.timestamp()))


class Rule(Generic[E]):
    """Base of every rule. Override ``on_event``, ``on_time`` and/or ``on_tick``.

    ``Rule[ElevatorStatus]`` with ``events = (ElevatorStatus,)``: a rule of lift status records. The
    subject is the engine's context of the subject (``LiftContext`` for lifts).
    """

    name: str = ""
    events: tuple[type[ev.Event], ...] = (ev.Event,)
    """The event classes ``on_event`` is called for (the engine does not call it for others)."""
    ticks_when_idle: bool = False
    """Call ``on_tick`` even while the rule's state for a subject is empty (the offline rule)."""

    def idle_until(self, subject: Any) -> float:
        """For a rule that ticks when idle: the platform time (Unix seconds) before which ``on_tick`` can do
        nothing for ``subject`` while every rule's state for it stays empty (the offline rule: its last frame +
        the silence it allows). The engine skips the subject's idle ticks until then; it asks again after a
        record of the subject or a frame from its terminal. By default: every tick."""
        return -math.inf

    def on_event(self, subject: Any, event: E, state: dict[str, Any]) -> list[Transition]:
        """A record of the subject, in device-time order (``event.time``); late records are not passed."""
        return []

    def on_time(self, subject: Any, at_s: float, state: dict[str, Any]) -> list[Transition]:
        """The subject's clock reached ``at_s`` (Unix seconds, device time) with no record in between.

        Called while ``state`` is not empty: before each record with the record's time, after a message
        with the newest device time the terminal reported, and on ticks with the clock carried on by the
        platform clock. Durations (trapped ≥ 40 s) fire here, dated when their threshold was reached."""
        return []

    def on_tick(self, subject: Any, now: datetime, state: dict[str, Any]) -> list[Transition]:
        """The platform clock reached ``now``: for waits on something that has not arrived (offline)."""
        return []


moment = utc
"""An aware UTC moment from Unix seconds, for a transition's times (``clock.utc``)."""
