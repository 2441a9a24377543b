"""Simulated JT/T 808 vehicles against the real platform: register (code issued) or authenticate with the
census key, report, keep records while offline and send them as a buffered batch; the demo traffic fills
at stations (no alarm) and plays its incidents."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
from vehicle_support import BUS, BUS_PHONE, TAXI, TAXI_PHONE, platform  # noqa: F401

from wuhai_iot.config import Config
from wuhai_iot.protocols.jt808 import location_record
from wuhai_iot.server import Platform
from wuhai_iot.simulator.device import DeviceSettings, DeviceStats, Fleet
from wuhai_iot.simulator.jt808 import VehicleTerminal

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


async def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_simulated_terminals_register_report_and_upload_what_they_kept(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    port = platform.ports["jt808"]
    settings = DeviceSettings(backoff_initial_s=0.05, backoff_max_s=0.1)
    bus = VehicleTerminal(BUS_PHONE, "A1B2C3D4", "127.0.0.1", port, plate=BUS, settings=settings)
    taxi = VehicleTerminal(TAXI_PHONE, None, "127.0.0.1", port, plate=TAXI, settings=settings)
    fleet = Fleet([bus, taxi], tick_s=0.1)
    fleet.start()
    try:
        await fleet.wait_online(2, timeout=30)
        assert taxi.key is not None and len(taxi.key) == 16  # issued at REGISTER
        bus.report(location_record(START, 39.50, 106.72, speed_kmh=30))
        await eventually(lambda: bus.stats.acks == 1)
        await bus.stop()  # out of coverage: the records are kept
        for i in range(15):
            bus.report(location_record(START + timedelta(seconds=30 * (i + 1)), 39.50 + i / 1000, 106.72, speed_kmh=30))
        bus.start()
        # The 15 kept records go as two buffered batches, each acknowledged once.
        await eventually(lambda: bus.unacknowledged == 0 and bus.stats.acks == 3)
    finally:
        await fleet.stop()
    rows = await database.execute_fetchall("SELECT count(*) FROM vehicle_track WHERE plate = ?", (BUS,))
    assert rows[0][0] == 16
    batches = await database.execute_fetchall("SELECT count(*) FROM messages WHERE protocol = 'jt808' AND type = 'BATCH'")
    assert batches[0][0] == 2


async def test_demo_traffic_fills_at_stations_and_plays_its_incidents(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from conftest import import_census

    from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
    from wuhai_iot.simulator.city import City
    from wuhai_iot.storage import db

    census = generate_census(CensusSize(lifts=2, stations=4, cylinders=200, vehicles=40))
    await import_census(config.database.path, write_census(census, tmp_path / "census"))
    notes: list[str] = []
    async with Platform(config) as running:
        city = City(census, "127.0.0.1", running.ports, cycle_s=30.0, say=notes.append)
        kinds: set[str] = set()
        denied: list[tuple] = []  # type: ignore[type-arg]
        conn = await db.connect(config.database.path, migrate=False)
        wanted = {"illegal_fill", "unrecorded_fill", "gas_leak", "collision", "cylinder_mismatch",
                  "certificate_invalid_on_road"}  # fmt: skip
        try:
            await city.start(connect_timeout_s=30)
            deadline = asyncio.get_running_loop().time() + 120
            while not (wanted <= kinds and denied) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.2)
                kinds = {row[0] for row in await conn.execute_fetchall("SELECT kind FROM alarms WHERE plate IS NOT NULL")}
                denied = await conn.execute_fetchall("SELECT 1 FROM fill_decisions WHERE reason = 12")
        finally:
            await conn.close()
            await city.stop()
    assert wanted <= kinds and denied, (wanted - kinds, len(denied), notes[-20:])
    assert any("collides" in note for note in notes) and any("roadside" in note for note in notes)


async def test_load_generator_speaks_jt808(platform: Platform, database: aiosqlite.Connection) -> None:
    from vehicle_support import SCENARIO

    from wuhai_iot.simulator.load import identities, run_load

    terminals = identities("jt808", 3, SCENARIO)
    report = await run_load("jt808", terminals, "127.0.0.1", platform.ports["jt808"], rate=4, duration_s=1.0)
    assert report.online == 3 and report.errors == 0 and report.rejected == 0
    assert report.acks == report.messages >= 9
    stored = await database.execute_fetchall("SELECT count(*) FROM messages WHERE protocol = 'jt808' AND type = 'LOCATION'")
    assert stored[0][0] == report.messages


async def test_terminals_registering_at_once_each_log_in_with_the_code_they_were_given(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Many REGISTERs and AUTHENTICATEs at once: each answer gives the code kept, and the login with it is
    accepted (the code was once missed while another coroutine's read held an older snapshot)."""
    from conftest import import_census

    from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
    from wuhai_iot.simulator.load import identities, run_load

    census = generate_census(CensusSize(lifts=1, stations=1, cylinders=10, vehicles=150))
    files = write_census(census, tmp_path / "census")
    await import_census(config.database.path, files)
    terminals = identities("jt808", 120, files[0].parent)
    registering = sum(1 for terminal in terminals if terminal.key is None)
    assert registering >= 10
    async with Platform(config) as running:
        report = await run_load("jt808", terminals, "127.0.0.1", running.ports["jt808"], rate=1, duration_s=0.5)
    assert (report.online, report.errors, report.rejected) == (120, 0, 0)


