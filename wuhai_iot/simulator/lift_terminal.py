"""What a simulated lift terminal reports, in protocol-neutral words, and the interface both lift
protocols' devices offer (ELink-200 and LMT-4 alike)."""

from __future__ import annotations

from dataclasses import dataclass

from wuhai_iot.events import Direction, Door
from wuhai_iot.simulator.device import SimulatedDevice


@dataclass(frozen=True, slots=True)
class LiftSample:
    """One status sample of a car."""

    floor: int = 1
    direction: Direction = Direction.STOPPED
    door: Door = Door.CLOSED
    running: bool = False
    door_zone: bool = True
    occupied: bool = False
    speed_mps: float = 0.0
    load_pct: int = 0
    power: bool = True
    safety_circuit: bool = True
    door_lock: bool = True
    overload: bool = False
    mode: str = "normal"
    """normal, inspection, fire, maintenance, out_of_service"""
    trip_count: int = 0


class LiftTerminal(SimulatedDevice):
    """A lift monitoring terminal: status, faults and maintenance card swipes."""

    last_sample: LiftSample | None = None

    def send_status(self, sample: LiftSample) -> None:
        self.last_sample = sample
        self.enqueue_status(sample, self.next_seq(), self.device_time())

    def send_fault(self, kind: str, active: bool, floor: int | None = None) -> None:
        """``kind`` is a canonical fault kind (``trapped`` …) or, for an unknown fault, the vendor's code."""
        raise NotImplementedError

    def send_maintenance_start(self, card: int) -> None:
        raise NotImplementedError

    def send_maintenance_end(self, card: int, items: int) -> None:
        raise NotImplementedError

    def enqueue_status(self, sample: LiftSample, seq: int, at: float) -> None:
        raise NotImplementedError

    def report_status_now(self) -> None:
        """Answer a platform's "report status now" command."""
        self.send_status(self.last_sample or LiftSample())
