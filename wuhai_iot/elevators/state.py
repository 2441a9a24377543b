"""Each lift's latest state (``elevator_state``): the newest status of every new message, upserted in
the transaction that stores the message. The lift pages and the map read it."""

from __future__ import annotations

import operator
from collections.abc import Sequence

from wuhai_iot import events as ev
from wuhai_iot.events import Terminal
from wuhai_iot.storage.writer import Statement

STATE_UPSERT = (
    "INSERT INTO elevator_state (device_code, at, received_at, protocol, terminal_id, floor, direction,"
    " door, running, door_zone, occupied, speed_mps, load_pct, power, safety_circuit, door_lock,"
    " overload, mode, trip_count, dated_on_receipt) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (device_code) DO UPDATE SET at=excluded.at, received_at=excluded.received_at,"
    " protocol=excluded.protocol, terminal_id=excluded.terminal_id, floor=excluded.floor,"
    " direction=excluded.direction, door=excluded.door, running=excluded.running,"
    " door_zone=excluded.door_zone, occupied=excluded.occupied, speed_mps=excluded.speed_mps,"
    " load_pct=excluded.load_pct, power=excluded.power, safety_circuit=excluded.safety_circuit,"
    " door_lock=excluded.door_lock, overload=excluded.overload, mode=excluded.mode,"
    " trip_count=excluded.trip_count, dated_on_receipt=excluded.dated_on_receipt"
    " WHERE excluded.at >= elevator_state.at OR elevator_state.dated_on_receipt"
)
"""The newest state by device time; a state dated on receipt (clock unset or wrong: docs/time.md) gives
way to the next record on a sane clock even when that one's time is a little earlier."""

_state_values = operator.attrgetter(
    "floor", "direction._value_", "door._value_", "running", "door_zone", "occupied", "speed_mps", "load_pct",
    "power", "safety_circuit", "door_lock", "overload", "mode", "trip_count",
)  # fmt: skip
"""A status's columns of ``elevator_state`` after the first five, in order. (Booleans bind as 0/1 and None
as NULL; enums as ``_value_``: their ``value`` property is slow.)"""


def state_row(terminal: Terminal, status: ev.ElevatorStatus) -> tuple[object, ...]:
    """The ``STATE_UPSERT`` parameters of a lift's status."""
    return (
        terminal.device_code,
        status.time.timestamp(),
        status.received_at.timestamp(),
        terminal.protocol,
        terminal.terminal_id,
    ) + _state_values(status) + (status.device_time is None,)


class LatestState:
    """The event consumer that keeps ``elevator_state``."""

    events = (ev.ElevatorStatus,)

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        if not terminal.device_code:
            return []
        newest: ev.ElevatorStatus | None = None  # of a batch's samples, only the newest can be the state
        for event in events:
            if isinstance(event, ev.ElevatorStatus) and (newest is None or event.time >= newest.time):
                newest = event
        if newest is None:
            return []
        return [(STATE_UPSERT, state_row(terminal, newest))]
