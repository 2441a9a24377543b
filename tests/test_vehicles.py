"""Vehicle terminals end to end over real sockets: REGISTER results, authentication codes, track storage,
current position, and every vehicle alarm replayed live and as a buffered 0x0704 batch with the exact
alarm times; a collision blocks the vehicle's cylinders (fill reason 12) until an inspection is recorded."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest
from filling_support import CNG_STATION, Controller
from test_filling_decision import cli
from vehicle_support import (
    BUS,
    BUS_CODE,
    BUS_PHONE,
    OLD_TAXI,
    OLD_TAXI_PHONE,
    ROADSIDE,
    STATION,
    TAGS,
    TAXI,
    TAXI_PHONE,
    VehicleTerminal,
    platform,  # noqa: F401 - the fixture
    record,
)

from wuhai_iot.clock import cst_today
from wuhai_iot.protocols import jt808 as j
from wuhai_iot.server import Platform
from wuhai_iot.vehicles import registry as reg
from wuhai_iot.vehicles.monitor import vehicle_monitor

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
"""Device times of the scenarios: in the past, so that every waiting window has passed."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def alarms(database: aiosqlite.Connection, plate: str) -> list[tuple[str, datetime, datetime | None]]:
    rows = await database.execute_fetchall(
        "SELECT kind, raised_at, cleared_at FROM alarms WHERE plate = ? ORDER BY id", (plate,)
    )
    return [(row[0], datetime.fromtimestamp(row[1], UTC), datetime.fromtimestamp(row[2], UTC) if row[2] else None)
            for row in rows]  # fmt: skip


async def eventually(check, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.02)
        return result


# --- registration and authentication ---


async def test_register_results(platform: Platform) -> None:
    terminal = await VehicleTerminal.connect(platform, BUS_PHONE, code=None)
    try:
        assert await terminal.register("蒙L99999") == (reg.VEHICLE_UNKNOWN, "")
        assert await terminal.register(TAXI) == (reg.TERMINAL_TAKEN, "")
        assert await terminal.register(BUS) == (0, BUS_CODE)  # the census key is the code
        assert await terminal.authenticate(BUS_CODE) == j.OK
    finally:
        await terminal.close()
    stranger = await VehicleTerminal.connect(platform, "013999999999", code=None)
    try:
        assert await stranger.register(BUS) == (reg.TERMINAL_UNKNOWN, "")
    finally:
        await stranger.close()


