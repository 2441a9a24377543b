"""The built-in elevator rules (domain.md), registered through the ``register_rules`` hook.

Durations count in event time (``event.time``, and the lift's clock the engine passes to ``on_time``),
and a raise or clear is dated at the exact moment its threshold was reached, whether a record, a later
frame or a tick noticed it (docs/time.md).
"""

from __future__ import annotations

import math
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot.config import Config, RulesConfig
from wuhai_iot.elevators.rules.base import LiftContext, Rule, Transition, moment
from wuhai_iot.plugins.hookspecs import hookimpl

# (An enum member read through its class costs fifteen times a module global, on every sample.)
CLOSED, UNKNOWN = ev.Door.CLOSED, ev.Door.UNKNOWN


class TerminalFaults(Rule[ev.ElevatorFault]):
    """Every fault the terminal reports, raised and cleared as the terminal says."""

    name = "terminal_faults"
    events = (ev.ElevatorFault,)

    def on_event(self, lift: LiftContext, event: ev.ElevatorFault, state: dict[str, Any]) -> list[Transition]:
        detail = {"floor": event.floor} if event.floor is not None else None
        return [Transition(event.kind, event.active, event.time, source="device",
                           vendor_code=event.vendor_code, detail=detail)]  # fmt: skip


class DurationRule(Rule[ev.ElevatorStatus]):
    """A condition of the status that must hold for ``after_s`` (or ``records`` consecutive samples).

    ``condition`` answers True, False, or None when the sample does not tell (state unchanged).
    State: ``since`` (device time the condition began), ``count`` (consecutive samples), ``raised``.
    """

    events = (ev.ElevatorStatus,)
    kind = ""
    after_s: float = math.inf
    records: int | None = None

    def condition(self, lift: LiftContext, status: ev.ElevatorStatus) -> bool | None:
        raise NotImplementedError

    def detail(self, lift: LiftContext, status: ev.ElevatorStatus) -> dict[str, Any]:
        return {"after_s": self.after_s} | ({"records": self.records} if self.records else {})

    def on_event(self, lift: LiftContext, event: ev.ElevatorStatus, state: dict[str, Any]) -> list[Transition]:
        holds = self.condition(lift, event)
        if not state and not holds:  # the usual sample: nothing going on, nothing starting
            return []
        if holds is None:
            return []
        t = event.time.timestamp()
        out: list[Transition] = []
        if holds:
            if "since" not in state:
                state.update(since=t, count=0, raised=False, detail=self.detail(lift, event))
            state["count"] += 1
            if not state["raised"] and self.records and state["count"] >= self.records:
                out += self._raise(state, t)
        elif state:
            if state["raised"]:
                out.append(Transition(self.kind, False, event.time))
            state.clear()
        return out

    def on_time(self, lift: LiftContext, at_s: float, state: dict[str, Any]) -> list[Transition]:
        if state and not state["raised"] and state["since"] + self.after_s <= at_s:
            return self._raise(state, state["since"] + self.after_s)
        return []

    def _raise(self, state: dict[str, Any], at: float) -> list[Transition]:
        state["raised"] = True
        return [Transition(self.kind, True, moment(at), since=moment(state["since"]), detail=state["detail"])]


class StoppedOutsideZone(DurationRule):
    name = kind = "stopped_outside_zone"

    def __init__(self, rules: RulesConfig) -> None:
        self.after_s = rules.stopped_outside_zone_s

    def condition(self, lift: LiftContext, status: ev.ElevatorStatus) -> bool | None:
        if status.door_zone is None:
            return None
        return not status.running and not status.door_zone


class DoorOpenMoving(DurationRule):
    name = kind = "door_open_moving"

    def __init__(self, rules: RulesConfig) -> None:
        self.after_s = rules.door_open_moving_s
        self.records = rules.door_open_moving_records

    def condition(self, lift: LiftContext, status: ev.ElevatorStatus) -> bool | None:
        if status.door is UNKNOWN:
            return None
        return status.running and status.door is not CLOSED


class PowerLost(DurationRule):
    name = kind = "power_lost"

    def __init__(self, rules: RulesConfig) -> None:
        self.after_s = rules.power_lost_s

    def condition(self, lift: LiftContext, status: ev.ElevatorStatus) -> bool | None:
        return None if status.power is None else not status.power


class Overspeed(DurationRule):
    """Faster than ``factor`` × the lift's rated speed in ``records`` consecutive samples."""

    name = kind = "overspeed"

    def __init__(self, rules: RulesConfig) -> None:
        self.factor = rules.overspeed_factor
        self.records = rules.overspeed_records

    def condition(self, lift: LiftContext, status: ev.ElevatorStatus) -> bool | None:
        if status.speed_mps is None or not lift.rated_speed_mps:
            return None
        return status.speed_mps > self.factor * lift.rated_speed_mps

    def detail(self, lift: LiftContext, status: ev.ElevatorStatus) -> dict[str, Any]:
        return {"records": self.records, "factor": self.factor, "rated_speed_mps": lift.rated_speed_mps,
                "speed_mps": status.speed_mps}  # fmt: skip


