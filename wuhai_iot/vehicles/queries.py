"""Reading vehicles for the pages and the JSON API: current position and telemetry, track points, the
vehicles list with its filters and its total. Every query reads a bounded number of rows (but for the list's
``offline`` filter: see ``_matching``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from wuhai_iot.storage import db, figures

TRACK_LIMIT = 2000
"""Most track points one answer holds (a day of 30-s reports while driving is about 1,500)."""
LIST_LIMIT = 50
"""Vehicles a page of the list shows (as the station, rescue and visit lists and the API's default)."""
OFFLINE_AFTER_S = 24 * 3600
STATION_NEAR_DEG = 0.025
"""How far (degrees) from a track's box the stations drawn beside it may be (charts.track_map: 0.005 + 0.02)."""
TOTAL_CAP = 1000
"""A filtered list's total is counted up to here ("1000+"), as the lift list's."""


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


async def licensed_stations(conn: aiosqlite.Connection, medium: str, points: Sequence[TrackPoint]
                            ) -> list[dict[str, Any]]:  # fmt: skip
    """Active stations with coordinates licensed for ``medium`` within ``STATION_NEAR_DEG`` of the box around
    ``points`` (those ``charts.track_map`` draws beside a vehicle's track), read on the stations' latitude
    index: a band of the map, not every station of the region."""
    if not points:
        return []
    latitudes, longitudes = [p.latitude for p in points], [p.longitude for p in points]
    rows = await conn.execute_fetchall(
        "SELECT station_code, name, latitude, longitude FROM stations WHERE latitude BETWEEN ? AND ?"
        " AND longitude BETWEEN ? AND ? AND status = 'active' AND licence_expiry >= date('now', '+8 hours')"
        " AND ('|' || media || '|') LIKE ?",
        (min(latitudes) - STATION_NEAR_DEG, max(latitudes) + STATION_NEAR_DEG, min(longitudes) - STATION_NEAR_DEG,
         max(longitudes) + STATION_NEAR_DEG, f"%|{medium}|%"),
    )  # fmt: skip
    return [dict(row) for row in rows]


def _matching(
    params: list[Any], *, district_code: str | None, alarm: bool, offline: bool, certificate_invalid: bool, after: str,
    now_s: float,
) -> tuple[str, str]:  # fmt: skip
    """FROM … WHERE of the vehicles the list shows after ``after``, and the plate that orders them. Each filter
    is read on an index of what it matches (migration 0038): with ``alarm``, the plates of the open vehicle
    alarms lead; a district's vehicles and those without a valid certificate have an index in plate order
    each. Only ``offline`` (silent for a day: a time, no index) walks the vehicles in scope in plate order."""
    if alarm:  # (one row per plate: grouped in the index's order, no sort)
        source, where = "alarms o CROSS JOIN vehicles v ON v.plate = o.plate", [
            "o.plate IS NOT NULL", "o.status != 'resolved'", "o.plate > ?"]  # fmt: skip
    else:
        source, where = "vehicles v", ["v.plate > ?"]
    params.append(after)
    if district_code is not None:
        where.append("v.district_code = ?")
        params.append(district_code)
    if certificate_invalid:
        where.append("(coalesce(v.certificate_no, '') = '' OR v.certificate_status = 'revoked')")
    if offline:
        where.append("(s.received_at IS NULL OR s.received_at < ?)")
        params.append(now_s - OFFLINE_AFTER_S)
    clauses = f" FROM {source} LEFT JOIN vehicle_state s ON s.plate = v.plate WHERE {' AND '.join(where)}"
    return (clauses + " GROUP BY o.plate", "o.plate") if alarm else (clauses, "v.plate")


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
    params: list[Any] = []
    matching, order = _matching(params, district_code=district_code, alarm=alarm, offline=offline,
                                certificate_invalid=certificate_invalid, after=after, now_s=now_s)  # fmt: skip
    rows = await conn.execute_fetchall(
        "SELECT v.plate, v.district_code, v.owner, v.use, v.fuel, v.certificate_no, v.certificate_status,"
        " s.at, s.received_at, s.latitude, s.longitude, s.speed_kmh, s.pressure_mpa, s.gas_lel_pct,"
        " (SELECT count(*) FROM alarms a WHERE a.plate = v.plate AND a.status != 'resolved') AS open_alarms,"
        f" (SELECT count(*) FROM terminals t WHERE t.plate = v.plate) AS terminals{matching}"
        f" ORDER BY {order} LIMIT ?",
        (*params, limit),
    )
    vehicles = db.as_dicts(rows)  # type: ignore[arg-type]
    for item in vehicles:
        item["certificate_valid"] = bool(item["certificate_no"]) and item["certificate_status"] != "revoked"
        item["online"] = item["received_at"] is not None and item["received_at"] >= now_s - OFFLINE_AFTER_S
        item["at"], item["received_at"] = _iso(item["at"]), _iso(item["received_at"])
    return vehicles


async def total_vehicles(
    conn: aiosqlite.Connection,
    *,
    district_code: str | None = None,
    alarm: bool = False,
    offline: bool = False,
    certificate_invalid: bool = False,
    now: datetime | None = None,
    cap: int = TOTAL_CAP,
) -> tuple[int, bool]:
    """How many vehicles ``list_vehicles`` lists with these filters, and whether there are more than that: the
    running figure of the district or the city without a filter or with ``certificate_invalid`` alone
    (migration 0040), else the matching vehicles counted up to ``cap`` (as the lift list's total,
    ``elevators.queries.total_lifts``)."""
    if not (alarm or offline):
        figure = "vehicles_no_certificate" if certificate_invalid else "vehicles"
        counted = await figures.plain_counts(conn, [figure], district_code=district_code)
        return sum(values.get(figure, 0) for values in counted.values()), False
    params: list[Any] = []
    matching, _ = _matching(params, district_code=district_code, alarm=alarm, offline=offline,
                            certificate_invalid=certificate_invalid, after="",
                         now_s=(now or datetime.now(UTC)).timestamp())  # fmt: skip
    rows = await conn.execute_fetchall(f"SELECT count(*) FROM (SELECT 1{matching} LIMIT {int(cap) + 1})", params)
    found = int(rows[0][0])
    return min(found, cap), found > cap
