"""Page-specific aggregates: the station list's daily figures, fill counts and denials for the dashboard,
rollout coverage and the monthly report.

Object look-ups live next to their subsystem: lifts in ``wuhai_iot.lifts``, cylinders, vehicles and
stations in ``wuhai_iot.filling.trace``, alarms in ``wuhai_iot.alarms``. Like them, these functions take
an aiosqlite connection and the scope filters (``district_code``, ``station_code``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot import rescue
from wuhai_iot.clock import cst_midnight
from wuhai_iot.districts import DISTRICTS
from wuhai_iot.filling.trace import CYLINDER_DISTRICT

DAY_S = 86400


# --- stations -------------------------------------------------------------------


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
    fills_since = cst_midnight(today - timedelta(days=30)).timestamp()
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
            f" AS filled FROM cylinders c WHERE {CYLINDER_DISTRICT} = ?",
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
    start, end = cst_midnight(first_day).timestamp(), cst_midnight(next_month).timestamp()
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
    rescues = await rescue.list_rescues(conn, since=cst_midnight(first_day), until=cst_midnight(next_month),
                                        limit=10_000, district_code=district_code)  # fmt: skip
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
