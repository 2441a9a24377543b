"""Simulated terminals against the real platform on loopback: LOGIN, ACKs, buffering, resends, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import import_census

from wuhai_iot import events as ev
from wuhai_iot.cli import main
from wuhai_iot.config import Config
from wuhai_iot.protocols.elink import ElinkProtocol
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import Census, CensusSize, generate_census, write_census
from wuhai_iot.simulator.device import DeviceSettings, Fleet
from wuhai_iot.simulator.elink import ElinkTerminal
from wuhai_iot.simulator.gasfill import GasfillController
from wuhai_iot.simulator.lift_terminal import LiftSample
from wuhai_iot.simulator.lmt import LmtTerminal
from wuhai_iot.simulator.load import identities, run_load
from wuhai_iot.storage import db

FAST = DeviceSettings(backoff_initial_s=0.05, backoff_max_s=0.2, refused_retry_s=0.2)


@pytest.fixture
def census(tmp_path: Path) -> tuple[Census, Path]:
    rows = generate_census(CensusSize(lifts=12, stations=3, cylinders=200, vehicles=10, seed=5))
    directory = tmp_path / "census"
    write_census(rows, directory)
    return rows, directory


@pytest.fixture
async def city(config: Config, census: tuple[Census, Path]) -> AsyncIterator[Platform]:
    await import_census(config.database.path, sorted(census[1].glob("*.csv")))
    async with Platform(config) as running:
        yield running


def terminal(census: Census, protocol: str) -> dict[str, str]:
    return next(row for row in census["terminals"] if row["protocol"] == protocol)


def devices(census: Census, platform: Platform, settings: DeviceSettings = FAST) -> tuple[ElinkTerminal, LmtTerminal, GasfillController]:
    made = []
    for protocol, cls in (("elink", ElinkTerminal), ("lmt", LmtTerminal), ("gasfill", GasfillController)):
        row = terminal(census, protocol)
        made.append(cls(row["terminal_id"], row["key"], "127.0.0.1", platform.ports[protocol], settings=settings))
    return tuple(made)  # type: ignore[return-value]


async def stored(config: Config, sql: str, *params: object) -> list[tuple]:
    conn = await db.connect(config.database.path, migrate=False)
    try:
        return [tuple(row) for row in await (await conn.execute(sql, params)).fetchall()]
    finally:
        await conn.close()


async def eventually(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_all_three_protocols_log_in_with_their_keys_and_get_answers(
    city: Platform, census: tuple[Census, Path], config: Config
) -> None:
    rows, _ = census
    elink, lmt, gasfill = devices(rows, city)
    fleet = Fleet([elink, lmt, gasfill], tick_s=0.1)
    fleet.start()
    try:
        assert await fleet.wait_online(timeout=10) == 3
        for lift in (elink, lmt):
            lift.send_status(LiftSample(floor=-1, direction=ev.Direction.UP, running=True, speed_mps=1.0))
            lift.send_fault("trapped", True, floor=3)
            lift.send_maintenance_start(100001)
        station = str(gasfill.station)
        cylinder = next(c for c in rows["cylinders"] if c["owner_station"] == station and c["tag_uid"]
                        and c["status"] == "in_service" and c["next_inspection"] > "2027")  # fmt: skip
        operator = next(int(w["card"]) for w in rows["workers"] if w["unit"] == station)
        info = await gasfill.query_tag(cylinder["tag_uid"])
        assert info is not None and info.found and info.cylinder_code == cylinder["cylinder_code"]
        seq, decision = await gasfill.request_fill("00112233445566FF", 14_000, operator, "LPG")
        assert decision is not None and not decision.permit and decision.reason == 1
        gasfill.send_fill_result(seq, cylinder["tag_uid"], 14_000, 14_000, 5, 1)
        await eventually(lambda: elink.stats.acks == 3 and lmt.stats.acks == 3 and gasfill.stats.acks == 1)
        assert elink.unacknowledged == lmt.unacknowledged == gasfill.unacknowledged == 0
        assert elink.stats.errors == lmt.stats.errors == gasfill.stats.errors == 0
    finally:
        await fleet.stop()
    types = await stored(config, "SELECT protocol, type, count(*) FROM messages GROUP BY 1, 2 ORDER BY 1, 2")
    assert types == [("elink", "FAULT", 1), ("elink", "MAINT_START", 1), ("elink", "STATUS", 1),
                     ("gasfill", "FILL_RESULT", 1), ("lmt", "EV", 1), ("lmt", "MS", 1), ("lmt", "ST", 1)]  # fmt: skip


async def test_messages_sent_while_the_platform_is_down_arrive_once_after_it_restarts(
    census: tuple[Census, Path], config: Config
) -> None:
    rows, directory = census
    await import_census(config.database.path, sorted(directory.glob("*.csv")))
    first = Platform(config)
    await first.start()
    elink, lmt, gasfill = devices(rows, first)
    fleet = Fleet([elink, lmt, gasfill], tick_s=0.1)
    fleet.start()
    try:
        assert await fleet.wait_online(timeout=10) == 3
        elink.send_status(LiftSample(floor=1))
        lmt.send_status(LiftSample(floor=1))
        await eventually(lambda: elink.stats.acks == 1 and lmt.stats.acks == 1)
        for name, port in first.ports.items():
            if name != "web":
                config.protocols[name].port = port
        await first.stop()
        await eventually(lambda: fleet.online() == 0)

        for floor in range(130):  # more than two STATUS_BATCHes' worth of samples
            elink.send_status(LiftSample(floor=floor % 20, running=True, speed_mps=1.0, trip_count=floor))
        elink.send_fault("power_lost", True)
        for floor in range(5):
            lmt.send_status(LiftSample(floor=floor))
        lmt.send_fault("TRAP_X", True)  # an unknown vendor word travels as it is
        for number in range(300):  # more than 256: the 8-bit sequence wraps while they wait
            gasfill.send_fill_result(number % 256, "E004015000000001", 14_000, 28_000 + number, 90, 0)
        assert (elink.unacknowledged, lmt.unacknowledged, gasfill.unacknowledged) == (131, 6, 300)

        sent_before = sum(device.stats.frames_sent for device in (elink, lmt, gasfill))
        async with Platform(config) as second:
            await eventually(lambda: elink.unacknowledged == lmt.unacknowledged == gasfill.unacknowledged == 0)
            # Any late duplicate is stored once the platform has read every frame sent to it and the writer
            # has committed what it had queued by then.
            await eventually(lambda: sum(listener.counters.frames_in for listener in second.listeners.values())
                             == sum(device.stats.frames_sent for device in (elink, lmt, gasfill)) - sent_before)
            await second.writer.write([])
    finally:
        await fleet.stop()
    counts = dict(
        ((protocol, type_), n)
        for protocol, type_, n in await stored(config, "SELECT protocol, type, count(*) FROM messages GROUP BY 1, 2")
    )
    assert counts == {("elink", "STATUS"): 1, ("elink", "STATUS_BATCH"): 3, ("elink", "FAULT"): 1,
                      ("lmt", "ST"): 6, ("lmt", "EV"): 1, ("gasfill", "FILL_RESULT"): 300}  # fmt: skip
    batches = await stored(config, "SELECT frame FROM messages WHERE type = 'STATUS_BATCH' ORDER BY seq")
    samples = [ElinkProtocol().decode(frame, datetime.now(UTC)).events for (frame,) in batches]
    assert [len(batch) for batch in samples] == [60, 60, 10]
    assert [s.trip_count for batch in samples for s in batch] == list(range(130))  # type: ignore[attr-defined]
    assert elink.stats.dropped == 0


async def test_an_unacknowledged_message_is_resent_unchanged_on_the_same_connection() -> None:
    """A platform stand-in that answers LOGIN but ignores the first copy of every other frame."""
    protocol = ElinkProtocol()
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = protocol.new_framer()
        while data := await reader.read(65536):
            for frame in framer.feed(data):
                message = protocol.decode(frame, datetime.now(UTC))  # type: ignore[arg-type]
                if message.type != "LOGIN":
                    received.append(frame)  # type: ignore[arg-type]
                    if received.count(frame) == 1:  # type: ignore[arg-type]
                        continue
                writer.write(protocol.encode_reply(message, ev.Ack(ev.AckResult.ACCEPTED, datetime.now(UTC)),
                                                   0, datetime.now(UTC)))  # fmt: skip

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    device = ElinkTerminal("8613000100020003", "kkkkkkkkkkkkkkkk", "127.0.0.1", port,
                           settings=DeviceSettings(resend_after_s=0.3))  # fmt: skip
    fleet = Fleet([device], tick_s=0.05)
    fleet.start()
    try:
        await fleet.wait_online(timeout=5)
        device.send_status(LiftSample(floor=7))
        device.send_maintenance_start(123456)
        await eventually(lambda: device.unacknowledged == 0, timeout=5)
    finally:
        await fleet.stop()
        server.close()
        await server.wait_closed()
    assert len(received) == 4 and received[0] == received[2] and received[1] == received[3]
    assert device.stats.resends == 2 and device.stats.acks == 2


async def test_the_offline_buffers_keep_the_newest_messages_up_to_the_documents_limits() -> None:
    elink = ElinkTerminal("8613000100020003", None, "127.0.0.1", 9)
    for floor in range(3_700):
        elink.send_status(LiftSample(floor=floor % 30))
    for _ in range(300):
        elink.send_maintenance_start(1)
    assert elink.unacknowledged == 3_600 + 256 and elink.stats.dropped == 100 + 44
    lmt = LmtTerminal("861234567890123", None, "127.0.0.1", 9)
    for floor in range(2_100):
        lmt.send_status(LiftSample(floor=floor % 30))
    assert lmt.unacknowledged == 2_000
    gasfill = GasfillController("150301-2", None, "127.0.0.1", 9)
    for _ in range(600):
        gasfill.send_fill_result(1, "E004015012345678", 14_000, 28_000, 60, 0)
    assert gasfill.unacknowledged == 500


async def test_a_terminal_the_platform_does_not_know_is_refused_and_waits_before_retrying(city: Platform) -> None:
    device = LmtTerminal("869999999999999", "nokey", "127.0.0.1", city.ports["lmt"],
                         settings=DeviceSettings(refused_retry_s=30))  # fmt: skip
    device.start()
    try:
        await eventually(lambda: device.next_connect_at is not None)
        assert device.next_connect_at - asyncio.get_running_loop().time() > 29  # type: ignore[operator]
        assert device.stats.logins_refused == device.stats.connects == 1 and not device.online
    finally:
        await device.stop()


async def test_simulate_reports_acks_and_latency_for_each_protocol(
    city: Platform, census: tuple[Census, Path]
) -> None:
    _, directory = census
    for protocol, count in (("elink", 8), ("lmt", 4), ("gasfill", 3)):
        report = await run_load(protocol, identities(protocol, count, directory), "127.0.0.1", city.ports[protocol],
                                rate=5, duration_s=0.6, census_dir=directory)  # fmt: skip
        assert report.online == count and report.errors == 0, report
        assert report.acks >= count and report.latency_p50_ms is not None and report.latency_p99_ms is not None


async def test_a_full_window_holds_a_terminal_back_until_its_ack_and_the_rate_is_never_exceeded(
    city: Platform, census: tuple[Census, Path]
) -> None:
    _, directory = census
    terminals = identities("elink", 8, directory)
    report = await run_load("elink", terminals, "127.0.0.1", city.ports["elink"], rate=500, duration_s=0.6, window=1,
                            census_dir=directory)  # fmt: skip
    assert report.errors == 0 and report.resends == 0
    assert report.throttled > 0  # one unanswered message per terminal: most of 4,000 frames/s had to wait
    assert report.acks == report.messages > 2 * len(terminals)  # ACKs brought the terminals back, all answered
    assert report.messages <= 500 * len(terminals) * report.duration_s + len(terminals)


async def test_the_simulate_command_prints_its_report(
    city: Platform, census: tuple[Census, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["simulate", "--protocol", "elink", "--terminals", "5", "--rate", "4", "--duration", "0.5",
            "--port", str(city.ports["elink"]), "--census", str(census[1]), "--json"]  # fmt: skip
    assert await asyncio.to_thread(main, argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["online"] == 5 and report["acks"] >= 5 and report["errors"] == 0
