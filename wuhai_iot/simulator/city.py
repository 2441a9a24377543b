"""A living city for the demo: every lift, filling scale and gas vehicle of a census, simulated over real TCP.

Lifts carry passengers (trips, doors, status on every change and every report interval while running).
A scripted cycle of ``cycle_s`` seconds (five minutes by default; a few seconds for tests) plays the
incidents a supervisor must see: a trapped passenger and the rescue (the maintenance worker's card at
the terminal), terminal faults, a terminal going offline and coming back with its buffered samples,
maintenance visits (some suspicious: too short, another company's card, an unregistered card) and fills
denied for every reason, an overfill, a short fill, a tampered weight and a valve bypass. Between them,
scales fill cylinders normally.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime

from wuhai_iot.clock import CST, add_years, cst_today
from wuhai_iot.events import Direction, Door
from wuhai_iot.simulator.census import Census, Row
from wuhai_iot.simulator.device import DeviceSettings, Fleet, SimulatedDevice
from wuhai_iot.simulator.elink import ElinkTerminal
from wuhai_iot.simulator.gasfill import GasfillController
from wuhai_iot.simulator.lift_terminal import LiftSample, LiftTerminal
from wuhai_iot.simulator.lmt import LmtTerminal
from wuhai_iot.simulator.traffic import Traffic

log = logging.getLogger(__name__)

VISIT_MIN = (25, 40)
"""A proper half-monthly visit takes this many minutes (real time)."""
NORMAL_FILL_EVERY_S = 15.0
MEAN_IDLE_S = 150.0
"""Mean time a car waits between trips."""
SECONDS_PER_FLOOR = 2.5
UNKNOWN_FAULT = {"elink": "42", "lmt": "BRAKE_WEAR"}
UNREGISTERED_CARD = 4242


class LiftCar:
    """A car's simple life: idle with doors closed, a trip, doors open at the landing, doors close."""

    def __init__(self, terminal: LiftTerminal, lift: Row, rng: random.Random) -> None:
        self.terminal = terminal
        self.lift = lift
        self.rng = rng
        self.low = int(lift["lowest_floor"] or 1)
        self.high = int(lift["highest_floor"] or 2)
        self.speed = float(lift["rated_speed_mps"] or 1.0)
        self.escalator = lift["kind"] in ("escalator", "moving_walk")
        self.held = False
        """Scripted: the car does not move (trapped passengers)."""
        self.phase = "idle"
        self.next_change = time.monotonic() + rng.expovariate(1 / MEAN_IDLE_S)
        self.last_report = 0.0
        self.sample = LiftSample(floor=self.low if self.low > 0 else 1, running=self.escalator,
                                 direction=Direction.UP if self.escalator else Direction.STOPPED,
                                 speed_mps=self.speed if self.escalator else 0.0)  # fmt: skip

    def report(self, now: float, **changes: object) -> None:
        if changes:
            self.sample = dataclasses.replace(self.sample, **changes)  # type: ignore[arg-type]
        self.last_report = now
        self.terminal.send_status(self.sample)

    def step(self, now: float) -> None:
        if self.sample.running and now - self.last_report >= self.terminal.report_interval_s:
            self.report(now)
        if self.held or self.escalator or now < self.next_change:
            return
        rng, sample = self.rng, self.sample
        if self.phase == "idle":
            target = rng.randint(self.low, self.high)
            if target == sample.floor:
                target = self.high if sample.floor != self.high else self.low
            self.phase, self.target = "moving", target
            self.next_change = now + abs(target - sample.floor) * SECONDS_PER_FLOOR / max(self.speed, 0.5) + 2
            self.report(now, running=True, direction=Direction.UP if target > sample.floor else Direction.DOWN,
                        door=Door.CLOSED, door_zone=False, occupied=True, speed_mps=self.speed,
                        load_pct=rng.randint(8, 70), trip_count=sample.trip_count + 1)  # fmt: skip
        elif self.phase == "moving":
            self.phase, self.next_change = "doors", now + rng.uniform(4, 8)
            self.report(now, floor=self.target, running=False, direction=Direction.STOPPED, door=Door.OPEN,
                        door_zone=True, speed_mps=0.0)  # fmt: skip
        else:
            self.phase, self.next_change = "idle", now + rng.expovariate(1 / MEAN_IDLE_S)
            self.report(now, door=Door.CLOSED, occupied=False, load_pct=0)


