"""Ingest throughput: ELink STATUS (or JT/T 808 LOCATION) frames per second end to end, against a bare
reference pipeline.

End to end = decoded, rules applied, committed, ACKed: what the load generator (``wuhai-iot simulate``,
in its own process) counts as ACKs per second. The bare reference is measured in the same run with the
same load and the same terminals: an asyncio Protocol, ``struct`` and ``binascii.crc_hqx``, and
``sqlite3.executemany`` of the same rows (the stored message and the lift's latest state) into the same
schema, one transaction per event-loop turn, each ACK written after the commit; no framework.

Target: platform / bare >= 0.5, with 1,000 and with 10,000 connected terminals.

``--protocol jt808``: vehicle terminals send LOCATION reports with the cylinder items; the bare reference
splits at 0x7E, un-escapes, checks the XOR code and stores the message, the track point and the vehicle's
current position (the rows the platform stores for it, its rules' rows aside), ACK after COMMIT.

On a shared machine a single run varies by about 15 %: ``--rounds 3`` alternates the two pipelines and
reports the medians.

    python benchmarks/bench_ingest.py [--protocol elink|jt808] [--terminals 1000,10000] [--duration 15]
        [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import binascii
import cProfile
import pstats
import sqlite3
import statistics
import struct
import tempfile
import time
from datetime import datetime
from pathlib import Path

from support import census_database, fresh_config, header, simulate

from wuhai_iot.elevators.state import STATE_UPSERT
from wuhai_iot.pipeline.ingest import MESSAGE_INSERT
from wuhai_iot.protocols import jt808
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize
from wuhai_iot.simulator.load import raise_open_file_limit
from wuhai_iot.storage.db import PRAGMAS
from wuhai_iot.vehicles.monitor import STATE_UPSERT as VEHICLE_STATE_UPSERT
from wuhai_iot.vehicles.monitor import TRACK_INSERT

TARGET = 0.5
LOGIN, HEARTBEAT, STATUS, ACK = 0x01, 0x02, 0x10, 0x81
HEAD = struct.Struct(">8sBHI")  # terminal, type, seq, time at offset 5
RECORD = struct.Struct(">bBBHHBI")
ACK_HEAD = struct.Struct(">2sBH8sBHI")
ACK_BODY = struct.Struct(">BHB")
DIRECTIONS = ("stopped", "up", "down")
DOORS = ("closed", "opening", "open", "closing", "unknown")
MODE_BITS = ((0x08, "inspection"), (0x10, "fire"), (0x200, "independent"))


def ack_frame(terminal: bytes, acked_type: int, acked_seq: int, now: int) -> bytes:
    body = ACK_BODY.pack(acked_type, acked_seq, 0) + (now.to_bytes(4, "big") if acked_type == LOGIN else b"")
    frame = ACK_HEAD.pack(b"EL", 1, 15 + len(body), terminal, ACK, 0, now) + body
    return frame + binascii.crc_hqx(frame[2:], 0xFFFF).to_bytes(2, "big")


class BareBatch:
    """What both references share: rows queued per statement and written in one transaction on the next turn
    of the event loop, each frame's ACK sent after the COMMIT."""

    statements: tuple[str, ...]
    """The INSERT/UPSERT of each list of ``rows``, in that order."""

    def __init__(self, database: Path) -> None:
        self.conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)
        self.rows: list[list[tuple]] = [[] for _ in self.statements]
        self.acks: dict[asyncio.Transport, list[bytes]] = {}
        self.scheduled = False

    def queue_ack(self, transport: asyncio.Transport, ack: bytes) -> None:
        """The frame's rows are queued: its ACK goes after the next commit."""
        self.acks.setdefault(transport, []).append(ack)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.commit)

    def commit(self) -> None:
        self.scheduled = False
        rows, acks = self.rows, self.acks
        self.rows, self.acks = [[] for _ in self.statements], {}
        self.conn.execute("BEGIN IMMEDIATE")
        for statement, batch in zip(self.statements, rows, strict=True):
            self.conn.executemany(statement, batch)
        self.conn.execute("COMMIT")
        for transport, frames in acks.items():
            if not transport.is_closing():
                transport.write(b"".join(frames))


class BarePipeline(BareBatch):
    """The reference: no framework, same rows (the message and the lift's state), ACK after COMMIT."""

    statements = (MESSAGE_INSERT, STATE_UPSERT)

    def __init__(self, database: Path) -> None:
        super().__init__(database)
        self.lifts = dict(self.conn.execute("SELECT terminal_id, device_code FROM terminals WHERE protocol = 'elink'"))

    def status(self, transport: asyncio.Transport, frame: bytes, terminal: bytes, seq: int, at: int, now: float) -> None:
        floor, direction, door, flags, speed, load, trips = RECORD.unpack_from(frame, 20)
        terminal_id = terminal.hex()
        mode = next((name for bit, name in MODE_BITS if flags & bit), "normal")
        messages, states = self.rows
        messages.append(("elink", terminal_id, f"{at}:{STATUS}:{seq}", "STATUS", seq, at, now, frame))
        states.append((self.lifts.get(terminal_id), at, now, "elink", terminal_id, floor, DIRECTIONS[direction],
                       DOORS[door], flags & 1, (flags >> 1) & 1, (flags >> 2) & 1, speed / 1000, load,
                       (flags >> 5) & 1, (flags >> 7) & 1, (flags >> 8) & 1, (flags >> 6) & 1, mode, trips,
                       0))  # fmt: skip
        self.queue_ack(transport, ack_frame(terminal, STATUS, seq, int(now)))