class Trapped(Rule[ev.ElevatorStatus]):
    """Car not running, doors closed, person detected, continuously ≥ ``after_s``.

    The condition ends as domain.md says: when the doors open, or when the person sensor has stayed clear
    ≥ ``clear_s`` (sensors flicker, so a short clear changes nothing). The car moving with the doors closed
    is not a release: before the alarm it ends the wait (the car was not stuck), after it nothing.
    State: ``since``, ``clear_since`` (first clear record), ``raised``, ``floor``.
    """

    name = "trapped"
    events = (ev.ElevatorStatus,)

    def __init__(self, rules: RulesConfig) -> None:
        self.after_s = rules.trapped_after_s
        self.clear_s = rules.trapped_clear_s

    def on_event(self, lift: LiftContext, event: ev.ElevatorStatus, state: dict[str, Any]) -> list[Transition]:
        door = event.door
        if door is UNKNOWN:
            return []
        if not state:  # the usual sample: nothing going on; does a wait start?
            if door is CLOSED and event.occupied and not event.running:
                state.update(since=event.time.timestamp(), clear_since=None, raised=False, floor=event.floor)
            return []
        if door is not CLOSED:
            raised = state["raised"]
            state.clear()
            return [Transition("trapped", False, event.time, detail={"ended_by": "doors_open"})] if raised else []
        if event.running:
            if not state["raised"]:  # moving before the threshold: not trapped
                state.clear()
        elif event.occupied:
            state["clear_since"] = None
        elif event.occupied is False and state["clear_since"] is None:
            state["clear_since"] = event.time.timestamp()
        return []

    def on_time(self, lift: LiftContext, at_s: float, state: dict[str, Any]) -> list[Transition]:
        if not state:
            return []
        out: list[Transition] = []
        raise_at = state["since"] + self.after_s
        clear_since = state["clear_since"]
        end_at = math.inf if clear_since is None else clear_since + self.clear_s
        if not state["raised"] and raise_at <= at_s and raise_at < end_at:
            state["raised"] = True
            detail = {"after_s": self.after_s, "clear_s": self.clear_s, "floor": state["floor"]}
            out.append(Transition("trapped", True, moment(raise_at), since=moment(state["since"]), detail=detail))
        if end_at <= at_s:
            if state["raised"]:
                out.append(Transition("trapped", False, moment(end_at), detail={"ended_by": "person_clear"}))
            state.clear()
        return out


class Offline(Rule[ev.Event]):
    """No frame for ``factor`` × the report interval and at least ``min_s`` (platform clock).

    Only terminals that have sent a frame at least once are watched. The wait runs on the platform clock
    and is undone when the terminal's next record is dated inside it (buffered while its network was down,
    or delayed on the way): sent live, the same records would have raised nothing.
    """

    name = "offline"
    ticks_when_idle = True

    def __init__(self, rules: RulesConfig) -> None:
        self.factor = rules.offline_interval_factor
        self.min_s = rules.offline_min_s

    def threshold(self, lift: LiftContext) -> float:
        return max(self.factor * (lift.report_interval_s or 0), self.min_s)

    def idle_until(self, lift: LiftContext) -> float:
        """Silent for less than the threshold until then (no frame yet: nothing to wait for)."""
        if lift.last_frame_at is None:
            return math.inf
        return lift.last_frame_at.timestamp() + self.threshold(lift)

    def on_time(self, lift: LiftContext, at_s: float, state: dict[str, Any]) -> list[Transition]:
        """The terminal's clock reached ``at_s`` before the silence was long enough on its clock: undo."""
        if state.get("offline") and at_s < state.get("window_end_s", -math.inf):
            state.clear()
            return [Transition("offline", False, moment(at_s), detail={"ended_by": "record_in_window"}, undone=True)]
        return []

    def on_event(self, lift: LiftContext, event: ev.Event, state: dict[str, Any]) -> list[Transition]:
        """A record ends the wait: the alarm clears at the record's device time (a record buffered during
        the silence dates the end when the terminal was in fact working)."""
        if state.get("offline"):
            state.clear()
            return [Transition("offline", False, event.time)]
        return []

    def on_tick(self, lift: LiftContext, now: Any, state: dict[str, Any]) -> list[Transition]:
        if lift.last_frame_at is None:
            return []
        silent_s = (now - lift.last_frame_at).total_seconds()
        threshold = self.threshold(lift)
        if not state.get("offline") and silent_s >= threshold:
            state["offline"] = True
            if math.isfinite(lift.clock.reported_s):  # the window's end on the terminal's own clock
                state["window_end_s"] = lift.clock.reported_s + threshold
            detail = {"threshold_s": threshold, "report_interval_s": lift.report_interval_s}
            return [Transition("offline", True, moment(lift.last_frame_at.timestamp() + threshold),
                               since=lift.last_frame_at, detail=detail)]  # fmt: skip
        if state.get("offline") and silent_s < threshold:
            state.clear()
            return [Transition("offline", False, lift.last_frame_at)]
        return []


def builtin_rules(rules: RulesConfig) -> list[Rule]:
    return [
        TerminalFaults(),
        Trapped(rules),
        StoppedOutsideZone(rules),
        DoorOpenMoving(rules),
        Overspeed(rules),
        PowerLost(rules),
        Offline(rules),
    ]


@hookimpl
def register_rules(config: Config) -> list[Rule]:
    return builtin_rules(config.rules)
