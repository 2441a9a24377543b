"""Connections: 20,000 idle, logged-in ELink terminals held with heartbeats.

The platform runs in this process; the terminals in separate processes (each process holds part of
them, so that no process needs more open files than the hard limit allows). Measured: the platform's
resident memory per connection (RSS with every terminal logged in, minus RSS before the first
connection, over the number of connections) and missed heartbeats (sent by a terminal and never
acknowledged). The open-file limit is raised here, up to the hard limit; when the hard limit is below
what the fleet needs, the fleet is cut to fit and the figure says so.

Targets: <= 20 KB per connection, no missed heartbeats.

    python benchmarks/bench_connections.py [--terminals 20000] [--hold 150] [--heartbeat 30] [--processes 2]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import tempfile
import time
from pathlib import Path

from support import elink_fleet, fleet_within_open_files, header, rss_bytes

from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.device import DeviceSettings
from wuhai_iot.simulator.load import Identity, run_load

TARGET_KB = 20.0


def hold_terminals(terminals: list[Identity], port: int, hold_s: float, heartbeat_s: float,
                   results: multiprocessing.Queue) -> None:  # fmt: skip
    """One load process: connect, stay idle (heartbeats only) for ``hold_s``, report."""
    settings = DeviceSettings(heartbeat_s=heartbeat_s, connect_timeout_s=30, login_timeout_s=30)
    report = asyncio.run(run_load("elink", terminals, "127.0.0.1", port, rate=0, duration_s=hold_s,
                                  settings=settings, connect_rate=1000, connect_timeout_s=120))  # fmt: skip
    results.put(report)


async def main(args: argparse.Namespace) -> None:
    header("connections: idle logged-in ELink terminals with heartbeats")
    terminals = fleet_within_open_files(args.terminals)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        fleet, config = await elink_fleet(directory, terminals)
        async with Platform(config) as platform:
            listener = platform.listeners["elink"]
            gc.collect()
            await asyncio.sleep(1)
            baseline = rss_bytes()
            print(f"   platform RSS before any connection: {baseline / 2**20:.1f} MiB")
            spawn = multiprocessing.get_context("spawn")  # not fork: this process has threads
            results: multiprocessing.Queue = spawn.Queue()
            share = -(-terminals // args.processes)
            workers = [
                spawn.Process(target=hold_terminals, args=(fleet[i : i + share], platform.ports["elink"],
                                                                      args.hold, args.heartbeat, results))
                for i in range(0, terminals, share)
            ]  # fmt: skip
            started = time.monotonic()
            for worker in workers:
                worker.start()
            peak_connected, connected_at = 0, None
            while time.monotonic() - started < args.hold + 60 and any(w.is_alive() for w in workers):
                await asyncio.sleep(1)
                peak_connected = max(peak_connected, len(listener.by_terminal))
                if connected_at is None and len(listener.by_terminal) >= terminals:
                    connected_at = time.monotonic() - started
                    print(f"   all {terminals} logged in after {connected_at:.0f} s")
                if len(listener.by_terminal) >= terminals:
                    held_rss, held = rss_bytes(), len(listener.by_terminal)
            reports = [await asyncio.to_thread(results.get, True, 60) for _ in workers]
            for worker in workers:
                worker.join(timeout=10)
    if connected_at is None:
        print(f"   only {peak_connected} of {terminals} logged in")
        held_rss, held = rss_bytes(), peak_connected
    per_connection_kb = (held_rss - baseline) / max(1, held) / 1024
    sent = sum(r.heartbeats for r in reports)
    acked = sum(r.heartbeat_acks for r in reports)
    errors = sum(r.errors for r in reports)
    print(f"   platform RSS with {held} connections: {held_rss / 2**20:.1f} MiB "
          f"= {per_connection_kb:.1f} KB per connection (target <= {TARGET_KB:.0f} KB)")  # fmt: skip
    print(f"   heartbeats: {sent} sent, {acked} acknowledged, {sent - acked} missed; "
          f"terminal errors {errors} (held {args.hold:.0f} s, a heartbeat every {args.heartbeat:.0f} s)")  # fmt: skip
    verdict = "met" if per_connection_kb <= TARGET_KB and sent == acked and held >= terminals else "MISSED"
    print(f"SUMMARY connections: {held} idle terminals, {per_connection_kb:.1f} KB per connection, "
          f"{sent - acked} of {sent} heartbeats missed (targets <= {TARGET_KB:.0f} KB, 0 missed: {verdict})")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=20_000)
    parser.add_argument("--hold", type=float, default=150.0, help="seconds to hold them after connecting")
    parser.add_argument("--heartbeat", type=float, default=30.0, help="heartbeat interval of the terminals (s)")
    parser.add_argument("--processes", type=int, default=2, help="load processes sharing the terminals")
    run(main(parser.parse_args()))
