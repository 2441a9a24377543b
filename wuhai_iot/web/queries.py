"""Page-specific aggregates: the station list's daily figures, fill counts and denials for the dashboard,
rollout coverage and the monthly report.

Object look-ups live next to their subsystem: lifts in ``wuhai_iot.elevators.queries``, cylinders, vehicles and
stations in ``wuhai_iot.filling.trace``, alarms in ``wuhai_iot.alarms``. Like them, these functions take
an aiosqlite connection and the scope filters (``district_code``, ``station_code``).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.clock import cst_date, cst_midnight, cst_today, first_of_next_month
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.storage import db, figures
from wuhai_iot.storage.scope import ScopeColumns

DAY_S = 86400


# --- stations -------------------------------------------------------------------


STATION_SCOPE = ScopeColumns(district="s.district_code", station="s.station_code")
"""The scope of rows joined to their station as ``s``."""


# Today's figures are the stations' daily running figures (migration 0036); the scales online, fitted and the
# open alarms are running facts of the station's row (0021, 0040): three look-ups a station.
_STATIONS = """
SELECT s.station_code, s.name, s.district_code, s.licence_no, s.licence_expiry, s.media, s.status, s.scales,
  s.online_scales AS scales_online, s.scales_installed, s.open_alarms,
  (SELECT coalesce(sum(d.decisions), 0) FROM station_daily_decisions d WHERE d.station_code = s.station_code
     AND d.day = :day AND d.permit = 1) AS permitted,
  (SELECT coalesce(sum(d.decisions), 0) FROM station_daily_decisions d WHERE d.station_code = s.station_code
     AND d.day = :day AND d.permit = 0) AS denied,
  coalesce((SELECT f.fills FROM station_daily_fills f WHERE f.station_code = s.station_code AND f.day = :day), 0)
     AS fills
FROM stations s
"""


async def list_stations(
    conn: aiosqlite.Connection,
    *,
    day: date,
    district_code: str | None = None,
    station_code: int | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Stations by station code (``after``: the keyset cursor, the last code of the previous page; at most
    ``limit``): what the list shows of the registry, scales installed and online, open alarms, and the
    decisions and fills of the CST ``day``."""
    where: list[str] = ["1"]
    params: dict[str, Any] = {"day": day.isoformat()}
    STATION_SCOPE.narrow(where, params, district_code=district_code, station_code=station_code)
    if after is not None:
        where.append("s.station_code > :after")
        params["after"] = after
    rows = await conn.execute_fetchall(
        f"{_STATIONS} WHERE {' AND '.join(where)} ORDER BY s.station_code"
        + ("" if limit is None else f" LIMIT {int(limit)}"), params)  # fmt: skip
    return db.as_dicts(rows)  # type: ignore[arg-type]


async def count_stations(conn: aiosqlite.Connection, *, district_code: str | None = None,
                         station_code: int | None = None) -> int:  # fmt: skip
    """Stations in scope: the running figure, or 1 for a station's own scope."""
    if station_code is not None:
        return 1
    counted = await figures.plain_counts(conn, ("stations",), district_code=district_code)
    return sum(c.get("stations", 0) for c in counted.values())


async def denials_by_reason(
    conn: aiosqlite.Connection,
    *,
    since: datetime,
    until: datetime,
    district_code: str | None = None,
    station_code: int | None = None,
) -> list[tuple[int, int]]:
    """(reason, count) of denied fill requests, most frequent first. Over whole CST days in a district or
    the city, from the running figures; for one station, on its index."""
    days = _whole_days(since, until)
    if days is not None and station_code is None:
        counted: Counter[int] = Counter()
        for (figure, _), n in (await figures.per_day(conn, "fills_denied", *days, district_code=district_code)).items():
            counted[int(figure.partition(":")[2])] += int(n)
        return sorted(((reason, n) for reason, n in counted.items() if n), key=lambda pair: (-pair[1], pair[0]))
    where, params = ["d.permit = 0", "d.decided_at >= ?", "d.decided_at < ?"], [since.timestamp(), until.timestamp()]
    STATION_SCOPE.narrow(where, params, district_code=district_code, station_code=station_code)
    rows = await conn.execute_fetchall(
        "SELECT d.reason, count(*) AS n FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code"
        f" WHERE {' AND '.join(where)} GROUP BY d.reason ORDER BY n DESC, d.reason",
        params,
    )
    return [(row["reason"], row["n"]) for row in rows]


# --- dashboard, rollout, monthly report ----------------------------------------------------------


def _whole_days(since: datetime, until: datetime) -> tuple[date, date] | None:
    """The CST days from ``since`` up to ``until`` when both are CST midnights (the running figures are kept
    per day), else None."""
    first, end = cst_date(since), cst_date(until)
    if cst_midnight(first) == since and cst_midnight(end) == until:
        return first, end
    return None



