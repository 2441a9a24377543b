"""The gas-cylinder alarms of domain.md: weight tampering at the request, overfill, short fill and fill
without permit after the fill. Pure functions: what is found, with the thresholds in force (the alarm
kinds are registered by ``filling.plugin``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Subject
from wuhai_iot.config import RulesConfig
from wuhai_iot.filling.cylinders import CylinderWeights, grams
from wuhai_iot.storage.writer import Statement


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    """Weights (grams) and the threshold in force, as stored with the alarm."""


def request_findings(request: ev.FillRequest, cylinder: CylinderWeights, rules: RulesConfig) -> list[Finding]:
    """Weight tampering: lighter than the registered tare by more than the threshold, whatever the decision."""
    threshold_g = grams(rules.tamper_below_tare_kg)
    if request.gross_before_g < cylinder.tare_g - threshold_g:
        detail = {"gross_before_g": request.gross_before_g, "tare_g": cylinder.tare_g, "threshold_g": threshold_g}
        return [Finding("weight_tampering", detail)]
    return []


def result_findings(
    result: ev.FillResult, permitted: bool | None, cylinder: CylinderWeights | None, rules: RulesConfig
) -> list[Finding]:
    """Alarms a FILL_RESULT raises. ``permitted`` is None when the platform was never asked."""
    found: list[Finding] = []
    added_g = result.gross_after_g - result.gross_before_g
    threshold_g = grams(rules.fill_without_permit_kg)
    if added_g > threshold_g and not permitted:
        decision = "never_asked" if permitted is None else "denied"
        found.append(Finding("fill_without_permit", {"added_g": added_g, "threshold_g": threshold_g, "decision": decision}))
    if cylinder is None:
        return found
    tolerance_g = cylinder.tolerance_g(rules)
    weights = {"gross_after_g": result.gross_after_g, "full_g": cylinder.full_g, "tolerance_g": tolerance_g}
    if result.gross_after_g > cylinder.full_g + tolerance_g:
        found.append(Finding("overfill", weights))
    elif result.outcome == 0 and result.gross_after_g < cylinder.full_g - tolerance_g:
        found.append(Finding("short_fill", weights))
    return found


def raise_finding(
    book: AlarmBook, finding: Finding, station_code: int, cylinder_code: str | None, at: datetime
) -> list[Statement]:
    """A finding is a one-off alarm on the cylinder at the station (on the station when the tag is unknown)."""
    subject = Subject(cylinder_code=cylinder_code, station_code=station_code)
    return book.record_alarm(subject, finding.kind, at, detail=finding.detail)
