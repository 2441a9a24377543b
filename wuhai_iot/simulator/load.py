"""The load generator behind ``wuhai-iot simulate``: N simulated terminals of one protocol, each sending
at a fixed rate, in one process; it reports frames sent, ACKs received, ACK latency and errors.

Lift terminals send STATUS (ELink) or ST (LMT) messages; filling controllers send FILL_REQUESTs (their
"ACK" is the FILL_DECISION) and a FILL_RESULT after each permitted fill; vehicle terminals (JT/T 808) send
LOCATION reports with the cylinder items. Frames are spread evenly over
time and terminals: one scheduler emits, each tick, the frames due fleet-wide, round-robin.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import resource
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from wuhai_iot.events import Direction, Door
from wuhai_iot.protocols import jt808
from wuhai_iot.simulator.census import ELINK_PREFIX, LMT_PREFIX, read_census
from wuhai_iot.simulator.device import (
    DeviceSettings,
    DeviceStats,
    Fleet,
    SimulatedDevice,
)
from wuhai_iot.simulator.elink import ElinkTerminal
from wuhai_iot.simulator.gasfill import GasfillController
from wuhai_iot.simulator.jt808 import VehicleTerminal
from wuhai_iot.simulator.lift_terminal import LiftSample, LiftTerminal
from wuhai_iot.simulator.lmt import LmtTerminal

DEVICE_CLASSES: dict[str, type[SimulatedDevice]] = {
    "elink": ElinkTerminal,
    "lmt": LmtTerminal,
    "gasfill": GasfillController,
    "jt808": VehicleTerminal,
}
DEFAULT_PORTS = {"elink": 5701, "lmt": 5702, "gasfill": 5710, "jt808": 5808}
EMIT_TICK_S = 0.005
"""A city's terminals are not synchronised: a coarse tick would send the fleet's frames in bursts no
city produces (at 5,000 frames/s, a 20 ms tick is 100 frames at the same instant)."""
DRAIN_S = 5.0
"""After the load stops, how long to wait for the last answers."""

# A car going up and down: a few distinct samples (so that frames differ) that the terminals cycle through.
# 0.5 m/s: no lift's rated speed is lower, so the load raises no overspeed alarms.
RUNNING_SAMPLES = tuple(
    LiftSample(floor=floor, direction=Direction.UP if up else Direction.DOWN, door=Door.CLOSED, running=True,
               door_zone=False, occupied=True, speed_mps=0.5, load_pct=30 + floor, trip_count=1000 + floor)
    for floor in range(1, 9) for up in (True, False)
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    terminal_id: str
    key: str | None
    plate: str | None = None
    """The vehicle of a JT/T 808 terminal."""


@dataclass
class LoadReport:
    protocol: str
    terminals: int
    online: int
    rate_per_terminal: float
    duration_s: float
    frames_sent: int
    messages: int
    acks: int
    """Accepted answers: ACKs of stored messages, plus fill decisions for GF-3."""
    acks_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    rejected: int
    resends: int
    errors: int
    throttled: int
    """Frames not sent because a terminal already had ``window`` messages unanswered."""
    heartbeats: int
    heartbeat_acks: int

    def summary(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        return (
            f"{self.protocol}: {self.online}/{self.terminals} terminals online, {self.frames_sent} frames sent, "
            f"{self.acks} acks ({self.acks_per_s:.0f}/s), ACK latency p50 {ms(self.latency_p50_ms)} "
            f"p99 {ms(self.latency_p99_ms)}, {self.errors} errors, {self.resends} resends, "
            f"{self.throttled} throttled"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def raise_open_file_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (up to the hard limit); return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def identities(protocol: str, count: int, census_dir: Path | None = None) -> list[Identity]:
    """``count`` terminals: from the census's terminals.csv, or made-up (keyless, as the generator numbers them)."""
    if census_dir is not None:
        rows = [row for row in read_census(census_dir, ["terminals"])["terminals"] if row["protocol"] == protocol]
        if len(rows) < count:
            raise ValueError(f"{census_dir}/terminals.csv has {len(rows)} {protocol} terminals, {count} wanted")
        return [Identity(row["terminal_id"], row["key"] or None, row.get("plate") or None) for row in rows[:count]]
    if protocol == "elink":
        return [Identity(f"{ELINK_PREFIX}{i + 1:08d}", None) for i in range(count)]
    if protocol == "lmt":
        return [Identity(f"{LMT_PREFIX}{i + 1:08d}", None) for i in range(count)]
    if protocol == "jt808":
        raise ValueError("JT/T 808 terminals register with their vehicle's plate: give --census")
    return [Identity(f"{150301 + i // 64}-{i % 64 + 1}", None) for i in range(count)]


