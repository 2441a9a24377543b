"""What a rule is: a small named unit that turns a lift's events and time into alarm transitions.

A rule keeps no state of its own: the engine hands it a per-lift ``state`` dict (flat, JSON-ready values)
that it may change; the engine stores the dict in the same transaction whenever it changed and reloads it
at start, so "doors closed with a person inside since ..." survives a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from wuhai_iot import events as ev

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


@dataclass(slots=True)
class LiftContext:
    """What the engine knows about a lift, shared by its rules (read-only for them)."""

    device_code: str
    rated_speed_mps: float | None = None
    report_interval_s: int | None = None
    last_frame_at: datetime | None = None
    """Platform clock of the newest frame from the lift's terminal (heartbeats included)."""
    last_sample_at: datetime | None = None
    """Device time of the newest status sample."""
    clock_offset_s: float = 0.0
    """Platform clock minus device clock, from the newest status sample."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Registry columns a deployment's rules may need."""

    def device_now(self, now: datetime) -> datetime:
        """The lift's own clock at platform time ``now``: duration rules count in device time."""
        return now - timedelta(seconds=self.clock_offset_s)


class Rule(Generic[E]):
    """Base of every rule. Override ``on_event`` and/or ``on_tick``.

    ``Rule[ElevatorStatus]`` with ``events = (ElevatorStatus,)``: a rule of status samples only."""

    name: str = ""
    events: tuple[type[ev.Event], ...] = (ev.Event,)
    """The event classes ``on_event`` is called for (the engine does not call it for others)."""
    ticks_when_idle: bool = False
    """Call ``on_tick`` even while the rule's state for a lift is empty (the offline rule)."""

    def on_event(self, lift: LiftContext, event: E, state: dict[str, Any]) -> list[Transition]:
        """A new event of the lift (status samples arrive in device-time order; late ones are not passed)."""
        return []

    def on_tick(self, lift: LiftContext, now: datetime, state: dict[str, Any]) -> list[Transition]:
        """Time passed: ``now`` is the platform clock (use ``lift.device_now(now)`` for durations)."""
        return []


def moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