async def test_code_issued_at_register_is_kept_and_a_plate_is_bound_to_one_terminal(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    taxi = await VehicleTerminal.connect(platform, TAXI_PHONE, code=None)
    result, code = await taxi.register("蒙L T2345")  # spelled with a space: the same plate
    assert result == 0 and len(code) == 16
    assert await taxi.register(TAXI) == (0, code)  # the same code again
    assert await taxi.authenticate("WRONG") == j.FAILED
    assert await taxi.client.closed_by_platform()
    taxi = await VehicleTerminal.connect(platform, TAXI_PHONE, code=code)
    await taxi.close()
    # A second terminal for the taxi (a census row names it) finds the plate bound.
    await database.execute("INSERT INTO terminals (protocol, terminal_id, plate, updated_at) VALUES"
                           " ('jt808', '013900000009', ?, '2026-12-01')", (TAXI,))  # fmt: skip
    await database.commit()
    second = await VehicleTerminal.connect(platform, "013900000009", code=None)
    try:
        assert await second.register(TAXI) == (reg.VEHICLE_TAKEN, "")
    finally:
        await second.close()


async def test_unregister_forgets_the_issued_code(platform: Platform) -> None:
    taxi = await VehicleTerminal.connect(platform, TAXI_PHONE, code=None)
    _, code = await taxi.register(TAXI)
    assert await taxi.authenticate(code) == j.OK
    assert await taxi.response(await taxi.send(j.UNREGISTER, b""), j.UNREGISTER) == j.OK
    await taxi.close()
    again = await VehicleTerminal.connect(platform, TAXI_PHONE, code=None)
    try:
        assert await again.authenticate(code) == j.FAILED
    finally:
        await again.close()


async def test_messages_before_authentication_are_refused_and_not_stored(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    terminal = await VehicleTerminal.connect(platform, BUS_PHONE, code=None)
    try:
        serial = await terminal.send(j.LOCATION, record(at(0)))
        assert await terminal.response(serial, j.LOCATION) == j.FAILED
    finally:
        await terminal.close()
    assert await database.execute_fetchall("SELECT 1 FROM vehicle_track") == []


async def test_2019_terminal(platform: Platform, database: aiosqlite.Connection) -> None:
    terminal = await VehicleTerminal.connect(platform, OLD_TAXI_PHONE, code=None)
    try:
        result, code = await terminal.register(OLD_TAXI)
        assert result == 0
        assert await terminal.authenticate(code) == j.OK
        await terminal.report([record(at(0), speed_kmh=20)])
    finally:
        await terminal.close()
    [row] = await database.execute_fetchall("SELECT terminal_id, speed_kmh FROM vehicle_state WHERE plate = ?", (OLD_TAXI,))
    assert tuple(row) == (OLD_TAXI_PHONE, 20.0)


# --- storage ---


async def test_track_current_position_resends_and_daily_figures(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(60), (39.50, 106.72), speed_kmh=36, pressure_mpa=18.0)])
        # Buffered records from before it, sent later: stored, but the current position stays the newest.
        await terminal.report([record(at(0), (39.49, 106.72), speed_kmh=36, pressure_mpa=18.5),
                               record(at(30), (39.495, 106.72), speed_kmh=36)], buffered=True)  # fmt: skip
        # A resend (same serial, same record) is answered again and stored once.
        frame = j.encode_frame(j.LOCATION, BUS_PHONE, terminal.serial, record(at(90), (39.51, 106.72), speed_kmh=36))
        for _ in range(2):
            await terminal.client.send(frame)
            assert await terminal.response(terminal.serial, j.LOCATION) == j.OK
    finally:
        await terminal.close()
    points = await database.execute_fetchall("SELECT at, latitude FROM vehicle_track WHERE plate = ? ORDER BY at", (BUS,))
    assert [(datetime.fromtimestamp(p[0], UTC), p[1]) for p in points] == [
        (at(0), 39.49), (at(30), 39.495), (at(60), 39.50), (at(90), 39.51)
    ]
    [state] = await database.execute_fetchall("SELECT at, latitude FROM vehicle_state WHERE plate = ?", (BUS,))
    assert (datetime.fromtimestamp(state[0], UTC), state[1]) == (at(90), 39.51)
    stored = await database.execute_fetchall("SELECT count(*) FROM messages WHERE protocol = 'jt808' AND type = 'LOCATION'")
    assert stored[0][0] == 2
    [daily] = await database.execute_fetchall(
        "SELECT sum(records), round(sum(distance_km), 2), max(max_pressure_mpa) FROM vehicle_daily WHERE plate = ?", (BUS,)
    )
    # The batch came after the record at 60 s: its records count, but the distance runs 60 s → 90 s only.
    assert tuple(daily) == (4, 1.11, 18.5)


async def test_split_batch_is_stored_once_whole(platform: Platform, database: aiosqlite.Connection) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        body = j.batch_body([record(at(i * 30), speed_kmh=30, tags=(TAGS["CNG-BUS-0201"],)) for i in range(40)])
        packets = j.encode_split(j.BATCH, BUS_PHONE, terminal.serial + 1, body, packet_size=600)
        terminal.serial += len(packets)
        for packet in packets:
            await terminal.client.send(packet)
        for number in range(len(packets)):
            serial = terminal.serial - len(packets) + 1 + number
            assert await terminal.response(serial, j.BATCH) == j.OK
    finally:
        await terminal.close()
    count = await database.execute_fetchall("SELECT count(*) FROM vehicle_track WHERE plate = ?", (BUS,))
    assert count[0][0] == 40


# --- the alarms, live and buffered ---

MODES = pytest.mark.parametrize("buffered", [False, True], ids=["live", "batch"])


