"""kill -9 during mixed ingest, restart, resend: every acknowledged message is stored exactly once, and
every permitted fill has its decision record (issue 15: what already held, kept proved)."""

from __future__ import annotations

import asyncio
import collections
import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from conftest import TerminalClient
from filling_support import Controller, import_scenario
from server_process import ServerProcess, write_config
from test_ingest_lmt import SECRET, answer, login_line
from test_login_replay import elink_login

from wuhai_iot.config import Config
from wuhai_iot.protocols.elink import STATUS, encode_frame
from wuhai_iot.protocols.lmt import cst_text, encode_line

BCD = bytes.fromhex("8613000100020003")
LMT_TERMINAL = "861234567890123"
MIN_ACKED_BEFORE_KILL = 300
"""Messages acknowledged before the kill (a few seconds of traffic)."""
STATUS_BODY = bytes([3, 0, 0]) + (0x01A2).to_bytes(2, "big") + (0).to_bytes(2, "big") + bytes([30]) + (7).to_bytes(4, "big")


class Sender:
    """A logged-in terminal that keeps sending stored messages without waiting for each ACK."""

    def __init__(self, client: TerminalClient, name: str) -> None:
        self.client, self.name = client, name
        self.sent: dict[int, bytes] = {}
        self.acked: set[int] = set()

    async def receive_acks(self) -> None:
        try:
            while True:
                frame = await self.client.receive(timeout=60)
                seq = self.acked_seq(frame)
                if seq is not None:
                    self.acked.add(seq)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass

    def acked_seq(self, frame: bytes) -> int | None:
        if self.name == "elink":
            return int.from_bytes(frame[21:23], "big") if frame[13] == 0x81 and frame[23] == 0 else None
        _, seq, type_, payload = answer(frame)
        return seq if type_ == "ACK" and payload == "OK" else None


def elink_status(seq: int, at: int) -> bytes:
    return encode_frame(BCD, STATUS, seq, at, STATUS_BODY)


def lmt_status(seq: int, at: int) -> bytes:
    moment = cst_text(datetime.fromtimestamp(at, UTC))
    return encode_line(LMT_TERMINAL, seq, moment, "ST", f"fl={seq % 20};dir=U;door=C;run=1;dz=0;occ=0;spd=1.00")


async def connect(server: ServerProcess) -> tuple[TerminalClient, TerminalClient]:
    elink = await TerminalClient.connect(server, "elink")  # type: ignore[arg-type]
    await elink.send(elink_login(int(time.time())))
    assert (await elink.receive())[23] == 0
    lmt = await TerminalClient.connect(server, "lmt")  # type: ignore[arg-type]
    await lmt.send(login_line(SECRET, time_text=cst_text(datetime.now(UTC))))
    assert answer(await lmt.receive())[3].startswith("OK")
    return elink, lmt


async def test_kill_9_during_mixed_ingest_loses_and_doubles_nothing(tmp_path: Path) -> None:
    config = Config()
    config.database.path = tmp_path / "platform.sqlite3"
    await import_scenario(config)
    config_file = write_config(tmp_path)
    server = await ServerProcess.start(config_file)
    first = int(time.time()) - 3600
    elink_client, lmt_client = await connect(server)
    senders = [Sender(elink_client, "elink"), Sender(lmt_client, "lmt")]
    readers = [asyncio.create_task(s.receive_acks()) for s in senders]
    controller = await Controller.connect(server)  # type: ignore[arg-type]
    permits: list[int] = []
    seq = 0
    rng = random.Random(15)
    try:
        while sum(len(s.acked) for s in senders) < MIN_ACKED_BEFORE_KILL or seq < 40:
            seq += 1
            for sender, build in zip(senders, (elink_status, lmt_status), strict=True):
                frame = build(seq, first + seq)
                sender.sent[seq] = frame
                await sender.client.send(frame)
            if seq % 4 == 0 and controller.seq < 250:  # a fill decision now and then
                decision = await controller.request("LPG-OK-0001", 14_000)
                if decision.permit:
                    permits.append(decision.request_seq)
            await asyncio.sleep(rng.uniform(0, 0.004))
        await server.kill()  # mid-flow: frames sent but not acknowledged, commits under way
    finally:
        if server.process.returncode is None:
            await server.kill()
    await asyncio.gather(*readers)
    acked_before = {s.name: set(s.acked) for s in senders}

    server = await ServerProcess.start(config_file)
    try:
        elink_client, lmt_client = await connect(server)
        for sender, client in zip(senders, (elink_client, lmt_client), strict=True):
            sender.client, sender.acked = client, set()
        readers = [asyncio.create_task(s.receive_acks()) for s in senders]
        for sender in senders:  # the terminals resend everything they sent (the acknowledged too)
            for frame in sender.sent.values():
                await sender.client.send(frame)
        async with asyncio.timeout(60):
            while any(len(s.acked) < len(s.sent) for s in senders):
                await asyncio.sleep(0.05)
        for sender in senders:
            await sender.client.close()
        await asyncio.gather(*readers)
    finally:
        assert await server.stop() == 0

    with sqlite3.connect(tmp_path / "platform.sqlite3") as db:
        stored = collections.Counter(db.execute("SELECT protocol, seq FROM messages WHERE type IN ('STATUS', 'ST')"))
        decided = {row[0] for row in db.execute(
            "SELECT request_seq FROM fill_decisions WHERE station_code = 150301 AND scale = 1 AND permit = 1"
        )}  # fmt: skip
    print(f"kill -9 after {sum(map(len, acked_before.values()))} acknowledged messages and {len(permits)} permits;"
          f" {seq} per protocol sent and resent")  # fmt: skip
    for name in ("elink", "lmt"):
        assert {s for (p, s), n in stored.items() if p == name and n == 1} == set(range(1, seq + 1)), name
        assert all(n == 1 for n in stored.values()), "nothing stored twice"
        assert acked_before[name] <= set(range(1, seq + 1))
    assert set(permits) <= decided, "every permitted fill has its decision record"
