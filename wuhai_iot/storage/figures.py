"""Running figures: what the dashboard and the rollout page count, read in a handful of rows.

The triggers of migration 0021 keep the counters up to date in the same transaction as every change that
moves them (a census import, a terminal going on or off line, an alarm raised or resolved, a maintenance
visit, a fill), per district and, for lifts, per maintenance company (the narrowest scope a user has).
Counters that depend on the date are kept per calendar day and summed over a range of days here: how many
lifts are overdue is how many have their reference day before today minus the interval. The days before a
boundary that the platform moves forward every CST midnight are kept folded into one sum (migration 0041), so
such a sum reads the days between the boundary and the day asked (at most the rules' intervals), never as many
days as the overdue lifts go back. A request's cost therefore grows with the number of districts and
companies, never with the number of lifts or cylinders. ``tests/test_figures.py`` checks every figure against
a full recount.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.clock import first_of_next_month

LIFT_COUNTS = ("lifts", "fitted", "online", "open_alarms", "trapped", "maintenance_overdue", "inspection_overdue",
               "inspection_due")
"""What ``lift_counts`` counts per district: lifts, fitted with a terminal, online (fitted, a terminal online),
open alarms, lifts with passengers trapped (inside now), maintenance overdue, inspection overdue, inspection
overdue or due within ``inspection_due_days``."""
_PLAIN = ("lifts", "pilot", "fitted", "pilot_fitted", "online", "open_alarms", "trapped")
REGISTRY_COUNTS = ("stations", "stations_connected", "vehicles", "vehicles_valid", "cylinders", "cylinders_tagged")


def _scope(district_code: str | None, maintenance_company: str | None) -> tuple[str, list[Any]]:
    where, params = ["company = ?"], [maintenance_company or ""]
    if district_code is not None:
        where.append("district_code = ?")
        params.append(district_code)
    return " AND ".join(where), params


async def plain_counts(conn: aiosqlite.Connection, names: Sequence[str], *, district_code: str | None = None,
                       maintenance_company: str | None = None) -> dict[str, dict[str, int]]:  # fmt: skip
    """Counters by name per district code (lifts: ``lifts``, ``pilot``, ``fitted``, ``pilot_fitted``,
    ``online``, ``open_alarms``, ``trapped``; the registry's: ``REGISTRY_COUNTS``)."""
    return await _plain(conn, names, _scope(district_code, maintenance_company))


async def _plain(conn: aiosqlite.Connection, names: Sequence[str], scope: tuple[str, list[Any]]
                 ) -> dict[str, dict[str, int]]:  # fmt: skip
    where, params = scope
    marks = ", ".join("?" * len(names))
    rows = await conn.execute_fetchall(
        f"SELECT district_code, figure, value FROM figures WHERE figure IN ({marks}) AND {where}", [*names, *params]
    )
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["district_code"], {})[row["figure"]] = row["value"]
    return found


async def _days_since(conn: aiosqlite.Connection, figure: str, day: str, scope: tuple[str, list[Any]]) -> dict[str, int]:
    """Per district: the counter ``figure`` summed over ``day`` and the days after it (a window that ends today)."""
    where, params = scope
    rows = await conn.execute_fetchall(
        f"SELECT district_code, sum(value) AS n FROM day_figures WHERE figure = ? AND day >= ? AND {where}"
        " GROUP BY district_code",
        [figure, day, *params],
    )
    return {row["district_code"]: row["n"] for row in rows}


# One statement (one snapshot: the boundary may move between two): the days folded before the boundary (migration
# 0041), plus the days from the boundary to :day when it is later, or less those from :day to it when earlier.
_DAYS_BEFORE = """
SELECT district_code, sum(value) AS n FROM (
    SELECT district_code, value FROM day_figures_folded WHERE figure = :figure AND {where}
    UNION ALL
    SELECT d.district_code, CASE WHEN d.day < :day THEN d.value ELSE -d.value END
    FROM day_figure_folds f JOIN day_figures d ON d.figure = f.figure
        AND d.day >= min(f.before, :day) AND d.day < max(f.before, :day)
    WHERE f.figure = :figure AND {where}
) GROUP BY district_code
"""


async def _days_before(conn: aiosqlite.Connection, figure: str, day: str, *, district_code: str | None,
                       maintenance_company: str | None) -> dict[str, int]:  # fmt: skip
    """Per district: the counter ``figure`` (one of ``FOLDED``) summed over the days before ``day`` ('' counts as
    long ago), in as many rows as there are days between ``day`` and the folds' boundary (today, once folded)."""
    if figure not in FOLDED:
        raise ValueError(f"the days of {figure!r} are not folded")
    where = "company = :company" + ("" if district_code is None else " AND district_code = :district_code")
    rows = await conn.execute_fetchall(_DAYS_BEFORE.format(where=where), {
        "figure": figure, "day": day, "company": maintenance_company or "", "district_code": district_code})
    return {row["district_code"]: row["n"] for row in rows if row["n"]}