@MODES
async def test_gas_leak(platform: Platform, database: aiosqlite.Connection, buffered: bool) -> None:
    readings = [(0, 0.0), (30, 12.0), (60, 12.5), (90, 15.0), (120, 3.0), (150, 2.0), (180, 1.0), (200, 0.5)]
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(t), gas_lel_pct=gas) for t, gas in readings], buffered=buffered)
        # 20 % in one record is enough; a sensor fault (0xFFFF) is never compared.
        await terminal.report([record(at(300), gas_lel_pct=-1), record(at(330), gas_lel_pct=21.0)], buffered=buffered)
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == [("gas_leak", at(60), at(180)), ("gas_leak", at(330), None)]


@MODES
async def test_cylinder_overpressure(platform: Platform, database: aiosqlite.Connection, buffered: bool) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        records = [record(at(0), pressure_mpa=21.9), record(at(30), pressure_mpa=22.4),
                   record(at(60), pressure_mpa=-1), record(at(90), pressure_mpa=21.0)]  # fmt: skip
        await terminal.report(records, buffered=buffered)
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == [("cylinder_overpressure", at(30), at(90))]


@MODES
async def test_illegal_fill_away_from_a_station(platform: Platform, database: aiosqlite.Connection, buffered: bool) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        records = [record(at(0), pressure_mpa=8.0, speed_kmh=40), record(at(60), pressure_mpa=8.0),
                   record(at(360), pressure_mpa=9.5), record(at(660), pressure_mpa=11.0),
                   record(at(900), pressure_mpa=11.2, speed_kmh=40)]  # fmt: skip
        await terminal.report(records, buffered=buffered)
    finally:
        await terminal.close()
    [(kind, raised, cleared)] = await alarms(database, BUS)
    assert (kind, raised, cleared) == ("illegal_fill", at(660), at(660))  # 8.0 → 11.0 MPa while parked
    [daily] = await database.execute_fetchall("SELECT sum(fills_seen) FROM vehicle_daily WHERE plate = ?", (BUS,))
    assert daily[0] == 1


@MODES
async def test_a_fill_over_several_records_is_one_fill(
    platform: Platform, database: aiosqlite.Connection, buffered: bool
) -> None:
    """A CNG fill takes minutes: reported every 30 s, its pressure rises over many records. One fill, one
    alarm (when the rise reached 2 MPa); the next fill, after driving, is another. At a station, the
    FILL_RESULT is awaited until 30 min after the fill's last rise."""
    rising = [5.0, 6.5, 8.0, 9.5, 11.0, 12.5, 14.0, 15.5, 17.0, 18.5, 20.0]
    terminal = await VehicleTerminal.connect(platform)
    try:
        records = [record(at(30 * i), pressure_mpa=p, speed_kmh=0) for i, p in enumerate(rising)]
        records += [record(at(330), pressure_mpa=20.0), record(at(600), pressure_mpa=19.0, speed_kmh=40),
                    record(at(900), pressure_mpa=6.0, speed_kmh=0), record(at(930), pressure_mpa=9.0)]  # fmt: skip
        records += [record(at(2000 + 30 * i), STATION, pressure_mpa=p, speed_kmh=0) for i, p in enumerate(rising)]
        await terminal.report(records, buffered=buffered)
    finally:
        await terminal.close()
    await vehicle_monitor(platform).advance()
    assert await alarms(database, BUS) == [
        ("illegal_fill", at(60), at(60)), ("illegal_fill", at(930), at(930)),  # 5.0 → 8.0 MPa; 6.0 → 9.0 MPa
        ("unrecorded_fill", at(2000 + 300 + 1800), at(2000 + 300 + 1800)),  # the last rise at 2000 + 300 s
    ]  # fmt: skip
    [daily] = await database.execute_fetchall("SELECT sum(fills_seen) FROM vehicle_daily WHERE plate = ?", (BUS,))
    assert daily[0] == 3


@MODES
async def test_fill_at_a_station_without_its_fill_result(
    platform: Platform, database: aiosqlite.Connection, buffered: bool
) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(0), STATION, pressure_mpa=6.0), record(at(300), STATION, pressure_mpa=19.5)],
                              buffered=buffered)  # fmt: skip
    finally:
        await terminal.close()
    await vehicle_monitor(platform).advance()
    assert await alarms(database, BUS) == [("unrecorded_fill", at(300 + 1800), at(300 + 1800))]


