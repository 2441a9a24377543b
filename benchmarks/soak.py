"""Soak: the city's load for a long time, to see that nothing grows.

The platform runs in this process with a generated city; ``wuhai-iot simulate`` processes drive it the
way the city does (every ELink and LMT lift a status each ``--interval-s`` seconds, every filling post a
fill request every minute), one simulation per sampling window, each window on fresh connections (as
terminals reconnect). After each window the platform's resident memory, open files, write backlog,
frame-log size and the window's ACK latency are printed as a table row. "Flat": the last third of the
run holds no more memory than the first third plus GROWTH_MB, and no more open files.

    python benchmarks/soak.py [--duration 3600] [--window 60] [--lifts 5000]

``--data DIR`` runs on a platform seeded by ``bench_pages.py --data`` instead (``DIR/seeded.sqlite3`` and its
census in ``DIR/census``: the province, 100,000 lifts and 2,000,000 cylinders with a year of history), with
``--terminals`` of its lift terminals reporting (a process holds at most the open-file limit's sockets) and
``--posts`` of its filling posts asking (the filling simulator reads every cylinder of the census: at the
province 2,000,000, 2.9 GB and minutes a window);
the first row is the platform's memory once started, before any terminal connects.

``--trace`` starts ``tracemalloc`` once the platform has started, so that it follows only what the run adds:
each row then gives the traced memory still held, and the end prints where it was allocated (the lines that
hold the most, with their callers). Tracing costs CPU and memory of its own (printed; RSS includes it).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from support import census_database, fresh_config, header, rss_bytes, simulate

from wuhai_iot.memory import give_back_free_memory
from wuhai_iot.runner import run
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, read_census

GROWTH_MB = 30.0
"""Memory the last third of the run may hold beyond the first third's (caches filling, the allocator)."""


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def print_held(snapshot: tracemalloc.Snapshot, top: int = 25) -> None:
    """Where the memory the run added and still holds was allocated: by line, then the biggest with callers."""
    snapshot = snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    by_line = snapshot.statistics("lineno")
    total = sum(stat.size for stat in by_line)
    print(f"   held since the start, traced: {total / 2**20:.1f} MiB in {sum(s.count for s in by_line):,} blocks; by line:")
    for stat in by_line[:top]:
        frame = stat.traceback[0]
        print(f"   {stat.size / 2**20:9.1f} MiB {stat.count:>10,} blocks  {frame.filename}:{frame.lineno}")
    print("   the five biggest, with their callers:")
    for stat in snapshot.statistics("traceback")[:5]:
        print(f"   {stat.size / 2**20:9.1f} MiB {stat.count:>10,} blocks")
        for line in stat.traceback.format(most_recent_first=True):
            print(f"      {line}")


def print_added_objects(top: int = 15) -> None:
    """The objects the collector tracks that were made since the platform started, by type (what was loaded
    at start is frozen, ``gc.freeze``, and not listed), with their shallow sizes: a breakdown without the
    cost of tracing every allocation."""
    counts: collections.Counter[str] = collections.Counter()
    sizes: collections.Counter[str] = collections.Counter()
    for thing in gc.get_objects():
        name = type(thing).__qualname__
        counts[name] += 1
        sizes[name] += sys.getsizeof(thing)
    print(f"   objects made since the start and alive: {sum(counts.values()):,}, {sum(sizes.values()) / 2**20:.1f} MiB"
          f" shallow; by type: {', '.join(f'{name} {counts[name]:,} ({size / 2**20:.1f} MiB)' for name, size in sizes.most_common(top))}")  # fmt: skip


def print_cyclic_garbage(top: int = 15) -> None:
    """What of it is only waiting for the cyclic collector (the platform runs the oldest generation rarely):
    the objects a full collection finds unreachable, by type, and the traced memory it gives back (tracing)."""
    held = tracemalloc.get_traced_memory()[0]
    gc.set_debug(gc.DEBUG_SAVEALL)
    found = gc.collect()
    gc.set_debug(0)
    types = collections.Counter(type(thing).__qualname__ for thing in gc.garbage)
    gc.garbage.clear()
    gc.collect()
    freed = held - tracemalloc.get_traced_memory()[0]
    given_back = f", {freed / 2**20:.1f} MiB traced given back" if tracemalloc.is_tracing() else ""
    print(f"   cyclic garbage a full collection finds: {found:,} objects{given_back}; by type:"
          f" {', '.join(f'{name} {count:,}' for name, count in types.most_common(top))}")  # fmt: skip


