"""Sub-commands of the simulated city: ``census generate`` and ``simulate``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.runner import run
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.simulator.load import DEFAULT_PORTS, identities, run_load


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def add_size_options(parser: argparse.ArgumentParser, defaults: CensusSize) -> None:
    """``--lifts --stations --cylinders --vehicles --seed`` (shared with ``demo``)."""
    parser.add_argument("--lifts", type=_count, default=defaults.lifts, help=f"default {defaults.lifts}")
    parser.add_argument("--stations", type=_count, default=defaults.stations, help=f"default {defaults.stations}")
    parser.add_argument("--cylinders", type=_count, default=defaults.cylinders,
                        help=f"default {defaults.cylinders}")  # fmt: skip
    parser.add_argument("--vehicles", type=_count, default=defaults.vehicles, help=f"default {defaults.vehicles}")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (same seed, same day: same files)")


def size_from(args: argparse.Namespace) -> CensusSize:
    return CensusSize(lifts=args.lifts, stations=args.stations, cylinders=args.cylinders,
                      vehicles=args.vehicles, seed=args.seed)  # fmt: skip


def census_generate_command(args: argparse.Namespace) -> int:
    started = time.monotonic()
    census = generate_census(size_from(args))
    paths = write_census(census, Path(args.out))
    for path in paths:
        print(f"{path}: {len(census[path.stem])} rows")
    print(f"generated in {time.monotonic() - started:.1f} s; import with: wuhai-iot import {args.out}/*.csv",
          file=sys.stderr)  # fmt: skip
    return 0


def simulate_command(args: argparse.Namespace) -> int:
    census = Path(args.census) if args.census else None
    try:
        terminals = identities(args.protocol, args.terminals, census)
    except (OSError, ValueError) as exc:
        print(f"wuhai-iot simulate: {exc}", file=sys.stderr)
        return 2
    port = args.port or DEFAULT_PORTS[args.protocol]
    report = run(
        run_load(args.protocol, terminals, args.host, port, rate=args.rate, duration_s=args.duration,
                 window=args.window, census_dir=census)
    )  # fmt: skip
    print(report.to_json() if args.json else report.summary())
    return 0 if report.online else 1


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    census = subparsers.add_parser("census", help="census tools (generate a Wuhai-like census)")
    actions = census.add_subparsers(dest="census_command", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a Wuhai-like census in the six import templates",
        description="Write stations, workers, vehicles, elevators, cylinders and terminals CSVs of an "
        "invented but plausible Wuhai, with some lifts and cylinders deliberately overdue, scrapped, "
        "blacklisted or past design life, revoked vehicle certificates and a suspended station.",
    )
    generate.add_argument("--out", required=True, metavar="DIR", help="directory to write the CSV files into")
    add_size_options(generate, CensusSize())
    generate.set_defaults(handler=census_generate_command)

    simulate = subparsers.add_parser(
        "simulate",
        help="load generator: N simulated terminals of one protocol against a platform",
        description="Connect N simulated terminals (LOGIN with their keys, heartbeats, resends after 10 s) "
        "and send RATE frames per second from each for DURATION seconds; report frames sent, ACKs "
        "received, ACK latency p50/p99 and errors. Exit status 1 when no terminal could log in.",
    )
    simulate.add_argument("--protocol", required=True, choices=sorted(DEFAULT_PORTS))
    simulate.add_argument("--terminals", type=_count, default=100, help="number of terminals (default 100)")
    simulate.add_argument("--rate", type=float, default=1.0, help="frames per second per terminal (default 1)")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, help="default: the protocol's vendor port")
    simulate.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    simulate.add_argument("--census", metavar="DIR",
                          help="take terminal ids and keys (and, for gasfill, tags and operators) from this census")
    simulate.add_argument("--window", type=_count,
                          help="at most this many unanswered messages per terminal (default: no limit)")
    simulate.add_argument("--json", action="store_true", help="print the report as one JSON object")
    simulate.set_defaults(handler=simulate_command)