@dataclass
class FillCase:
    """One scripted fill."""

    label: str
    scale: GasfillController
    tag: str
    gross_before_g: int
    operator_card: int
    medium: str
    result: str = "normal"
    """What the controller does after the decision: normal, overfill, short, bypass (fills although
    denied), refill (a normal fill, then asks again at once), none."""
    full_g: int = 0
    """Gross weight of the cylinder when full (what a bypassed valve fills it to)."""


class Cylinders:
    """The census's cylinders sorted by what the fill rules will say about them."""

    def __init__(self, census: Census, today: date) -> None:
        self.today = today.isoformat()
        vehicles = {v["plate"]: v for v in census["vehicles"]}
        self.by_station: dict[str, list[Row]] = {}
        self.overdue: list[Row] = []
        self.scrapped: list[Row] = []
        self.blacklisted: list[Row] = []
        self.vehicle_good: list[Row] = []
        self.vehicle_uncertified: list[Row] = []
        for row in census["cylinders"]:
            if not row["tag_uid"]:
                continue
            if row["status"] == "blacklisted":
                self.blacklisted.append(row)
            elif row["status"] == "scrapped" or self._past_life(row):
                self.scrapped.append(row)
            elif row["next_inspection"] < self.today:
                self.overdue.append(row)
            elif row["kind"] == "household_lpg":
                self.by_station.setdefault(row["owner_station"], []).append(row)
            elif row["kind"] == "vehicle_cng":
                vehicle = vehicles.get(row["vehicle_plate"], {})
                certified = vehicle.get("certificate_no") and vehicle.get("certificate_status") == "valid"
                (self.vehicle_good if certified else self.vehicle_uncertified).append(row)

    def _past_life(self, row: Row) -> bool:
        made = date.fromisoformat(row["manufacture_date"])
        return add_years(made, int(row["design_life_years"])).isoformat() <= self.today


def empty_gross(cylinder: Row, rng: random.Random) -> int:
    """Gross weight of a cylinder brought back nearly empty (tare plus a little residue)."""
    return round(float(cylinder["tare_kg"]) * 1000) + rng.randint(200, 1500)


def full_gross(cylinder: Row) -> int:
    return round((float(cylinder["tare_kg"]) + float(cylinder["rated_fill_kg"])) * 1000)


