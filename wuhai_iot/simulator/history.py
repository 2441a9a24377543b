"""A believable past for the demo city: the maintenance visits of the last few months, a year of
trapped-passenger incidents and fill decisions, and the days each terminal reported (installations).

A census holds no visits (the platform learns of them from the lifts' card readers), so a new demo city
would show nearly every lift as 维保超期 and drown the findings the demo is there to show. Here every
fitted lift gets a visit every 10-15 days since its terminal was installed (at most ``DAYS`` back), by a
worker of its own company with a valid certificate, 40-90 minutes in working hours. A few lifts fall
behind (their company stopped coming 16-40 days ago) and a few visits are too short, so that the
maintenance page has something true to say.
"""

from __future__ import annotations

import json
import random
from datetime import date, datetime, time, timedelta
from typing import Any

from wuhai_iot.clock import CST, cst_today
from wuhai_iot.config import RulesConfig
from wuhai_iot.simulator.census import Census

DAYS = 90
FALLEN_BEHIND_SHARE = 0.04
"""Lifts whose maintenance stopped 16-40 days ago (overdue on the pages, as a few always are)."""
SHORT_VISIT_SHARE = 0.01
"""Visits that lasted less than the 20 minutes a half-monthly visit needs (flagged ``short``)."""
ITEMS_DONE = 31
MIN_VISIT_MIN = RulesConfig().maintenance_min_visit_min


def maintenance_history(census: Census, *, today: date | None = None, seed: int = 18) -> list[tuple[Any, ...]]:
    """Rows of ``maintenance_visits`` (id from 1, in the column order of ``elevators.maintenance.VISIT_UPSERT``)."""
    rng = random.Random(seed)
    today = today or cst_today()
    installed = {t["device_code"]: date.fromisoformat(t["installed_on"]) for t in census["terminals"]
                 if t["device_code"] and t["installed_on"]}  # fmt: skip
    workers: dict[str, list[dict[str, str]]] = {}
    for worker in census["workers"]:
        if worker["role"] == "maintenance" and date.fromisoformat(worker["certificate_expiry"]) > today:
            workers.setdefault(worker["unit"], []).append(worker)
    rows: list[tuple[Any, ...]] = []
    for lift in census["elevators"]:
        code, company = lift["device_code"], lift["maintenance_company"]
        if code not in installed or not workers.get(company):
            continue
        day = max(installed[code], today - timedelta(days=DAYS)) + timedelta(days=rng.randint(0, 12))
        last = today - timedelta(days=rng.randint(16, 40)) if rng.random() < FALLEN_BEHIND_SHARE else today
        while day < last:
            worker = rng.choice(workers[company])
            short = rng.random() < SHORT_VISIT_SHARE
            minutes = rng.uniform(6, 15) if short else rng.uniform(40, 90)
            start = datetime.combine(day, time(rng.randint(8, 16), rng.randint(0, 59)), CST)
            end = start + timedelta(minutes=minutes)
            rows.append((len(rows) + 1, code, int(worker["card"]), worker["name"], company, start.timestamp(),
                         end.timestamp(), round(minutes, 2), 8 if short else ITEMS_DONE, "short" if short else "",
                         json.dumps({"min_visit_min": MIN_VISIT_MIN} if short else {})))  # fmt: skip
            day += timedelta(days=rng.randint(10, 15))
    return rows


TERMINAL_DAYS_BACK = 400
SILENT_EVERY = 29
"""One terminal in this many fell silent 35-60 days ago: accepted once, listed again as lapsed."""
PATCHY_EVERY = 17
"""One terminal in this many misses every fourth day: never 7 days in a row, not accepted yet."""


def terminal_day_history(census: Census, *, today: date | None = None, seed: int = 22) -> list[tuple[str, str, str]]:
    """Rows of ``terminal_days``: every terminal reported on each day since its installation (at most
    TERMINAL_DAYS_BACK days back) until yesterday, but for a few that fell silent or report patchily."""
    rng = random.Random(seed)
    today = today or cst_today()
    rows = []
    for index, terminal in enumerate(census["terminals"]):
        if not terminal.get("installed_on"):
            continue
        day = max(date.fromisoformat(terminal["installed_on"]), today - timedelta(days=TERMINAL_DAYS_BACK))
        silent = index % SILENT_EVERY == 3
        last = today - timedelta(days=rng.randint(35, 60)) if silent else today - timedelta(days=1)
        patchy = index % PATCHY_EVERY == 5
        number = 0
        while day <= last:
            number += 1
            if not (patchy and number % 4 == 0):
                rows.append((terminal["protocol"], terminal["terminal_id"], day.isoformat()))
            day += timedelta(days=1)
    return rows


