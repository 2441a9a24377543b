"""Read queries the pages need that no subsystem offers (yet): lifts with their state, rescues, visits,
inspections, stations, cylinder and vehicle trace, rollout coverage and monthly figures.

Shaped like the other internal query APIs: async functions taking an aiosqlite connection and the scope
filters (``district_code``, ``maintenance_company``, ``station_code``); a detail query returns None
for an object that does not exist or lies outside the filters. Rows are dicts whose times are aware
UTC datetimes. Candidates to move next to their subsystem (monitoring, filling) later.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot import rescue
from wuhai_iot.districts import DISTRICTS
from wuhai_iot.maintenance import cst_today

TIME_COLUMNS = frozenset({
    "at", "state_at", "last_frame_at", "last_visit_at", "connected_at", "raised_at", "arrived_at", "released_at",
    "started_at", "ended_at", "decided_at", "received_at",
})  # fmt: skip
DAY_S = 86400


def _dict(row: aiosqlite.Row) -> dict[str, Any]:
    record = dict(row)
    for key in TIME_COLUMNS.intersection(record):
        if record[key] is not None:
            record[key] = datetime.fromtimestamp(record[key], UTC)
    return record


def day_bounds_utc(day: date) -> tuple[float, float]:
    """Unix seconds of the start and end of a China Standard Time calendar day."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def _lift_scope(where: list[str], params: list[Any], district_code: str | None, maintenance_company: str | None) -> None:
    if district_code is not None:
        where.append("e.district_code = ?")
        params.append(district_code)
    if maintenance_company is not None:
        where.append("e.maintenance_company = ?")
        params.append(maintenance_company)


# --- lifts ---------------------------------------------------------------------------------------------

_LIFTS = """
SELECT e.*, st.floor, st.direction, st.door, st.running, st.occupied, st.door_zone, st.speed_mps, st.load_pct,
       st.power, st.at AS state_at,
       (SELECT count(*) FROM terminals t WHERE t.device_code = e.device_code) AS terminals,
       (SELECT max(ts.online) FROM terminals t JOIN terminal_sessions ts
          ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code) AS online,
       (SELECT max(ts.last_frame_at) FROM terminals t JOIN terminal_sessions ts
          ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code)
          AS last_frame_at,
       (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
          AND a.merged_into IS NULL) AS open_alarms,
       (SELECT min(CASE a.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END) FROM alarms a
          WHERE a.device_code = e.device_code AND a.status != 'resolved' AND a.merged_into IS NULL) AS worst,
       (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.kind = 'trapped'
          AND a.status != 'resolved' AND a.merged_into IS NULL) AS trapped,
       (SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = e.device_code
          AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL) AS last_visit_at
FROM elevators e LEFT JOIN elevator_state st ON st.device_code = e.device_code
"""
WORST = {0: "critical", 1: "major", 2: "minor"}


def _lift(row: aiosqlite.Row, now: datetime, interval_days: int, due_days: int) -> dict[str, Any]:
    lift = _dict(row)
    lift["online"] = bool(lift["online"])
    lift["worst"] = WORST.get(lift["worst"])
    today = cst_today(now)
    last_visit = lift["last_visit_at"]
    # As maintenance.maintenance_overdue: CST calendar days since the last completed visit.
    lift["maintenance_overdue"] = last_visit is None or (today - cst_today(last_visit)).days > interval_days
    next_inspection = date.fromisoformat(lift["next_inspection"])
    lift["inspection_overdue"] = next_inspection < today
    lift["inspection_due_soon"] = today <= next_inspection <= today + timedelta(days=due_days)
    return lift


