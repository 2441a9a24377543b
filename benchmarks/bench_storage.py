"""Storage: database growth per simulated day at 5,000 lifts reporting every 30 s, and its bound.

A day at that rate is 14.4 million status messages, too many to push through in a benchmark. So a
window of simulated minutes is stored through the platform's own storage path (decoded ELink and LMT
STATUS frames handed to ``Ingest.store``: the stored message, the rules' statements and the lift's latest
state, batched and committed by the writer; no TCP), the file's growth per message is measured and the
day is extrapolated. Then retention runs as if ``raw_status_days`` + 1 days had passed, showing that the
raw messages are deleted and their pages freed for reuse: the file is bounded by about
``raw_status_days`` days of raw status plus the kept records (alarms, visits, fills).

    python benchmarks/bench_storage.py [--lifts 5000] [--interval 30] [--minutes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support import census_database, fresh_config, header

from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.events import Message, Terminal
from wuhai_iot.protocols import elink, lmt
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize
from wuhai_iot.simulator.elink import status_record
from wuhai_iot.simulator.lmt import status_payload
from wuhai_iot.simulator.load import RUNNING_SAMPLES

DAY_S = 86_400


def file_size(path: Path) -> tuple[int, int]:
    """(bytes in use, bytes on the free list) of the database, after a WAL checkpoint."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        conn.close()
    return (pages - free) * page_size, free * page_size


def frame(terminal: Terminal, seq: int, at: datetime, sample_index: int) -> bytes:
    sample = RUNNING_SAMPLES[sample_index % len(RUNNING_SAMPLES)]
    if terminal.protocol == "elink":
        return elink.encode_frame(bytes.fromhex(terminal.terminal_id), elink.STATUS, seq, int(at.timestamp()),
                                  status_record(sample))  # fmt: skip
    return lmt.encode_line(terminal.terminal_id, seq, lmt.cst_text(at), lmt.STATUS, status_payload(sample))


def stored_future(platform: Platform, terminal: Terminal, message: Message, data: bytes) -> asyncio.Future[bool]:
    """Store through the ingest path; the future gives True when the message was new."""
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def settle(_terminal: Terminal, _message: Message, outcome: bool | BaseException) -> None:
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    platform.ingest.store(terminal, message, data, settle)
    return future


async def main(args: argparse.Namespace) -> None:
    header(f"storage: {args.lifts} lifts reporting every {args.interval:.0f} s")
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        _, template = await census_database(directory, CensusSize(lifts=args.lifts, stations=1, cylinders=10,
                                                                  vehicles=1))  # fmt: skip
        config = fresh_config(directory, template, "platform")
        async with Platform(config) as platform:
            conn = await platform.open_database()
            rows = await conn.execute_fetchall(
                "SELECT protocol, terminal_id, device_code FROM terminals WHERE device_code IS NOT NULL")
            terminals = [Terminal(p, t, d, report_interval_s=int(args.interval)) for p, t, d in rows]
            before, _ = file_size(config.database.path)
            steps = int(args.minutes * 60 / args.interval)
            # Simulated time runs from now on (faster than the clock): the platform's own timers (offline
            # checks) then never see a simulated terminal as silent.
            start = datetime.now(UTC).replace(microsecond=0)
            end = start + timedelta(seconds=steps * args.interval)
            started, stored = time.monotonic(), 0
            for step, seq in zip(range(steps), itertools.count(1), strict=False):
                at = start + timedelta(seconds=step * args.interval)
                futures = []
                for index, terminal in enumerate(terminals):
                    protocol = platform.protocols[terminal.protocol]
                    data = frame(terminal, seq, at, index + step)
                    futures.append(stored_future(platform, terminal, protocol.decode(data, at), data))
                stored += sum(await asyncio.gather(*futures))
            elapsed = time.monotonic() - started
            after, _ = file_size(config.database.path)
            per_message = (after - before) / stored
            per_day_messages = len(terminals) * DAY_S / args.interval
            per_day = per_message * per_day_messages
            raw_days = config.retention.raw_status_days
            print(f"   stored {stored:,} status messages ({args.minutes:.0f} simulated minutes) in {elapsed:.0f} s "
                  f"({stored / elapsed:,.0f}/s through the storage path)")  # fmt: skip
            print(f"   growth: {after - before:,} bytes = {per_message:.0f} bytes per status message "
                  f"(message row with its events, indexes, latest state, rule records)")  # fmt: skip
            print(f"   a day at this rate: {per_day_messages:,.0f} messages = {per_day / 2**30:.2f} GiB per day")
            print(f"   bound: raw status is kept {raw_days} days (retention.raw_status_days) = "
                  f"{raw_days * per_day / 2**30:.1f} GiB of raw status at most, plus kept records")  # fmt: skip

            pruner = monitoring(platform)
            later = end + timedelta(days=raw_days + 1)
            deleted, pruning = 0, time.monotonic()
            while step_deleted := await pruner.prune_step(now=later):
                deleted += step_deleted
            left = (await (await conn.execute("SELECT count(*) FROM messages")).fetchone())[0]
            used, free = file_size(config.database.path)
            print(f"   retention {raw_days + 1} days later: {deleted:,} messages deleted in "
                  f"{time.monotonic() - pruning:.0f} s, {left} left; {free:,} bytes freed for reuse; "
                  f"{used - before:,} bytes of kept records remain")  # fmt: skip
            kept = await conn.execute_fetchall(
                "SELECT (SELECT count(*) FROM alarms), (SELECT count(*) FROM alarm_samples),"
                " (SELECT count(*) FROM elevator_state)")
            print("   kept: {} alarms, {} alarm samples, {} latest lift states".format(*kept[0]))
            kinds = await conn.execute_fetchall("SELECT kind, count(*) FROM alarms GROUP BY kind")
            if kinds:
                print("   alarms raised by the rules on the simulated data: "
                      + ", ".join(f"{kind} {count}" for kind, count in kinds))  # fmt: skip
    print(f"SUMMARY storage: {per_message:.0f} bytes per status message, {per_day / 2**30:.2f} GiB per day at "
          f"{args.lifts} lifts every {args.interval:.0f} s; bounded by retention at about "
          f"{raw_days * per_day / 2**30:.1f} GiB ({raw_days} days of raw status; pruning left {left} expired rows)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lifts", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=30.0, help="report interval (s)")
    parser.add_argument("--minutes", type=float, default=20.0, help="simulated minutes to store")
    run(main(parser.parse_args()))