async def test_fill_at_a_station_with_its_fill_result_raises_nothing(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    controller = await Controller.connect(platform, CNG_STATION)
    try:
        decision = await controller.request("CNG-BUS-0201", 65_000, medium="CNG", tag=TAGS["CNG-BUS-0201"])
        assert decision.permit
        body = controller.result_frame_body("CNG-OK-0101", decision.request_seq, 65_000, 75_000,
                                            ended_at=int(at(280).timestamp()))  # fmt: skip
        body = body.replace(bytes.fromhex(TAGS["CNG-OK-0101"]), bytes.fromhex(TAGS["CNG-BUS-0201"]))
        assert await controller.ack(await controller.send(0x11, body)) == 0
    finally:
        await controller.close()
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(0), STATION, pressure_mpa=6.0), record(at(300), STATION, pressure_mpa=19.5)])
    finally:
        await terminal.close()
    monitor = vehicle_monitor(platform)
    await monitor.advance()
    assert monitor.rules.states[BUS].pending == []  # checked, and found
    assert await alarms(database, BUS) == []


@MODES
async def test_collision_blocks_the_cylinders_until_an_inspection(
    platform: Platform, database: aiosqlite.Connection, buffered: bool, tmp_path: Path
) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        records = [record(at(0), speed_kmh=50), record(at(30), alarm_flags=1 << 29), record(at(60), alarm_flags=1 << 29),
                   record(at(90))]  # fmt: skip
        await terminal.report(records, buffered=buffered)
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == [("collision", at(30), at(90))]
    controller = await Controller.connect(platform, CNG_STATION)
    try:
        denied = await controller.request("CNG-BUS-0202", 65_000, medium="CNG", tag=TAGS["CNG-BUS-0202"])
        assert (denied.permit, denied.reason, denied.cylinder_code) == (False, 12, "CNG-BUS-0202")
        config_file = tmp_path / "wuhai-iot.toml"
        config_file.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
        today = cst_today().isoformat()
        assert await cli(config_file, "cylinders", "inspected", "CNG-BUS-0202", "--date", today) == (
            0, f"cylinder CNG-BUS-0202: inspected on {today}\n"
        )  # fmt: skip
        assert (await cli(config_file, "cylinders", "inspected", "NO-SUCH", "--date", today))[0] == 1
        tomorrow = (cst_today() + timedelta(days=1)).isoformat()
        assert (await cli(config_file, "cylinders", "inspected", "CNG-BUS-0201", "--date", tomorrow))[0] == 3
        permitted = await controller.request("CNG-BUS-0202", 65_000, medium="CNG", tag=TAGS["CNG-BUS-0202"])
        assert permitted.permit
        still = await controller.request("CNG-BUS-0201", 65_000, medium="CNG", tag=TAGS["CNG-BUS-0201"])
        assert still.reason == 12  # the other cylinder was not inspected
    finally:
        await controller.close()
    [entry] = await database.execute_fetchall(
        "SELECT user_name, action, object_id FROM audit_log WHERE object_type = 'cylinder' ORDER BY id DESC LIMIT 1"
    )
    assert entry[0].startswith("cli:") and tuple(entry[1:]) == ("cylinder.inspected", "CNG-BUS-0202")


@MODES
async def test_cylinder_mismatch(platform: Platform, database: aiosqlite.Connection, buffered: bool) -> None:
    own = (TAGS["CNG-BUS-0201"], TAGS["CNG-BUS-0202"])
    week = 7 * 86400
    start = -week - 600  # (a device time ahead of the platform's clock would be impossible: dated on receipt)
    terminal = await VehicleTerminal.connect(platform)
    try:
        records = [record(at(start), tags=own), record(at(start + 30), tags=(TAGS["CNG-BUS-0201"], TAGS["CNG-OK-0101"])),
                   record(at(start + 60), tags=own),
                   record(at(start + 90), tags=("E2000000000000000000FFFF",)),  # a tag of no registered cylinder
                   record(at(start + 120), tags=own)]  # fmt: skip
        await terminal.report(records, buffered=buffered)
        # A registered cylinder unseen for 7 days while the reader reports the other one.
        await terminal.report([record(at(start + week + 60), tags=(TAGS["CNG-BUS-0201"],)),
                               record(at(start + week + 200), tags=(TAGS["CNG-BUS-0201"],))], buffered=buffered)  # fmt: skip
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == [
        ("cylinder_mismatch", at(start + 30), at(start + 60)), ("cylinder_mismatch", at(start + 90), at(start + 120)),
        ("cylinder_mismatch", at(start + week + 200), None),  # CNG-BUS-0202 was last seen at start + 120 s
    ]  # fmt: skip


