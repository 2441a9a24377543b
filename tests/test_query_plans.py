"""Every page and API list reads on indexes: each query the web layer runs while an admin and a district
officer open every page and API list (and the police their alarm list) is explained (``EXPLAIN QUERY PLAN``),
and a full scan of a table that grows with the registry or its history fails the test. (Tables that stay
small whatever the city — the districts, the running figures, the users — may be scanned.) So does a terminal's
REGISTER and login, read on the event loop's thread."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator

import aiohttp
import pytest
from lift_support import LIFT
from test_api import raise_alarms
from vehicle_support import BUS, BUS_CODE, BUS_PHONE, OLD_TAXI_PHONE, TAXI, VehicleTerminal, import_vehicle_scenario
from web_support import add_user, base_url, browser, login, token_for

from wuhai_iot.config import Config
from wuhai_iot.protocols import jt808
from wuhai_iot.publishing.plugin import count_registry
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.vehicles import registry
from wuhai_iot.web.auth import WEB_DB_KEY

GROWING = {
    "elevators", "cylinders", "vehicles", "terminals", "terminal_sessions", "stations", "workers", "messages",
    "elevator_state", "alarms", "alarm_samples", "rescues", "maintenance_visits", "lift_daily", "rule_state",
    "fill_decisions", "fills", "commands", "audit_log", "vehicle_positions", "track_points", "vehicle_daily",
    "station_daily_decisions", "station_daily_fills",
    "terminal_days", "terminal_runs", "month_figures", "rescue_arrivals", "rescue_arrival_minutes", "overdue_lifts",
}
"""Tables whose size grows with the registry or its history (some exist only once their feature is there)."""
EXCEPTIONS_ONLY = {"alarms_trapped_now"}
"""Partial indexes that hold only what is happening now, whatever the city (passengers trapped now): reading
all of one is no full scan."""

PAGES = ["/", "/lifts", "/lifts?state=offline", "/lifts?state=offline&alarm=0", "/lifts?q=0044", "/lifts?overdue=1",
         "/lifts?overdue=1&after=3110150302", "/lifts?overdue=maintenance&state=online",
         f"/lifts/{LIFT}", "/alarms", "/alarms?status=all",
         "/rescues", "/maintenance", "/inspections", "/stations", "/stations/150301", "/rollout",
         "/reports/monthly?month=2026-11", "/reports/monthly.csv?month=2026-11", "/reports/installations",
         "/reports/installations?district=150302&unit=x", "/reports/installations.csv", "/reports/installations.xlsx",
         "/reports/evaluation?phase=pilot", "/public", "/public.json", "/audit", "/cylinders?q=LPG-YSP35.5-0012345",
         "/vehicles?plate=蒙LT1234"]
API = ["/api/v1/elevators", "/api/v1/elevators?maintenance_overdue=true",
       "/api/v1/elevators?inspection_overdue=true&district=150302&after=3110150302",
       "/api/v1/elevators?maintenance_overdue=true&inspection_overdue=false", f"/api/v1/elevators/{LIFT}", "/api/v1/alarms",
       "/api/v1/alarms?status=open", "/api/v1/maintenance/visits", "/api/v1/coverage", "/api/v1/stations",
       "/api/v1/stations?district=150304", "/api/v1/stations/150301", "/api/v1/rescues"]
# (The vehicle list, the admin pages and answers about one object, kept apart from the lists above; the alarm
# and rescue ids are those raise_alarms gives.)
PAGES += ["/alarms/{trapped}", "/vehicles", "/vehicles?alarm=1", "/vehicles?offline=1", "/vehicles?certificate_invalid=1",
          "/cylinders", "/census", "/users", "/plan", "/system", "/metrics"]
API += ["/api/v1/vehicles", "/api/v1/vehicles?alarm=true&district=150304", "/api/v1/vehicles?certificate_invalid=true",
        "/api/v1/alarms/{door_fault}", "/api/v1/rescues/{trapped}", "/api/v1/vehicles/蒙LT1234",
        "/api/v1/vehicles/蒙LT1234/track", "/api/v1/cylinders/LPG-YSP35.5-0012345", "/api/v1/me"]


@pytest.fixture
async def traced(platform: Platform) -> AsyncIterator[list[str]]:
    """Every statement the web layer's read connection runs, as executed (parameters filled in)."""
    statements: list[str] = []
    assert platform._runner is not None
    conn = platform._runner.app[WEB_DB_KEY]
    await conn.set_trace_callback(statements.append)
    yield statements
    await conn.set_trace_callback(None)