class BareConnection(asyncio.Protocol):
    def __init__(self, pipeline: BarePipeline) -> None:
        self.pipeline = pipeline
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        position, end, now = 0, len(buffer), time.time()
        while end - position >= 22:
            if buffer[position] != 0x45 or buffer[position + 1] != 0x4C:
                position += 1
                continue
            total = 7 + ((buffer[position + 3] << 8) | buffer[position + 4])
            if end - position < total:
                break
            frame = bytes(buffer[position : position + total])
            position += total
            if binascii.crc_hqx(frame[2:-2], 0xFFFF) != int.from_bytes(frame[-2:], "big"):
                continue
            terminal, kind, seq, at = HEAD.unpack_from(frame, 5)
            if kind == STATUS:
                self.pipeline.status(self.transport, frame, terminal, seq, at, now)
            elif kind in (LOGIN, HEARTBEAT):
                self.transport.write(ack_frame(terminal, kind, seq, int(now)))
        del buffer[:position]


JT_HEAD = struct.Struct(">HH6sH")  # message id, properties, phone, serial (2013 edition)
JT_RECORD = struct.Struct(">IIIIHHH6s")


def jt_answer(phone: bytes, message_id: int, reply_serial: int, reply_id: int, body: bytes = b"") -> bytes:
    """A platform frame (0x8001 or 0x8100), escaped."""
    raw = JT_HEAD.pack(message_id, len(body), phone, 0) + body
    raw += bytes([jt808.xor_checksum(raw)])
    return b"\x7e" + jt808.escape(raw) + b"\x7e"


def jt_ack(phone: bytes, serial: int, message_id: int) -> bytes:
    return jt_answer(phone, jt808.PLATFORM_RESPONSE, serial, message_id, struct.pack(">HHB", serial, message_id, 0))


class BareVehiclePipeline(BareBatch):
    """The JT/T 808 reference: no framework; the message, the track point and the current position."""

    statements = (MESSAGE_INSERT, TRACK_INSERT, VEHICLE_STATE_UPSERT)

    def __init__(self, database: Path) -> None:
        super().__init__(database)
        self.plates = dict(self.conn.execute("SELECT terminal_id, plate FROM terminals WHERE protocol = 'jt808'"))

    def location(self, transport: asyncio.Transport, frame: bytes, raw: bytes, phone: bytes, serial: int,
                 now: float) -> None:  # fmt: skip
        alarm, status, lat, lon, _, speed, course, bcd = JT_RECORD.unpack_from(raw, 12)
        digits = bcd.hex()
        at = datetime(2000 + int(digits[:2]), int(digits[2:4]), int(digits[4:6]), int(digits[6:8]),
                      int(digits[8:10]), int(digits[10:12]), tzinfo=jt808.CST).timestamp()  # fmt: skip
        pressure = gas = None
        offset = 12 + JT_RECORD.size
        while offset < len(raw) - 2:
            item, size = raw[offset], raw[offset + 1]
            if item == 0xF1:
                pressure = int.from_bytes(raw[offset + 2 : offset + 4], "big") / 100
            elif item == 0xF2:
                gas = int.from_bytes(raw[offset + 2 : offset + 4], "big") / 10
            offset += 2 + size
        terminal_id = phone.hex()
        plate = self.plates.get(terminal_id)
        messages, points, states = self.rows
        messages.append(("jt808", terminal_id, f"{int(at)}:512:{serial}", "LOCATION", serial, int(at), now, frame))
        points.append((plate, at, lat / 1e6, lon / 1e6, speed / 10, course, status & 3, alarm, pressure, gas))
        states.append((plate, terminal_id, at, now, lat / 1e6, lon / 1e6, speed / 10, course, status & 1,
                       (status >> 1) & 1, alarm, None, pressure, 0, gas, 0, None))  # fmt: skip
        self.queue_ack(transport, jt_ack(phone, serial, jt808.LOCATION))


class BareVehicleConnection(asyncio.Protocol):
    def __init__(self, pipeline: BareVehiclePipeline) -> None:
        self.pipeline = pipeline
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        now = time.time()
        parts = bytes(buffer).split(b"\x7e")
        buffer[:] = b"\x7e" + parts[-1] if len(parts) > 1 else parts[-1]
        for part in parts[:-1]:
            if not part:
                continue
            raw = jt808.unescape(part)
            if len(raw) < 13 or jt808.xor_checksum(raw[:-1]) != raw[-1]:
                continue
            message_id, _, phone, serial = JT_HEAD.unpack_from(raw)
            if message_id == jt808.LOCATION:
                self.pipeline.location(self.transport, b"\x7e" + part + b"\x7e", raw, phone, serial, now)
            elif message_id == jt808.REGISTER:
                code = b"BARE"
                self.transport.write(jt_answer(phone, jt808.REGISTER_RESPONSE, serial, 0,
                                               struct.pack(">HB", serial, 0) + code))  # fmt: skip
            else:  # AUTHENTICATE, HEARTBEAT: accepted
                self.transport.write(jt_ack(phone, serial, message_id))


