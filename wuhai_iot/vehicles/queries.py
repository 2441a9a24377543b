"""Reading vehicles for the pages and the JSON API: current position and telemetry, track points, the
vehicles list with its filters. Every query reads a bounded number of rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

TRACK_LIMIT = 2000
"""Most track points one answer holds (a day of 30-s reports while driving is about 1,500)."""
LIST_LIMIT = 100
OFFLINE_AFTER_S = 24 * 3600


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class TrackPoint:
    at: str
    latitude: float
    longitude: float
    speed_kmh: float
    course: int
    acc_on: bool
    alarm_flags: int
    pressure_mpa: float | None
    gas_lel_pct: float | None


async def position(conn: aiosqlite.Connection, plate: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The vehicle's current position (its newest record by device time) and its cylinder telemetry."""
    rows = await conn.execute_fetchall("SELECT * FROM vehicle_state WHERE plate = ?", (plate,))
    if not rows:
        return None
    row = rows[0]
    where = {
        "at": _iso(row["at"]), "received_at": _iso(row["received_at"]), "latitude": row["latitude"],
        "longitude": row["longitude"], "speed_kmh": row["speed_kmh"], "course": row["course"],
        "acc_on": bool(row["acc_on"]), "fixed": bool(row["fixed"]), "odometer_km": row["odometer_km"],
        "terminal_id": row["terminal_id"],
    }  # fmt: skip
    telemetry = {
        "at": _iso(row["at"]), "pressure_mpa": row["pressure_mpa"], "pressure_fault": bool(row["pressure_fault"]),
        "gas_lel_pct": row["gas_lel_pct"], "gas_fault": bool(row["gas_fault"]), "alarm_flags": row["alarm_flags"],
        "tags": json.loads(row["tags"]) if row["tags"] else None,
    }  # fmt: skip
    return where, telemetry


async def track(
    conn: aiosqlite.Connection, plate: str, start: datetime, end: datetime, limit: int = TRACK_LIMIT
) -> tuple[list[TrackPoint], str | None]:
    """Track points with ``start <= at < end`` in time order, at most ``limit``; and where the next page
    starts (an ISO time to pass as ``from``) when there are more."""
    rows = await conn.execute_fetchall(
        "SELECT at, latitude, longitude, speed_kmh, course, status, alarm_flags, pressure_mpa, gas_lel_pct"
        " FROM vehicle_track WHERE plate = ? AND at >= ? AND at < ? ORDER BY at LIMIT ?",
        (plate, start.timestamp(), end.timestamp(), limit + 1),
    )
    points = [
        TrackPoint(_iso(row[0]) or "", row[1], row[2], row[3], row[4], bool(row[5] & 1), row[6], row[7], row[8])
        for row in rows[:limit]
    ]
    return points, (_iso(rows[limit][0]) if len(rows) > limit else None)


async def licensed_stations(conn: aiosqlite.Connection, medium: str) -> list[dict[str, Any]]:
    """Active stations with coordinates licensed for ``medium`` (drawn on a vehicle's track)."""
    rows = await conn.execute_fetchall(
        "SELECT station_code, name, latitude, longitude FROM stations WHERE latitude IS NOT NULL"
        " AND status = 'active' AND licence_expiry >= date('now', '+8 hours') AND ('|' || media || '|') LIKE ?",
        (f"%|{medium}|%",),
    )
    return [dict(row) for row in rows]


async def list_vehicles(
    conn: aiosqlite.Connection,
    *,
    district_code: str | None = None,
    alarm: bool = False,
    offline: bool = False,
    certificate_invalid: bool = False,
    after: str = "",
    now: datetime | None = None,
    limit: int = LIST_LIMIT,
) -> list[dict[str, Any]]:
    """Vehicles in plate order after ``after`` (keyset), with their position time, open alarms and
    certificate; narrowed by district and by the filters."""
    now_s = (now or datetime.now(UTC)).timestamp()
    where, params = ["v.plate > ?"], [after]
    if district_code is not None:
        where.append("v.district_code = ?")
        params.append(district_code)
    if certificate_invalid:
        where.append("(coalesce(v.certificate_no, '') = '' OR v.certificate_status = 'revoked')")
    if offline:
        where.append("(s.received_at IS NULL OR s.received_at < ?)")
        params.append(now_s - OFFLINE_AFTER_S)
    if alarm:
        where.append("EXISTS (SELECT 1 FROM alarms a WHERE a.plate = v.plate AND a.status != 'resolved')")
    rows = await conn.execute_fetchall(
        "SELECT v.plate, v.district_code, v.owner, v.use, v.fuel, v.certificate_no, v.certificate_status,"
        " s.at, s.received_at, s.latitude, s.longitude, s.speed_kmh, s.pressure_mpa, s.gas_lel_pct,"
        " (SELECT count(*) FROM alarms a WHERE a.plate = v.plate AND a.status != 'resolved') AS open_alarms,"
        " (SELECT count(*) FROM terminals t WHERE t.plate = v.plate) AS terminals"
        f" FROM vehicles v LEFT JOIN vehicle_state s ON s.plate = v.plate WHERE {' AND '.join(where)}"
        " ORDER BY v.plate LIMIT ?",
        (*params, limit),
    )
    vehicles = []
    for row in rows:
        item = dict(row)
        item["certificate_valid"] = bool(row["certificate_no"]) and row["certificate_status"] != "revoked"
        item["online"] = row["received_at"] is not None and row["received_at"] >= now_s - OFFLINE_AFTER_S
        item["at"], item["received_at"] = _iso(row["at"]), _iso(row["received_at"])
        vehicles.append(item)
    return vehicles
