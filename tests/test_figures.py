"""The running figures (migration 0021, storage/figures.py) agree exactly with a full recount of the raw
tables: after a census import, after a randomised mix of imports, sessions, alarms, visits and fills, after
the platform restarts on the same file, and after the process writing them is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from wuhai_iot.alarms.kinds import SEVERITIES, alarm_kinds
from wuhai_iot.alarms.queries import count_alarms
from wuhai_iot.clock import cst_midnight, cst_today
from wuhai_iot.elevators.queries import COUNTS, count_lifts, list_lifts
from wuhai_iot.elevators.rescue import list_rescues
from wuhai_iot.elevators.rules.engine import DAILY_ADD
from wuhai_iot.publishing import effect as fx
from wuhai_iot.publishing import evaluation
from wuhai_iot.registry.census import import_files
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.storage import db, figures
from wuhai_iot.vehicles.queries import list_vehicles, total_vehicles
from wuhai_iot.web.queries import coverage, list_stations, monthly_figures

TODAY = date(2026, 11, 29)
INTERVAL = 15
DUE_DAYS = 30
SIZE = CensusSize(lifts=150, stations=6, cylinders=1_500, vehicles=60, seed=11)

# The truth: every figure counted from the raw tables, the way the pages counted before migration 0021.
RECOUNT_LIFTS = """
SELECT e.district_code, e.maintenance_company AS company, count(*) AS lifts, sum(e.pilot) AS pilot,
  sum(EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = e.device_code)) AS fitted,
  sum(e.pilot AND EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = e.device_code)) AS pilot_fitted,
  sum(EXISTS (SELECT 1 FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
      AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code AND ts.online = 1)) AS online,
  sum((SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
      AND a.merged_into IS NULL)) AS open_alarms,
  sum(EXISTS (SELECT 1 FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
      AND a.merged_into IS NULL AND a.kind = 'trapped' AND a.condition = 'active')) AS trapped,
  sum(EXISTS (SELECT 1 FROM terminals t WHERE t.device_code = e.device_code) AND coalesce(
      date((SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = e.device_code
            AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL AND v.flags = ''), 'unixepoch', '+8 hours'),
      (SELECT min(coalesce(t.installed_on, '')) FROM terminals t WHERE t.device_code = e.device_code))
      < :overdue_before) AS maintenance_overdue,
  sum(e.next_inspection < :today) AS inspection_overdue, sum(e.next_inspection <= :due_until) AS inspection_due
FROM elevators e GROUP BY e.district_code, e.maintenance_company
"""
RECOUNT_REGISTRY = """
SELECT district_code, 'stations' AS figure, count(*) AS n FROM stations GROUP BY 1
UNION ALL SELECT s.district_code, 'stations_connected', sum(s.scales IS NOT NULL AND s.scales > 0 AND s.scales <= (
    SELECT count(*) FROM terminals t JOIN terminal_sessions ts ON ts.protocol = t.protocol
    AND ts.terminal_id = t.terminal_id WHERE t.device_code IS NULL AND t.station_code = s.station_code
    AND ts.online = 1)) FROM stations s GROUP BY 1
UNION ALL SELECT district_code, 'vehicles', count(*) FROM vehicles GROUP BY 1
UNION ALL SELECT district_code, 'vehicles_valid', sum(certificate_status = 'valid') FROM vehicles GROUP BY 1
UNION ALL SELECT district_code, 'vehicles_no_certificate',
    sum(coalesce(certificate_no, '') = '' OR certificate_status = 'revoked') FROM vehicles GROUP BY 1
UNION ALL SELECT d, 'cylinders', count(*) FROM (SELECT coalesce(
    (SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),
    (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station)) AS d FROM cylinders c)
    WHERE d IS NOT NULL GROUP BY 1
UNION ALL SELECT d, 'cylinders_tagged', count(tag) FROM (SELECT c.tag_uid AS tag, coalesce(
    (SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),
    (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station)) AS d FROM cylinders c)
    WHERE d IS NOT NULL GROUP BY 1
UNION ALL SELECT d, 'cylinders_filled', sum(filled >= :fills_since) FROM (SELECT c.last_filled_at AS filled, coalesce(
    (SELECT v.district_code FROM vehicles v WHERE v.plate = c.vehicle_plate),
    (SELECT s.district_code FROM stations s WHERE s.station_code = c.owner_station)) AS d FROM cylinders c)
    WHERE d IS NOT NULL GROUP BY 1
