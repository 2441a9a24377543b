"""Reconnect storm: a whole ELink fleet connecting and logging in at once, as after a platform restart.

The platform runs in this process; the terminals in separate processes, each opening its share of the
connections all at once and sending LOGIN the moment each connects. Measured: for each terminal, the
time from the storm's start to its LOGIN ACK; how many got it within 10 s (a terminal resends after
10 s) and the p50/p99/slowest. A terminal whose connection was refused or reset tries again, as a real
one does, a second later. The open-file limit is raised up to the hard limit; when that is below what
the fleet needs, the fleet is cut to fit and the figure says so.

Target: every terminal logged in within 10 s.

    python benchmarks/bench_reconnect.py [--terminals 20000] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import multiprocessing
import tempfile
import time
from pathlib import Path

from support import SPARE_FILES, elink_fleet, fleet_within_open_files, header, percentile

from wuhai_iot.protocols import elink
from wuhai_iot.runner import loop_factory, run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.load import Identity, raise_open_file_limit

TARGET_S = 10.0
RETRY_S = 1.0
GIVE_UP_S = 60.0


def login_frame(terminal: Identity) -> bytes:
    bcd = bytes.fromhex(terminal.terminal_id)
    clock = int(time.time())
    auth = bytes(16)
    if terminal.key:
        auth = hmac.new(terminal.key.encode(), bcd + clock.to_bytes(4, "big"), hashlib.sha256).digest()[:16]
    body = elink.Bodies[elink.LOGIN].build({"firmware": "EL200-13", "interval": 30, "auth": auth})
    return elink.encode_frame(bcd, elink.LOGIN, 0, clock, body)


async def log_in(terminal: Identity, port: int, start_at: float, held: list[asyncio.StreamWriter]) -> float | None:
    """Seconds from ``start_at`` (wall clock) to this terminal's LOGIN ACK; None when it never came."""
    while time.time() - start_at < GIVE_UP_S:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(RETRY_S)
            continue
        try:
            writer.write(login_frame(terminal))
            framer = elink.ElinkFramer()
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for frame in framer.feed(data):
                    if isinstance(frame, bytes) and frame[13] == elink.ACK and frame[20] == elink.LOGIN:
                        if frame[23] != 0:
                            raise RuntimeError(f"login of {terminal.terminal_id} refused: result {frame[23]}")
                        held.append(writer)
                        return time.time() - start_at
        except (ConnectionError, OSError):
            pass
        writer.close()
        await asyncio.sleep(RETRY_S)
    return None


def storm(terminals: list[Identity], port: int, ready: multiprocessing.Queue, start: multiprocessing.Queue,
          results: multiprocessing.Queue) -> None:
    """One load process: say it is ready, wait for the common start, connect every terminal at once, report
    the times."""
    raise_open_file_limit(len(terminals) + SPARE_FILES)

    async def main(start_at: float) -> list[float | None]:
        held: list[asyncio.StreamWriter] = []
        await asyncio.sleep(max(0.0, start_at - time.time()))
        times = await asyncio.gather(*(log_in(t, port, start_at, held) for t in terminals))
        for writer in held:
            writer.close()
        return list(times)

    ready.put(True)
    start_at = start.get()
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        results.put(runner.run(main(start_at)))


async def main(args: argparse.Namespace) -> None:
    header("reconnect storm: an ELink fleet logging in at once")
    terminals = fleet_within_open_files(args.terminals)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        fleet, config = await elink_fleet(directory, terminals)
        async with Platform(config) as platform:
            spawn = multiprocessing.get_context("spawn")
            ready, start, results = spawn.Queue(), spawn.Queue(), spawn.Queue()
            share = -(-terminals // args.processes)
            workers = [spawn.Process(target=storm, args=(fleet[i : i + share], platform.ports["elink"], ready, start,
                                                          results)) for i in range(0, terminals, share)]  # fmt: skip
            # Started from a thread: handing a process its share blocks until it has read it, and the
            # platform's loop (this one) must not wait meanwhile. The storm starts once every process is
            # ready: its times count from then (a start fixed beforehand counted the processes' start-up).
            for worker in workers:
                await asyncio.to_thread(worker.start)
            for _ in workers:
                await asyncio.to_thread(ready.get, True, 120)
            start_at = time.time() + 1.0
            for _ in workers:
                start.put(start_at)
            times: list[float | None] = []
            for _ in workers:
                times += await asyncio.to_thread(results.get, True, GIVE_UP_S + 60)
            for worker in workers:
                worker.join(timeout=10)
            lag_ms = platform.loop_lag.worst_s * 1000
    done = sorted(t for t in times if t is not None)
    in_time = sum(1 for t in done if t <= TARGET_S)
    p50, p99 = percentile(done, 0.5), percentile(done, 0.99)
    print(f"   {len(done)} of {terminals} logged in; within {TARGET_S:.0f} s: {in_time}; "
          f"p50 {p50:.2f} s, p99 {p99:.2f} s, slowest {done[-1]:.2f} s; event loop worst lag {lag_ms:.0f} ms")  # fmt: skip
    verdict = "met" if in_time == terminals else "MISSED"
    print(f"SUMMARY reconnect: {in_time} of {terminals} ELink terminals got their LOGIN ACK within {TARGET_S:.0f} s"
          f" (p50 {p50:.2f} s, p99 {p99:.2f} s, slowest {done[-1]:.2f} s; target all: {verdict})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2, help="load processes sharing the terminals")
    run(main(parser.parse_args()))
