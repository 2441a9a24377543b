"""What the filling modules share about cylinders: kinds, weights in grams, tolerances."""

from __future__ import annotations

from dataclasses import dataclass

from wuhai_iot.config import RulesConfig

HOUSEHOLD = "household_lpg"
VEHICLE_KINDS = ("vehicle_cng", "vehicle_lng")


def grams(kg: float) -> int:
    return round(kg * 1000)


@dataclass(frozen=True, slots=True)
class CylinderWeights:
    """What the post-fill checks need to know of a cylinder."""

    cylinder_code: str
    kind: str
    tare_g: int
    rated_fill_g: int

    @property
    def full_g(self) -> int:
        """Gross weight of a correctly filled cylinder."""
        return self.tare_g + self.rated_fill_g

    def tolerance_g(self, rules: RulesConfig) -> int:
        """Overfill / short-fill tolerance: fixed for household LPG (GB 17267), a share of the rated fill otherwise."""
        if self.kind == HOUSEHOLD:
            return grams(rules.household_fill_tolerance_kg)
        return round(self.rated_fill_g * rules.fill_tolerance_pct / 100)