@dataclass(frozen=True)
class FillMaterial:
    """What a simulated filling controller puts on its scale: tags, operators and the station's medium."""

    tags: tuple[tuple[str, int], ...]
    """(tag, gross before in grams) of cylinders to fill."""
    operator_card: int
    medium: str


def fill_materials(census_dir: Path | None) -> dict[int, FillMaterial]:
    """Per station: its own (or, for gas stations, vehicle) cylinders' tags, an operator and a medium."""
    if census_dir is None:
        return {}
    census = read_census(census_dir)
    operators = {int(w["unit"]): int(w["card"]) for w in census["workers"] if w["role"] == "filling_operator"}
    materials = {}
    vehicle = tuple(
        (c["tag_uid"], int(float(c["tare_kg"]) * 1000) + 500)
        for c in census["cylinders"] if c["tag_uid"] and c["kind"] == "vehicle_cng"
    )  # fmt: skip
    for station in census["stations"]:
        code = int(station["station_code"])
        medium = station["media"].split("|")[0]
        tags = vehicle if medium == "CNG" else tuple(
            (c["tag_uid"], int(float(c["tare_kg"]) * 1000) + 300)
            for c in census["cylinders"] if c["tag_uid"] and c["owner_station"] == station["station_code"]
        )  # fmt: skip
        materials[code] = FillMaterial(tags or (("E0040150FFFFFFFF", 14_000),), operators.get(code, 0), medium)
    return materials


class LoadGenerator:
    """Emits ``rate`` frames per second per terminal, round-robin over the fleet.

    A terminal that is offline or has ``window`` messages unanswered waits aside until an ACK or its
    login brings it back into the round: at saturation most terminals wait, and visiting each of them
    every tick cost the generator more CPU than the frames it sent (CPU the platform under test shares).
    """

    def __init__(self, devices: Sequence[SimulatedDevice], rate: float, window: int | None,
                 materials: dict[int, FillMaterial] | None = None) -> None:  # fmt: skip
        self.devices = list(devices)
        self.rate = rate
        self.window = window
        self.materials = materials or {}
        self.emitted = 0
        self.throttled = 0
        self._ready: deque[SimulatedDevice] = deque(self.devices)
        """Terminals that may send, in round-robin order."""
        self._waiting: set[SimulatedDevice] = set()
        """Terminals found offline or with a full window."""
        self._samples = itertools.cycle(RUNNING_SAMPLES)
        self._tasks: set[asyncio.Task[None]] = set()
        for device in self.devices:
            device.on_online = device.on_acknowledged = self._may_send_again

    async def run(self, duration_s: float) -> None:
        started = time.monotonic()
        total_rate = self.rate * len(self.devices)
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(elapsed * total_rate) - self.emitted - self.throttled
            self._emit(due)
            await asyncio.sleep(EMIT_TICK_S)

    def _may_send_again(self, device: SimulatedDevice) -> None:
        if device in self._waiting:
            self._waiting.discard(device)
            self._ready.append(device)

    def _can_send(self, device: SimulatedDevice) -> bool:
        return device.online and (self.window is None or device.unacknowledged < self.window)

    def _emit(self, count: int) -> None:
        """Send ``count`` frames due now, one per terminal at most; what no terminal can take is throttled."""
        ready, touched, sent = self._ready, [], 0
        for _ in range(min(count, len(ready))):
            device = ready.popleft()
            if not self._can_send(device):
                self._waiting.add(device)
                continue
            sent += 1
            if isinstance(device, LiftTerminal):
                device.cork()
                touched.append(device)
                device.send_status(next(self._samples))
            elif isinstance(device, VehicleTerminal):
                device.cork()
                touched.append(device)
                device.report(self._location(device))
            elif isinstance(device, GasfillController):
                task = asyncio.create_task(self._fill(device))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._can_send(device):
                ready.append(device)
            else:
                self._waiting.add(device)
        self.emitted += sent
        self.throttled += count - sent
        for device in touched:
            device.uncork()

    def _location(self, vehicle: VehicleTerminal) -> bytes:
        """A driving vehicle's report: the current time, a position in Wuhai, the cylinder readings."""
        offset = (hash(vehicle.terminal_id) % 1000) / 100_000
        return jt808.location_record(datetime.now(UTC), 39.65 + offset, 106.82 + offset, speed_kmh=40.0, course=90,
                                     pressure_mpa=15.0, gas_lel_pct=0.3)  # fmt: skip

    async def _fill(self, controller: GasfillController) -> None:
        material = self.materials.get(controller.station) or FillMaterial((("E0040150FFFFFFFF", 14_000),), 0, "LPG")
        tag, gross = random.choice(material.tags)
        seq, decision = await controller.request_fill(tag, gross, material.operator_card, material.medium)
        if decision is not None and decision.permit:
            controller.send_fill_result(seq, tag, gross, gross + decision.net_limit_g, 60, 0)

    async def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (
            self._tasks or any(device.unacknowledged for device in self.devices if device.online)
        ):
            await asyncio.sleep(0.05)