async def list_lifts(
    conn: aiosqlite.Connection,
    *,
    now: datetime,
    maintenance_interval_days: int,
    inspection_due_days: int,
    online: bool | None = None,
    with_alarm: bool | None = None,
    overdue: bool | None = None,
    search: str | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[dict[str, Any]]:
    """Lifts with their latest state, online flag, open alarms and overdue flags; trapped and alarmed first.

    ``overdue`` means maintenance or inspection overdue. ``search`` matches the device code, registration
    number or address."""
    where, params = ["1"], []
    _lift_scope(where, params, district_code, maintenance_company)
    if search:
        where.append("(e.device_code LIKE ? OR e.registration_no LIKE ? OR e.address LIKE ?)")
        params += [f"%{search}%"] * 3
    rows = await conn.execute_fetchall(f"{_LIFTS} WHERE {' AND '.join(where)} ORDER BY e.device_code", params)
    lifts = [_lift(row, now, maintenance_interval_days, inspection_due_days) for row in rows]
    if online is not None:
        lifts = [lift for lift in lifts if lift["online"] == online]
    if with_alarm is not None:
        lifts = [lift for lift in lifts if bool(lift["open_alarms"]) == with_alarm]
    if overdue is not None:
        lifts = [lift for lift in lifts if (lift["maintenance_overdue"] or lift["inspection_overdue"]) == overdue]
    lifts.sort(key=lambda lift: (-lift["trapped"], list(WORST.values()).index(lift["worst"]) if lift["worst"] else 3))
    return lifts


async def get_lift(
    conn: aiosqlite.Connection,
    device_code: str,
    *,
    now: datetime,
    maintenance_interval_days: int,
    inspection_due_days: int,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> dict[str, Any] | None:
    """One lift as in ``list_lifts`` plus its terminals and their sessions; None outside the filters."""
    where, params = ["e.device_code = ?"], [device_code]
    _lift_scope(where, params, district_code, maintenance_company)
    row = await (await conn.execute(f"{_LIFTS} WHERE {' AND '.join(where)}", params)).fetchone()
    if row is None:
        return None
    lift = _lift(row, now, maintenance_interval_days, inspection_due_days)
    terminals = await conn.execute_fetchall(
        "SELECT t.protocol, t.terminal_id, t.installed_on, ts.online, ts.peer, ts.firmware, ts.report_interval_s,"
        " ts.connected_at, ts.last_frame_at FROM terminals t LEFT JOIN terminal_sessions ts"
        " ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id WHERE t.device_code = ?"
        " ORDER BY t.protocol, t.terminal_id",
        (device_code,),
    )
    lift["terminal_list"] = [_dict(t) for t in terminals]
    return lift


async def lift_state(conn: aiosqlite.Connection, device_code: str) -> dict[str, Any] | None:
    """The newest state of one lift (no scope check: call after ``get_lift``)."""
    row = await (await conn.execute("SELECT * FROM elevator_state WHERE device_code = ?", (device_code,))).fetchone()
    return None if row is None else _dict(row)


# --- stations, cylinders, vehicles -------------------------------------------------------------------


def _station_scope(where: list[str], params: list[Any], district_code: str | None, station_code: int | None) -> None:
    if district_code is not None:
        where.append("s.district_code = ?")
        params.append(district_code)
    if station_code is not None:
        where.append("s.station_code = ?")
        params.append(station_code)


_STATIONS = """
SELECT s.*,
  (SELECT count(*) FROM terminals t WHERE t.protocol = 'gasfill' AND t.station_code = s.station_code) AS scales_installed,
  (SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
     AND ts.terminal_id = t.terminal_id WHERE t.protocol = 'gasfill' AND t.station_code = s.station_code
     AND ts.online = 1) AS scales_online,
  (SELECT count(*) FROM fill_decisions d WHERE d.station_code = s.station_code AND d.decided_at >= ?
     AND d.decided_at < ? AND d.permit = 1) AS permitted,
  (SELECT count(*) FROM fill_decisions d WHERE d.station_code = s.station_code AND d.decided_at >= ?
     AND d.decided_at < ? AND d.permit = 0) AS denied,
  (SELECT count(*) FROM fills f WHERE f.station_code = s.station_code AND f.ended_at >= ? AND f.ended_at < ?)
     AS fills,
  (SELECT count(*) FROM alarms a WHERE a.station_code = s.station_code AND a.status != 'resolved'
     AND a.merged_into IS NULL) AS open_alarms
FROM stations s
"""


async def list_stations(
    conn: aiosqlite.Connection,
    *,
    since: datetime,
    until: datetime,
    district_code: str | None = None,
    station_code: int | None = None,
) -> list[dict[str, Any]]:
    """Stations with scales installed/online and decisions and fills between ``since`` and ``until``."""
    where, params = ["1"], []
    _station_scope(where, params, district_code, station_code)
    window = [since.timestamp(), until.timestamp()] * 3
    rows = await conn.execute_fetchall(f"{_STATIONS} WHERE {' AND '.join(where)} ORDER BY s.station_code",
                                       [*window, *params])  # fmt: skip
    return [dict(row) for row in rows]


async def get_station(
    conn: aiosqlite.Connection,
    code: int,
    *,
    since: datetime,
    until: datetime,
    district_code: str | None = None,
    station_code: int | None = None,
    **_: Any,
) -> dict[str, Any] | None:
    """One station: figures as in ``list_stations``, its scales, denials by reason, recent decisions."""
    if station_code is not None and station_code != code:
        return None
    found = await list_stations(conn, since=since, until=until, district_code=district_code, station_code=code)
    if not found:
        return None
    station = found[0]
    scales = await conn.execute_fetchall(
        "SELECT t.terminal_id, t.scale, t.installed_on, ts.online, ts.last_frame_at, ts.firmware FROM terminals t"
        " LEFT JOIN terminal_sessions ts ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id"
        " WHERE t.protocol = 'gasfill' AND t.station_code = ? ORDER BY t.scale",
        (code,),
    )
    station["scale_list"] = [_dict(row) for row in scales]
    station["denials_by_reason"] = await denials_by_reason(conn, since=since, until=until, station_code=code)
    station["decisions"] = await recent_decisions(conn, station_code=code)
    return station


async def recent_decisions(conn: aiosqlite.Connection, *, station_code: int, limit: int = 50) -> list[dict[str, Any]]:
    """A station's latest fill decisions, newest first."""
    rows = await conn.execute_fetchall(
        "SELECT * FROM fill_decisions WHERE station_code = ? ORDER BY decided_at DESC LIMIT ?", (station_code, limit)
    )
    return [_dict(row) for row in rows]


async def denials_by_reason(
    conn: aiosqlite.Connection,
    *,
    since: datetime,
    until: datetime,
    district_code: str | None = None,
    station_code: int | None = None,
) -> list[tuple[int, int]]:
    """(reason, count) of denied fill requests, most frequent first."""
    where, params = ["d.permit = 0", "d.decided_at >= ?", "d.decided_at < ?"], [since.timestamp(), until.timestamp()]
    _station_scope(where, params, district_code, station_code)
    rows = await conn.execute_fetchall(
        "SELECT d.reason, count(*) AS n FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code"
        f" WHERE {' AND '.join(where)} GROUP BY d.reason ORDER BY n DESC, d.reason",
        params,
    )
    return [(row["reason"], row["n"]) for row in rows]


_CYLINDER_DISTRICT = (
    "coalesce((SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),"
    " (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station))"
)


async def find_cylinder(
    conn: aiosqlite.Connection, code_or_tag: str, *, district_code: str | None = None, **_: Any
) -> dict[str, Any] | None:
    """A cylinder by its code or tag UID, with its decisions, fills and alarms.

    A cylinder belongs to the district of its vehicle, else of its owner station (domain.md)."""
    key = code_or_tag.strip()
    row = await (await conn.execute(
        f"SELECT c.*, {_CYLINDER_DISTRICT} AS district_code FROM cylinders c"
        " WHERE c.cylinder_code = ? OR c.tag_uid = ?", (key, key.upper()),
    )).fetchone()  # fmt: skip
    if row is None or (district_code is not None and row["district_code"] != district_code):
        return None
    cylinder = dict(row)
    code = cylinder["cylinder_code"]
    for name, sql in (
        ("decisions", "SELECT d.*, s.name AS station_name FROM fill_decisions d LEFT JOIN stations s"
                      " ON s.station_code = d.station_code WHERE d.cylinder_code = ? ORDER BY d.decided_at DESC LIMIT 100"),
        ("fills", "SELECT f.*, s.name AS station_name FROM fills f LEFT JOIN stations s ON s.station_code = f.station_code"
                  " WHERE f.cylinder_code = ? ORDER BY f.ended_at DESC LIMIT 100"),
        ("alarms", "SELECT * FROM alarms WHERE cylinder_code = ? AND merged_into IS NULL ORDER BY raised_at DESC LIMIT 50"),
    ):  # fmt: skip
        cylinder[name] = [_dict(r) for r in await conn.execute_fetchall(sql, (code,))]
    return cylinder


def normalise_plate(plate: str) -> str:
    """Plates are typed with or without the middle dot and spaces: compare without them, upper-case."""
    return "".join(ch for ch in plate.upper() if ch not in "·.• -")


async def registered_plate(conn: aiosqlite.Connection, typed: str) -> str | None:
    """The plate as registered for one typed with or without the dot, spaces or lower case."""
    row = await (await conn.execute(
        "SELECT plate FROM vehicles WHERE replace(replace(replace(upper(plate), '·', ''), ' ', ''), '-', '') = ?",
        (normalise_plate(typed),),
    )).fetchone()  # fmt: skip
    return None if row is None else row["plate"]


async def find_vehicle(
    conn: aiosqlite.Connection, plate: str, *, district_code: str | None = None, **_: Any
) -> dict[str, Any] | None:
    """A vehicle by plate (dot and spaces optional), with its cylinders and their recent fills."""
    found = await registered_plate(conn, plate)
    where, params = ["v.plate = ?"], [found]
    if district_code is not None:
        where.append("v.district_code = ?")
        params.append(district_code)
    row = await (await conn.execute(f"SELECT v.* FROM vehicles v WHERE {' AND '.join(where)}", params)).fetchone()
    if row is None:
        return None
    vehicle = dict(row)
    cylinders = await conn.execute_fetchall(
        "SELECT * FROM cylinders WHERE vehicle_plate = ? ORDER BY cylinder_code", (vehicle["plate"],)
    )
    vehicle["cylinders"] = [dict(c) for c in cylinders]
    fills = await conn.execute_fetchall(
        "SELECT f.*, s.name AS station_name FROM fills f JOIN cylinders c ON c.cylinder_code = f.cylinder_code"
        " LEFT JOIN stations s ON s.station_code = f.station_code WHERE c.vehicle_plate = ?"
        " ORDER BY f.ended_at DESC LIMIT 100",
        (vehicle["plate"],),
    )
    vehicle["fills"] = [_dict(f) for f in fills]
    return vehicle


# --- dashboard, rollout, monthly report ----------------------------------------------------------


async def fill_counts(
    conn: aiosqlite.Connection, *, since: datetime, until: datetime, district_code: str | None = None,
    station_code: int | None = None,
) -> dict[str, int]:  # fmt: skip
    """Fill requests permitted and denied, and fills reported, in a window."""
    where, params = ["d.decided_at >= ?", "d.decided_at < ?"], [since.timestamp(), until.timestamp()]
    _station_scope(where, params, district_code, station_code)
    row = await (await conn.execute(
        "SELECT coalesce(sum(d.permit), 0) AS permitted, coalesce(sum(1 - d.permit), 0) AS denied FROM fill_decisions d"
        f" JOIN stations s ON s.station_code = d.station_code WHERE {' AND '.join(where)}", params,
    )).fetchone()  # fmt: skip
    return {"permitted": row["permitted"], "denied": row["denied"]}


def rollout_phase(figures: dict[str, int]) -> str:
    """The district's phase, from its lifts: none fitted → preparation; some fitted → pilot; every pilot
    lift fitted and the others being fitted → rollout; every lift fitted and ≥ 95 % of them online ≥ 95 %
    of the last 7 days → acceptance."""
    if figures["elevators_installed"] == 0:
        return "preparation"
    if figures["elevators_installed"] == figures["elevators"] and figures["elevators_online_7d"] >= 0.95 * figures["elevators"]:
        return "acceptance"
    if figures["pilot_installed"] == figures["pilot"] and figures["elevators_installed"] > figures["pilot_installed"]:
        return "rollout"
    return "pilot"


async def coverage(conn: aiosqlite.Connection, *, today: date, district_code: str | None = None, **_: Any
                   ) -> list[dict[str, Any]]:  # fmt: skip
    """The rollout figures of domain.md per district (every district, or the one asked for)."""
    week_from = (today - timedelta(days=7)).isoformat()
    fills_since = day_bounds_utc(today - timedelta(days=30))[0]
    districts = [district_code] if district_code else list(DISTRICTS)
    results = []
    for code in districts:
        elevators = await (await conn.execute(
            "SELECT count(*) AS elevators, coalesce(sum(e.pilot), 0) AS pilot,"
            " coalesce(sum(EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = e.device_code)), 0) AS installed,"
            " coalesce(sum(e.pilot AND EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = e.device_code)), 0)"
            "   AS pilot_installed,"
            " coalesce(sum(EXISTS (SELECT 1 FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol"
            "   AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code AND ts.online = 1)), 0) AS online,"
            " coalesce(sum((SELECT coalesce(sum(d.online_s), 0) FROM lift_daily d WHERE d.device_code = e.device_code"
            "   AND d.day >= ? AND d.day < ?) >= 0.95 * 7 * 86400), 0) AS online_7d"
            " FROM elevators e WHERE e.district_code = ?",
            (week_from, today.isoformat(), code),
        )).fetchone()  # fmt: skip
        stations = await (await conn.execute(
            "SELECT count(*) AS stations, coalesce(sum(s.scales IS NOT NULL AND s.scales > 0 AND s.scales <= ("
            " SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol"
            " AND ts.terminal_id = t.terminal_id WHERE t.protocol = 'gasfill' AND t.station_code = s.station_code"
            " AND ts.online = 1)), 0) AS connected FROM stations s WHERE s.district_code = ?",
            (code,),
        )).fetchone()  # fmt: skip
        cylinders = await (await conn.execute(
            f"SELECT count(*) AS cylinders, coalesce(sum(c.tag_uid IS NOT NULL), 0) AS tagged,"
            " coalesce(sum(EXISTS (SELECT 1 FROM fills f WHERE f.cylinder_code = c.cylinder_code AND f.ended_at >= ?)), 0)"
            f" AS filled FROM cylinders c WHERE {_CYLINDER_DISTRICT} = ?",
            (fills_since, code),
        )).fetchone()  # fmt: skip
        vehicles = await (await conn.execute(
            "SELECT count(*) AS vehicles, coalesce(sum(certificate_status = 'valid'), 0) AS valid"
            " FROM vehicles WHERE district_code = ?", (code,),
        )).fetchone()  # fmt: skip
        figures = {
            "district_code": code,
            "elevators": elevators["elevators"], "elevators_installed": elevators["installed"],
            "elevators_online": elevators["online"], "elevators_online_7d": elevators["online_7d"],
            "pilot": elevators["pilot"], "pilot_installed": elevators["pilot_installed"],
            "stations": stations["stations"], "stations_connected": stations["connected"],
            "cylinders": cylinders["cylinders"], "cylinders_tagged": cylinders["tagged"],
            "cylinders_filled_30d": cylinders["filled"],
            "vehicles": vehicles["vehicles"], "vehicles_valid": vehicles["valid"],
        }  # fmt: skip
        figures["phase"] = rollout_phase(figures)
        results.append(figures)
    return results


async def monthly_figures(
    conn: aiosqlite.Connection, *, first_day: date, district_code: str | None = None, **_: Any
) -> dict[str, Any]:
    """A month's figures per CST day and in total: alarms (by kind), online rate, fills and denials,
    rescues and their arrival times."""
    next_month = (first_day.replace(day=28) + timedelta(days=4)).replace(day=1)
    days = [first_day + timedelta(days=i) for i in range((next_month - first_day).days)]
    start, end = day_bounds_utc(first_day)[0], day_bounds_utc(next_month)[0]
    district_filter, district_params = ("", []) if district_code is None else (" AND district = ?", [district_code])
    alarm_rows = await conn.execute_fetchall(
        "SELECT date(a.raised_at + 8 * 3600, 'unixepoch') AS day, a.kind, a.severity,"
        " coalesce(e.district_code, s.district_code) AS district FROM alarms a"
        " LEFT JOIN elevators e ON e.device_code = a.device_code LEFT JOIN stations s ON s.station_code = a.station_code"
        " WHERE a.merged_into IS NULL AND a.raised_at >= ? AND a.raised_at < ?",
        (start, end),
    )
    alarms = [row for row in alarm_rows if district_code is None or row["district"] == district_code]
    online_rows = await conn.execute_fetchall(
        "SELECT * FROM (SELECT d.day, sum(d.online_s) AS online_s, e.district_code AS district FROM lift_daily d"
        " JOIN elevators e ON e.device_code = d.device_code WHERE d.day >= ? AND d.day < ?"
        f" GROUP BY d.day, e.district_code) WHERE 1{district_filter}",
        [first_day.isoformat(), next_month.isoformat(), *district_params],
    )
    where = ["1"] if district_code is None else ["e.district_code = ?"]
    fitted = await (await conn.execute(
        "SELECT count(DISTINCT e.device_code) FROM elevators e JOIN terminals t ON t.device_code = e.device_code"
        f" WHERE {' AND '.join(where)}", district_params,
    )).fetchone()  # fmt: skip
    online_by_day: Counter[str] = Counter()
    for row in online_rows:
        online_by_day[row["day"]] += row["online_s"]
    decision_rows = await conn.execute_fetchall(
        "SELECT date(d.decided_at + 8 * 3600, 'unixepoch') AS day, d.permit, d.reason FROM fill_decisions d"
        " JOIN stations s ON s.station_code = d.station_code WHERE d.decided_at >= ? AND d.decided_at < ?"
        + ("" if district_code is None else " AND s.district_code = ?"),
        [start, end, *district_params],
    )
    rescues = await rescue.list_rescues(conn, since=datetime.fromtimestamp(start, UTC),
                                        until=datetime.fromtimestamp(end, UTC), limit=10_000,
                                        district_code=district_code)  # fmt: skip
    per_day = []
    for day in days:
        key = day.isoformat()
        day_alarms = [a for a in alarms if a["day"] == key]
        day_decisions = [d for d in decision_rows if d["day"] == key]
        per_day.append({
            "day": key,
            "alarms": len(day_alarms),
            "critical": sum(a["severity"] == "critical" for a in day_alarms),
            "trapped": sum(a["kind"] == "trapped" for a in day_alarms),
            "online_rate": online_by_day[key] / (fitted[0] * DAY_S) if fitted[0] and key in online_by_day else None,
            "permitted": sum(d["permit"] for d in day_decisions),
            "denied": sum(not d["permit"] for d in day_decisions),
        })  # fmt: skip
    return {
        "days": per_day,
        "alarms_by_kind": Counter(a["kind"] for a in alarms).most_common(),
        "denials_by_reason": Counter(d["reason"] for d in decision_rows if not d["permit"]).most_common(),
        "rescues": rescues,
        "late_rescues": sum(1 for r in rescues if r.late),
        "alarms_total": len(alarms),
        "permitted_total": sum(d["permitted"] for d in per_day),
        "denied_total": sum(d["denied"] for d in per_day),
    }


async def trapped_now(
    conn: aiosqlite.Connection, *, district_code: str | None = None, maintenance_company: str | None = None, **_: Any
) -> list[dict[str, Any]]:
    """Open trapped-passenger alarms with the lift's address, oldest first (the banner on every page)."""
    where, params = ["a.kind = 'trapped'", "a.status != 'resolved'", "a.merged_into IS NULL"], []
    _lift_scope(where, params, district_code, maintenance_company)
    rows = await conn.execute_fetchall(
        "SELECT a.id, a.device_code, a.raised_at, a.status, a.condition, e.address, e.district_code FROM alarms a"
        f" JOIN elevators e ON e.device_code = a.device_code WHERE {' AND '.join(where)} ORDER BY a.raised_at",
        params,
    )
    return [_dict(row) for row in rows]


async def lifts_by_code(conn: aiosqlite.Connection, device_codes: set[str]) -> dict[str, dict[str, Any]]:
    """Address, district and company of each lift (tables show where, not a 20-digit code)."""
    if not device_codes:
        return {}
    marks = ",".join("?" * len(device_codes))
    rows = await conn.execute_fetchall(
        "SELECT device_code, address, district_code, maintenance_company FROM elevators"
        f" WHERE device_code IN ({marks})", sorted(device_codes),
    )  # fmt: skip
    return {row["device_code"]: dict(row) for row in rows}