async def fill_counts(
    conn: aiosqlite.Connection, *, since: datetime, until: datetime, district_code: str | None = None,
    station_code: int | None = None,
) -> dict[str, int]:  # fmt: skip
    """Fill requests permitted and denied in a window: over whole CST days in a district or the city from the
    running figures; otherwise counted on the indexes alone (every decision by station and time, the denied
    ones by the partial index) rather than reading each decision."""
    days = _whole_days(since, until)
    if days is not None and station_code is None:
        permitted = await figures.per_day(conn, "fills_permitted", *days, district_code=district_code)
        denied = await figures.per_day(conn, "fills_denied", *days, district_code=district_code)
        return {"permitted": int(sum(permitted.values())), "denied": int(sum(denied.values()))}
    where, params = ["d.decided_at >= ?", "d.decided_at < ?"], [since.timestamp(), until.timestamp()]
    STATION_SCOPE.narrow(where, params, district_code=district_code, station_code=station_code)
    decided = ("SELECT count(*) FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code"
               f" WHERE {' AND '.join(where)}")  # fmt: skip
    row = await (await conn.execute(f"SELECT ({decided}) AS decided, ({decided} AND d.permit = 0) AS denied",
                                    params * 2)).fetchone()  # fmt: skip
    return {"permitted": row["decided"] - row["denied"], "denied": row["denied"]}


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
    """The rollout figures of domain.md per district (every district, or the one asked for), from the
    running figures (storage/figures.py): a handful of rows whatever the size of the registry."""
    lifts = await figures.plain_counts(conn, ("lifts", "pilot", "fitted", "pilot_fitted", "online"),
                                       district_code=district_code)  # fmt: skip
    registry = await figures.registry_counts(conn, today=today, district_code=district_code)
    _, online_week = await figures.online_week(conn, district_code=district_code)
    results = []
    for code in [district_code] if district_code else list(DISTRICTS):
        lift, other = lifts.get(code, {}), registry.get(code, {})
        counted = {
            "district_code": code,
            "elevators": lift.get("lifts", 0), "elevators_installed": lift.get("fitted", 0),
            "elevators_online": lift.get("online", 0), "elevators_online_7d": online_week.get(code, 0),
            "pilot": lift.get("pilot", 0), "pilot_installed": lift.get("pilot_fitted", 0),
            "stations": other.get("stations", 0), "stations_connected": other.get("stations_connected", 0),
            "cylinders": other.get("cylinders", 0), "cylinders_tagged": other.get("cylinders_tagged", 0),
            "cylinders_filled_30d": other.get("cylinders_filled", 0),
            "vehicles": other.get("vehicles", 0), "vehicles_valid": other.get("vehicles_valid", 0),
        }  # fmt: skip
        counted["phase"] = rollout_phase(counted)
        results.append(counted)
    return results


async def monthly_figures(
    conn: aiosqlite.Connection, *, first_day: date, district_code: str | None = None, **_: Any
) -> dict[str, Any]:
    """A month's figures per CST day and in total: alarms (by kind), online rate (whole days only), fills and denials,
    rescues (late ones, the mean arrival time). All are running figures kept per district and day."""
    next_month = first_of_next_month(first_day)
    days = [first_day + timedelta(days=i) for i in range((next_month - first_day).days)]
    # Alarms, online seconds, fill decisions and rescues per day are running figures (migrations 0025, 0030,
    # 0037): a month reads a few hundred rows whatever the number of lifts, alarms, fills and rescues.
    alarms_by_day: Counter[str] = Counter()
    critical_by_day: Counter[str] = Counter()
    trapped_by_day: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    for (day, kind, severity), n in (await figures.alarms_per_day(conn, first_day, next_month,
                                                                  district_code=district_code)).items():  # fmt: skip
        alarms_by_day[day] += n
        critical_by_day[day] += n if severity == "critical" else 0
        trapped_by_day[day] += n if kind == "trapped" else 0
        by_kind[kind] += n
    fitted = sum(counted.get("fitted", 0) for counted in (await figures.plain_counts(
        conn, ("fitted",), district_code=district_code)).values())  # fmt: skip
    scope = {"district_code": district_code}
    online_by_day: Counter[str] = Counter()
    for (_, day), seconds in (await figures.per_day(conn, "online_s", first_day, next_month, **scope)).items():
        online_by_day[day] += seconds
    permitted_by_day: Counter[str] = Counter()
    for (_, day), n in (await figures.per_day(conn, "fills_permitted", first_day, next_month, **scope)).items():
        permitted_by_day[day] += int(n)
    denied_by_day: Counter[str] = Counter()
    denied_by_reason: Counter[int] = Counter()
    for (figure, day), n in (await figures.per_day(conn, "fills_denied", first_day, next_month, **scope)).items():
        denied_by_day[day] += int(n)
        denied_by_reason[int(figure.partition(":")[2])] += int(n)
    rescued: dict[str, Counter[str]] = {}
    for (figure, day), n in (await figures.per_day(conn, "rescues", first_day, next_month, **scope)).items():
        rescued.setdefault(figure, Counter())[day] += int(n)
    rescues, arrived, arrival_cmin, late = (rescued.get(name, Counter()) for name in (
        "rescues", "rescues:arrived", "rescues:arrival_cmin", "rescues:late"))  # fmt: skip
    today = cst_today()
    per_day = []
    for day in days:
        key = day.isoformat()
        per_day.append({
            "day": key,
            "alarms": alarms_by_day[key],
            "critical": critical_by_day[key],
            "trapped": trapped_by_day[key],
            # Today is not over: its online seconds so far are no rate (0.3 % at 00:05); only whole days are.
            "online_rate": online_by_day[key] / (fitted * DAY_S) if fitted and key in online_by_day and day < today
            else None,
            "permitted": permitted_by_day[key],
            "denied": denied_by_day[key],
            "rescues": rescues[key],
            "late_rescues": late[key],
            "arrival_mean_min": arrival_cmin[key] / 100 / arrived[key] if arrived[key] else None,
        })  # fmt: skip
    return {
        "days": per_day,
        "alarms_by_kind": sorted(by_kind.items(), key=lambda pair: (-pair[1], pair[0])),
        "denials_by_reason": sorted(denied_by_reason.items(), key=lambda pair: (-pair[1], pair[0])),
        "rescues_total": sum(rescues.values()),
        "late_rescues": sum(late.values()),
        "alarms_total": sum(alarms_by_day.values()),
        "permitted_total": sum(d["permitted"] for d in per_day),
        "denied_total": sum(d["denied"] for d in per_day),
    }