FOLDED = ("maintenance_ref", "next_inspection")
"""The day figures summed before a day, whose earlier days are folded into one sum (migration 0041)."""


def fold_statements(today: date, maintenance_interval_days: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements that move the folds' boundaries forward (never back) to where the pages sum the days before:
    ``maintenance_ref`` to today less the interval (maintenance overdue), ``next_inspection`` to today
    (inspection overdue; due soon reads the days up to ``inspection_due_days`` ahead). The days between the old
    boundary and the new one are added to the folded sums in the same transaction."""
    statements = []
    for figure, day in (("maintenance_ref", today - timedelta(days=maintenance_interval_days)),
                        ("next_inspection", today)):  # fmt: skip
        statements += [
            ("INSERT INTO day_figures_folded (figure, district_code, company, value)"
             " SELECT d.figure, d.district_code, d.company, sum(d.value) FROM day_figure_folds f JOIN day_figures d"
             " ON d.figure = f.figure AND d.day >= f.before AND d.day < ? WHERE f.figure = ?"
             " GROUP BY d.district_code, d.company"
             " ON CONFLICT (figure, district_code, company) DO UPDATE SET value = value + excluded.value",
             (day.isoformat(), figure)),
            ("UPDATE day_figure_folds SET before = ? WHERE figure = ? AND before < ?",
             (day.isoformat(), figure, day.isoformat())),
        ]  # fmt: skip
    return statements


async def lift_counts(
    conn: aiosqlite.Connection,
    *,
    today: date,
    maintenance_interval_days: int,
    inspection_due_days: int,
    counts: Sequence[str] = LIFT_COUNTS,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> dict[str, dict[str, int]]:
    """``LIFT_COUNTS`` per district code (a district without a lift in scope is left out): the counters, and of
    the figures summed over days (overdue, due) only those in ``counts`` (each is a read of its own)."""
    scope = _scope(district_code, maintenance_company)
    found = await _plain(conn, _PLAIN, scope)
    summed = {name: await _days_before(conn, figure, before.isoformat(), district_code=district_code,
                                       maintenance_company=maintenance_company)
              for name, (figure, before) in {
                  "maintenance_overdue": ("maintenance_ref", today - timedelta(days=maintenance_interval_days)),
                  "inspection_overdue": ("next_inspection", today),
                  "inspection_due": ("next_inspection", today + timedelta(days=inspection_due_days + 1)),
              }.items() if name in counts}  # fmt: skip
    result = {}
    for code, figures in found.items():
        if not figures.get("lifts"):
            continue
        result[code] = {name: figures.get(name, 0) for name in _PLAIN} | {
            name: by_district.get(code, 0) for name, by_district in summed.items()}
    return result


async def registry_counts(conn: aiosqlite.Connection, *, today: date, fills_days: int = 30,
                          district_code: str | None = None) -> dict[str, dict[str, int]]:  # fmt: skip
    """Stations (connected: every filling post online), vehicles (with a valid certificate), cylinders
    (tagged, and filled on one of the last ``fills_days`` CST days) per district code."""
    scope = _scope(district_code, None)
    found = await _plain(conn, REGISTRY_COUNTS, scope)
    filled = await _days_since(conn, "cylinder_last_fill", (today - timedelta(days=fills_days)).isoformat(), scope)
    return {code: {name: figures.get(name, 0) for name in REGISTRY_COUNTS} | {"cylinders_filled": filled.get(code, 0)}
            for code, figures in found.items()}  # fmt: skip


# --- lifts online ≥ 95 % of the last 7 days: counted once a day ----------------------------------------

ONLINE_WEEK_SHARE = 0.95
ONLINE_WEEK_CHUNK = 2_000
"""Lifts read per step of the daily count (a step is one short read on the reader connection)."""
_ONLINE_WEEK = """
SELECT e.device_code, e.district_code,
       coalesce((SELECT sum(d.online_s) FROM lift_daily d WHERE d.device_code = e.device_code
                 AND d.day >= :week_from AND d.day < :today), 0) >= :threshold AS online_week
FROM elevators e WHERE e.device_code > :after ORDER BY e.device_code LIMIT :chunk
"""


async def count_online_week(conn: aiosqlite.Connection, today: date) -> dict[str, int]:
    """Per district: the lifts online at least 95 % of the 7 CST days before ``today``, counted in steps of
    ``ONLINE_WEEK_CHUNK`` lifts. The days counted are all before today, so the figure changes only at
    midnight: the platform counts it once a day (``online_week_statements``) instead of per request."""
    params: dict[str, Any] = {"week_from": (today - timedelta(days=7)).isoformat(), "today": today.isoformat(),
                              "threshold": ONLINE_WEEK_SHARE * 7 * 86_400, "after": "", "chunk": ONLINE_WEEK_CHUNK}
    counts: dict[str, int] = {}
    while True:
        rows = await conn.execute_fetchall(_ONLINE_WEEK, params)
        for row in rows:
            counts[row["district_code"]] = counts.get(row["district_code"], 0) + row["online_week"]
        if len(rows) < ONLINE_WEEK_CHUNK:
            return counts
        params["after"] = rows[-1]["device_code"]


def online_week_statements(today: date, counts: dict[str, int]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements that store ``count_online_week``'s figures as today's (replacing earlier days')."""
    return [("DELETE FROM day_figures WHERE figure = 'online_7d' AND company = ''", ())] + [
        ("INSERT INTO day_figures (district_code, company, figure, day, value) VALUES (?, '', 'online_7d', ?, ?)",
         (district, today.isoformat(), n)) for district, n in counts.items()]  # fmt: skip


async def online_week(conn: aiosqlite.Connection, *, district_code: str | None = None) -> tuple[str | None, dict[str, int]]:
    """The latest daily count of lifts online ≥ 95 % of the last 7 days: (its day, per district code)."""
    rows = await conn.execute_fetchall(
        "SELECT district_code, day, value FROM day_figures WHERE figure = 'online_7d' AND company = ''"
        + ("" if district_code is None else " AND district_code = ?"), [] if district_code is None else [district_code])
    day = max((row["day"] for row in rows), default=None)
    return day, {row["district_code"]: row["value"] for row in rows if row["day"] == day}


# --- per CST day: the monthly report ---------------------------------------------------------------------


async def per_day(conn: aiosqlite.Connection, prefix: str, first: date, until: date, *, district_code: str | None = None,
                  maintenance_company: str | None = None) -> dict[tuple[str, str], float]:  # fmt: skip
    """(figure, day) → the counter summed over the districts in scope, for the figures named ``prefix`` or
    starting with ``prefix:`` (``online_s``; ``fills_permitted``; ``fills_denied`` by reason; ``alarms`` by
    kind and severity), from ``first`` to the day before ``until`` (migrations 0025, 0030)."""
    where, params = _scope(district_code, maintenance_company)
    rows = await conn.execute_fetchall(
        "SELECT figure, day, sum(value) AS n FROM day_figures WHERE figure BETWEEN ? AND ? AND day >= ? AND day < ?"
        f" AND {where} GROUP BY figure, day", [prefix, prefix + ":\uffff", first.isoformat(), until.isoformat(), *params]
    )
    return {(row["figure"], row["day"]): row["n"] for row in rows}


async def per_district_day(conn: aiosqlite.Connection, prefix: str, first: date | None = None,
                           until: date | None = None) -> dict[tuple[str, str, str], int]:  # fmt: skip
    """(district code, figure, day) → the counter, for the figures named ``prefix`` or starting with
    ``prefix:``, every district (company ''), from ``first`` to the day before ``until`` (None: every day)."""
    rows = await conn.execute_fetchall(
        "SELECT district_code, figure, day, value FROM day_figures WHERE figure BETWEEN ? AND ? AND company = ''"
        " AND day >= ? AND day < ?",
        [prefix, prefix + ":\uffff", "" if first is None else first.isoformat(), "\uffff" if until is None else until.isoformat()],
    )  # fmt: skip
    return {(row["district_code"], row["figure"], row["day"]): row["value"] for row in rows}


# --- alarms (migrations 0030, 0038) -------------------------------------------------------------------------------

async def open_alarms(conn: aiosqlite.Connection, severities: Sequence[str], *, district_code: str | None = None,
                      maintenance_company: str | None = None) -> dict[str, int]:  # fmt: skip
    """Open alarms (not resolved, not merged into a flapping alarm) in scope, per each of ``severities``."""
    found = await plain_counts(conn, [f"open:{severity}" for severity in severities], district_code=district_code,
                               maintenance_company=maintenance_company)  # fmt: skip
    return {severity: sum(counted.get(f"open:{severity}", 0) for counted in found.values()) for severity in severities}


async def open_alarms_by_kind(conn: aiosqlite.Connection, kinds: Sequence[str], *, district_code: str | None = None,
                              maintenance_company: str | None = None) -> dict[str, int]:  # fmt: skip
    """Open alarms (not resolved, not merged into a flapping alarm) in scope, per each of ``kinds`` (migration
    0038)."""
    found = await plain_counts(conn, [f"open_kind:{kind}" for kind in kinds], district_code=district_code,
                               maintenance_company=maintenance_company)  # fmt: skip
    return {kind: sum(counted.get(f"open_kind:{kind}", 0) for counted in found.values()) for kind in kinds}


async def alarms_per_day(conn: aiosqlite.Connection, first: date, until: date, *, district_code: str | None = None,
                         maintenance_company: str | None = None) -> dict[tuple[str, str, str], int]:  # fmt: skip
    """(CST day raised, kind, severity) → alarms raised (not merged into a flapping alarm) in scope, from
    ``first`` to the day before ``until``."""
    counted: dict[tuple[str, str, str], int] = {}
    for (figure, day), n in (await per_day(conn, "alarms", first, until, district_code=district_code,
                                           maintenance_company=maintenance_company)).items():  # fmt: skip
        _, kind, severity = figure.split(":")
        if n:
            counted[(day, kind, severity)] = int(n)
    return counted


# --- per CST month: the evaluation report, the public page (migration 0039) ------------------------------------

async def per_district_month(conn: aiosqlite.Connection, prefix: str, months: Sequence[str]
                             ) -> dict[tuple[str, str, str], int]:  # fmt: skip
    """(district code, figure, month) → the counter of every district, for the figures named ``prefix`` or
    starting with ``prefix:`` that are kept per month (alarms, rescues, visits, fill decisions, fitted lifts),
    in ``months`` ('YYYY-MM'): a row per district, figure and month."""
    if not months:
        return {}
    rows = await conn.execute_fetchall(
        f"SELECT district_code, figure, month, value FROM month_figures WHERE month IN ({', '.join('?' * len(months))})"
        " AND figure BETWEEN ? AND ?", [*months, prefix, prefix + ":\uffff"])  # fmt: skip
    return {(row["district_code"], row["figure"], row["month"]): row["value"] for row in rows}


# The days of a month that is not whole in a window: the district's and figure's days are sought from the month's
# rows (a counter's days are read by its primary key; a range of figures would read every day they ever had).
_DAYS_OF_MONTH = """
SELECT d.district_code, d.figure, d.value FROM month_figures m JOIN day_figures d ON d.figure = m.figure
    AND d.district_code = m.district_code AND d.company = '' AND d.day >= :first AND d.day < :until
WHERE m.month = :month AND m.figure BETWEEN :prefix AND :prefix || ':￿'
"""


async def per_district_window(conn: aiosqlite.Connection, prefix: str, first: date, until: date
                              ) -> dict[tuple[str, str], int]:  # fmt: skip
    """(district code, figure) → the counter of every district summed from ``first`` to the day before
    ``until``, for the figures ``per_district_month`` reads: the whole months in between from the months' rows,
    the days of the months at either end that are not whole from the days' rows."""
    months, parts, month = [], [], first.replace(day=1)
    while month < until:
        following = first_of_next_month(month)
        if first <= month and following <= until:
            months.append(month.isoformat()[:7])
        else:
            parts.append((month.isoformat()[:7], max(first, month), min(until, following)))
        month = following
    summed: dict[tuple[str, str], int] = {}
    for (district, figure, _), n in (await per_district_month(conn, prefix, months)).items():
        summed[(district, figure)] = summed.get((district, figure), 0) + n
    for month_of, part_first, part_until in parts:
        for row in await conn.execute_fetchall(_DAYS_OF_MONTH, {"month": month_of, "prefix": prefix,
                                                                "prefix_end": prefix + ":\uffff",
                                                                "first": part_first.isoformat(),
                                                                "until": part_until.isoformat()}):  # fmt: skip
            key = (row["district_code"], row["figure"])
            summed[key] = summed.get(key, 0) + row["value"]
    return summed


async def fitted_by_month(conn: aiosqlite.Connection, before: str = "\uffff") -> dict[str, dict[str, int]]:
    """District code → CST month its lifts were fitted ('' when unknown) → how many, for the months before
    ``before`` ('YYYY-MM')."""
    fitted: dict[str, dict[str, int]] = {}
    for row in await conn.execute_fetchall("SELECT district_code, month, value FROM month_figures"
                                           " WHERE figure = 'fitted_on' AND month < ?", [before]):  # fmt: skip
        fitted.setdefault(row["district_code"], {})[row["month"]] = row["value"]
    return fitted


async def fitted_since(conn: aiosqlite.Connection, first: date) -> dict[str, dict[str, int]]:
    """District code → CST day its lifts were fitted → how many, for the days from ``first`` on."""
    fitted: dict[str, dict[str, int]] = {}
    for row in await conn.execute_fetchall("SELECT district_code, day, value FROM day_figures WHERE company = ''"
                                           " AND figure = 'fitted_on' AND day >= ?", [first.isoformat()]):  # fmt: skip
        fitted.setdefault(row["district_code"], {})[row["day"]] = row["value"]
    return fitted