async def run_load(
    protocol: str,
    terminals: Sequence[Identity],
    host: str,
    port: int,
    *,
    rate: float,
    duration_s: float,
    window: int | None = None,
    census_dir: Path | None = None,
    connect_timeout_s: float = 120.0,
    settings: DeviceSettings | None = None,
    connect_rate: float = 2000.0,
) -> LoadReport:
    """Connect every terminal, load for ``duration_s``, wait briefly for the last answers, report."""
    raise_open_file_limit(len(terminals) + 256)
    stats = DeviceStats()
    device_class = DEVICE_CLASSES[protocol]
    devices = [
        device_class(t.terminal_id, t.key, host, port, settings=settings, stats=stats,
                     **({"plate": t.plate} if protocol == "jt808" else {}))  # type: ignore[call-arg]
        for t in terminals
    ]  # fmt: skip
    fleet = Fleet(devices, connect_rate=connect_rate)
    fleet.start()
    try:
        online = await fleet.wait_online(timeout=connect_timeout_s)
        stats.latencies = type(stats.latencies)("d")
        acks_before = stats.acks + stats.answers
        generator = LoadGenerator(devices, rate, window, fill_materials(census_dir) if protocol == "gasfill" else None)
        started = time.monotonic()
        await generator.run(duration_s)
        elapsed = time.monotonic() - started
        acks_in_window = stats.acks + stats.answers - acks_before
        await generator.drain(DRAIN_S)
        deadline = time.monotonic() + DRAIN_S
        while stats.heartbeat_acks < stats.heartbeats and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await fleet.stop()
    return LoadReport(
        protocol=protocol,
        terminals=len(devices),
        online=online,
        rate_per_terminal=rate,
        duration_s=round(elapsed, 3),
        frames_sent=stats.frames_sent,
        messages=stats.messages,
        acks=stats.acks + stats.answers,
        acks_per_s=round(acks_in_window / elapsed, 1) if elapsed else 0.0,
        latency_p50_ms=_ms(stats.percentile(0.5)),
        latency_p99_ms=_ms(stats.percentile(0.99)),
        rejected=stats.rejected,
        resends=stats.resends,
        errors=stats.errors,
        throttled=generator.throttled,
        heartbeats=stats.heartbeats,
        heartbeat_acks=stats.heartbeat_acks,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
