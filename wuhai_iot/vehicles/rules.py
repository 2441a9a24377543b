"""The eight vehicle alarms of domain.md, on event time.

Each vehicle's records are evaluated one by one in device-time order, with durations and windows measured
between device times, so a buffered 0x0704 batch raises the same alarms, at the same times, as the same
records sent live. A record older than the newest one evaluated for the vehicle is stored but changes
neither the state nor an alarm; one of the same device second is not older (a terminal reports at once when an
alarm bit changes, often within the second of its periodic report) and is evaluated after it. Two conditions wait on the platform clock and are evaluated by the tick:
a silent terminal (``offline``) and the FILL_RESULT a fill at a station should have produced
(``unrecorded_fill``); both are dated by device time (last frame + 24 h, the fill + 30 min), so the
outcome does not depend on when the tick ran.

This is the vehicles' own event-time evaluation (the lifts' rule engine is on the platform clock for
status ordering); it keeps its per-vehicle state as JSON in ``rule_state`` under the rule name
``vehicle`` so that it can move onto a shared event-time engine later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Subject
from wuhai_iot.clock import cst_day_text_of
from wuhai_iot.config import RulesConfig
from wuhai_iot.storage.writer import Statement
from wuhai_iot.vehicles.registry import Fleet, Vehicle, distance_m

COLLISION_BIT = 29
RULE = "vehicle"
STATE_UPSERT = (
    "INSERT INTO rule_state (rule, subject, state) VALUES (?, ?, ?)"
    " ON CONFLICT (rule, subject) DO UPDATE SET state = excluded.state"
)
COLLISION_INSERT = "INSERT OR IGNORE INTO vehicle_collisions (plate, at, latitude, longitude) VALUES (?, ?, ?, ?)"
MAX_TRACK_GAP_S = 600
"""Consecutive records further apart than this add no distance or driving time (the terminal was off)."""


def _dt(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class PendingFill:
    """A pressure rise at a licensed station, waiting for that station's FILL_RESULT."""

    at: float
    """Device time of the record that showed the rise."""
    started: float
    """Device time of the record the rise is measured from."""
    station_code: int
    rise_mpa: float
    latitude: float
    longitude: float