MONTHS_BACK = 12
TRAPPED_PER_LIFT_MONTH = (0.030, 0.012)
"""Trapped-passenger incidents a fitted lift has a month, a year ago and now (the effect the city reports:
maintenance that is checked falls behind less)."""
REFUSALS_PER_STATION_MONTH = (40, 18)
FILLS_PER_STATION_MONTH = 250


def incident_history(census: Census, *, today: date | None = None, seed: int = 23
                     ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:  # fmt: skip
    """A year of the city's past: trapped-passenger alarms (resolved) with their rescues, and fill decisions
    (a few refused, for the reasons of GF-3), fewer as months pass. Returns (alarms, rescues, decisions)
    rows for ALARM_HISTORY, RESCUE_HISTORY and DECISION_HISTORY."""
    rng = random.Random(seed)
    today = today or cst_today()
    now = datetime.now(CST).timestamp() - 3600
    installed = {t["device_code"]: date.fromisoformat(t["installed_on"]) for t in census["terminals"]
                 if t["device_code"] and t["installed_on"]}  # fmt: skip
    stations = [s for s in census["stations"] if s["status"] == "active"]
    tags = [(c["tag_uid"], c["cylinder_code"], c["medium"]) for c in census["cylinders"] if c["tag_uid"]]
    alarms, rescues, decisions = [], [], []
    for back in range(MONTHS_BACK, 0, -1):
        start = today - timedelta(days=30 * back)
        share = (MONTHS_BACK - back) / (MONTHS_BACK - 1)
        rate = TRAPPED_PER_LIFT_MONTH[0] + (TRAPPED_PER_LIFT_MONTH[1] - TRAPPED_PER_LIFT_MONTH[0]) * share
        fitted = [code for code, day in installed.items() if day <= start]
        for _ in range(round(rate * len(fitted))):
            code = rng.choice(fitted)
            raised = datetime.combine(start + timedelta(days=rng.randint(0, 29)), time(rng.randint(6, 22), rng.randint(0, 59)),
                                      CST).timestamp()  # fmt: skip
            if raised >= now:
                continue
            arrival = round(min(120.0, rng.lognormvariate(2.7, 0.45)), 2)
            alarm_id = len(alarms) + 1
            alarms.append((alarm_id, code, raised - 40, raised, raised, raised + 60 * arrival + 300, raised,
                           raised + 60 * arrival + 600))  # fmt: skip
            rescues.append((alarm_id, code, raised, raised + 60 * arrival, raised + 60 * arrival + 300, arrival,
                            int(arrival > RulesConfig().rescue_arrival_limit_min)))  # fmt: skip
        if not stations or not tags:
            continue
        refusals = REFUSALS_PER_STATION_MONTH[0] + (REFUSALS_PER_STATION_MONTH[1] - REFUSALS_PER_STATION_MONTH[0]) * share
        for station in stations:
            for number in range(FILLS_PER_STATION_MONTH + round(refusals)):
                refused = number >= FILLS_PER_STATION_MONTH
                decided = datetime.combine(start + timedelta(days=rng.randint(0, 29)),
                                           time(rng.randint(7, 19), rng.randint(0, 59)), CST).timestamp()  # fmt: skip
                if decided >= now:
                    continue
                tag, cylinder, medium = rng.choice(tags)
                reason = rng.choice((10, 10, 10, 2, 2, 1, 6, 4, 5, 9, 11)) if refused else 0
                decisions.append((decided, int(station["station_code"]), rng.randint(1, int(station["scales"] or 1)),
                                  len(decisions) % 65536, tag, cylinder, medium, 14000, int(not refused), reason,
                                  0 if refused else 14500))  # fmt: skip
    return alarms, rescues, decisions


ALARM_HISTORY = (
    "INSERT INTO alarms (id, kind, severity, device_code, sources, active_sources, condition, since, raised_at,"
    " updated_at, cleared_at, cleared_by, created_at, status, resolved_by, resolved_at, detail)"
    " VALUES (?, 'trapped', 'critical', ?, 'device', '', 'cleared', ?, ?, ?, ?, 'device', ?, 'resolved', 'demo', ?,"
    " '{\"history\": true}')"
)
RESCUE_HISTORY = (
    "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source, arrived_by, released_at,"
    " arrival_min, late) VALUES (?, ?, ?, ?, 'staff', 'demo', ?, ?, ?)"
)
DECISION_HISTORY = (
    "INSERT INTO fill_decisions (decided_at, station_code, scale, request_seq, tag, cylinder_code, operator_card,"
    " medium, gross_before_g, permit, reason, net_limit_g, message) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, '')"
)
