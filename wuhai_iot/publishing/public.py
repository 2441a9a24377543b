"""The public page's figures: the rollout's progress and the system's effect, aggregates only.

Nothing here names a lift, an address, a person, a card, a plate, a station or a terminal: the figures
are counts, shares and times per district and for the city. A figure over fewer than ``min_objects``
objects is given as a range instead of the number (``{"range": [low, high]}``; ``high`` None: open), so
that no individual can be told apart:

- a count of 1 to min_objects - 1 becomes the range [1, min_objects - 1] (0 stays 0: it names nobody);
- a part of a whole (lifts fitted of all lifts) is exact when the whole is not masked;
- the city's figure becomes a range when a district's is masked, or the district's number would follow
  from the city's minus the others';
- a share or a rate whose part or whole is a range becomes the range of its possible values;
- a rescue time over fewer arrivals than min_objects is only said to be within the limit or over it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from wuhai_iot.clock import CST, cst_today
from wuhai_iot.config import Config
from wuhai_iot.publishing import effect as fx
from wuhai_iot.publishing.plan import KIND_LABELS, PHASE_LABELS, load_plan, progress
from wuhai_iot.registry.districts import DISTRICTS

Figure = int | float | dict[str, list[float | None]] | None
MONTHS = 12


def is_range(figure: Figure) -> bool:
    return isinstance(figure, dict)


def bounds(figure: Figure) -> tuple[float, float | None]:
    if isinstance(figure, dict):
        low, high = figure["range"]
        return float(low or 0), high
    return float(figure or 0), float(figure or 0)


@dataclass(frozen=True, slots=True)
class Masker:
    min_objects: int

    def count(self, n: int) -> Figure:
        """A count of objects or events: 0, at least min_objects, or the range of the small counts."""
        return n if n == 0 or n >= self.min_objects else {"range": [1, self.min_objects - 1]}

    def part(self, part: int, whole: int) -> Figure:
        """A part of a whole: exact when the whole is shown exactly."""
        return part if whole >= self.min_objects else self.count(part)

    def city(self, city: int, true_values: list[int], shown: list[Figure]) -> Figure:
        """The city's count, as a range when a district's is a range."""
        if 0 < city < self.min_objects:
            return self.count(city)
        masked = [(value, figure) for value, figure in zip(true_values, shown, strict=True) if is_range(figure)]
        if not masked:
            return city
        exact = city - sum(value for value, _ in masked)
        low = exact + sum(bounds(figure)[0] for _, figure in masked)
        high = exact + sum(bounds(figure)[1] or 0 for _, figure in masked)
        return {"range": [int(low), int(high)]}

    @staticmethod
    def ratio(part: Figure, whole: Figure, *, scale: float = 1.0, cap: float | None = None) -> Figure:
        """part / whole × scale, or the range of its possible values when either is a range."""
        part_low, part_high = bounds(part)
        whole_low, whole_high = bounds(whole)
        if not whole_high:
            return None
        if part_high == 0:
            return 0.0
        if not is_range(part) and not is_range(whole):
            return round(scale * part_low / whole_low, 4)
        low = scale * part_low / whole_high
        high = scale * (part_high or 0) / max(whole_low, 1)
        if cap is not None:
            high = min(high, cap)
        return {"range": [round(low, 4), round(high, 4)]}

    def minutes(self, value: float | None, arrived: int, limit: float) -> Figure:
        """A rescue time: exact over enough arrivals, else within the limit or over it."""
        if value is None:
            return None
        if arrived >= self.min_objects:
            return round(value, 1)
        return {"range": [0, limit]} if value <= limit else {"range": [limit, None]}


def show(figure: Figure, *, percent: bool = False, digits: int = 0) -> str:
    """A figure as the page prints it: ``38``, ``62%``, ``1–4``, ``≥30``; ``—`` for none."""

    def one(value: float | None) -> str:
        if value is None:
            return ""
        if percent:
            return f"{value * 100:.{digits}f}%"
        if digits == 0 and float(value).is_integer():
            return str(int(value))
        return f"{value:.{digits or 1}f}"

    if figure is None:
        return "—"
    if isinstance(figure, dict):
        low, high = figure["range"]
        if high is None:
            return "≥" + one(low)
        return f"{one(low)}–{one(high)}"
    return one(figure)


async def public_figures(conn: aiosqlite.Connection, config: Config, figures: list[dict[str, Any]], *,
                         now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the public page and ``/public.json`` show, masked; ``taken_at`` is when it was read.
    ``figures``: the rollout figures of every district (``web.queries.coverage``)."""
    now = now or datetime.now(UTC)
    today = cst_today(now)
    masker = Masker(max(1, config.public.min_objects))
    limit = config.rules.rescue_arrival_limit_min
    months = fx.months_back(today, MONTHS)
    by_district = {row["district_code"]: row for row in figures}
    effect = await fx.monthly_effect(conn, months, limit_min=limit)
    online_30d = await fx.online_share(conn, today)
    plan = await load_plan(conn)
    districts = list(DISTRICTS)

    def coverage_pair(part_name: str, whole_name: str) -> dict[str, Any]:
        shown: dict[str, dict[str, Figure]] = {}
        for code in districts:
            row = by_district[code]
            whole = masker.count(row[whole_name])
            part = masker.part(row[part_name], row[whole_name])
            shown[code] = {"done": part, "of": whole, "share": masker.ratio(part, whole, cap=1.0)}
        city_part = masker.city(sum(by_district[c][part_name] for c in districts),
                                [by_district[c][part_name] for c in districts], [shown[c]["done"] for c in districts])
        city_whole = masker.city(sum(by_district[c][whole_name] for c in districts),
                                 [by_district[c][whole_name] for c in districts], [shown[c]["of"] for c in districts])
        shown[fx.CITY] = {"done": city_part, "of": city_whole, "share": masker.ratio(city_part, city_whole, cap=1.0)}
        return shown  # fmt: skip

    pairs = {
        "lifts_fitted": coverage_pair("elevators_installed", "elevators"),
        "lifts_online_now": coverage_pair("elevators_online", "elevators_installed"),
        "stations_connected": coverage_pair("stations_connected", "stations"),
        "cylinders_tagged": coverage_pair("cylinders_tagged", "cylinders"),
        "vehicles_certified": coverage_pair("vehicles_valid", "vehicles"),
    }

    def monthly(code: str) -> list[dict[str, Any]]:
        rows = []
        for month in months:
            cell = effect[code][month]
            if code == fx.CITY:
                parts = [effect[c][month] for c in districts]
                shown_parts = {name: [masker.count(getattr(p, name)) for p in parts]
                               for name in ("trapped", "visits_verified", "visits_flagged", "fitted")}  # fmt: skip

                def count(name: str) -> Figure:
                    return masker.city(getattr(cell, name), [getattr(p, name) for p in parts], shown_parts[name])

                refused = {group: masker.city(cell.refused.get(group, 0), [p.refused.get(group, 0) for p in parts],
                                              [masker.count(p.refused.get(group, 0)) for p in parts])
                           for group in fx.REASON_GROUPS}  # fmt: skip
                refused_total = masker.city(cell.refused_total, [p.refused_total for p in parts],
                                            [masker.count(p.refused_total) for p in parts])  # fmt: skip
            else:

                def count(name: str) -> Figure:
                    return masker.count(getattr(cell, name))

                refused = {group: masker.count(cell.refused.get(group, 0)) for group in fx.REASON_GROUPS}
                refused_total = masker.count(cell.refused_total)
            trapped, fitted = count("trapped"), count("fitted")
            arrived = masker.count(cell.arrived)
            within = masker.part(cell.within_limit, cell.arrived)
            rows.append({
                "month": month,
                "trapped": trapped,
                "rescue_median_min": masker.minutes(cell.median_min, cell.arrived, limit),
                "rescue_p90_min": masker.minutes(cell.p90_min, cell.arrived, limit),
                "rescue_within_limit_share": masker.ratio(within, arrived, cap=1.0),
                "visits_verified": count("visits_verified"),
                "visits_flagged": count("visits_flagged"),
                "refused": refused,
                "refused_total": refused_total,
                "trapped_per_1000_lifts": masker.ratio(trapped, fitted, scale=1000),
            })  # fmt: skip
        return rows

    def online_30d_figure(code: str) -> Figure:
        share = online_30d.get(code)
        if share is None:
            return None
        fitted = sum(by_district[c]["elevators_installed"] for c in districts) if code == fx.CITY else \
            by_district[code]["elevators_installed"]  # fmt: skip
        return round(share, 4) if fitted >= masker.min_objects else {"range": [0.0, 1.0]}

    areas = []
    for code in [fx.CITY, *districts]:
        areas.append({
            "code": code or "city",
            "name": DISTRICTS.get(code, "全市"),
            "coverage": {name: pair[code] for name, pair in pairs.items()}
                        | {"lifts_online_30d": online_30d_figure(code)},
            "months": monthly(code),
        })  # fmt: skip
    current = plan.current(today)
    items = []
    for item in progress(plan, figures, today):
        target = masker.count(item.target)
        done = masker.part(item.done, item.target)
        items.append({
            "district": DISTRICTS[item.district_code], "phase": item.phase, "phase_label": PHASE_LABELS[item.phase],
            "kind": item.kind, "kind_label": KIND_LABELS[item.kind], "target": target, "done": done,
            "ends_on": item.ends_on.isoformat(), "days_left": item.days_left, "late": item.late, "met": item.met,
            "text": item.sentence(DISTRICTS[item.district_code], target=show(target), done=show(done)),
        })  # fmt: skip
    return {
        "title": "乌海市特种设备安全信息化物联网管理系统 建设进度与运行效果",
        "taken_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "taken_at_cst": now.astimezone(CST).strftime("%Y-%m-%d %H:%M"),
        "min_objects": masker.min_objects,
        "rescue_limit_min": limit,
        "months": months,
        "reason_groups": {group: label for group, (label, _) in fx.REASON_GROUPS.items()},
        "plan": {
            "phases": [{"phase": p.phase, "label": p.label, "starts_on": p.starts_on.isoformat(),
                        "ends_on": p.ends_on.isoformat()} for p in plan.phases.values()],
            "current": None if current is None else current.phase,
            "progress": items,
        },  # fmt: skip
        "areas": areas,
    }
