"""Gas vehicles for the demo city: taxis, buses and lorries with JT/T 808 terminals driving around Wuhai.

Each vehicle drives between random points of its district and reports every ``report_s`` seconds
(position, speed, cylinder pressure falling with the distance, gas concentration, the tags its reader
sees). Low on gas, it drives to the nearest station licensed for its fuel and fills there: the station's
scale asks the platform, and while the scale fills, the vehicle reports its pressure rising; the scale
then reports the fill. In the first minutes the script plays the incidents the platform must catch: a
fill at a roadside spot, a station filling without asking its controller, a leak, a collision followed by
a refused fill (reason 12), a cylinder swapped between two vehicles, and an uncertified vehicle driving.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from wuhai_iot.clock import cst_today
from wuhai_iot.protocols import jt808
from wuhai_iot.simulator.census import CITY, Census, Row
from wuhai_iot.simulator.device import DeviceSettings
from wuhai_iot.simulator.gasfill import GasfillController
from wuhai_iot.simulator.jt808 import VehicleTerminal

log = logging.getLogger(__name__)

WORKING_MPA = {"CNG": 20.0, "LNG": 1.6}
RESERVE_SHARE = 0.35
"""A vehicle heads for a station below this share of its working pressure."""
MPA_PER_KM = {"CNG": 0.08, "LNG": 0.006}
"""Pressure used per kilometre (a demo drains fast, so that fills happen within minutes)."""
AT_STATION_M = 80.0
ROADSIDE_OFFSET = 0.05
"""Degrees from the district's centre of the roadside spot where gas is put in illegally."""


def _metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat2 - lat1) * 111_200
    dx = (lon2 - lon1) * 111_200 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


@dataclass
class Vehicle:
    """One simulated vehicle and what it reports."""

    terminal: VehicleTerminal
    row: Row
    centre: tuple[float, float]
    latitude: float
    longitude: float
    pressure: float
    tags: tuple[str, ...]
    cylinders: list[Row]
    speed_kmh: float = 0.0
    course: int = 0
    gas: float = 0.3
    alarm_flags: int = 0
    target: tuple[float, float] | None = None
    station: Row | None = None
    """The station it is heading for (to fill)."""
    held: bool = False
    """Driven by the script, not by ``step``."""
    odometer_km: float = 10_000.0
    last_report: float = 0.0

    @property
    def fuel(self) -> str:
        return self.row["fuel"]

    def record(self, at: datetime | None = None, **changes: object) -> bytes:
        fields: dict[str, object] = dict(speed_kmh=self.speed_kmh, course=self.course, alarm_flags=self.alarm_flags,
                                         odometer_km=round(self.odometer_km, 1), pressure_mpa=round(self.pressure, 2),
                                         gas_lel_pct=round(self.gas, 1), tags=self.tags, acc_on=True)  # fmt: skip
        fields.update(changes)
        return jt808.location_record(at or datetime.now(UTC), self.latitude, self.longitude, **fields)  # type: ignore[arg-type]

    def report(self, **changes: object) -> None:
        self.terminal.report(self.record(**changes))
        self.last_report = time.monotonic()