async def test_cylinder_mismatch_names_every_foreign_tag(platform: Platform, database: aiosqlite.Connection) -> None:
    """Each tag that is not the vehicle's own is named in the alarm: another vehicle's cylinder (held in
    memory), a cylinder of no vehicle (a household one: a point read, not held) and a tag of no cylinder."""
    household_code, household_tag = (await (await database.execute(
        "SELECT cylinder_code, tag_uid FROM cylinders WHERE vehicle_plate IS NULL AND tag_uid IS NOT NULL LIMIT 1"
    )).fetchone())  # fmt: skip
    other_plate = (await (await database.execute(
        "SELECT vehicle_plate FROM cylinders WHERE cylinder_code = 'CNG-OK-0101'")).fetchone())[0]  # fmt: skip
    assert household_tag not in vehicle_monitor(platform).rules.fleet.vehicle_tags
    unknown = "E2000000000000000000FFFF"
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(-600), tags=(TAGS["CNG-BUS-0201"], TAGS["CNG-BUS-0202"], TAGS["CNG-OK-0101"],
                                                       household_tag, unknown))])  # fmt: skip
    finally:
        await terminal.close()
    detail = (await (await database.execute(
        "SELECT detail FROM alarms WHERE plate = ? AND kind = 'cylinder_mismatch'", (BUS,))).fetchone())[0]  # fmt: skip
    assert json.loads(detail)["foreign_tags"] == {
        TAGS["CNG-OK-0101"]: f"CNG-OK-0101 ({other_plate})", household_tag: f"{household_code} (无车辆)", unknown: "未登记",
    }  # fmt: skip


@MODES
async def test_uncertified_vehicle_on_the_road_once_a_day(
    platform: Platform, database: aiosqlite.Connection, buffered: bool
) -> None:
    taxi = await VehicleTerminal.connect(platform, TAXI_PHONE, code=None)
    _, code = await taxi.register(TAXI)
    assert await taxi.authenticate(code) == j.OK
    try:
        day = -86400  # (the next day's record must not be ahead of the platform's clock)
        records = [record(at(day), speed_kmh=8), record(at(day + 30), speed_kmh=35), record(at(day + 60), speed_kmh=40),
                   record(at(30), speed_kmh=35)]  # fmt: skip
        await taxi.report(records, buffered=buffered)
    finally:
        await taxi.close()
    assert await alarms(database, TAXI) == [
        ("certificate_invalid_on_road", at(-86400 + 30), at(-86400 + 30)), ("certificate_invalid_on_road", at(30), at(30)),
    ]  # fmt: skip


async def _silent_for_25_hours(platform: Platform, database: aiosqlite.Connection, last_record: datetime) -> int:
    """The bus reports once (its record dated ``last_record``) and falls silent; the platform clock runs 25 h:
    ``offline`` is raised 24 h after the last frame was received. Returns the alarm's id."""
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(last_record)])
    finally:
        await terminal.close()
    monitor = vehicle_monitor(platform)
    last_frame = monitor.rules.states[BUS].last_frame
    await monitor.advance(datetime.fromtimestamp(last_frame, UTC) + timedelta(hours=23))
    assert await alarms(database, BUS) == []
    await monitor.advance(datetime.fromtimestamp(last_frame, UTC) + timedelta(hours=25))
    [(kind, raised, cleared)] = await alarms(database, BUS)
    assert (kind, raised, cleared) == ("offline", datetime.fromtimestamp(last_frame + 86400, UTC), None)
    [(alarm_id,)] = await database.execute_fetchall("SELECT id FROM alarms WHERE plate = ?", (BUS,))
    return int(alarm_id)


async def _status(database: aiosqlite.Connection, alarm_id: int) -> tuple[str, str, str | None]:
    [row] = await database.execute_fetchall("SELECT condition, status, resolved_by FROM alarms WHERE id = ?", (alarm_id,))
    return row[0], row[1], row[2]


