"""SIGTERM while hundreds of terminals send: the platform stops accepting, commits and acknowledges what it
received, closes the connections and exits 0 within the systemd unit's stop timeout; every acknowledged
record is on disk, none twice."""

from __future__ import annotations

import asyncio
import collections
import re
import signal
import sqlite3
import time
from pathlib import Path

from conftest import ROOT
from load_support import StatusTerminal, generate_census, import_census, start_serve

LIFTS = 450
"""About 315 of them on ELink terminals."""
SEND_INTERVAL_S = 0.2


def unit_stop_timeout() -> float:
    unit = (ROOT / "deploy" / "wuhai-iot.service").read_text(encoding="utf-8")
    match = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.MULTILINE)
    assert match, "the unit sets TimeoutStopSec"
    return float(match.group(1))


async def test_sigterm_under_load_keeps_every_acknowledged_record_once_and_exits_0(tmp_path: Path) -> None:
    identities = generate_census(tmp_path / "census", LIFTS)
    assert len(identities) >= 300
    (tmp_path / "wuhai-iot.toml").write_text("", encoding="utf-8")
    process, ports, log = await start_serve(tmp_path)
    try:
        await import_census(tmp_path / "census", tmp_path / "wuhai-iot.toml")
        terminals = [StatusTerminal(terminal_id, key) for terminal_id, key in identities]
        sending = asyncio.Event()
        running = [asyncio.create_task(t.run(ports["elink"], SEND_INTERVAL_S, sending)) for t in terminals]
        async with asyncio.timeout(60):
            await asyncio.gather(*(t.logged_in.wait() for t in terminals))
            sending.set()
            while sum(len(t.acked) for t in terminals) < 5 * len(terminals):
                await asyncio.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        asked = time.monotonic()
        status = await asyncio.wait_for(process.wait(), unit_stop_timeout())
        stop_s = time.monotonic() - asked
        async with asyncio.timeout(30):
            await asyncio.gather(*running)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = log.read_text(encoding="utf-8")
    assert status == 0, output[-3000:]
    assert "Traceback" not in output
    print(f"clean stop under load: {stop_s:.2f} s; {sum(t.sent for t in terminals)} frames sent,"
          f" {sum(len(t.acked) for t in terminals)} acknowledged")  # fmt: skip

    with sqlite3.connect(tmp_path / "data" / "wuhai-iot.sqlite3") as db:
        stored = collections.Counter(
            db.execute("SELECT terminal_id, dedup_key FROM messages WHERE protocol = 'elink' AND type = 'STATUS'")
        )
        sessions = dict(db.execute("SELECT online, count(*) FROM terminal_sessions GROUP BY online"))
    assert all(count == 1 for count in stored.values()), "no record twice"
    missing = [(t.terminal_id, seq) for t in terminals for seq, at in t.acked
               if stored[(t.terminal_id, f"{at}:16:{seq}")] != 1]  # fmt: skip
    assert missing == [], f"{len(missing)} acknowledged records are not on disk"
    assert sessions == {0: len(terminals)}, "every session's end is recorded"
