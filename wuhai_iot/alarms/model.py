"""What an alarm is: its subject, its handling statuses and the row it is stored as (its kinds: ``kinds``)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from wuhai_iot.clock import utc

STATUSES = ("raised", "acknowledged", "resolved")


class AlarmError(Exception):
    """A staff action on an alarm cannot be done."""


class AlarmNotFound(AlarmError, LookupError):
    """No such alarm, or it is outside the caller's filters (the API answers 404)."""


class AlarmAlreadyResolved(AlarmError):
    """The alarm is resolved: it can be neither acknowledged nor resolved again (the API answers 409)."""


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alarm is about: a lift, or a cylinder (at a station), or a station, or a vehicle, or a part of
    the platform itself."""

    device_code: str | None = None
    cylinder_code: str | None = None
    station_code: int | None = None
    plate: str | None = None
    """A vehicle (its alarms: domain.md, Vehicles)."""
    system: str | None = None
    """A part of the platform (``disk``: alarms/system.py); such an alarm has no district."""
    key: str = field(init=False, repr=False, compare=False)
    """``lift:…``, ``vehicle:…``, ``cylinder:…``, ``station:…`` or ``system:…``; computed once (a lift's is
    looked up per sample)."""

    def __post_init__(self) -> None:
        if self.device_code:
            key = f"lift:{self.device_code}"
        elif self.plate:
            key = f"vehicle:{self.plate}"
        elif self.cylinder_code:
            key = f"cylinder:{self.cylinder_code}"
        elif self.station_code is not None:
            key = f"station:{self.station_code}"
        elif self.system:
            key = f"system:{self.system}"
        else:
            raise ValueError("an alarm subject needs a device, cylinder or station code, a plate or a system")
        object.__setattr__(self, "key", key)



@dataclass(slots=True)
class Alarm:
    """One alarm. Times are timezone-aware UTC."""

    id: int
    kind: str
    severity: str
    device_code: str | None
    cylinder_code: str | None
    station_code: int | None
    vendor_code: str | None
    sources: set[str]
    active_sources: set[str]
    condition: str
    since: datetime
    raised_at: datetime
    updated_at: datetime
    created_at: datetime
    cleared_at: datetime | None = None
    cleared_by: str | None = None
    repeats: int = 1
    episodes: int = 1
    flapping: bool = False
    merged_into: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    status: str = "raised"
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    acknowledge_note: str | None = None
    resolved_by: str | None = None
    resolved_at: datetime | None = None
    resolve_note: str | None = None
    district_code: str | None = None
    """Filled by queries (the lift's or the station's district)."""
    plate: str | None = None
    """The vehicle of a vehicle alarm."""
    system: str | None = None
    """The part of the platform an alarm of the platform's own is about (``disk``)."""

    @property
    def subject(self) -> Subject:
        return Subject(self.device_code, self.cylinder_code, self.station_code, self.plate, self.system)

    @property
    def open(self) -> bool:
        return self.status != "resolved"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times ISO-8601 UTC with Z) for notifiers and the JSON API."""
        record: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, set):
                value = sorted(value)
            record[f.name] = value
        return record

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Alarm:
        data = dict(zip(row.keys(), row))  # row["name"] looks each of ~28 columns up by name: one zip is cheaper
        return cls(
            id=data["id"],
            kind=data["kind"],
            severity=data["severity"],
            device_code=data["device_code"],
            cylinder_code=data["cylinder_code"],
            station_code=data["station_code"],
            vendor_code=data["vendor_code"],
            sources=set(filter(None, data["sources"].split(","))),
            active_sources=set(filter(None, data["active_sources"].split(","))),
            condition=data["condition"],
            since=utc(data["since"]),  # type: ignore[arg-type]
            raised_at=utc(data["raised_at"]),  # type: ignore[arg-type]
            updated_at=utc(data["updated_at"]),  # type: ignore[arg-type]
            created_at=utc(data["created_at"]),  # type: ignore[arg-type]
            cleared_at=utc(data["cleared_at"]),
            cleared_by=data["cleared_by"],
            repeats=data["repeats"],
            episodes=data["episodes"],
            flapping=bool(data["flapping"]),
            merged_into=data["merged_into"],
            detail=json.loads(data["detail"]),
            status=data["status"],
            acknowledged_by=data["acknowledged_by"],
            acknowledged_at=utc(data["acknowledged_at"]),
            acknowledge_note=data["acknowledge_note"],
            resolved_by=data["resolved_by"],
            resolved_at=utc(data["resolved_at"]),
            resolve_note=data["resolve_note"],
            district_code=data.get("district_code"),
            plate=data.get("plate"),
            system=data.get("system"),
        )