async def test_offline_after_24_hours_and_back(platform: Platform, database: aiosqlite.Connection) -> None:
    """Back after a real silence (its next record dated more than 24 h after the last on its own clock): the
    alarm clears and waits for staff to handle it."""
    alarm_id = await _silent_for_25_hours(platform, database, at(-30 * 3600))
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(0))])
    finally:
        await terminal.close()
    assert await _status(database, alarm_id) == ("cleared", "raised", None)


async def test_offline_undone_by_records_buffered_inside_the_wait(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    """The platform heard nothing for 25 h, but the terminal's next message is a 0x0704 batch of records dated
    10 min after its last one (its network was down, it kept recording): sent live, the same records would have
    raised nothing, so the alarm is undone, resolved by the platform (docs/time.md)."""
    alarm_id = await _silent_for_25_hours(platform, database, at(0))
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(600)), record(at(630))], buffered=True)
    finally:
        await terminal.close()
    assert await _status(database, alarm_id) == ("cleared", "resolved", "platform")


async def test_out_of_order_record_changes_no_alarm(platform: Platform, database: aiosqlite.Connection) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(100), gas_lel_pct=0.0)])
        await terminal.report([record(at(50), gas_lel_pct=25.0)], buffered=True)  # older than the newest
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == []
    assert len(await database.execute_fetchall("SELECT 1 FROM vehicle_track WHERE plate = ?", (BUS,))) == 2


@MODES
async def test_an_alarm_report_within_the_second_of_the_previous_report_counts(
    platform: Platform, database: aiosqlite.Connection, buffered: bool
) -> None:
    """A terminal reports at once when an alarm bit changes, often within the second of its periodic report
    (device times have whole seconds): that record is not out of order."""
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(0), speed_kmh=40), record(at(0), speed_kmh=0, alarm_flags=1 << 29),
                               record(at(30)), record(at(30), gas_lel_pct=25.0)], buffered=buffered)  # fmt: skip
    finally:
        await terminal.close()
    assert await alarms(database, BUS) == [("collision", at(0), at(30)), ("gas_leak", at(30), None)]
    track = await database.execute_fetchall("SELECT at, alarm_flags FROM vehicle_track WHERE plate = ? ORDER BY at", (BUS,))
    assert [tuple(row) for row in track] == [(at(0).timestamp(), 1 << 29), (at(30).timestamp(), 0)]


async def test_track_retention_in_small_steps(platform: Platform, database: aiosqlite.Connection) -> None:
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([record(at(0)), record(at(30))])
    finally:
        await terminal.close()
    monitor = vehicle_monitor(platform)
    later = at(30) + timedelta(days=8)
    visited = 0
    while (plates := await monitor.prune_step(later)) or not visited:  # (a round the pruner began may end first)
        visited += plates
    assert await database.execute_fetchall("SELECT 1 FROM vehicle_track") == []
    assert len(await database.execute_fetchall("SELECT 1 FROM vehicle_daily WHERE plate = ?", (BUS,))) == 1


# --- the census ---


async def test_census_binds_jt808_terminals_by_plate(platform: Platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from wuhai_iot.registry.census import import_files

    path = tmp_path / "terminals.csv"
    path.write_text(
        "protocol,terminal_id,device_code,key,installed_on,plate\n"
        "jt808,013900000010,,,2026-11-20,蒙L·T1234\n"
        "jt808,013900000011,,,2026-11-20,\n"
        "jt808,013900000012,,,2026-11-20,蒙L00000\n"
        "jt808,0139000000,,,2026-11-20,蒙L·T1234\n"
        "elink,8613000100020099,31101503022012000101,,2026-11-20,蒙L·T1234\n",
        encoding="utf-8",
    )
    conn = await platform.open_database()
    try:
        [report] = await import_files(conn, [path])
    finally:
        await conn.close()
    assert report.added == 1
    assert [(r.line, r.column, r.reason) for r in report.rejected] == [
        (3, "plate", "required for a jt808 terminal (the vehicle it rides in)"),
        (4, "plate", "vehicle 蒙L00000 is not registered"),
        (5, "terminal_id", "'0139000000' is not a JT/T 808 phone number (12 or 20 digits)"),
        (6, "plate", "elink terminals are installed on a lift, not a vehicle"),
    ]
