"""Sub-commands of the simulated city: ``census generate`` and ``simulate``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census


def _positive(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def add_size_options(parser: argparse.ArgumentParser, defaults: CensusSize) -> None:
    """``--lifts --stations --cylinders --vehicles --seed`` (shared with ``demo``)."""
    parser.add_argument("--lifts", type=_positive, default=defaults.lifts, help=f"default {defaults.lifts}")
    parser.add_argument("--stations", type=_positive, default=defaults.stations, help=f"default {defaults.stations}")
    parser.add_argument("--cylinders", type=_positive, default=defaults.cylinders,
                        help=f"default {defaults.cylinders}")  # fmt: skip
    parser.add_argument("--vehicles", type=_positive, default=defaults.vehicles, help=f"default {defaults.vehicles}")
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
