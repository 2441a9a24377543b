"""Traceability queries (the web pages and the JSON API): a cylinder by code or tag, a filling station,
a vehicle by plate (typed with or without its middle dot).

Every function takes an aiosqlite connection and the scope keywords of the caller's role:
``district_code`` (a cylinder counts in the district of its vehicle (vehicle cylinders) or of its owner
station) and ``station_code`` (a station's staff see the cylinders it owns or has been asked to fill,
and only their own station's decisions, fills and alarms). A detail query returns None when the object
does not exist or is outside the scope. Times are timezone-aware UTC.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiosqlite

from wuhai_iot.alarms.model import Alarm
from wuhai_iot.alarms.queries import list_alarms
from wuhai_iot.clock import cst_midnight, cst_today, utc
from wuhai_iot.filling.decision import tag_status

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

CONDITIONS = {0: "in_service", 1: "past_design_life", 2: "blacklisted", 3: "inspection_overdue"}
HISTORY_LIMIT = 500
RECENT_DECISIONS = 50
TAG_UID = re.compile(r"[0-9A-Fa-f]{8,32}")
"""What a typed tag UID looks like (hex, any case)."""
CYLINDER_DISTRICT = (
    "coalesce((SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),"
    " (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station))"
)
"""SQL: the district a cylinder ``c`` counts in: its vehicle's, else its owner station's (domain.md)."""



def cylinder_condition(row: aiosqlite.Row | dict[str, Any], today: date) -> str:
    """in_service, blacklisted, scrapped, past_design_life or inspection_overdue (the first that applies)."""
    if row["status"] in ("blacklisted", "scrapped"):
        return str(row["status"])
    return CONDITIONS[tag_status(row, today)]


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    id: int
    decided_at: datetime
    station_code: int
    station_name: str | None
    scale: int
    request_seq: int
    tag: str
    cylinder_code: str | None
    operator_card: int
    operator_name: str | None
    medium: str
    gross_before_g: int
    permit: bool
    reason: int
    net_limit_g: int
    message: str


@dataclass(frozen=True, slots=True)
class FillRecord:
    id: int
    ended_at: datetime
    received_at: datetime
    station_code: int
    station_name: str | None
    scale: int
    request_seq: int
    tag: str
    cylinder_code: str | None
    operator_card: int | None
    operator_name: str | None
    gross_before_g: int
    gross_after_g: int
    duration_s: int
    outcome: int
    permitted: bool
    decision_id: int | None

    @property
    def added_g(self) -> int:
        return self.gross_after_g - self.gross_before_g


_DECISIONS = (
    "SELECT d.*, s.name AS station_name, w.name AS operator_name FROM fill_decisions d"
    " LEFT JOIN stations s ON s.station_code = d.station_code LEFT JOIN workers w ON w.card = d.operator_card"
)
_FILLS = (
    "SELECT f.*, s.name AS station_name, w.name AS operator_name FROM fills f"
    " LEFT JOIN stations s ON s.station_code = f.station_code LEFT JOIN workers w ON w.card = f.operator_card"
)


def _decision(row: aiosqlite.Row) -> DecisionRecord:
    return DecisionRecord(
        id=row["id"], decided_at=utc(row["decided_at"]), station_code=row["station_code"],  # type: ignore[arg-type]
        station_name=row["station_name"], scale=row["scale"], request_seq=row["request_seq"], tag=row["tag"],
        cylinder_code=row["cylinder_code"], operator_card=row["operator_card"], operator_name=row["operator_name"],
        medium=row["medium"], gross_before_g=row["gross_before_g"], permit=bool(row["permit"]), reason=row["reason"],
        net_limit_g=row["net_limit_g"], message=row["message"],
    )  # fmt: skip


def _fill(row: aiosqlite.Row) -> FillRecord:
    return FillRecord(
        id=row["id"], ended_at=utc(row["ended_at"]), received_at=utc(row["received_at"]),  # type: ignore[arg-type]
        station_code=row["station_code"], station_name=row["station_name"], scale=row["scale"],
        request_seq=row["request_seq"], tag=row["tag"], cylinder_code=row["cylinder_code"],
        operator_card=row["operator_card"], operator_name=row["operator_name"], gross_before_g=row["gross_before_g"],
        gross_after_g=row["gross_after_g"], duration_s=row["duration_s"], outcome=row["outcome"],
        permitted=bool(row["permitted"]), decision_id=row["decision_id"],
    )  # fmt: skip


def _station_clause(alias: str, station_code: int | None) -> tuple[str, list[Any]]:
    return ("", []) if station_code is None else (f" AND {alias}.station_code = ?", [station_code])


# -- cylinder ------------------------------------------------------------------------------------------


@dataclass
class CylinderTrace:
    cylinder: dict[str, Any]
    """The registry row (cylinders columns)."""
    district_code: str | None
    condition: str
    """in_service, blacklisted, scrapped, past_design_life or inspection_overdue."""
    owner_station_name: str | None
    vehicle: dict[str, Any] | None
    last_completed_fill_at: datetime | None
    decisions: list[DecisionRecord] = field(default_factory=list)
    """Newest first."""
    fills: list[FillRecord] = field(default_factory=list)
    """Newest first."""
    alarms: list[Alarm] = field(default_factory=list)
    """Newest first."""


_CYLINDER = (
    f"SELECT c.*, {CYLINDER_DISTRICT} AS district_code, o.name AS owner_station_name"
    " FROM cylinders c LEFT JOIN stations o ON o.station_code = c.owner_station"
)


async def cylinder_trace(
    conn: aiosqlite.Connection,
    *,
    code: str | None = None,
    tag: str | None = None,
    district_code: str | None = None,
    station_code: int | None = None,
    limit: int = HISTORY_LIMIT,
) -> CylinderTrace | None:
    """A cylinder by its code or its tag (upper-case hex), with its whole history."""
    if (code is None) == (tag is None):
        raise ValueError("give either a cylinder code or a tag")
    where, params = ("c.cylinder_code = ?", [code]) if code is not None else ("c.tag_uid = ?", [tag.upper()])  # type: ignore[union-attr]
    if district_code is not None:
        where += f" AND {CYLINDER_DISTRICT} = ?"
        params.append(district_code)
    if station_code is not None:
        where += (" AND (c.owner_station = ? OR EXISTS (SELECT 1 FROM fill_decisions d"
                  " WHERE d.cylinder_code = c.cylinder_code AND d.station_code = ?))")  # fmt: skip
        params += [station_code, station_code]
    rows = await conn.execute_fetchall(f"{_CYLINDER} WHERE {where}", params)
    if not rows:
        return None
    row = rows[0]
    cylinder_code = row["cylinder_code"]
    registry = {key: row[key] for key in row.keys() if key not in ("district_code", "owner_station_name")}
    vehicle = None
    if row["vehicle_plate"]:
        found = await conn.execute_fetchall("SELECT * FROM vehicles WHERE plate = ?", (row["vehicle_plate"],))
        vehicle = dict(found[0]) if found else None
    scope, scope_params = _station_clause("d", station_code)
    decisions = await conn.execute_fetchall(
        f"{_DECISIONS} WHERE d.cylinder_code = ?{scope} ORDER BY d.decided_at DESC, d.id DESC LIMIT ?",
        [cylinder_code, *scope_params, limit],
    )
    scope, scope_params = _station_clause("f", station_code)
    fills = await conn.execute_fetchall(
        f"{_FILLS} WHERE f.cylinder_code = ?{scope} ORDER BY f.ended_at DESC, f.id DESC LIMIT ?",
        [cylinder_code, *scope_params, limit],
    )
    last = await conn.execute_fetchall(
        "SELECT max(ended_at) FROM fills WHERE cylinder_code = ? AND outcome = 0", (cylinder_code,)
    )
    return CylinderTrace(
        cylinder=registry,
        district_code=row["district_code"],
        condition=cylinder_condition(row, cst_today()),
        owner_station_name=row["owner_station_name"],
        vehicle=vehicle,
        last_completed_fill_at=utc(last[0][0]),
        decisions=[_decision(r) for r in decisions],
        fills=[_fill(r) for r in fills],
        alarms=await list_alarms(conn, cylinder_code=cylinder_code, station_code=station_code, limit=limit),
    )


async def find_cylinder(
    conn: aiosqlite.Connection, text: str, *, district_code: str | None = None, station_code: int | None = None
) -> CylinderTrace | None:
    """A cylinder by its code as typed, else by its tag UID (hex, any case)."""
    key = text.strip()
    found = await cylinder_trace(conn, code=key, district_code=district_code, station_code=station_code)
    if found is None and TAG_UID.fullmatch(key):
        found = await cylinder_trace(conn, tag=key, district_code=district_code, station_code=station_code)
    return found


# -- station -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScaleState:
    terminal_id: str
    scale: int
    online: bool
    connected_at: datetime | None
    last_frame_at: datetime | None


@dataclass(frozen=True, slots=True)
class FillDay:
    day: date
    """CST calendar date."""
    fills: int
    completed: int
    net_g: int
    """Gas put in by completed fills."""


@dataclass
class StationTrace:
    station: dict[str, Any]
    since: datetime
    """Start of the window of the figures below (CST midnight ``days`` ago)."""
    scales: list[ScaleState]
    fills_per_day: list[FillDay]
    """Oldest first, days without a fill left out."""
    permits: int
    denials_by_reason: dict[int, int]
    decisions: list[DecisionRecord]
    """The latest decisions (whatever the window), newest first."""


def online_scales(platform: Platform) -> set[str]:
    """Terminal ids of the GF-3 controllers connected to this process right now."""
    listener = platform.listeners.get("gasfill")
    return set(listener.by_terminal) if listener is not None else set()


async def station_trace(
    conn: aiosqlite.Connection,
    code: int,
    *,
    days: int = 30,
    online_terminals: Collection[str] | None = None,
    district_code: str | None = None,
    station_code: int | None = None,
) -> StationTrace | None:
    """A station: registry row, its scales (online from ``online_terminals`` — the live listener's, see
    ``online_scales`` — or else the recorded sessions), fills per day and decisions by reason over ``days``."""
    if station_code is not None and station_code != code:
        return None
    rows = await conn.execute_fetchall("SELECT * FROM stations WHERE station_code = ?", (code,))
    if not rows or (district_code is not None and rows[0]["district_code"] != district_code):
        return None
    start_day = cst_today() - timedelta(days=days - 1)
    since = cst_midnight(start_day)
    scales = await conn.execute_fetchall(
        "SELECT t.terminal_id, t.scale, s.online, s.connected_at, s.last_frame_at FROM terminals t"
        " LEFT JOIN terminal_sessions s ON s.protocol = t.protocol AND s.terminal_id = t.terminal_id"
        " WHERE t.protocol = 'gasfill' AND t.station_code = ? ORDER BY t.scale",
        (code,),
    )
    # Per day from the station's daily running figures (migration 0036): a row a day whatever its fills.
    per_day = await conn.execute_fetchall(
        "SELECT day, fills, completed, net_g FROM station_daily_fills WHERE station_code = ? AND day >= ?"
        " ORDER BY day",
        (code, start_day.isoformat()),
    )
    by_reason = await conn.execute_fetchall(
        "SELECT permit, reason, sum(decisions) FROM station_daily_decisions WHERE station_code = ? AND day >= ?"
        " GROUP BY permit, reason ORDER BY permit, reason",
        (code, start_day.isoformat()),
    )
    decisions = await conn.execute_fetchall(
        f"{_DECISIONS} WHERE d.station_code = ? ORDER BY d.decided_at DESC, d.id DESC LIMIT ?", (code, RECENT_DECISIONS)
    )
    return StationTrace(
        station=dict(rows[0]),
        since=since,
        scales=[
            ScaleState(
                terminal_id=row["terminal_id"],
                scale=row["scale"],
                online=(row["terminal_id"] in online_terminals) if online_terminals is not None else bool(row["online"]),
                connected_at=utc(row["connected_at"]),
                last_frame_at=utc(row["last_frame_at"]),
            )
            for row in scales
        ],
        fills_per_day=[FillDay(date.fromisoformat(row[0]), row[1], row[2], row[3]) for row in per_day],
        permits=sum(n for permit, _, n in by_reason if permit),
        denials_by_reason={reason: n for permit, reason, n in by_reason if not permit},
        decisions=[_decision(row) for row in decisions],
    )


# -- vehicle -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VehicleCylinder:
    cylinder_code: str
    tag_uid: str | None
    kind: str
    medium: str
    last_inspection: date | None
    next_inspection: date
    condition: str


@dataclass
class VehicleTrace:
    vehicle: dict[str, Any]
    """The registry row (vehicles columns)."""
    certificate_valid: bool
    """A cylinder registration certificate is on record and not revoked."""
    cylinders: list[VehicleCylinder]
    fills: list[FillRecord]
    """Fills of its cylinders, newest first."""


def normalise_plate(plate: str) -> str:
    """Plates are typed with or without the middle dot and spaces: compare without them, upper-case."""
    return "".join(ch for ch in plate.upper() if ch not in "·.• -")


async def registered_plate(conn: aiosqlite.Connection, typed: str) -> str | None:
    """The plate as registered for one typed with or without the dot, spaces or lower case."""
    rows = await conn.execute_fetchall(
        "SELECT plate FROM vehicles WHERE replace(replace(replace(replace(upper(plate), '·', ''), '.', ''), ' ', ''),"
        " '-', '') = ?",
        (normalise_plate(typed),),
    )
    return rows[0]["plate"] if rows else None


async def vehicle_trace(
    conn: aiosqlite.Connection,
    plate: str,
    *,
    district_code: str | None = None,
    station_code: int | None = None,
    limit: int = HISTORY_LIMIT,
) -> VehicleTrace | None:
    """A vehicle by plate (as typed: see ``registered_plate``): certificate, its cylinders and their
    inspection dates, its fills."""
    found = await registered_plate(conn, plate)
    if found is None:
        return None
    plate = found
    rows = await conn.execute_fetchall("SELECT * FROM vehicles WHERE plate = ?", (plate,))
    if not rows or (district_code is not None and rows[0]["district_code"] != district_code):
        return None
    vehicle = dict(rows[0])
    if station_code is not None:
        asked = await conn.execute_fetchall(
            "SELECT 1 FROM cylinders c JOIN fill_decisions d ON d.cylinder_code = c.cylinder_code"
            " WHERE c.vehicle_plate = ? AND d.station_code = ? LIMIT 1",
            (plate, station_code),
        )
        if not asked:
            return None
    cylinders = await conn.execute_fetchall(
        "SELECT * FROM cylinders WHERE vehicle_plate = ? ORDER BY cylinder_code", (plate,)
    )
    today = cst_today()
    scope, scope_params = _station_clause("f", station_code)
    fills = await conn.execute_fetchall(
        f"{_FILLS} JOIN cylinders c ON c.cylinder_code = f.cylinder_code WHERE c.vehicle_plate = ?{scope}"
        " ORDER BY f.ended_at DESC, f.id DESC LIMIT ?",
        [plate, *scope_params, limit],
    )
    return VehicleTrace(
        vehicle=vehicle,
        certificate_valid=bool(vehicle["certificate_no"]) and vehicle["certificate_status"] != "revoked",
        cylinders=[
            VehicleCylinder(
                cylinder_code=row["cylinder_code"],
                tag_uid=row["tag_uid"],
                kind=row["kind"],
                medium=row["medium"],
                last_inspection=date.fromisoformat(row["last_inspection"]) if row["last_inspection"] else None,
                next_inspection=date.fromisoformat(row["next_inspection"]),
                condition=cylinder_condition(row, today),
            )
            for row in cylinders
        ],
        fills=[_fill(row) for row in fills],
    )
