"""A generated census with one small district, and raw records of a year (trapped alarms with their
rescues, maintenance visits, fill decisions) written as the platform writes them, for the publishing tests."""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import import_census

from wuhai_iot.clock import cst_midnight
from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.simulator.census import Census, CensusSize, generate_census, write_census

SMALL_DISTRICT = "海南区"
SMALL_CODE = "150303"


def small_district_census(directory: Path, *, lifts: int = 45) -> tuple[Census, list[Path]]:
    """A generated census in which 海南区 keeps only 3 lifts (a figure over them must be a range)."""
    census = generate_census(CensusSize(lifts=lifts, stations=3, cylinders=80, vehicles=12))
    small = [lift for lift in census["elevators"] if lift["district"] == SMALL_DISTRICT]
    dropped = {lift["device_code"] for lift in small[3:]}
    census["elevators"] = [lift for lift in census["elevators"] if lift["device_code"] not in dropped]
    census["terminals"] = [t for t in census["terminals"] if t.get("device_code") not in dropped]
    return census, write_census(census, directory)


async def import_generated(database: Path, paths: list[Path]) -> None:
    await import_census(database, paths)


def identifiers(census: Census) -> set[str]:
    """Every code, registration number, address, name, card, plate and key of a census (but the districts'
    administrative codes, which the public page is about: the generator numbers stations like them)."""
    found: set[str] = set()
    columns = {
        "stations": ("station_code", "name", "address", "licence_no"),
        "workers": ("card", "name", "certificate_no", "unit"),
        "vehicles": ("plate", "owner", "certificate_no"),
        "elevators": ("device_code", "registration_no", "address", "user_unit", "maintenance_company"),
        "cylinders": ("cylinder_code", "tag_uid"),
        "terminals": ("terminal_id", "key"),
    }
    for kind, names in columns.items():
        for row in census[kind]:
            for name in names:
                value = str(row.get(name) or "").strip()
                if value:
                    found.add(value)
                    if name == "card":
                        found.add(str(int(value)))  # how a controller reports it
    return found - set(DISTRICTS)


def write_year_of_records(database: Path, census: Census, today: date, *, seed: int = 7) -> dict[str, Any]:
    """Trapped alarms with rescues, maintenance visits and fill decisions spread over the last 12 months,
    inserted as the platform stores them. Returns what was written (for recounts)."""
    rng = random.Random(seed)
    conn = sqlite3.connect(database, isolation_level=None)
    lifts = [lift["device_code"] for lift in census["elevators"]]
    stations = [int(s["station_code"]) for s in census["stations"]]
    start = cst_midnight(today - timedelta(days=360)).timestamp()
    end = datetime.now(UTC).timestamp() - 3600
    alarm_id = 1000
    conn.execute("BEGIN")
    for _ in range(160):
        alarm_id += 1
        lift = rng.choice(lifts)
        raised = rng.uniform(start, end)
        conn.execute(
            "INSERT INTO alarms (id, kind, severity, device_code, sources, active_sources, condition, since, raised_at,"
            " updated_at, cleared_at, created_at, status) VALUES (?, 'trapped', 'critical', ?, 'rule', '', 'cleared',"
            " ?, ?, ?, ?, ?, 'resolved')", (alarm_id, lift, raised - 40, raised, raised, raised + 900, raised))
        arrival = None if rng.random() < 0.1 else round(rng.uniform(3, 55), 2)
        conn.execute(
            "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source, arrived_by, released_at,"
            " arrival_min, late) VALUES (?, ?, ?, ?, 'card', '100001', ?, ?, ?)",
            (alarm_id, lift, raised, None if arrival is None else raised + 60 * arrival, raised + 3000, arrival,
             int(arrival is None or arrival > 30)))  # fmt: skip
    for visit in range(400):
        lift = rng.choice(lifts)
        began = rng.uniform(start, end)
        flags = rng.choice(["", "", "", "short", "no_end", "other_company|short"])
        ended = None if "no_end" in flags else began + 60 * rng.uniform(10, 60)
        conn.execute(
            "INSERT INTO maintenance_visits (id, device_code, card, started_at, ended_at, flags) VALUES (?, ?, 100001,"
            " ?, ?, ?)", (visit + 1, lift, began, ended, flags))
    reasons = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99]
    for decision in range(900):
        permit = rng.random() < 0.7
        conn.execute(
            "INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq, tag, operator_card, medium,"
            " gross_before_g, permit, reason, net_limit_g, message) VALUES (?, ?, ?, 1, ?, 'E0', 9001, 'LPG', 13000,"
            " ?, ?, 0, '')",
            (decision + 1, rng.uniform(start, end), rng.choice(stations), decision, int(permit),
             0 if permit else rng.choice(reasons)))  # fmt: skip
    conn.execute("COMMIT")
    conn.close()
    return {"since": start}
