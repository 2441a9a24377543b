"""What the benchmarks share: the machine, a platform on loopback with a generated census, the load
generator in its own process, resident memory. Not a benchmark itself."""

from __future__ import annotations

import asyncio
import json
import os
import platform as python_platform
import resource
import shutil
import sys
import time
from pathlib import Path

from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import protocols
from wuhai_iot.registry.census import import_files
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.simulator.load import Identity, identities, raise_open_file_limit
from wuhai_iot.storage import db


def machine() -> str:
    """CPU model, cores, memory, Python: printed with every figure."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, Python {python_platform.python_version()} "
            f"on {python_platform.system()}")  # fmt: skip


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   machine: {machine()}")


async def census_database(directory: Path, size: CensusSize) -> tuple[Path, Path]:
    """Generate a census into ``directory/census`` and import it into ``directory/template.sqlite3``."""
    census_dir = directory / "census"
    started = time.monotonic()
    paths = write_census(generate_census(size), census_dir)
    database = directory / "template.sqlite3"
    conn = await db.connect(database)
    try:
        reports = await import_files(conn, paths)
    finally:
        await conn.close()
    rejected = sum(len(r.rejected) for r in reports)
    print(f"   census: {size.lifts} lifts, {size.cylinders} cylinders generated and imported in "
          f"{time.monotonic() - started:.1f} s ({rejected} rejected)")  # fmt: skip
    return census_dir, database


def fresh_config(directory: Path, template: Path, name: str) -> Config:
    """A configuration on a copy of the template database; every port chosen by the system."""
    database = directory / f"{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, database)
    config = Config()
    config.database.path = database
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
    return config


async def simulate(protocol: str, terminals: int, port: int, *, rate: float, duration_s: float,
                   census_dir: Path | None, window: int | None = None) -> dict[str, object]:  # fmt: skip
    """Run ``wuhai-iot simulate`` in its own process (so that load and platform do not share a core's
    event loop) and return its JSON report."""
    argv = [sys.executable, "-m", "wuhai_iot", "simulate", "--protocol", protocol, "--terminals", str(terminals),
            "--rate", str(rate), "--duration", str(duration_s), "--port", str(port), "--json"]  # fmt: skip
    if census_dir is not None:
        argv += ["--census", str(census_dir)]
    if window is not None:
        argv += ["--window", str(window)]
    process = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    output, _ = await process.communicate()
    if process.returncode not in (0, 1):
        raise RuntimeError(f"simulate exited with {process.returncode}")
    return json.loads(output.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


SPARE_FILES = 200
"""Open files kept for the platform itself (database, listeners, web) beside one per terminal."""


def fleet_within_open_files(wanted: int) -> int:
    """Raise the open-file limit for ``wanted`` terminals; return how many fit (said when fewer)."""
    terminals = min(wanted, raise_open_file_limit(wanted + SPARE_FILES) - SPARE_FILES)
    if terminals < wanted:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        print(f"   the hard open-file limit here is {hard}: {terminals} terminals, not {wanted}")
    return terminals


async def elink_fleet(directory: Path, terminals: int) -> tuple[list[Identity], Config]:
    """A census with ``terminals`` ELink terminals in ``directory``: their identities and a platform's config."""
    census_dir, template = await census_database(
        directory, CensusSize(lifts=int(terminals / 0.7) + 100, stations=1, cylinders=10, vehicles=1)
    )
    return identities("elink", terminals, census_dir), fresh_config(directory, template, "platform")


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