def print_allocator_free() -> None:
    """How much of the resident memory is free memory the C allocator keeps (the platform gives it back after a
    migration or an import, ``wuhai_iot.memory``): the peaks of a run (a fleet logging in at once) stay resident."""
    before = rss_bytes()
    if give_back_free_memory() is None:
        return  # not glibc
    print(f"   the allocator's free memory: RSS {before / 2**20:.0f} MiB, {rss_bytes() / 2**20:.0f} MiB once given back"
          " (malloc_trim)")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    header(f"soak: the city's load for {args.duration:.0f} s")
    with tempfile.TemporaryDirectory() as scratch:
        if args.data:
            directory = Path(args.data)
            census_dir, template = directory / "census", directory / "seeded.sqlite3"
        else:
            directory = Path(scratch)
            size = CensusSize(lifts=args.lifts, stations=max(1, args.lifts // 600), cylinders=max(100, args.lifts * 4),
                              vehicles=max(10, args.lifts // 10))  # fmt: skip
            census_dir, template = await census_database(directory, size)
        terminals = read_census(census_dir, ["terminals"])["terminals"]
        fleet = {name: sum(1 for row in terminals if row["protocol"] == name) for name in ("elink", "lmt", "gasfill")}
        if args.terminals:  # the same share of ELink and LMT terminals as the census's
            lifts = fleet["elink"] + fleet["lmt"]
            fleet["elink"] = min(fleet["elink"], round(args.terminals * fleet["elink"] / lifts))
            fleet["lmt"] = min(fleet["lmt"], args.terminals - fleet["elink"])
        if args.posts is not None:
            fleet["gasfill"] = min(fleet["gasfill"], args.posts)
        config = fresh_config(directory, template, "platform")
        config.rules.tick_interval_s = 1
        rows: list[tuple[float, float, int, int, float, float | None]] = []
        async with Platform(config) as platform:
            print(f"   started: RSS {rss_bytes() / 2**20:.0f} MiB, {open_files()} open files")
            if args.trace:
                tracemalloc.start(args.trace)
            started = time.monotonic()
            print(f"   fleet: {fleet['elink']} ELink and {fleet['lmt']} LMT lifts (a status every "
                  f"{args.interval_s:.0f} s), {fleet['gasfill']} filling posts (a request a minute)")  # fmt: skip
            print(f"   {'minute':>7} {'RSS MiB':>8} {'files':>6} {'backlog':>8} {'frame log MiB':>14} {'ACK p99 ms':>11}"
                  + (f" {'traced MiB':>11} {'tracing MiB':>12}" if args.trace else ""))  # fmt: skip
            while time.monotonic() - started < args.duration:
                window = min(args.window, args.duration - (time.monotonic() - started))
                loads = [simulate(name, count, platform.ports[name], rate=rate, duration_s=window, census_dir=census_dir)
                         for name, count, rate in (("elink", fleet["elink"], 1 / args.interval_s),
                                                   ("lmt", fleet["lmt"], 1 / args.interval_s),
                                                   ("gasfill", fleet["gasfill"], 1 / 60))
                         if count]  # fmt: skip
                reports = await asyncio.gather(*loads)
                p99s = [r["latency_p99_ms"] for r in reports if r["latency_p99_ms"] is not None]
                row = ((time.monotonic() - started) / 60, rss_bytes() / 2**20, open_files(), platform.writer.backlog,
                       platform.frame_log.bytes / 2**20, max(p99s) if p99s else None)  # type: ignore[type-var]
                rows.append(row)  # type: ignore[arg-type]
                p99 = "-" if row[5] is None else f"{row[5]:.1f}"
                traced = (f" {tracemalloc.get_traced_memory()[0] / 2**20:11.1f}"
                          f" {tracemalloc.get_tracemalloc_memory() / 2**20:12.1f}") if args.trace else ""  # fmt: skip
                print(f"   {row[0]:7.1f} {row[1]:8.1f} {row[2]:6d} {row[3]:8d} {row[4]:14.1f} {p99:>11}{traced}", flush=True)
            if args.trace:
                print_held(tracemalloc.take_snapshot())
            print_added_objects()
            print_cyclic_garbage()
            print_allocator_free()
            tracemalloc.stop()
            health = platform.writer.health()
            lag_ms = platform.loop_lag.worst_s * 1000
    third = max(1, len(rows) // 3)
    first, last = rows[:third], rows[-third:]
    memory_growth = max(r[1] for r in last) - max(r[1] for r in first)
    files_growth = max(r[2] for r in last) - max(r[2] for r in first)
    flat = memory_growth <= GROWTH_MB and files_growth <= 0 and health is None
    worst_p99 = max((r[5] for r in rows if r[5] is not None), default=float("nan"))
    print(f"SUMMARY soak: {args.duration / 60:.0f} min, RSS {rows[0][1]:.0f} → {rows[-1][1]:.0f} MiB (last third vs first"
          f" +{memory_growth:.0f} MiB), open files +{files_growth}, worst window ACK p99 {worst_p99:.0f} ms,"
          f" event loop worst lag {lag_ms:.0f} ms, writer {health or 'healthy'}: {'flat' if flat else 'GROWING'}")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default an hour)")
    parser.add_argument("--window", type=float, default=60.0, help="seconds a table row covers")
    parser.add_argument("--lifts", type=int, default=5000, help="the city's size (default 5,000 lifts)")
    parser.add_argument("--data", metavar="DIR", help="a platform seeded by bench_pages.py --data (DIR/seeded.sqlite3)")
    parser.add_argument("--terminals", type=int, help="lift terminals reporting (default: every one of the census)")
    parser.add_argument("--posts", type=int, help="filling posts asking (default: every one; 0: none)")
    parser.add_argument("--interval-s", type=float, default=30.0, help="a lift's status interval (default 30 s)")
    parser.add_argument("--trace", type=int, nargs="?", const=12, default=0, metavar="FRAMES",
                        help="trace what the run allocates and still holds (tracemalloc, FRAMES deep: default 12)")
    run(main(parser.parse_args()))