async def measure(label: str, port: int, terminals: int, args: argparse.Namespace, census_dir: Path) -> float:
    # Enough frames in flight to keep either side busy, few enough that none waits the 10 s after which a
    # terminal resends (resends would be extra load that the measurement does not intend).
    rate, window = (200, 8) if terminals <= 2000 else (20, 2)
    report = await simulate(args.protocol, terminals, port, rate=rate, duration_s=args.duration,
                            census_dir=census_dir, window=window)  # fmt: skip
    print(f"   {label:<8} {terminals:>6} terminals ({report['online']} online): {report['acks_per_s']:>9,.0f} frames/s"
          f"  ACK latency p50 {report['latency_p50_ms']} ms p99 {report['latency_p99_ms']} ms, "
          f"errors {report['errors']}, resends {report['resends']}")  # fmt: skip
    return float(report["acks_per_s"])  # type: ignore[arg-type]


async def one_round(directory: Path, template: Path, census_dir: Path, terminals: int, args: argparse.Namespace,
                    profiler: cProfile.Profile | None) -> tuple[float, float]:  # fmt: skip
    """The platform, then the bare reference, each on a fresh copy of the census database."""
    config = fresh_config(directory, template, "platform")
    async with Platform(config) as platform:
        if profiler:
            profiler.enable()
        ours = await measure("platform", platform.ports[args.protocol], terminals, args, census_dir)
        if profiler:
            profiler.disable()
    bare_config = fresh_config(directory, template, "bare")
    if args.protocol == "jt808":
        pipeline: BarePipeline | BareVehiclePipeline = BareVehiclePipeline(bare_config.database.path)
        connection = lambda: BareVehicleConnection(pipeline)  # noqa: E731
    else:
        pipeline = BarePipeline(bare_config.database.path)
        connection = lambda: BareConnection(pipeline)  # noqa: E731
    server = await asyncio.get_running_loop().create_server(connection, "127.0.0.1", 0)
    bare = await measure("bare", server.sockets[0].getsockname()[1], terminals, args, census_dir)
    server.close()
    await server.wait_closed()
    pipeline.conn.close()
    return ours, bare


async def main(args: argparse.Namespace) -> None:
    what = "JT/T 808 LOCATION" if args.protocol == "jt808" else "ELink STATUS"
    header(f"ingest: {what} frames/s end to end, platform vs bare reference pipeline")
    sizes = [int(n) for n in args.terminals.split(",")]
    raise_open_file_limit(max(sizes) + 1024)
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        if args.protocol == "jt808":  # 90 % of the census's vehicles have a terminal
            size = CensusSize(lifts=1, stations=4, cylinders=10, vehicles=int(max(sizes) / 0.85) + 100)
        else:  # 70 % of the census's lift terminals are ELink
            size = CensusSize(lifts=int(max(sizes) / 0.7) + 100, stations=1, cylinders=10, vehicles=1)
        census_dir, template = await census_database(directory, size)
        for terminals in sizes:
            rounds = []
            profiler = cProfile.Profile() if args.profile else None
            for _ in range(args.rounds):
                rounds.append(await one_round(directory, template, census_dir, terminals, args, profiler))
                ours, bare = rounds[-1]
                print(f"   ratio with {terminals} terminals: {ours / bare if bare else 0.0:.2f} (target >= {TARGET})")
            ours = statistics.median(r[0] for r in rounds)
            bare = statistics.median(r[1] for r in rounds)
            ratio = statistics.median(r[0] / r[1] if r[1] else 0.0 for r in rounds)
            if args.rounds > 1:
                print(f"   medians of {args.rounds} alternating rounds: {ours:,.0f} vs {bare:,.0f} frames/s,"
                      f" ratio {ratio:.2f}")  # fmt: skip
            results.append((terminals, ours, bare, ratio))
            if profiler:
                stats = pstats.Stats(profiler).sort_stats("tottime")
                print("   profile of the platform's event-loop thread (top 25 by own time):")
                stats.print_stats(25)
    summary = "; ".join(f"{n} terminals {ours:,.0f}/s vs bare {bare:,.0f}/s = {ratio:.2f}"
                        for n, ours, bare, ratio in results)  # fmt: skip
    verdict = "met" if all(r[3] >= TARGET for r in results) else "MISSED"
    print(f"SUMMARY ingest {args.protocol}: {summary} (target >= {TARGET}: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=("elink", "jt808"), default="elink")
    parser.add_argument("--terminals", default="1000,10000", help="comma-separated fleet sizes")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile the platform's event-loop thread")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate platform and bare this many times per fleet size; report the medians")
    run(main(parser.parse_args()))