REGISTERING_FLEET = 1500
"""Terminals that REGISTER and AUTHENTICATE at once (a fleet coming back after a restart of the platform, its
codes forgotten), in a registry of REGISTRY_VEHICLES vehicles (the benchmark's for 10,000 terminals)."""
REGISTRY_VEHICLES = 12_000
LOGIN_WAIT_S = 10.0
"""How long a terminal waits for the answers to its REGISTER and AUTHENTICATE before it hangs up (the
simulator's default): generous for a platform that answers each in milliseconds."""
FLEET_ONLINE_WITHIN_S = 120.0
"""How long the whole fleet may take to be online (it takes a few seconds)."""


async def test_a_fleet_registering_at_once_is_answered_before_its_terminals_give_up(
    config: Config, tmp_path: Path
) -> None:
    """Every terminal gets its code and its AUTHENTICATE answered 0 at its first connection. The REGISTERs
    were read on the reader thread, each reading every vehicle for its plate (8 ms with 12,000 vehicles): a
    fleet's queued up behind each other for longer than its terminals wait, those that gave up came back and
    queued again (here: 21 of 1,500 online after two minutes, 9,817 login timeouts; the benchmark's 10,000
    terminals: 7,288 online, 18,984 login errors)."""
    from conftest import import_census

    from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
    from wuhai_iot.simulator.load import identities, raise_open_file_limit

    raise_open_file_limit(2 * REGISTERING_FLEET + 256)
    census = generate_census(CensusSize(lifts=1, stations=1, cylinders=10, vehicles=REGISTRY_VEHICLES))
    files = write_census(census, tmp_path / "census")
    await import_census(config.database.path, files)
    async with Platform(config) as running:
        settings, stats = DeviceSettings(login_timeout_s=LOGIN_WAIT_S), DeviceStats()
        terminals = [
            VehicleTerminal(identity.terminal_id, None, "127.0.0.1", running.ports["jt808"], plate=identity.plate,
                            settings=settings, stats=stats)  # fmt: skip
            for identity in identities("jt808", REGISTERING_FLEET, files[0].parent)
        ]
        fleet = Fleet(terminals, connect_rate=0)  # (all at once)
        fleet.start()
        try:
            online = await fleet.wait_online(timeout=FLEET_ONLINE_WITHIN_S)
        finally:
            await fleet.stop()
        assert (online, stats.connects, stats.logins_refused, stats.login_timeouts) == (REGISTERING_FLEET,) * 2 + (0, 0)
        codes = dict(await running.reader.execute_fetchall(
            "SELECT terminal_id, coalesce(nullif(key, ''), issued_key) FROM terminals WHERE protocol = 'jt808'"
            " AND registered_at IS NOT NULL"
        ))  # fmt: skip
    assert codes == {terminal.terminal_id: terminal.key for terminal in terminals}