_NAMED = re.compile(r"\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)
_NOT_ALIASES = {"WHERE", "ON", "LEFT", "JOIN", "INNER", "CROSS", "USING", "GROUP", "ORDER", "LIMIT", "UNION", "NATURAL"}


def tables_named(statement: str) -> dict[str, str]:
    """Name in a query plan → table: each table of the statement by its own name and by its alias (the
    plan names an aliased table by its alias alone: ``SCAN e``)."""
    named: dict[str, str] = {}
    for table, alias in _NAMED.findall(statement):
        named[table] = table
        if alias and alias.upper() not in _NOT_ALIASES:
            named.setdefault(alias, table)
    return named


def full_scans(database: str, statements: list[str]) -> dict[str, set[str]]:
    """Growing table → the statements that scan it whole.

    A scan that delivers rows in the order asked for, under a LIMIT (the newest 100 audit entries by id),
    stops after those rows: it is not a full scan."""
    found: dict[str, set[str]] = {}
    with sqlite3.connect(database) as conn:
        for statement in set(statements):
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            plan = [row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + statement)]
            stops_early = " LIMIT " in statement.upper() and not any("TEMP B-TREE" in step for step in plan)
            named = tables_named(statement)
            for detail in plan:
                words = detail.split()
                table = named.get(words[1], words[1])
                if words[:1] == ["SCAN"] and table in GROWING and not stops_early and words[-1] not in EXCEPTIONS_ONLY:
                    found.setdefault(table, set()).add(f"{detail}  ←  {' '.join(statement.split())[:160]}")
    return found


async def test_no_page_or_api_list_scans_a_growing_table(platform: Platform, traced: list[str]) -> None:
    raised = await raise_alarms(platform)
    await platform.writer.write([("INSERT INTO plan_phases (phase, starts_on, ends_on, updated_at) VALUES"
                                  " ('pilot', '2026-06-01', '2026-12-31', 0)", ())])  # fmt: skip
    await count_registry(platform)  # (as the recorder does every few minutes, and a plan saved on /plan)
    await add_user(platform, "admin1", "admin")
    await add_user(platform, "haibowan", "district", district="海勃湾区")
    for name in ("admin1", "haibowan"):
        async with browser() as client:
            assert (await login(client, platform, name)).status == 302
            for path in PAGES:
                async with client.get(base_url(platform) + path.format_map(raised)) as answer:
                    assert answer.status in (200, 403, 404), (name, path, answer.status)
        token = await token_for(platform, name)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
            for path in API:
                async with api.get(base_url(platform) + path.format_map(raised)) as answer:
                    assert answer.status in (200, 403, 404), (name, path, answer.status)
    await add_user(platform, "police1", "police")  # (vehicle alarms alone)
    police = await token_for(platform, "police1")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {police}"}) as api:
        for path in ("/api/v1/alarms", "/api/v1/alarms?status=open"):
            async with api.get(base_url(platform) + path) as answer:
                assert answer.status == 200, path
    assert len(traced) > 50  # (the trace saw the pages' queries)
    scans = full_scans(str(platform.config.database.path), traced)
    assert not scans, "full scans of growing tables:\n" + "\n".join(
        line for lines in scans.values() for line in sorted(lines))