"""


def recount(conn: sqlite3.Connection) -> tuple[dict, dict]:
    """(lift figures per (district, company) and per (district, ''), registry figures per district)."""
    conn.row_factory = sqlite3.Row
    params = {"today": TODAY.isoformat(), "overdue_before": (TODAY - timedelta(days=INTERVAL)).isoformat(),
              "due_until": (TODAY + timedelta(days=DUE_DAYS)).isoformat()}
    lifts: dict[tuple[str, str], dict[str, int]] = {}
    for row in conn.execute(RECOUNT_LIFTS, params):
        for key in ((row["district_code"], row["company"]), (row["district_code"], "")):
            counted = lifts.setdefault(key, {})
            for name in (*COUNTS, "pilot", "pilot_fitted"):
                counted[name] = counted.get(name, 0) + (row[name] or 0)
    registry: dict[str, dict[str, int]] = {}
    fills_since = (TODAY - timedelta(days=30)).isoformat()
    for row in conn.execute(RECOUNT_REGISTRY.replace(":fills_since", "strftime('%s', :since) - 8 * 3600"),
                            {"since": fills_since}):  # fmt: skip
        registry.setdefault(row["district_code"], {})[row["figure"]] = row["n"] or 0
    return lifts, registry


async def running(path: Path) -> tuple[dict, dict]:
    """The same figures as the pages read them."""
    conn = await db.connect(path)
    try:
        lifts: dict[tuple[str, str], dict[str, int]] = {}
        companies = [row[0] for row in await conn.execute_fetchall("SELECT DISTINCT maintenance_company FROM elevators")]
        for company in [None, *companies]:
            found = await figures.lift_counts(conn, today=TODAY, maintenance_interval_days=INTERVAL,
                                              inspection_due_days=DUE_DAYS, maintenance_company=company)  # fmt: skip
            for district, counted in found.items():
                lifts[(district, company or "")] = counted
        registry = await figures.registry_counts(conn, today=TODAY)
        for district, counted in (await figures.plain_counts(conn, ["vehicles_no_certificate"])).items():
            registry.setdefault(district, {}).update(counted)
        # The vehicle list's total with its certificate filter is that figure: the list agrees, in every district.
        for district in [None, *registry]:
            listed = await list_vehicles(conn, certificate_invalid=True, district_code=district, limit=100_000)
            total = await total_vehicles(conn, certificate_invalid=True, district_code=district)
            assert total == (len(listed), False), district
        # count_lifts and coverage (what the dashboard and the rollout page call) read the same figures.
        from_pages = await count_lifts(conn, now=_noon(TODAY), maintenance_interval_days=INTERVAL,
                                       inspection_due_days=DUE_DAYS)
        assert from_pages == {d: {n: c[n] for n in COUNTS} for (d, company), c in lifts.items() if company == ""}
        for row in await coverage(conn, today=TODAY):
            if row["elevators"]:
                assert row["elevators_installed"] == lifts[(row["district_code"], "")]["fitted"]
        # The lift list's total with one flag (online, overdue ...) is a running figure too: the list agrees.
        for flag in ("online", "trapped", "maintenance_overdue", "inspection_overdue", "inspection_due"):
            for wanted in (True, False):
                listed: dict[str, int] = {}
                for lift in await list_lifts(conn, now=_noon(TODAY), maintenance_interval_days=INTERVAL,
                                             inspection_due_days=DUE_DAYS, **{flag: wanted}):  # fmt: skip
                    listed[lift.district_code] = listed.get(lift.district_code, 0) + 1
                counted = await count_lifts(conn, counts=["lifts"], now=_noon(TODAY), maintenance_interval_days=INTERVAL,
                                            inspection_due_days=DUE_DAYS, **{flag: wanted})  # fmt: skip
                assert {code: c["lifts"] for code, c in counted.items()} == listed, (flag, wanted)
        await assert_overdue_lists_agree(conn, companies)
        # The overdue list (maintenance or inspection, read as the union of two index ranges) is every lift flagged.
        rules = {"now": _noon(TODAY), "maintenance_interval_days": INTERVAL, "inspection_due_days": DUE_DAYS}
        every = await list_lifts(conn, **rules)
        for district in [None, "150302"]:
            overdue = await list_lifts(conn, overdue=True, district_code=district, **rules)
            assert [lift.device_code for lift in overdue] == [
                lift.device_code for lift in every if (lift.maintenance_overdue or lift.inspection_overdue)
                and district in (None, lift.district_code)]
            assert any(lift.maintenance_overdue for lift in overdue) or district
            # Lifts with people inside (read on their own index) with another filter: the same lifts.
            for flag in ("overdue", "maintenance_overdue", "inspection_due"):
                trapped = await list_lifts(conn, trapped=True, district_code=district, **{flag: True}, **rules)
                assert [lift.device_code for lift in trapped] == [
                    lift.device_code for lift in every if lift.trapped and district in (None, lift.district_code)
                    and (lift.maintenance_overdue or lift.inspection_overdue if flag == "overdue" else
                         lift.maintenance_overdue if flag == "maintenance_overdue" else
                         lift.inspection_overdue or lift.inspection_due_soon)], flag
        return lifts, registry
    finally:
        await conn.close()


async def assert_overdue_lists_agree(conn: aiosqlite.Connection, companies: list[str]) -> None:
    """The overdue lists in device code order (read a page at a time from ``overdue_lifts`` when the day asked is
    not after the fold boundaries, from every overdue lift's code when it is) are the lifts flagged, filtered by
    hand: on days before, on and after the boundaries, in every scope, with another filter, page by page."""
    boundaries = dict(await conn.execute_fetchall("SELECT figure, before FROM day_figure_folds"))
    days = {TODAY - timedelta(days=3), TODAY, TODAY + timedelta(days=2)}
    if boundaries["next_inspection"]:  # (the day of the boundaries themselves, the day after and the day before)
        folded = date.fromisoformat(boundaries["next_inspection"])
        days |= {folded, folded + timedelta(days=1), folded - timedelta(days=1)}
    scopes = [{}, {"district_code": "150302"}, *({"maintenance_company": c} for c in companies[:2])]
    for day in sorted(days):
        rules = {"now": _noon(day), "maintenance_interval_days": INTERVAL, "inspection_due_days": DUE_DAYS}
        every = await list_lifts(conn, **rules)
        for flag, flagged in (("overdue", lambda lift: lift.maintenance_overdue or lift.inspection_overdue),
                              ("maintenance_overdue", lambda lift: lift.maintenance_overdue),
                              ("inspection_overdue", lambda lift: lift.inspection_overdue)):  # fmt: skip
            for scope, other in [(scope, {}) for scope in scopes] + [({}, {"online": False}), ({}, {"search": "0"}),
                                                                     ({}, {"inspection_overdue": True})]:
                expected = [lift.device_code for lift in every if flagged(lift)
                            and all(lift.registry[key] == value for key, value in scope.items())
                            and (not other.get("inspection_overdue") or lift.inspection_overdue)
                            and ("online" not in other or lift.online == other["online"])
                            and ("search" not in other or "0" in lift.device_code + (lift.registry["registration_no"] or "")
                                 + lift.registry["address"])]  # fmt: skip
                listed, after = [], None
                while True:  # pages of 7
                    page = await list_lifts(conn, after=after, limit=7, **({flag: True} | other), **scope, **rules)
                    listed += [lift.device_code for lift in page]
                    if len(page) < 7:
                        break
                    after = page[-1].device_code
                assert listed == expected, (day, flag, scope, other)


def assert_overdue_lifts_agree(conn: sqlite3.Connection) -> None:
    """``overdue_lifts`` (migration 0043) holds the lifts overdue as of the fold boundaries, by kind: a recount."""
    (maintenance_before,), (inspection_before,) = (conn.execute(
        "SELECT before FROM day_figure_folds WHERE figure = ?", (figure,)).fetchone() for figure in figures.FOLDED)
    recounted = set()
    for code, district, company, terminals, ref, next_inspection in conn.execute(
            "SELECT device_code, district_code, maintenance_company, terminals, maintenance_ref, next_inspection"
            " FROM elevators"):  # fmt: skip
        kinds = {"maintenance"} if terminals > 0 and ref is not None and ref < maintenance_before else set()
        kinds |= {"inspection"} if next_inspection < inspection_before else set()
        recounted |= {(kind, code, district, company) for kind in kinds | ({"any"} if kinds else set())}
    assert set(conn.execute("SELECT kind, device_code, district_code, company FROM overdue_lifts")) == recounted


def _noon(day: date):  # noqa: ANN202 - a datetime
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)


def _nonzero(counted: dict) -> dict:
    """Figures without their zeros (a recount has no row where there is nothing to count)."""
    return {key: {name: n for name, n in values.items() if n} for key, values in counted.items() if any(values.values())}


def assert_agree(path: Path, found: tuple[dict, dict]) -> None:
    with sqlite3.connect(path) as conn:
        lifts, registry = recount(conn)
    assert _nonzero(found[0]) == _nonzero({key: value for key, value in lifts.items() if value["lifts"]})
    assert _nonzero(found[1]) == _nonzero(registry)
    with sqlite3.connect(path) as conn:  # (a day counter back at zero is dropped: "before a day" reads live days only)
        assert conn.execute("SELECT count(*) FROM day_figures WHERE value = 0").fetchone() == (0,)
        assert_folds_agree(conn)
        assert_overdue_lifts_agree(conn)


RECOUNT_FOLDED = """
SELECT d.figure, d.district_code, d.company, sum(d.value) FROM day_figures d JOIN day_figure_folds f
ON f.figure = d.figure AND d.day < f.before GROUP BY 1, 2, 3
"""


def assert_folds_agree(conn: sqlite3.Connection) -> None:
    """The folded day sums (migration 0041) are the sums of their figures' days before the boundary."""
    folded = {tuple(row[:3]): row[3] for row in conn.execute("SELECT * FROM day_figures_folded") if row[3]}
    assert folded == {tuple(row[:3]): row[3] for row in conn.execute(RECOUNT_FOLDED) if row[3]}


async def assert_alarms_agree(path: Path) -> None:
    """The alarm figures (migrations 0030, 0038) equal the alarm lists' own count (alarms/queries.py, on the raw
    rows) in every scope: the city, each district, each maintenance company and each of its districts."""
    conn = await db.connect(path)
    try:
        districts = [row[0] for row in await conn.execute_fetchall(
            "SELECT district_code FROM elevators UNION SELECT district_code FROM stations"
            " UNION SELECT district_code FROM vehicles")]  # fmt: skip
        companies = [row[0] for row in await conn.execute_fetchall("SELECT DISTINCT maintenance_company FROM elevators")]
        scopes = [{}] + [{"district_code": d} for d in districts] + [
            {"maintenance_company": c, **({"district_code": d} if d else {})} for c in companies for d in [None, *districts]]
        first, until = date(2000, 1, 1), date(2100, 1, 1)
        checked = 0
        for scope in scopes:
            counted = {row["severity"]: row["n"] for row in await count_alarms(conn, by=["severity"], status="open", **scope)}
            assert await figures.open_alarms(conn, SEVERITIES, **scope) == {s: counted.get(s, 0) for s in SEVERITIES}, scope
            by_kind = {row["kind"]: row["n"] for row in await count_alarms(conn, by=["kind"], status="open", **scope)}
            kinds = sorted(alarm_kinds())
            assert await figures.open_alarms_by_kind(conn, kinds, **scope) == {k: by_kind.get(k, 0) for k in kinds}, scope
            per_day = {(row["day"], row["kind"], row["severity"]): row["n"]
                       for row in await count_alarms(conn, by=["day", "kind", "severity"], **scope)}  # fmt: skip
            assert await figures.alarms_per_day(conn, first, until, **scope) == per_day, scope
            checked += sum(per_day.values())
        assert checked  # (there were alarms to count)
    finally:
        await conn.close()


RECOUNT_STATION_DECISIONS = """
SELECT station_code, date(decided_at, 'unixepoch', '+8 hours') AS day, permit, reason, count(*) FROM fill_decisions
GROUP BY 1, 2, 3, 4
"""
RECOUNT_STATION_FILLS = """
SELECT station_code, date(ended_at, 'unixepoch', '+8 hours') AS day, count(*), sum(outcome = 0),
    sum(CASE WHEN outcome = 0 THEN gross_after_g - gross_before_g ELSE 0 END) FROM fills GROUP BY 1, 2
"""


RECOUNT_STATION_FACTS = """
SELECT s.station_code, (SELECT count(*) FROM terminals t WHERE t.protocol = 'gasfill' AND t.station_code = s.station_code),
    (SELECT count(*) FROM alarms a WHERE a.station_code = s.station_code AND a.status != 'resolved'
     AND a.merged_into IS NULL) FROM stations s
"""


async def assert_stations_agree(path: Path) -> None:
    """The stations' daily figures (migration 0036) equal a recount of the decisions and fills, and the
    station list's figures (what the page reads: a day's decisions and fills, the scales fitted and the open
    alarms of migration 0040) equal those counted from the raw rows."""
    with sqlite3.connect(path) as conn:
        decisions = conn.execute(RECOUNT_STATION_DECISIONS).fetchall()
        fills = conn.execute(RECOUNT_STATION_FILLS).fetchall()
        assert decisions and fills  # (there were some to count)
        assert sorted(conn.execute("SELECT * FROM station_daily_decisions").fetchall()) == sorted(decisions)
        assert sorted(conn.execute("SELECT * FROM station_daily_fills").fetchall()) == sorted(fills)
        facts = dict((code, tuple(rest)) for code, *rest in conn.execute(RECOUNT_STATION_FACTS))
        assert any(installed for installed, _ in facts.values()) and any(alarms for _, alarms in facts.values())
    conn = await db.connect(path)
    try:
        for day in sorted({row[1] for row in decisions + fills})[-3:]:
            listed = {s["station_code"]: (s["permitted"], s["denied"], s["fills"], s["scales_installed"],
                                          s["open_alarms"]) for s in await list_stations(conn, day=date.fromisoformat(day))}  # fmt: skip
            counted = {code: (sum(n for c, d, permit, _, n in decisions if (c, d, permit) == (code, day, 1)),
                              sum(n for c, d, permit, _, n in decisions if (c, d, permit) == (code, day, 0)),
                              sum(n for c, d, n, *_ in fills if (c, d) == (code, day)), *facts[code])
                       for code in listed}  # fmt: skip
            assert listed == counted, day
    finally:
        await conn.close()


RECOUNT_RESCUES = """
SELECT coalesce(e.district_code, '') AS district, date(r.raised_at, 'unixepoch', '+8 hours') AS day, count(*) AS raised,
       count(r.arrival_min) AS arrived, sum(CAST(round(r.arrival_min * 100) AS INTEGER)) AS arrival_cmin,
       sum(r.late != 0) AS late
FROM rescues r LEFT JOIN elevators e ON e.device_code = r.device_code GROUP BY 1, 2
"""


async def assert_rescues_agree(path: Path) -> None:
    """The rescue figures (migration 0037) equal a recount of the rescues in their lifts' districts, and the
    monthly report's rescue totals equal the rescue list's (elevators/rescue.py) in every scope."""
    with sqlite3.connect(path) as conn:
        expected = {}
        for district, day, *counts in conn.execute(RECOUNT_RESCUES):
            for name, n in zip(("rescues", "rescues:arrived", "rescues:arrival_cmin", "rescues:late"), counts):
                if n:
                    expected[(district, name, day)] = n
        assert expected  # (there were rescues to count)
        found = {(district, figure, day): n for district, figure, day, n in conn.execute(
            "SELECT district_code, figure, day, value FROM day_figures WHERE figure BETWEEN 'rescues' AND 'rescues:~'"
            " AND company = ''")}  # fmt: skip
        assert found == expected
        months = sorted({day[:7] for _, _, day in expected})
    conn = await db.connect(path)
    try:
        for district in [None, "150302", "150303", "150304"]:
            for month in months:
                first = date.fromisoformat(month + "-01")
                report = await monthly_figures(conn, first_day=first, district_code=district)
                listed = await list_rescues(conn, since=cst_midnight(first), limit=100_000, district_code=district,
                                            until=cst_midnight((first + timedelta(days=31)).replace(day=1)))  # fmt: skip
                assert report["rescues_total"] == len(listed), (district, month)
                assert report["late_rescues"] == sum(r.late for r in listed), (district, month)
    finally:
        await conn.close()


def _month(at: float) -> str:
    return datetime.fromtimestamp(at + 8 * 3600, UTC).strftime("%Y-%m")


def recount_effect(path: Path, months: list[str]) -> dict:
    """The public page's monthly figures per (district, month) and for the city (''), counted on the raw rows
    the way effect.py counted them before migration 0037 (arrival times rounded up to a tenth of a minute)."""
    counted: dict = {}

    def cell(district: str, month: str) -> dict:
        return counted.setdefault((district, month), {"trapped": 0, "rescues": 0, "arrived": [], "verified": 0,
                                                      "flagged": 0})  # fmt: skip

    with sqlite3.connect(path) as conn:
        # (Trapped alarms in the scope the alarm lists give them: their lift's district. This mix raises some for
        # stations and vehicles too, which count in theirs.)
        for district, raised in conn.execute("SELECT s.district_code, a.raised_at FROM alarms a JOIN alarm_scope s"
                                             " ON s.id = a.id WHERE a.kind = 'trapped' AND a.merged_into IS NULL"
                                             " AND s.district_code != ''"):  # fmt: skip
            for key in (district, ""):
                cell(key, _month(raised))["trapped"] += 1
        for district, raised, arrival in conn.execute("SELECT e.district_code, r.raised_at, r.arrival_min FROM rescues r"
                                                      " JOIN elevators e ON e.device_code = r.device_code"):  # fmt: skip
            for key in (district, ""):
                cell(key, _month(raised))["rescues"] += 1
                if arrival is not None:
                    cell(key, _month(raised))["arrived"].append((round(arrival * 100) + 9) // 10)
        for district, at, verified, flagged in conn.execute(
                "SELECT e.district_code, coalesce(v.started_at, v.ended_at), v.flags = '' AND v.started_at IS NOT NULL"
                " AND v.ended_at IS NOT NULL, v.flags != '' FROM maintenance_visits v JOIN elevators e"
                " ON e.device_code = v.device_code WHERE coalesce(v.started_at, v.ended_at) IS NOT NULL"):  # fmt: skip
            for key in (district, ""):
                cell(key, _month(at))["verified"] += verified
                cell(key, _month(at))["flagged"] += flagged
        fitted = conn.execute("SELECT district, coalesce(substr(first, 1, 7), ''), count(*) FROM (SELECT e.district_code"
                              " AS district, min(coalesce(t.installed_on, '')) AS first FROM elevators e JOIN terminals t"
                              " ON t.device_code = e.device_code GROUP BY e.device_code) GROUP BY 1, 2").fetchall()  # fmt: skip
    result = {}
    for key, values in counted.items():
        if key[1] not in months:
            continue
        arrived = sorted(values["arrived"])
        n = len(arrived)
        result[key] = {"trapped": values["trapped"], "rescues": values["rescues"], "arrived": n,
                       "within_limit": sum(t <= 300 for t in arrived),
                       "median_min": arrived[(n + 1) // 2 - 1] / 10 if n else None,
                       "p90_min": arrived[(9 * n + 9) // 10 - 1] / 10 if n else None,
                       "visits_verified": values["verified"], "visits_flagged": values["flagged"]}  # fmt: skip
    for district in ("150302", "150303", "150304", ""):
        for month in months:
            lifts = sum(n for d, first, n in fitted if first <= month and district in ("", d))
            result.setdefault((district, month), {}).update(fitted=lifts)
    return result


async def assert_effect_agrees(path: Path) -> None:
    """The public page's monthly figures, read from the running figures (publishing/effect.py), equal a recount."""
    months = fx.months_back(date(2025, 12, 1), 4)
    conn = await db.connect(path)
    try:
        effect = await fx.monthly_effect(conn, months, limit_min=30)
    finally:
        await conn.close()
    found = {}
    for district, by_month in effect.items():
        for month, figures_of in by_month.items():
            shown = {name: value for name, value in fx.as_dict(figures_of).items() if name in (
                "trapped", "rescues", "arrived", "within_limit", "median_min", "p90_min", "visits_verified",
                "visits_flagged", "fitted")}  # fmt: skip
            if any(shown.values()):
                found[(district, month)] = shown
    expected = {key: {name: value for name, value in values.items()} for key, values in recount_effect(path, months).items()}
    expected = {key: {**dict.fromkeys(next(iter(found.values())), 0), "median_min": None, "p90_min": None, **values}
                for key, values in expected.items() if any(values.values())}  # fmt: skip
    assert found == expected
    assert any(values["median_min"] for values in found.values())  # (there were arrivals to rank)


RECOUNT_RUNS = """
SELECT protocol, terminal_id, min(day), max(day) FROM (
    SELECT protocol, terminal_id, day,
           julianday(day) - row_number() OVER (PARTITION BY protocol, terminal_id ORDER BY day) AS island
    FROM terminal_days) GROUP BY protocol, terminal_id, island
"""


RECOUNT_GAPS = """
WITH days AS (
  SELECT protocol, terminal_id, day, lag(day) OVER (PARTITION BY protocol, terminal_id ORDER BY day) AS previous
  FROM terminal_days WHERE day >= :first AND day <= :last
)
SELECT protocol, terminal_id, max(julianday(day) - julianday(previous)) - 1 AS longest FROM days
GROUP BY protocol, terminal_id HAVING longest >= 3
"""


def assert_runs_agree(path: Path) -> None:
    """The terminals' runs of consecutive days with data (migration 0037) are the islands of their days, and the
    evaluation's long gaps read from them are those between the days themselves."""
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        expected = sorted(tuple(row) for row in conn.execute(RECOUNT_RUNS))
        assert len(expected) > 5  # (there were days, with gaps)
        assert sorted(tuple(row) for row in conn.execute("SELECT protocol, terminal_id, first_day, last_day"
                                                         " FROM terminal_runs")) == expected  # fmt: skip
        window = {"first": "2026-11-04", "last": "2026-11-16"}
        gaps = conn.execute("SELECT district, sum(terminals) FROM (" + evaluation._GAPS + ") GROUP BY 1", window).fetchall()
        recounted = conn.execute(
            "SELECT coalesce(e.district_code, s.district_code), count(*) FROM (" + RECOUNT_GAPS + ") g JOIN terminals t"
            " USING (protocol, terminal_id) LEFT JOIN elevators e ON e.device_code = t.device_code"
            " LEFT JOIN stations s ON s.station_code = t.station_code GROUP BY 1", window).fetchall()  # fmt: skip
        assert dict(map(tuple, gaps)) == dict(map(tuple, recounted)) and recounted


RECOUNT_MONTHS = """
SELECT substr(day, 1, 7), figure, district_code, sum(value) FROM day_figures WHERE company = ''
    AND (figure IN ('rescues', 'rescues:arrived', 'fills_permitted', 'fitted_on') OR figure GLOB 'alarms:*'
         OR figure GLOB 'visits:*' OR figure GLOB 'fills_denied:*')
GROUP BY 1, 2, 3 HAVING sum(value) != 0
"""


async def assert_months_agree(path: Path) -> None:
    """The monthly figures (migration 0039) equal the daily ones summed per month, and the sums over a window of
    days read from them (its whole months, and the days of the months at either end) equal the days' sums."""
    with sqlite3.connect(path) as conn:
        expected = sorted(conn.execute(RECOUNT_MONTHS).fetchall())
        assert len({month for month, *_ in expected}) > 1  # (there were months to count)
        assert sorted(conn.execute("SELECT month, figure, district_code, value FROM month_figures")) == expected
        days = [date.fromisoformat(row[0]) for row in conn.execute(
            "SELECT DISTINCT day FROM day_figures WHERE figure GLOB 'alarms:*' ORDER BY day")]  # fmt: skip
    rng = random.Random(len(expected))
    windows = [(days[0], days[-1] + timedelta(days=1)), (days[0].replace(day=1), days[-1] + timedelta(days=1))]
    windows += [tuple(sorted(rng.sample(days, 2))) for _ in range(6)]
    conn = await db.connect(path)
    counted = 0
    try:
        for first, until in windows:
            for prefix in ("alarms", "rescues", "visits", "fills_permitted", "fills_denied"):
                summed: dict = {}
                for (district, figure, _), n in (await figures.per_district_day(conn, prefix, first, until)).items():
                    if figure not in ("rescues:arrival_cmin", "rescues:late"):  # (not kept per month)
                        summed[(district, figure)] = summed.get((district, figure), 0) + n
                windowed = await figures.per_district_window(conn, prefix, first, until)
                assert windowed == {key: n for key, n in summed.items() if n}, (prefix, first, until)
                counted += sum(windowed.values())
    finally:
        await conn.close()
    assert counted  # (the windows held something to sum)


def assert_arrival_minutes_agree(path: Path) -> None:
    """The arrival times by the minute (migration 0042) equal their tenths (0037) counted ten at a time."""
    with sqlite3.connect(path) as conn:
        expected = sorted(conn.execute("SELECT month, district_code, tenths / 10, sum(rescues) FROM rescue_arrivals"
                                       " GROUP BY 1, 2, 3 HAVING sum(rescues) != 0").fetchall())  # fmt: skip
        assert sorted(conn.execute("SELECT * FROM rescue_arrival_minutes").fetchall()) == expected


def _nearest_rank(tenths: list[int], per_ten: int) -> float | None:
    """The arrival time (minutes) at rank ⌈n · per_ten / 10⌉ of ``tenths`` sorted."""
    return sorted(tenths)[(len(tenths) * per_ten + 9) // 10 - 1] / 10 if tenths else None


async def test_arrival_times_ranked_by_the_minute_equal_a_ranking_of_every_arrival(tmp_path: Path) -> None:
    """Percentiles and arrivals within the limit read from the minutes and the tenths of only the minutes needed
    (publishing/effect.py) equal those of every arrival ranked, whatever the limit, with times on either side of
    it within one minute, below zero (an arrival entered before the alarm) and changed or taken away."""
    path = await imported_city(tmp_path)
    rng = random.Random(7)
    now = _noon(TODAY).timestamp()
    with sqlite3.connect(path, isolation_level=None) as conn:
        lifts = [row[0] for row in conn.execute("SELECT device_code FROM elevators ORDER BY device_code")]
        conn.execute("BEGIN")
        for rescue in range(1, 700):
            arrival = rng.choice([round(rng.uniform(-1.5, 45), 2), round(rng.uniform(29.9, 30.2), 2),
                                  round(rng.uniform(12.3, 12.7), 2), None])  # fmt: skip
            raised = now - rng.randrange(80) * 86400
            conn.execute("INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source,"
                         " arrival_min, late) VALUES (?, ?, ?, ?, 'card', ?, 0)",
                         (rescue, rng.choice(lifts), raised, arrival and raised + arrival * 60, arrival))
        for rescue in rng.sample(range(1, 700), 150):
            if rng.random() < 0.5:
                conn.execute("DELETE FROM rescues WHERE alarm_id = ?", (rescue,))
            else:
                conn.execute("UPDATE rescues SET arrival_min = ? WHERE alarm_id = ?",
                             (round(rng.uniform(0, 40), 2), rescue))
        conn.execute("COMMIT")
        arrivals = conn.execute("SELECT e.district_code, r.raised_at, r.arrival_min FROM rescues r JOIN elevators e ON"
                                " e.device_code = r.device_code WHERE r.arrival_min IS NOT NULL").fetchall()
    assert_arrival_minutes_agree(path)
    months = fx.months_back(TODAY, 4)
    conn = await db.connect(path)
    try:
        for limit in (30, 12.5, 30.05, 0):
            for by_month in (True, False):
                times: dict = {}
                for district, raised, arrival in arrivals:
                    period = _month(raised) if by_month else ""
                    if _month(raised) in months:
                        tenths = int((round(arrival * 100) + 9) / 10)  # (truncated, as SQLite divides)
                        for key in ((period, district), (period, fx.CITY)):
                            times.setdefault(key, []).append(tenths)
                expected = {key: fx.ArrivalTimes(sum(t <= 10 * limit for t in found), _nearest_rank(found, 5),
                                                 _nearest_rank(found, 9)) for key, found in times.items()}  # fmt: skip
                found = await fx.arrival_times(conn, months, limit_min=limit, by_month=by_month)
                assert found == expected, (limit, by_month)
    finally:
        await conn.close()


async def imported_city(tmp_path: Path) -> Path:
    census = tmp_path / "census"
    write_census(generate_census(SIZE, today=TODAY), census)
    path = tmp_path / "city.sqlite3"
    conn = await db.connect(path)
    try:
        await import_files(conn, sorted(census.glob("*.csv")))
    finally:
        await conn.close()
    return path


# A randomised mix of what happens to a running city, written as the platform writes it (the triggers see
# only the tables). ``script`` runs in a subprocess for the SIGKILL test, so it imports nothing of ours.
CHANGES = textwrap.dedent('''
    import random, sqlite3, sys, time

    FOLDS = __FOLDS__
    FOLDED = [0]  # the index in FOLDS of the last fold: the midnights walk forward through the mix

    def change(conn, rng, now):
        lifts = [r[0] for r in conn.execute("SELECT device_code FROM elevators ORDER BY random() LIMIT 3")]
        terminals = conn.execute("SELECT protocol, terminal_id FROM terminals ORDER BY random() LIMIT 2").fetchall()
        what = rng.randrange(16)
        if what == 0:    # a terminal logs in, or its connection closes
            for protocol, terminal in terminals:
                conn.execute("INSERT INTO terminal_sessions (protocol, terminal_id, online, connected_at)"
                             " VALUES (?, ?, 1, ?) ON CONFLICT (protocol, terminal_id) DO UPDATE SET online = ?",
                             (protocol, terminal, now, rng.randrange(2)))
        elif what == 1:  # every frame only touches last_frame_at
            conn.execute("UPDATE terminal_sessions SET last_frame_at = ?", (now,))
        elif what == 2:  # an alarm (of a lift, a cylinder at a station or a vehicle) raised, or rewritten on a repeat
            alarm = rng.randrange(1, 60)
            kind, severity = rng.choice([("trapped", "critical"), ("door_fault", "minor"), ("power_lost", "major"),
                                         ("leak", "critical"), ("overspeed", "major")])
            station = conn.execute("SELECT station_code FROM stations ORDER BY random() LIMIT 1").fetchone()[0]
            plate = (conn.execute("SELECT plate FROM vehicles ORDER BY random() LIMIT 1").fetchone()
                     or ["蒙L00000"])[0]  # (once every vehicle has left: a plate the registry does not know)
            subject = rng.choice([(lifts[0], None, None, None), (None, "LPG-X", station, None), (None, None, None, plate)])
            raised = now - rng.randrange(20) * 86400
            conn.execute("INSERT INTO alarms (id, kind, severity, device_code, cylinder_code, station_code, plate,"
                         " sources, active_sources, condition, since, raised_at, updated_at, created_at) VALUES"
                         " (?, ?, ?, ?, ?, ?, ?, 'rule', 'rule', 'active', ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                         " SET updated_at = excluded.updated_at, raised_at = excluded.raised_at,"
                         " merged_into = merged_into", (alarm, kind, severity, *subject, raised, raised, now, now))
        elif what == 3:  # the doors open, staff resolve an alarm, a flapping alarm absorbs one, or (by hand) one
                         # is opened again and a station's alarm moved to another station
            choice = rng.randrange(4)
            if choice == 0:
                conn.execute("UPDATE alarms SET condition = 'cleared' WHERE id = (SELECT id FROM alarms"
                             " ORDER BY random() LIMIT 1)")
            elif choice == 1:
                conn.execute("UPDATE alarms SET status = 'resolved' WHERE id = (SELECT id FROM alarms"
                             " ORDER BY random() LIMIT 1)")
            elif choice == 2:
                conn.execute("UPDATE alarms SET merged_into = 1 WHERE id = (SELECT id FROM alarms WHERE id > 1"
                             " ORDER BY random() LIMIT 1)")
            else:
                conn.execute("UPDATE alarms SET status = 'raised', merged_into = NULL, station_code = CASE WHEN"
                             " station_code IS NOT NULL THEN (SELECT station_code FROM stations ORDER BY random()"
                             " LIMIT 1) END WHERE id = (SELECT id FROM alarms ORDER BY random() LIMIT 1)")
        elif what == 4:  # the retention prunes old alarms and visits (now and then: they are raised as often)
            if rng.randrange(3) == 0:
                conn.execute("DELETE FROM alarms WHERE id = (SELECT id FROM alarms ORDER BY random() LIMIT 1)")
                conn.execute("DELETE FROM maintenance_visits WHERE id = (SELECT id FROM maintenance_visits"
                             " ORDER BY random() LIMIT 1)")
        elif what == 5:  # a maintenance visit starts, ends, never ends, or is flagged (too short ...)
            visit = rng.randrange(1, 80)
            started = now - rng.randrange(40) * 86400 + rng.choice([0, 365 * 86400])  # (a year on: before TODAY)
            ended = None if rng.randrange(4) == 0 else started + 3600
            flags = rng.choice(["", "", "short"])
            conn.execute("INSERT INTO maintenance_visits (id, device_code, card, started_at, ended_at, flags) VALUES"
                         " (?, ?, 9001, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at,"
                         " flags = excluded.flags", (visit, lifts[1], started, ended, flags))
        elif what == 6:  # a fill: the cylinder's newest fill time moves
            conn.execute("UPDATE cylinders SET last_filled_at = ? WHERE cylinder_code = (SELECT cylinder_code"
                         " FROM cylinders ORDER BY random() LIMIT 1)", (now - rng.randrange(60) * 86400,))
        elif what == 7:  # census corrections: a lift moves district or company, its pilot flag or inspection
            conn.execute("UPDATE elevators SET district_code = ?, maintenance_company = ?, pilot = ?,"
                         " next_inspection = ? WHERE device_code = ?",
                         (rng.choice(["150302", "150303", "150304"]), rng.choice(["甲公司", "乙公司"]),
                          rng.randrange(2), f"2026-{rng.randrange(10, 13)}-{rng.randrange(10, 29)}", lifts[2]))
        elif what == 8:  # a terminal is fitted, moved to another lift or station, or removed
            protocol, terminal = terminals[0]
            choice = rng.randrange(4)
            if choice == 0:
                conn.execute("INSERT OR IGNORE INTO terminals (protocol, terminal_id, device_code, installed_on,"
                             " updated_at) VALUES ('elink', ?, ?, ?, 'x')",
                             (f"{rng.randrange(10**15, 10**16)}", lifts[0], rng.choice([None, "2026-10-01"])))
            elif choice == 1:
                conn.execute("UPDATE terminals SET device_code = ?, installed_on = ? WHERE protocol = ?"
                             " AND terminal_id = ? AND device_code IS NOT NULL",
                             (lifts[1], rng.choice([None, "2026-11-20"]), protocol, terminal))
            elif choice == 2:
                conn.execute("DELETE FROM terminals WHERE protocol = ? AND terminal_id = ?", (protocol, terminal))
            else:        # a station's scale fitted, or moved to another station (or one the registry does not know)
                station = conn.execute("SELECT station_code FROM stations ORDER BY random() LIMIT 1").fetchone()[0]
                station = rng.choice([station, station, 999])
                if rng.randrange(2):
                    conn.execute("INSERT OR IGNORE INTO terminals (protocol, terminal_id, station_code, scale,"
                                 " updated_at) VALUES ('gasfill', ?, ?, 9, 'x')", (f"{station}-{rng.randrange(9, 40)}",
                                                                                  station))
                else:
                    conn.execute("UPDATE terminals SET station_code = ? WHERE terminal_id = (SELECT terminal_id"
                                 " FROM terminals WHERE protocol = 'gasfill' ORDER BY random() LIMIT 1)"
                                 " AND protocol = 'gasfill'", (station,))
        elif what == 9:  # a vehicle or a station moves district; a certificate is revoked, issued or taken away
            conn.execute("UPDATE vehicles SET district_code = ?, certificate_status = ?,"
                         " certificate_no = coalesce(?, certificate_no) WHERE plate = (SELECT plate"
                         " FROM vehicles ORDER BY random() LIMIT 1)",
                         (rng.choice(["150302", "150303", "150304"]), rng.choice(["valid", "revoked", None]),
                          rng.choice([None, None, "", "TS-150300-7"])))
            conn.execute("UPDATE stations SET district_code = ?, scales = ? WHERE station_code = (SELECT station_code"
                         " FROM stations ORDER BY random() LIMIT 1)",
                         (rng.choice(["150302", "150303", "150304"]), rng.randrange(0, 3)))
        elif what == 10:  # a cylinder is tagged, moved to another vehicle or station, or scrapped from the registry
            conn.execute("UPDATE cylinders SET tag_uid = CASE WHEN tag_uid IS NULL THEN hex(randomblob(8)) END,"
                         " vehicle_plate = (SELECT plate FROM vehicles ORDER BY random() LIMIT 1)"
                         " WHERE cylinder_code = (SELECT cylinder_code FROM cylinders WHERE vehicle_plate IS NOT NULL"
                         " ORDER BY random() LIMIT 1)")
            if rng.randrange(3) == 0:
                conn.execute("DELETE FROM cylinders WHERE cylinder_code = (SELECT cylinder_code FROM cylinders"
                             " ORDER BY random() LIMIT 1)")
        elif what == 11:  # a fill request decided and its fill reported (resent: stored once), at some station
            station = conn.execute("SELECT station_code FROM stations ORDER BY random() LIMIT 1").fetchone()[0]
            station = rng.choice([station, 999])  # (or a station the registry does not know)
            decided = now - rng.randrange(20) * 86400 - rng.randrange(86400)
            permit = rng.randrange(5) > 0
            seq, before = rng.randrange(4), rng.randrange(1000, 2000)
            conn.execute("INSERT OR IGNORE INTO fill_decisions (id, decided_at, station_code, scale, request_seq, tag,"
                         " operator_card, medium, gross_before_g, permit, reason, net_limit_g, message) VALUES"
                         " (?, ?, ?, 1, ?, 'E0', 1, 'LPG', ?, ?, ?, 0, '')",
                         (rng.randrange(1, 400), decided, station, seq, before, int(permit),
                          0 if permit else rng.choice([2, 9, 10, 99])))
            conn.execute("INSERT OR IGNORE INTO fills (station_code, scale, request_seq, tag, permitted,"
                         " gross_before_g, gross_after_g, duration_s, outcome, ended_at, received_at) VALUES"
                         " (?, 1, ?, 'E0', ?, ?, ?, 90, ?, ?, ?)",
                         (station, seq, int(permit), before, before + rng.randrange(3) * 5000,
                          rng.choice([0, 0, 1, 3]), decided + 90, decided + 91))
            if rng.randrange(4) == 0:  # a record corrected or removed by hand
                table = rng.choice(["fill_decisions", "fills"])
                if rng.randrange(2):
                    conn.execute(f"DELETE FROM {table} WHERE id = (SELECT id FROM {table} ORDER BY random() LIMIT 1)")
                elif table == "fills":
                    conn.execute("UPDATE OR IGNORE fills SET outcome = 1 - min(outcome, 1), ended_at = ended_at - 86400,"
                                 " gross_after_g = gross_after_g + 10 WHERE id = (SELECT id FROM fills"
                                 " ORDER BY random() LIMIT 1)")
                else:
                    conn.execute("UPDATE fill_decisions SET permit = 1 - permit, reason = 99 * permit,"
                                 " station_code = ? WHERE id = (SELECT id FROM fill_decisions ORDER BY random()"
                                 " LIMIT 1)", (station,))
        elif what == 12:  # a rescue begins (of a lift, or of one the registry does not know), someone arrives
                          # (in time or late), it is flagged late while nobody comes, or the retention prunes it
            rescue = rng.randrange(1, 40)
            raised = now - rng.randrange(20) * 86400 - rng.randrange(86400)
            device = rng.choice([lifts[0], lifts[0], "31101500000000000000"])
            arrival = rng.choice([None, round(rng.uniform(3, 60), 2)])
            choice = rng.randrange(4)
            if choice < 2:
                conn.execute("INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source,"
                             " arrival_min, late) VALUES (?, ?, ?, ?, 'card', ?, ?) ON CONFLICT (alarm_id) DO UPDATE"
                             " SET arrived_at = excluded.arrived_at, arrival_min = excluded.arrival_min,"
                             " late = excluded.late", (rescue, device, raised, arrival and raised + arrival * 60,
                                                       arrival, int(arrival is None or arrival > 30)))
            elif choice == 2:
                conn.execute("UPDATE rescues SET late = 1 WHERE alarm_id = ? AND arrival_min IS NULL", (rescue,))
            else:
                conn.execute("DELETE FROM rescues WHERE alarm_id = ?", (rescue,))
        elif what == 13:  # a terminal's days with data recorded (in any order, as after a restart), or taken away
            protocol, terminal = terminals[0]
            for _ in range(rng.randrange(1, 6)):
                day = f"2026-11-{rng.randrange(1, 21):02d}"
                if rng.randrange(4):
                    conn.execute("INSERT OR IGNORE INTO terminal_days VALUES (?, ?, ?)", (protocol, terminal, day))
                else:
                    conn.execute("DELETE FROM terminal_days WHERE protocol = ? AND terminal_id = ? AND day = ?",
                                 (protocol, terminal, day))
        elif what == 14:  # a CST midnight: the platform folds the day sums up to the new day (never back)
            FOLDED[0] = min(len(FOLDS) - 1, FOLDED[0] + (rng.randrange(6) == 0))
            for statement, params in FOLDS[FOLDED[0]] if rng.randrange(8) else rng.choice(FOLDS):
                conn.execute(statement, params)
        else:            # a lift or a vehicle leaves the registry, or a station leaves it and comes back
            choice = rng.randrange(5)
            if choice < 2:
                conn.execute("DELETE FROM elevators WHERE device_code = ?", (lifts[2],))
            elif choice < 4:
                conn.execute("DELETE FROM vehicles WHERE plate = (SELECT plate FROM vehicles ORDER BY random() LIMIT 1)")
            else:        # (its row as the census writes it: its scales and alarms are still there)
                columns = ("station_code, name, district_code, address, licence_no, licence_expiry, media, scales,"
                           " status, updated_at, latitude, longitude")
                row = conn.execute(f"SELECT {columns} FROM stations ORDER BY random() LIMIT 1").fetchone()
                conn.execute("DELETE FROM stations WHERE station_code = ?", (row[0],))
                conn.execute(f"INSERT INTO stations ({columns}) VALUES ({', '.join('?' * len(row))})", row)

    def run(path, seed, steps):
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA foreign_keys=OFF")
        rng = random.Random(seed)
        now = 1764400000.0
        for step in range(steps):
            conn.execute("BEGIN")
            for _ in range(rng.randrange(1, 6)):
                change(conn, rng, now + step)
            conn.execute("COMMIT")
            if steps > 10_000:
                print("step", step, flush=True)

    if __name__ == "__main__":
        run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
''').replace("__FOLDS__", repr([figures.fold_statements(date.fromisoformat(day), INTERVAL) for day in (
    "2025-11-01", "2025-11-20", "2026-06-01", "2026-10-15", "2026-11-10", "2026-11-20", "2026-11-29", "2026-12-10",
    "2027-01-15")]))
"""The mix of changes as a script; ``FOLDS``: the statements the platform folds the day sums with at a few
midnights, from before the visits of the mix to after its inspections, walked through forward (and now and then
one at random: an earlier one changes nothing), so that visits, terminals and inspections cross the boundaries."""


async def test_figures_agree_with_a_recount_after_an_import(tmp_path: Path) -> None:
    path = await imported_city(tmp_path)
    found = await running(path)
    assert sum(c["lifts"] for (d, company), c in found[0].items() if company == "") == SIZE.lifts
    assert_agree(path, found)
    # Folded up to today as the platform does at start (the import left nothing folded): the same figures.
    with sqlite3.connect(path) as conn:
        for statement, params in figures.fold_statements(TODAY, INTERVAL):
            conn.execute(statement, params)
        assert conn.execute("SELECT count(*) FROM day_figures_folded WHERE value != 0").fetchone()[0] >= 3
    folded = await running(path)
    assert folded == found
    assert_agree(path, folded)


async def test_the_platform_folds_the_day_sums_up_to_today_when_it_starts(platform: Platform) -> None:
    today = cst_today()
    with sqlite3.connect(platform.config.database.path) as conn:
        assert dict(conn.execute("SELECT figure, before FROM day_figure_folds")) == {
            "maintenance_ref": (today - timedelta(days=platform.config.rules.maintenance_interval_days)).isoformat(),
            "next_inspection": today.isoformat()}
        assert conn.execute("SELECT count(*) FROM day_figures_folded WHERE value != 0").fetchone()[0]
        assert_folds_agree(conn)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_figures_agree_with_a_recount_after_a_random_mix_of_changes(tmp_path: Path, seed: int) -> None:
    path = await imported_city(tmp_path)
    script = tmp_path / "changes.py"
    script.write_text(CHANGES, encoding="utf-8")
    await asyncio.to_thread(subprocess.run, [sys.executable, str(script), str(path), str(seed), "400"], check=True)
    assert_agree(path, await running(path))
    await assert_alarms_agree(path)
    await assert_stations_agree(path)
    await assert_rescues_agree(path)
    assert_runs_agree(path)
    await assert_effect_agrees(path)
    await assert_months_agree(path)
    assert_arrival_minutes_agree(path)
    # A census import on top (the same files again: every row updated) changes nothing but what it moves back.
    conn = await db.connect(path)
    try:
        await import_files(conn, sorted((tmp_path / "census").glob("*.csv")))
    finally:
        await conn.close()
    assert_agree(path, await running(path))
    await assert_alarms_agree(path)
    await assert_stations_agree(path)
    await assert_rescues_agree(path)
    assert_runs_agree(path)
    await assert_effect_agrees(path)
    await assert_months_agree(path)
    assert_arrival_minutes_agree(path)


async def test_figures_agree_with_a_recount_after_sigkill(tmp_path: Path) -> None:
    path = await imported_city(tmp_path)
    script = tmp_path / "changes.py"
    script.write_text(CHANGES, encoding="utf-8")
    writer = subprocess.Popen([sys.executable, str(script), str(path), "5", "1000000"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    assert writer.stdout is not None
    for _ in range(200):  # let it commit a few hundred transactions, then kill it mid-way
        await asyncio.to_thread(writer.stdout.readline)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert writer.returncode == -signal.SIGKILL
    assert_agree(path, await running(path))
    await assert_alarms_agree(path)
    await assert_stations_agree(path)
    await assert_rescues_agree(path)
    assert_runs_agree(path)
    await assert_effect_agrees(path)
    await assert_months_agree(path)
    assert_arrival_minutes_agree(path)



async def test_daily_figures_agree_with_a_recount_of_online_time_and_fill_decisions(tmp_path: Path) -> None:
    """The monthly report's running figures (online seconds, decisions by outcome and reason per district and
    day) equal a recount, through the statements the platform writes them with and the retention's deletes."""
    path = await imported_city(tmp_path)
    rng = random.Random(4)
    with sqlite3.connect(path, isolation_level=None) as conn:
        lifts = [row[0] for row in conn.execute("SELECT device_code FROM elevators")]
        stations = [row[0] for row in conn.execute("SELECT station_code FROM stations")]
        days = [(TODAY - timedelta(days=n)).isoformat() for n in range(40)]
        conn.execute("BEGIN")
        for _ in range(3_000):  # the engine's additive daily rows: runs only, or online time too
            conn.execute(DAILY_ADD, (rng.choice(lifts), rng.choice(days), 1, 5.0, 0, rng.choice([0.0, 60.0, 37.5])))
        for n in range(2_000):
            permit = rng.random() > 0.2
            at = _noon(TODAY).timestamp() - rng.uniform(0, 40 * 86_400)
            conn.execute("INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq, tag, operator_card,"
                         " medium, gross_before_g, permit, reason, net_limit_g, message) VALUES"
                         " (?, ?, ?, 1, 1, 'E0', 1, 'LPG', 0, ?, ?, 0, '')",
                         (n + 1, at, rng.choice(stations), int(permit), 0 if permit else rng.choice([1, 2, 5, 99])))
        conn.execute("DELETE FROM lift_daily WHERE day < ?", (days[35],))  # the retention
        conn.execute("COMMIT")
        expected_online = {(d, day): s for d, day, s in conn.execute(
            "SELECT e.district_code, l.day, sum(l.online_s) FROM lift_daily l JOIN elevators e USING (device_code)"
            " GROUP BY 1, 2 HAVING sum(l.online_s) != 0")}  # fmt: skip
        expected_fills = {(d, f, day): n for d, f, day, n in conn.execute(
            "SELECT s.district_code, CASE WHEN f.permit THEN 'fills_permitted' ELSE 'fills_denied:' || f.reason END,"
            " date(f.decided_at, 'unixepoch', '+8 hours'), count(*) FROM fill_decisions f"
            " JOIN stations s USING (station_code) GROUP BY 1, 2, 3")}  # fmt: skip
    assert expected_online and len({f for _, f, _ in expected_fills}) >= 3
    conn = await db.connect(path)
    try:
        first, until = TODAY - timedelta(days=60), TODAY + timedelta(days=1)
        online, fills = {}, {}
        for district in ("150302", "150303", "150304"):
            for (_, day), seconds in (await figures.per_day(conn, "online_s", first, until,
                                                            district_code=district)).items():  # fmt: skip
                if seconds:
                    online[(district, day)] = seconds
            for prefix in ("fills_permitted", "fills_denied"):
                for (figure, day), n in (await figures.per_day(conn, prefix, first, until,
                                                               district_code=district)).items():  # fmt: skip
                    fills[(district, figure, day)] = n
    finally:
        await conn.close()
    assert online == pytest.approx(expected_online)
    assert fills == expected_fills