@dataclass
class VehicleState:
    """What the rules remember about one vehicle between records."""

    newest: float = 0.0
    """Device time of the newest record evaluated."""
    latitude: float | None = None
    longitude: float | None = None
    speed_kmh: float = 0.0
    acc_on: bool = False
    gas: float | None = None
    """The previous record's gas reading (None: not reported or sensor fault)."""
    gas_low_since: float | None = None
    collision: bool = False
    stop: list[tuple[float, float]] = field(default_factory=list)
    """(device time, pressure) of the records of the current stop, within the fill window."""
    filling: bool = False
    """A fill was seen in this stop and the pressure is still rising: the same fill, not another."""
    pending: list[PendingFill] = field(default_factory=list)
    tags_seen: dict[str, float] = field(default_factory=dict)
    """Cylinder code → device time its tag was last seen by the vehicle's reader."""
    reader_since: float | None = None
    """Device time of the first tag report: a cylinder never seen counts as unseen from then."""
    certificate_alarm_day: str | None = None
    last_frame: float = 0.0
    """Receive time (platform clock) of the vehicle terminal's last frame."""
    offline_until: float | None = None
    """While ``offline`` is raised: the device time at which the silence became long enough on the terminal's
    own clock (its newest record + the wait). A record dated before it was buffered, not missing: undone."""

    def to_json(self) -> str:
        # (Its fields as they are, the fills as dicts: what ``asdict`` gives, without its deep copy, which cost
        # 150 µs a vehicle, every vehicle every STATE_SAVE_S in one turn of the event loop.)
        return json.dumps(dict(vars(self), pending=[vars(fill) for fill in self.pending]), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> VehicleState:
        data: dict[str, Any] = json.loads(text)
        data["stop"] = [tuple(item) for item in data.get("stop", [])]
        data["pending"] = [PendingFill(**item) for item in data.get("pending", [])]
        return cls(**data)


@dataclass
class DayFigures:
    records: int = 0
    distance_km: float = 0.0
    driving_s: float = 0.0
    max_pressure_mpa: float | None = None
    fills_seen: int = 0


class VehicleRules:
    """Evaluates one vehicle's records; the alarms go through the alarm book."""

    def __init__(self, book: AlarmBook, fleet: Fleet, rules: RulesConfig) -> None:
        self.book = book
        self.fleet = fleet
        self.rules = rules
        self.states: dict[str, VehicleState] = {}

    def state(self, plate: str) -> VehicleState:
        state = self.states.get(plate)
        if state is None:
            state = self.states[plate] = VehicleState()
        return state

    def save(self, plate: str) -> Statement:
        return STATE_UPSERT, (RULE, plate, self.states[plate].to_json())

    def evaluate(self, plate: str, record: ev.VehiclePosition, days: dict[str, DayFigures]) -> list[Statement]:
        """One record in device-time order: alarms, collisions and the day's figures."""
        state = self.state(plate)
        at = record.time.timestamp()
        day = days.setdefault(cst_day_text_of(at), DayFigures())
        day.records += 1
        if record.pressure_mpa is not None:
            day.max_pressure_mpa = max(day.max_pressure_mpa or 0.0, record.pressure_mpa)
        if at < state.newest:
            return []  # out of order: stored, but neither the state nor an alarm changes
        vehicle = self.fleet.vehicles.get(plate)
        subject = Subject(plate=plate)
        statements: list[Statement] = []
        if state.newest and state.latitude is not None and record.fixed and at - state.newest <= MAX_TRACK_GAP_S:
            day.distance_km += distance_m(state.latitude, state.longitude or 0.0, record.latitude, record.longitude) / 1000
            if record.acc_on and (record.speed_kmh > 0 or state.speed_kmh > 0):
                day.driving_s += at - state.newest
        statements += self._gas(subject, state, record, at)
        if vehicle is not None:
            statements += self._pressure(subject, vehicle, state, record, at, day)
            statements += self._certificate(subject, vehicle, state, record, at)
        statements += self._collision(plate, subject, state, record, at)
        statements += self._cylinders(plate, subject, state, record, at)
        state.newest = at
        if record.fixed:
            state.latitude, state.longitude = record.latitude, record.longitude
        state.speed_kmh, state.acc_on = record.speed_kmh, record.acc_on
        return statements

    # --- the conditions ---------------------------------------------------------------------------

    def _gas(self, subject: Subject, state: VehicleState, record: ev.VehiclePosition, at: float) -> list[Statement]:
        rules, gas = self.rules, record.gas_lel_pct
        previous, state.gas = state.gas, gas
        if gas is None:
            return []  # not reported, or the sensor's fault value: never compared
        detail = {"gas_lel_pct": gas, "single_pct": rules.gas_leak_single_pct,
                  "double_pct": rules.gas_leak_double_pct, "clear_pct": rules.gas_leak_clear_pct}  # fmt: skip
        if gas >= rules.gas_leak_single_pct or (
            gas >= rules.gas_leak_double_pct and previous is not None and previous >= rules.gas_leak_double_pct
        ):
            state.gas_low_since = None
            return self.book.raise_alarm(subject, "gas_leak", _dt(at), detail=detail)
        if self.book.active(subject, "gas_leak") is None:
            return []
        if gas >= rules.gas_leak_clear_pct:
            state.gas_low_since = None
            return []
        if state.gas_low_since is None:
            state.gas_low_since = at
        if at - state.gas_low_since >= rules.gas_leak_clear_s:
            cleared = state.gas_low_since + rules.gas_leak_clear_s
            state.gas_low_since = None
            return self.book.clear_alarm(subject, "gas_leak", _dt(cleared), detail={"cleared_gas_lel_pct": gas})
        return []

    def _pressure(
        self, subject: Subject, vehicle: Vehicle, state: VehicleState, record: ev.VehiclePosition, at: float,
        day: DayFigures,
    ) -> list[Statement]:  # fmt: skip
        rules, pressure = self.rules, record.pressure_mpa
        if pressure is None:
            return []
        statements: list[Statement] = []
        working = rules.working_pressure_lng_mpa if vehicle.fuel == "LNG" else rules.working_pressure_cng_mpa
        limit = rules.overpressure_factor * working
        if pressure > limit:
            statements += self.book.raise_alarm(subject, "cylinder_overpressure", _dt(at),
                                                detail={"pressure_mpa": pressure, "limit_mpa": round(limit, 3)})  # fmt: skip
        elif self.book.active(subject, "cylinder_overpressure") is not None:
            statements += self.book.clear_alarm(subject, "cylinder_overpressure", _dt(at))
        # A fill: the pressure rose by the medium's step within the window while the vehicle stood still.
        if record.speed_kmh >= rules.fill_max_speed_kmh:
            state.stop, state.filling = [], False
            return statements
        window = rules.fill_window_min * 60
        stop = [(t, p) for t, p in state.stop if at - t <= window]
        if state.filling:
            # A fill goes on for several records (30 s apart, a CNG fill takes minutes): one fill, one alarm.
            if stop and pressure > stop[-1][1]:
                self._fill_goes_on(state, at, pressure)
            else:
                state.filling = False
            state.stop = [(at, pressure)]
            return statements
        rise_needed = rules.fill_rise_lng_mpa if vehicle.fuel == "LNG" else rules.fill_rise_cng_mpa
        lowest = min(stop, key=lambda item: item[1]) if stop else None
        if lowest is None or pressure - lowest[1] < rise_needed:
            state.stop = [*stop, (at, pressure)]
            return statements
        state.stop, state.filling = [(at, pressure)], True
        day.fills_seen += 1
        rise = round(pressure - lowest[1], 2)
        detail = {"from_mpa": lowest[1], "to_mpa": pressure, "rise_mpa": rise, "since": _dt(lowest[0]).isoformat(),
                  "latitude": record.latitude, "longitude": record.longitude,
                  "station_radius_m": rules.station_radius_m}  # fmt: skip
        station = self.fleet.licensed_station_near(record.latitude, record.longitude, vehicle.fuel, rules.station_radius_m)
        if station is None:
            return statements + self.book.record_alarm(subject, "illegal_fill", _dt(at), detail=detail)
        state.pending.append(PendingFill(at, lowest[0], station.station_code, rise, record.latitude, record.longitude))
        return statements

    def _fill_goes_on(self, state: VehicleState, at: float, pressure: float) -> None:
        """The fill seen at a station rises further: its FILL_RESULT is looked for around its end."""
        if state.pending and state.pending[-1].at == state.stop[-1][0]:
            pending = state.pending[-1]
            pending.rise_mpa = round(pending.rise_mpa + pressure - state.stop[-1][1], 2)
            pending.at = at

    def _certificate(
        self, subject: Subject, vehicle: Vehicle, state: VehicleState, record: ev.VehiclePosition, at: float
    ) -> list[Statement]:
        if vehicle.certificate_valid or not record.acc_on or record.speed_kmh <= self.rules.on_road_speed_kmh:
            return []
        day = cst_day_text_of(at)
        if state.certificate_alarm_day == day:
            return []  # at most one a day
        state.certificate_alarm_day = day
        return self.book.record_alarm(subject, "certificate_invalid_on_road", _dt(at),
                                      detail={"speed_kmh": record.speed_kmh, "latitude": record.latitude,
                                              "longitude": record.longitude})  # fmt: skip

    def _collision(
        self, plate: str, subject: Subject, state: VehicleState, record: ev.VehiclePosition, at: float
    ) -> list[Statement]:
        bit = bool(record.alarm_flags >> COLLISION_BIT & 1)
        rose, fell = bit and not state.collision, state.collision and not bit
        state.collision = bit
        if rose:
            detail = {"latitude": record.latitude, "longitude": record.longitude, "cylinders": self.fleet.cylinders.get(plate, [])}
            return [(COLLISION_INSERT, (plate, at, record.latitude, record.longitude)),
                    *self.book.raise_alarm(subject, "collision", _dt(at), source="device", detail=detail)]  # fmt: skip
        if fell:
            return self.book.clear_alarm(subject, "collision", _dt(at), source="device")
        return []

    def _cylinders(
        self, plate: str, subject: Subject, state: VehicleState, record: ev.VehiclePosition, at: float
    ) -> list[Statement]:
        if record.tags is None:
            return []  # no reader item in this record
        if state.reader_since is None:
            state.reader_since = at
        own = self.fleet.tagged_cylinders.get(plate, {})
        foreign: dict[str, str] = {}
        for tag in record.tags:
            code, owner = self.fleet.tag_owner(tag)
            if code is not None and owner == plate:
                state.tags_seen[code] = at
            else:
                foreign[tag] = f"{code} ({owner or '无车辆'})" if code else "未登记"
        unseen_limit = self.rules.cylinder_unseen_days * 86400
        unseen = sorted(code for code in own if record.tags and at - state.tags_seen.get(code, state.reader_since) >= unseen_limit)
        if foreign or unseen:
            return self.book.raise_alarm(subject, "cylinder_mismatch", _dt(at),
                                         detail={"foreign_tags": foreign, "unseen_cylinders": unseen})  # fmt: skip
        if self.book.active(subject, "cylinder_mismatch") is not None:
            return self.book.clear_alarm(subject, "cylinder_mismatch", _dt(at))
        return []

    # --- waiting on the platform clock ----------------------------------------------------------------

    def offline(self, plate: str, now: float) -> list[Statement]:
        """Raise ``offline`` for a vehicle silent for ``vehicle_offline_h``. (Asked every tick of every
        vehicle: what is cheapest to tell comes first.)"""
        state = self.states.get(plate)
        limit = self.rules.vehicle_offline_h * 3600
        if state is None or not state.last_frame or now - state.last_frame < limit:
            return []
        subject = Subject(plate=plate)
        if self.book.active(subject, "offline") is not None:
            return []
        state.offline_until = state.newest + limit if state.newest else None
        return self.book.raise_alarm(subject, "offline", _dt(state.last_frame + limit), since=_dt(state.last_frame),
                                     detail={"offline_after_h": self.rules.vehicle_offline_h})  # fmt: skip

    def records_arrived(self, plate: str, received_at: float, first_record_at: float) -> list[Statement]:
        """A message of records ends a silence at the device time of its first record; when that record is
        dated inside the wait on the terminal's own clock (buffered while the network was down), the same
        records sent live would have raised nothing, so the alarm is undone, as a lift's is."""
        state = self.state(plate)
        state.last_frame = max(state.last_frame, received_at)
        offline_until, state.offline_until = state.offline_until, None
        subject = Subject(plate=plate)
        if self.book.active(subject, "offline") is None:
            return []
        undone = offline_until is not None and first_record_at < offline_until
        detail = {"ended_by": "record_in_window"} if undone else None
        return self.book.clear_alarm(subject, "offline", _dt(first_record_at), detail=detail, undone=undone)

    def fill_checked(self, plate: str, pending: PendingFill, recorded: bool) -> list[Statement]:
        """The station's FILL_RESULT was found (or its window passed without one)."""
        state = self.state(plate)
        state.pending = [item for item in state.pending if item is not pending]
        if recorded:
            return []
        detail = {"station_code": pending.station_code, "rise_mpa": pending.rise_mpa,
                  "fill_at": _dt(pending.at).isoformat(), "latitude": pending.latitude,
                  "longitude": pending.longitude, "window_min": self.rules.fill_window_min}  # fmt: skip
        at = _dt(pending.at + self.rules.fill_window_min * 60)
        return self.book.record_alarm(Subject(plate=plate), "unrecorded_fill", at, detail=detail)