class City:
    """Simulated devices for every terminal of the census, and the scenario that drives them."""

    def __init__(
        self,
        census: Census,
        host: str,
        ports: dict[str, int],
        *,
        cycle_s: float = 300.0,
        seed: int = 1,
        say: Callable[[str], None] = print,
        settings: DeviceSettings | None = None,
    ) -> None:
        self.census = census
        self.cycle_s = cycle_s
        self.rng = random.Random(seed)
        self.say = say
        self.today = cst_today()
        lifts = {lift["device_code"]: lift for lift in census["elevators"]}
        self.cars: list[LiftCar] = []
        self.scales: dict[str, list[GasfillController]] = {}
        devices: list[SimulatedDevice] = []
        for row in census["terminals"]:
            protocol = row["protocol"]
            if protocol == "gasfill":
                controller = GasfillController(row["terminal_id"], row["key"], host, ports["gasfill"],
                                               settings=settings)  # fmt: skip
                self.scales.setdefault(str(controller.station), []).append(controller)
                devices.append(controller)
            elif row["device_code"] in lifts:
                cls = ElinkTerminal if protocol == "elink" else LmtTerminal
                terminal = cls(row["terminal_id"], row["key"], host, ports[protocol], settings=settings)
                self.cars.append(LiftCar(terminal, lifts[row["device_code"]], self.rng))
                devices.append(terminal)
        self.stations = {s["station_code"]: s for s in census["stations"]}
        self.operators: dict[str, list[int]] = {}
        self.workers: dict[str, list[Row]] = {}
        for worker in census["workers"]:
            if worker["role"] == "filling_operator":
                self.operators.setdefault(worker["unit"], []).append(int(worker["card"]))
            else:
                self.workers.setdefault(worker["unit"], []).append(worker)
        self.traffic: Traffic | None = None
        if "jt808" in ports:
            # Vehicles report every 10 s in a five-minute cycle (JT/T 808 says 30 s; a demo moves faster), never
            # more often than every 2 s (device times have whole seconds).
            self.traffic = Traffic(census, host, ports["jt808"], self.scales, self.operators, self._note,
                                   random.Random(seed + 808), report_s=max(2.0, cycle_s / 30), settings=settings)  # fmt: skip
            devices += self.traffic.terminals
        self.fleet = Fleet(devices)
        self.fleet.on_tick.append(self._step_cars)
        if self.traffic is not None:
            self.fleet.on_tick.append(self.traffic.step)
        self.cylinders = Cylinders(census, self.today)
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[int] = set()
        """Cards of workers in a visit now (a card at two lifts at once is flagged, rightly)."""

    # --- running ------------------------------------------------------------------------------------

    async def start(self, connect_timeout_s: float = 60.0) -> int:
        """Connect every device; return how many logged in. The scenario then runs until ``stop``."""
        self.fleet.start()
        online = await self.fleet.wait_online(timeout=connect_timeout_s)
        self._spawn(self._cycles())
        self._spawn(self._normal_fills())
        if self.traffic is not None:
            self.traffic.play_incidents(self._later, spacing_s=self.cycle_s / 20)
        return online

    async def stop(self) -> None:
        for task in list(self._tasks) + (list(self.traffic.tasks) if self.traffic else []):
            task.cancel()
        await asyncio.gather(*self._tasks, *(self.traffic.tasks if self.traffic else ()), return_exceptions=True)
        await self.fleet.stop()

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("demo scenario step failed", exc_info=task.exception())

    def _later(self, delay_s: float, action: Callable[[], object]) -> None:
        async def run() -> None:
            await asyncio.sleep(delay_s)
            result = action()
            if asyncio.iscoroutine(result):
                await result

        self._spawn(run())

    def _step_cars(self, now: float) -> None:
        for car in self.cars:
            car.step(now)

    def _note(self, text: str) -> None:
        self.say(f"[{datetime.now(CST):%H:%M:%S}] {text}")

    # --- the scripted cycle ----------------------------------------------------------------------------

    async def _cycles(self) -> None:
        number = 0
        while True:
            self._cycle(number)
            number += 1
            await asyncio.sleep(self.cycle_s)

    def _cycle(self, number: int) -> None:
        cycle = self.cycle_s
        cars = [car for car in self.cars if not car.escalator and not car.held and car.terminal.online]
        if len(cars) >= 2:
            trapped, offline, *others = self.rng.sample(cars, min(len(cars), 8))
            self._trapped(trapped, cycle)
            self._later(0.1 * cycle, lambda: self._offline(offline, 0.8 * cycle))
            self._faults(others, cycle)
            self._visits(others, cycle, number)
        self._scripted_fills(number, cycle)

    def _trapped(self, car: LiftCar, cycle: float) -> None:
        lift = car.lift
        car.held = True
        self._note(f"passengers trapped in lift {lift['device_code']} at {lift['address']} ({car.terminal.protocol_name})")
        car.report(time.monotonic(), running=False, direction=Direction.STOPPED, door=Door.CLOSED, occupied=True,
                   door_zone=False, speed_mps=0.0)  # fmt: skip
        car.terminal.send_fault("trapped", True, car.sample.floor)

        def arrive() -> None:
            worker = self._worker(lift["maintenance_company"])
            if worker is not None:
                self._note(f"rescuer {worker['name']} swipes card {worker['card']} at lift {lift['device_code']}")
                self._visit(car, worker, "rescue", self.rng.uniform(*VISIT_MIN))

        def release() -> None:
            car.terminal.send_fault("trapped", False, car.sample.floor)
            car.report(time.monotonic(), door=Door.OPEN, door_zone=True, occupied=False)
            car.held = False
            self._note(f"passengers released from lift {lift['device_code']}")

        self._later(0.4 * cycle, arrive)
        self._later(0.5 * cycle, release)

    async def _offline(self, car: LiftCar, for_s: float) -> None:
        self._note(f"terminal {car.terminal.terminal_id} of lift {car.lift['device_code']} loses its network for {for_s:.0f} s")
        await car.terminal.stop()  # the car keeps running and the terminal keeps its samples
        self._later(for_s, car.terminal.start)

    def _faults(self, cars: list[LiftCar], cycle: float) -> None:
        plan = (("door_fault", 0.15, 0.25), ("power_lost", 0.5, 0.55), ("alarm_button", 0.6, 0.62))
        for car, (kind, raised, cleared) in zip(cars, plan, strict=False):
            self._later(raised * cycle, lambda car=car, kind=kind: self._fault(car, kind, True))
            self._later(cleared * cycle, lambda car=car, kind=kind: self._fault(car, kind, False))
        if len(cars) > len(plan):
            car = cars[len(plan)]
            code = UNKNOWN_FAULT[car.terminal.protocol_name]
            self._later(0.7 * cycle, lambda: self._fault(car, code, True))

    def _fault(self, car: LiftCar, kind: str, active: bool) -> None:
        if active:
            self._note(f"fault {kind} at lift {car.lift['device_code']}")
        car.terminal.send_fault(kind, active, car.sample.floor)

    def _visits(self, cars: list[LiftCar], cycle: float, number: int) -> None:
        """A proper visit and one of each suspicious kind (too short, another company's card, an
        unregistered card, an expired certificate), each at another lift."""
        plan = (("proper", 0.05), ("short", 0.2), ("other_company", 0.35), ("unregistered_card", 0.45),
                ("certificate_expired", 0.55))  # fmt: skip
        for car, (label, start) in zip(cars[::-1], plan, strict=False):
            self._later(start * cycle, lambda car=car, label=label: self._suspicious_visit(car, label, cycle, number))

    def _suspicious_visit(self, car: LiftCar, label: str, cycle: float, number: int) -> None:
        company = car.lift["maintenance_company"]
        worker: Row | None
        if label == "other_company":
            worker = next((w for c in self.workers if c != company if (w := self._worker(c))), None)
        elif label == "unregistered_card":
            worker = {"card": str(UNREGISTERED_CARD + number), "name": "?"}
        else:
            worker = self._worker(company, expired=label == "certificate_expired")
        if worker is not None:
            self._visit(car, worker, label, 0.1 * cycle / 60 if label == "short" else self.rng.uniform(*VISIT_MIN))

    def _visit(self, car: LiftCar, worker: Row, label: str, minutes: float) -> None:
        card = int(worker["card"])
        self._busy.add(card)
        self._note(f"maintenance visit ({label}, {minutes:.0f} min) at lift {car.lift['device_code']}, card {card:08d}")
        car.terminal.send_maintenance_start(card)

        def end() -> None:
            car.terminal.send_maintenance_end(card, 31 if minutes >= 20 else 6)
            self._busy.discard(card)

        self._later(minutes * 60, end)

    def _worker(self, company: str, *, expired: bool = False) -> Row | None:
        """A worker of ``company`` not in another visit, whose certificate is valid (or expired)."""
        today = self.today.isoformat()
        free = [w for w in self.workers.get(company, ()) if int(w["card"]) not in self._busy
                and (w["certificate_expiry"] < today) == expired]  # fmt: skip
        return self.rng.choice(free) if free else None

    # --- fills ------------------------------------------------------------------------------------------

    def _active_stations(self, medium: str) -> list[str]:
        return [code for code, station in self.stations.items()
                if station["status"] == "active" and medium in station["media"].split("|") and self.scales.get(code)]  # fmt: skip

    def fill_cases(self) -> list[FillCase]:
        """The scripted fills: one denial for every reason, then the alarming fills."""
        rng, cylinders = self.rng, self.cylinders
        lpg = [code for code in self._active_stations("LPG") if cylinders.by_station.get(code)]
        if not lpg:
            return []
        station = rng.choice(lpg)
        scale = rng.choice(self.scales[station])
        card = self.operators.get(station, [0])[0]
        own = cylinders.by_station[station]
        others = [row for code, rows in cylinders.by_station.items() if code != station for row in rows]
        cases = [FillCase("deny 1: tag not registered", scale, f"E00401FF{rng.getrandbits(32):08X}", 15_000, card, "LPG")]

        def add(label: str, rows: list[Row], *, at: GasfillController = scale, operator: int = card,
                medium: str = "LPG", gross: Callable[[Row], int] | None = None, result: str = "normal") -> None:  # fmt: skip
            if rows:
                row = rng.choice(rows)
                weight = gross(row) if gross else empty_gross(row, rng)
                cases.append(FillCase(label, at, row["tag_uid"], weight, operator, medium, result, full_gross(row)))

        household = [row for row in cylinders.overdue if row["kind"] == "household_lpg"]
        add("deny 2: inspection overdue", household)
        add("deny 3: scrapped or past design life", [r for r in cylinders.scrapped if r["kind"] == "household_lpg"])
        add("deny 4: another station's cylinder", others)
        add("deny 5: medium not licensed", own, medium="CNG")
        add("deny 6: blacklisted", cylinders.blacklisted, medium="LPG")
        suspended = [code for code, s in self.stations.items() if s["status"] == "suspended" and self.scales.get(code)]
        if suspended:
            add("deny 7: station suspended", cylinders.by_station.get(suspended[0]) or own,
                at=self.scales[suspended[0]][0], operator=self.operators.get(suspended[0], [0])[0])
        cng = self._active_stations("CNG")
        if cng:
            add("deny 8: vehicle certificate revoked or missing", cylinders.vehicle_uncertified,
                at=self.scales[cng[0]][0], operator=self.operators.get(cng[0], [0])[0], medium="CNG")
        add("deny 9: already full", own, gross=full_gross)
        add("deny 10: refill too soon (after a normal fill)", own, result="refill")
        stranger = next((cards[0] for code, cards in self.operators.items() if code != station), UNREGISTERED_CARD)
        add("deny 11: operator not of this station", own, operator=stranger)
        add("overfill", own, result="overfill")
        add("short fill", own, result="short")
        add("weight tampering (lighter than its tare)", own,
            gross=lambda row: round(float(row["tare_kg"]) * 1000) - 1_000)  # fmt: skip
        add("valve bypass (fills although denied)", household or others, result="bypass")
        return cases

    def _scripted_fills(self, number: int, cycle: float) -> None:
        cases = self.fill_cases()
        for index, case in enumerate(cases):
            self._later((0.02 + 0.78 * index / max(1, len(cases))) * cycle, lambda case=case: self.fill(case))

    async def fill(self, case: FillCase) -> None:
        """One fill as a controller does it: ask, then (if permitted, or bypassed) fill and report."""
        scale = case.scale
        seq, decision = await scale.request_fill(case.tag, case.gross_before_g, case.operator_card, case.medium)
        if case.label != "normal":
            verdict = "no answer" if decision is None else (
                "permitted" if decision.permit else f"denied ({decision.reason}: {decision.message})")  # fmt: skip
            self._note(f"fill at {scale.terminal_id}: {case.label} -> {verdict}")
        if decision is None or case.result == "none":
            return
        limit = decision.net_limit_g
        if case.result == "bypass" and not decision.permit:
            after = max(case.full_g, case.gross_before_g + 1_000)
        elif not decision.permit:
            return
        elif case.result == "overfill":
            after = case.gross_before_g + limit + 1_200
        elif case.result == "short":
            after = case.gross_before_g + max(0, limit - 1_500)
        else:
            after = case.gross_before_g + max(0, limit - self.rng.randint(0, 150))
        scale.send_fill_result(seq, case.tag, case.gross_before_g, after, self.rng.randint(60, 120), 0)
        if case.result == "refill":
            await asyncio.sleep(1)
            await self.fill(FillCase(case.label + ", asked again", scale, case.tag, case.gross_before_g,
                                     case.operator_card, case.medium, "none"))  # fmt: skip

    async def _normal_fills(self) -> None:
        """Ordinary business: every few seconds some scale fills a cylinder that may be filled."""
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / NORMAL_FILL_EVERY_S))
            medium = "CNG" if self.rng.random() < 0.3 else "LPG"
            stations = self._active_stations(medium)
            pool = self.cylinders.vehicle_good if medium == "CNG" else None
            if not stations:
                continue
            station = self.rng.choice(stations)
            pool = pool or self.cylinders.by_station.get(station)
            if not pool:
                continue
            cylinder = self.rng.choice(pool)
            scale = self.rng.choice(self.scales[station])
            card = self.operators.get(station, [0])[0]
            self._spawn(self.fill(FillCase("normal", scale, cylinder["tag_uid"], empty_gross(cylinder, self.rng),
                                           card, medium)))  # fmt: skip