async def test_register_and_login_read_the_registry_on_indexes_on_the_loops_thread(config: Config) -> None:
    """REGISTER (each of its results) and AUTHENTICATE read the registry with point reads on the event loop's
    thread (``Ingest.lookup``), each on an index. (REGISTER read on the reader thread, every vehicle for its
    plate: a fleet registering at once after a restart queued its REGISTERs behind each other for longer than
    its terminals wait, and 10,000 terminals did not all get in.)"""
    await import_vehicle_scenario(config)
    async with Platform(config) as running:
        traced: list[str] = []
        running.ingest.lookup.set_trace_callback(traced.append)
        try:
            old_taxi = await VehicleTerminal.connect(running, OLD_TAXI_PHONE, code=None)
            result, code = await old_taxi.register("蒙l t-1234")  # (registered as 蒙L·T1234)
            assert result == registry.ACCEPTED and await old_taxi.authenticate(code) == jt808.OK
            bus = await VehicleTerminal.connect(running, BUS_PHONE, code=None)
            assert await bus.register("蒙L99999") == (registry.VEHICLE_UNKNOWN, "")
            assert await bus.register(TAXI) == (registry.TERMINAL_TAKEN, "")
            assert await bus.register(BUS) == (registry.ACCEPTED, BUS_CODE)
            stranger = await VehicleTerminal.connect(running, "013999999999", code=None)
            assert await stranger.register(BUS) == (registry.TERMINAL_UNKNOWN, "")
            for terminal in (old_taxi, bus, stranger):
                await terminal.close()
        finally:
            running.ingest.lookup.set_trace_callback(None)
    assert sum("FROM vehicles" in statement for statement in traced) >= 4
    scans = full_scans(str(config.database.path), traced)
    assert not scans, "full scans of growing tables:\n" + "\n".join(
        line for lines in scans.values() for line in sorted(lines))


async def test_a_vehicle_with_a_track_today_is_shown_on_indexes(config: Config) -> None:
    """The vehicle page and API of a vehicle that drove today: its track, and the licensed stations near it
    (read on their latitude), on indexes. (The census examples' vehicle has no track: its page reads neither.)"""
    from test_vehicle_pages import drive

    await import_vehicle_scenario(config)
    async with Platform(config) as running:
        await drive(running)
        await add_user(running, "admin1", "admin")
        assert running._runner is not None
        traced: list[str] = []
        conn = running._runner.app[WEB_DB_KEY]
        await conn.set_trace_callback(traced.append)
        try:
            async with browser() as client:
                await login(client, running, "admin1")
                async with client.get(base_url(running) + f"/vehicles?plate={BUS}") as answer:
                    assert answer.status == 200 and "乌达区某加气站" in await answer.text()  # (a station drawn)
            token = await token_for(running, "admin1")
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as api:
                for path in (f"/api/v1/vehicles/{BUS}", f"/api/v1/vehicles/{BUS}/track"):
                    async with api.get(base_url(running) + path) as answer:
                        assert answer.status == 200, path
        finally:
            await conn.set_trace_callback(None)
    assert any("FROM stations WHERE latitude BETWEEN" in statement for statement in traced)
    scans = full_scans(str(config.database.path), traced)
    assert not scans, "full scans of growing tables:\n" + "\n".join(
        line for lines in scans.values() for line in sorted(lines))


async def test_every_trigger_statement_reads_on_indexes(config: Config) -> None:
    """The statements the triggers run with every change they follow (the running figures and facts: a
    terminal fitted, an alarm raised, a decision recorded ...) read and write on indexes: each statement of
    each trigger and its WHEN condition, NEW and OLD values replaced by a constant (and RAISE(...) by NULL), is
    explained, and a full scan of a growing table fails the test."""
    conn = await db.connect(config.database.path)
    await conn.close()
    explained, scans = 0, []
    with sqlite3.connect(config.database.path) as plain:
        for name, sql in plain.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"):
            head, body = sql[: sql.upper().index("BEGIN")], sql[sql.upper().index("BEGIN") + 5 : sql.upper().rindex("END")]
            when = re.search(r"\bON\s+\w+\s+(?:FOR\s+EACH\s+ROW\s+)?WHEN\b(.*)", head, re.IGNORECASE | re.DOTALL)
            body = re.sub(r"\b(?:NEW|OLD)\.\w+", "'1'", (f"SELECT {when[1]};" if when else "") + body)
            body = re.sub(r"\bRAISE\s*\((?:[^()']|'[^']*')*\)", "NULL", body, flags=re.IGNORECASE)  # (a trigger's alone)
            statement = ""
            for line in body.splitlines(keepends=True):
                statement += line
                if not sqlite3.complete_statement(statement):
                    continue
                named = tables_named(statement)
                for detail in (row[-1] for row in plain.execute("EXPLAIN QUERY PLAN " + statement)):
                    words = detail.split()
                    if words[:1] == ["SCAN"] and named.get(words[1], words[1]) in GROWING:
                        scans.append(f"{name}: {detail}  ←  {' '.join(statement.split())[:160]}")
                explained, statement = explained + 1, ""
    assert explained > 100  # (every trigger's statements were read)
    assert not scans, "full scans of growing tables:\n" + "\n".join(scans)
