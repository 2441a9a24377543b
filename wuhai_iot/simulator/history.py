"""A believable past for the demo city: the maintenance visits of the last few months.

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
