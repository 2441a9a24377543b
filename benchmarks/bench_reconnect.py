"""Reconnect storm: a whole ELink fleet connecting and logging in at once, as after a platform restart.

The platform runs in this process; the terminals in separate processes (wuhai_iot/simulator/storm.py),
each opening its share of the connections all at once and sending LOGIN the moment each connects.
Measured: for each terminal, the time from the storm's start to its LOGIN ACK; how many got it within 10 s
(a terminal resends after 10 s) and the p50/p99/slowest; the event loop's worst lag (wall clock, and held
by the platform's own work: the CPU time its thread used meanwhile) during the logins, and once every
terminal hung up at once. A terminal whose connection was refused or reset tries again, as a real one does,
a second later. The open-file limit is raised up to the hard limit; when that is below what the fleet
needs, the fleet is cut to fit and the figure says so.

Target: every terminal logged in within 10 s.

    python benchmarks/bench_reconnect.py [--terminals 20000] [--processes 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from support import elink_fleet, fleet_within_open_files, header, percentile

from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.storm import Storm

TARGET_S = 10.0


async def main(args: argparse.Namespace) -> None:
    header("reconnect storm: an ELink fleet logging in at once")
    terminals = fleet_within_open_files(args.terminals)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        fleet, config = await elink_fleet(directory, terminals)
        async with Platform(config) as platform:
            storm = Storm(fleet, platform.ports["elink"], args.processes)
            cpu = time.thread_time()
            times = await storm.run()
            cpu = time.thread_time() - cpu
            lag_ms, held_ms = platform.loop_lag.worst_s * 1000, platform.loop_lag.worst_held_s * 1000
            await storm.hang_up()
            lag_after_ms, held_after_ms = platform.loop_lag.worst_s * 1000, platform.loop_lag.worst_held_s * 1000
    done = sorted(t for t in times if t is not None)
    in_time = sum(1 for t in done if t <= TARGET_S)
    p50, p99 = percentile(done, 0.5), percentile(done, 0.99)
    print(f"   {len(done)} of {terminals} logged in; within {TARGET_S:.0f} s: {in_time}; "
          f"p50 {p50:.2f} s, p99 {p99:.2f} s, slowest {done[-1]:.2f} s")  # fmt: skip
    print(f"   the event loop's thread used {cpu:.2f} s of CPU meanwhile, {cpu / terminals * 1e6:.0f} µs a terminal")
    print(f"   event loop during the logins: worst lag {lag_ms:.0f} ms, held by the platform's own work at most "
          f"{held_ms:.0f} ms; once every terminal hung up at once: {lag_after_ms:.0f} ms, "
          f"held {held_after_ms:.0f} ms")  # fmt: skip
    verdict = "met" if in_time == terminals else "MISSED"
    print(f"SUMMARY reconnect: {in_time} of {terminals} ELink terminals got their LOGIN ACK within {TARGET_S:.0f} s"
          f" (p50 {p50:.2f} s, p99 {p99:.2f} s, slowest {done[-1]:.2f} s; target all: {verdict}; event loop held"
          f" at most {held_ms:.0f} ms during the logins)")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--terminals", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2, help="load processes sharing the terminals")
    run(main(parser.parse_args()))
