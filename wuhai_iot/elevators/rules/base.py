"""What the lift rules see of a lift. Rules, transitions and the event clock are those of every subject
(``wuhai_iot.rules.base``); they are named here too, as the lift rules and deployments' rules import them."""

from __future__ import annotations

from dataclasses import dataclass

from wuhai_iot.rules.base import EventClock, Rule, SubjectContext, Transition, moment

__all__ = ["EventClock", "LiftContext", "Rule", "Transition", "moment"]


@dataclass(slots=True)
class LiftContext(SubjectContext):
    """A lift's context: the subject's, with the lift's rated speed."""

    rated_speed_mps: float | None = None

    @property
    def device_code(self) -> str:
        return self.code