@dataclass
class Traffic:
    census: Census
    host: str
    port: int
    scales: dict[str, list[GasfillController]]
    operators: dict[str, list[int]]
    note: Callable[[str], None]
    rng: random.Random
    report_s: float = 10.0
    settings: DeviceSettings | None = None
    vehicles: list[Vehicle] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        by_plate = {v["plate"]: v for v in self.census["vehicles"]}
        centres = {d.name: (d.latitude, d.longitude) for d in CITY}
        cylinders: dict[str, list[Row]] = {}
        today = cst_today().isoformat()
        for row in self.census["cylinders"]:
            # Tagged cylinders that may be filled (the script's refusal must be for the collision alone).
            if row["vehicle_plate"] and row["tag_uid"] and row["status"] == "in_service" and row["next_inspection"] >= today:
                cylinders.setdefault(row["vehicle_plate"], []).append(row)
        self.stations = [s for s in self.census["stations"] if s.get("latitude") and s["status"] == "active"]
        for row in self.census["terminals"]:
            vehicle = by_plate.get(row.get("plate") or "")
            if row["protocol"] != "jt808" or vehicle is None:
                continue
            terminal = VehicleTerminal(row["terminal_id"], row["key"], self.host, self.port, plate=vehicle["plate"],
                                       settings=self.settings)  # fmt: skip
            lat, lon = centres.get(vehicle["district"], (39.67, 106.82))
            lat, lon = lat + self.rng.uniform(-0.02, 0.02), lon + self.rng.uniform(-0.02, 0.02)
            own = cylinders.get(vehicle["plate"], [])
            working = WORKING_MPA[vehicle["fuel"]]
            self.vehicles.append(Vehicle(terminal, vehicle, (lat, lon), lat, lon, self.rng.uniform(0.4, 1.0) * working,
                                         tuple(c["tag_uid"] for c in own), own))  # fmt: skip
        # The vehicle of the bypassed station stays silent until its buffered records arrive (records older
        # than the newest one a vehicle has sent would change no alarm).
        self.silent = next((v for v in self._certified_cng() if v.cylinders), None)
        if self.silent is not None:
            self.silent.held = True

    @property
    def terminals(self) -> list[VehicleTerminal]:
        return [vehicle.terminal for vehicle in self.vehicles]

    # --- ordinary driving ----------------------------------------------------------------------------

    def step(self, now: float) -> None:
        for vehicle in self.vehicles:
            if vehicle.held or not vehicle.terminal.online or now - vehicle.last_report < self.report_s:
                continue
            if vehicle.station is not None and self._arrived(vehicle):
                vehicle.held = True
                self._spawn(self._fill_at_station(vehicle, vehicle.station))
                continue
            self._drive(vehicle)
            vehicle.report()

    def _drive(self, vehicle: Vehicle) -> None:
        if vehicle.station is None and vehicle.pressure < RESERVE_SHARE * WORKING_MPA[vehicle.fuel]:
            station = self._nearest_station(vehicle)
            if station is not None:
                vehicle.station = station
                vehicle.target = (float(station["latitude"]), float(station["longitude"]))
        if vehicle.target is None or _metres(vehicle.latitude, vehicle.longitude, *vehicle.target) < 150:
            if vehicle.station is None:
                vehicle.target = (vehicle.centre[0] + self.rng.uniform(-0.03, 0.03),
                                  vehicle.centre[1] + self.rng.uniform(-0.03, 0.03))  # fmt: skip
        assert vehicle.target is not None
        vehicle.speed_kmh = self.rng.uniform(25, 55)
        step_m = min(vehicle.speed_kmh / 3.6 * self.report_s, _metres(vehicle.latitude, vehicle.longitude, *vehicle.target))
        dy = (vehicle.target[0] - vehicle.latitude) * 111_200
        dx = (vehicle.target[1] - vehicle.longitude) * 111_200 * math.cos(math.radians(vehicle.latitude))
        distance = math.hypot(dx, dy) or 1.0
        vehicle.latitude += dy / distance * step_m / 111_200
        vehicle.longitude += dx / distance * step_m / (111_200 * math.cos(math.radians(vehicle.latitude)))
        vehicle.course = round(math.degrees(math.atan2(dx, dy))) % 360
        vehicle.odometer_km += step_m / 1000
        vehicle.pressure = max(0.5, vehicle.pressure - MPA_PER_KM[vehicle.fuel] * step_m / 1000)

    def _arrived(self, vehicle: Vehicle) -> bool:
        assert vehicle.station is not None
        here = (float(vehicle.station["latitude"]), float(vehicle.station["longitude"]))
        return _metres(vehicle.latitude, vehicle.longitude, *here) < AT_STATION_M

    def _nearest_station(self, vehicle: Vehicle) -> Row | None:
        licensed = [s for s in self.stations if vehicle.fuel in s["media"].split("|") and self.scales.get(s["station_code"])]
        return min(licensed, key=lambda s: _metres(vehicle.latitude, vehicle.longitude, float(s["latitude"]),
                                                   float(s["longitude"])), default=None)  # fmt: skip

    async def _fill_at_station(self, vehicle: Vehicle, station: Row, *, label: str = "") -> None:
        """Stop at the station; its scale asks, fills while the pressure rises, and reports the fill."""
        vehicle.latitude, vehicle.longitude = float(station["latitude"]), float(station["longitude"])
        vehicle.speed_kmh = 0.0
        vehicle.report()
        scale = self.rng.choice(self.scales[station["station_code"]])
        cylinder = vehicle.cylinders[0] if vehicle.cylinders else None
        try:
            if cylinder is None:
                return
            tare = round(float(cylinder["tare_kg"]) * 1000)
            rated = round(float(cylinder["rated_fill_kg"]) * 1000)
            before = tare + round(rated * vehicle.pressure / WORKING_MPA[vehicle.fuel])
            card = self.operators.get(station["station_code"], [0])[0]
            seq, decision = await scale.request_fill(cylinder["tag_uid"], before, card, vehicle.fuel)
            if label or (decision is not None and not decision.permit):
                verdict = "no answer" if decision is None else (
                    "permitted" if decision.permit else f"denied ({decision.reason}: {decision.message})")  # fmt: skip
                self.note(f"vehicle {vehicle.row['plate']} at station {station['station_code']}{label}: fill {verdict}")
            if decision is None or not decision.permit:
                return
            for share in (0.5, 1.0):
                await asyncio.sleep(self.report_s)
                vehicle.pressure += (WORKING_MPA[vehicle.fuel] * 0.95 - vehicle.pressure) * share
                vehicle.report(speed_kmh=0.0)
            after = before + min(decision.net_limit_g, tare + rated - before)
            scale.send_fill_result(seq, cylinder["tag_uid"], before, after, round(2 * self.report_s), 0)
        finally:
            vehicle.station = vehicle.target = None
            vehicle.held = False

    # --- the script ----------------------------------------------------------------------------------

    def play_incidents(self, later: Callable[[float, Callable[[], object]], None], spacing_s: float = 15.0) -> None:
        """The six incidents, ``spacing_s`` apart from the start (``later(delay_s, action)``)."""
        cng = [v for v in self._certified_cng() if v.terminal.online and v.cylinders and v is not self.silent]
        if len(cng) < 5:
            return
        roadside, leak, crash, swap_a, swap_b = cng[:5]
        later(1 * spacing_s, lambda: self._roadside_fill(roadside))
        if self.silent is not None:
            silent = self.silent
            later(2 * spacing_s, lambda: self._bypassed_station(silent))
        later(3 * spacing_s, lambda: self._leak(leak))
        later(4 * spacing_s, lambda: self._collision(crash))
        later(5 * spacing_s, lambda: self._swap(swap_a, swap_b))
        uncertified = [v for v in self.vehicles if v.terminal.online and
                       (not v.row["certificate_no"] or v.row["certificate_status"] == "revoked")]  # fmt: skip
        if uncertified:
            later(6 * spacing_s, lambda: self.note(f"vehicle {uncertified[0].row['plate']} drives without a valid cylinder"
                                        " registration certificate"))  # fmt: skip

    def _certified_cng(self) -> list[Vehicle]:
        return [v for v in self.vehicles if v.fuel == "CNG" and v.row["certificate_no"]
                and v.row["certificate_status"] == "valid"]  # fmt: skip

    async def _roadside_fill(self, vehicle: Vehicle) -> None:
        vehicle.held = True
        self.note(f"vehicle {vehicle.row['plate']} takes gas at a roadside spot (illegal fill)")
        vehicle.latitude = vehicle.centre[0] + ROADSIDE_OFFSET
        vehicle.longitude = vehicle.centre[1] - ROADSIDE_OFFSET
        vehicle.speed_kmh, vehicle.pressure = 0.0, min(vehicle.pressure, 7.0)
        vehicle.report()
        for pressure in (12.0, 18.5):
            await asyncio.sleep(self.report_s)
            vehicle.pressure = pressure
            vehicle.report()
        vehicle.held = False

    async def _bypassed_station(self, vehicle: Vehicle) -> None:
        """A station fills the vehicle without asking its controller; the terminal had no network then and
        uploads the records 40 minutes late (so the 30-minute wait for the station's report is already over)."""
        station = self._nearest_station(vehicle)
        if station is None:
            vehicle.held = False
            return
        self.note(f"station {station['station_code']} filled vehicle {vehicle.row['plate']} without asking its"
                  " controller (the vehicle's buffered records arrive now)")  # fmt: skip
        vehicle.latitude, vehicle.longitude = float(station["latitude"]), float(station["longitude"])
        start = datetime.now(UTC) - timedelta(minutes=40)
        records = [vehicle.record(start + timedelta(seconds=30 * i), speed_kmh=0.0, pressure_mpa=p)
                   for i, p in enumerate((6.5, 11.0, 18.8))]  # fmt: skip
        vehicle.pressure = 18.8
        vehicle.terminal.report_batch(records)
        vehicle.held = False

    async def _leak(self, vehicle: Vehicle) -> None:
        self.note(f"gas leaks at the cylinders of vehicle {vehicle.row['plate']}")
        vehicle.held = True
        for gas in (12.0, 16.0, 14.0):
            vehicle.gas = gas
            vehicle.report(speed_kmh=0.0)
            await asyncio.sleep(self.report_s)
        vehicle.held = False

    async def _collision(self, vehicle: Vehicle) -> None:
        self.note(f"vehicle {vehicle.row['plate']} collides; it then tries to fill")
        vehicle.held = True
        vehicle.alarm_flags = 1 << 29
        vehicle.report(speed_kmh=0.0)
        await asyncio.sleep(self.report_s)
        vehicle.alarm_flags = 0
        vehicle.report(speed_kmh=0.0)
        station = self._nearest_station(vehicle)
        if station is not None:
            await self._fill_at_station(vehicle, station, label=" after its collision")
        vehicle.held = False

    async def _swap(self, first: Vehicle, second: Vehicle) -> None:
        self.note(f"a cylinder of vehicle {second.row['plate']} is fitted to vehicle {first.row['plate']}")
        first.tags = first.tags + second.tags[:1]
        first.report()

    def _spawn(self, work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("vehicle scenario step failed", exc_info=task.exception())
