"""The system's effect month by month, per district and for the whole city: trapped-passenger incidents,
rescue arrival times, maintenance visits verified and flagged, fills refused by reason group, incidents per
1,000 fitted lifts. The public page masks them; the evaluation reports show them as they are.

Trapped-passenger incidents are the trapped alarms as the alarm lists scope them (their lift's district).
The monthly figures are running figures kept per district and CST day or month (storage/figures.py,
migrations 0025, 0030, 0037, 0039): a year reads a few hundred rows at most, whatever the size of the city and of
its history. Percentiles are nearest-rank: the p-th percentile of n sorted arrival times is the value at rank
⌈p·n⌉ (the median: rank ⌈n/2⌉), each arrival time rounded up to a tenth of a minute (as they are counted),
for a month or over a phase's whole months (``rescue_summary``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.registry.districts import DISTRICTS
from wuhai_iot.storage import figures

CITY = ""
"""The key of the whole city's figures beside the districts' codes."""

REASON_GROUPS: dict[str, tuple[str, tuple[int, ...]]] = {
    "unregistered": ("标签或操作员卡未登记", (1, 11)),
    "overdue": ("检验过期、报废或超年限", (2, 3)),
    "blacklisted": ("黑名单气瓶", (6,)),
    "not_own": ("非自有气瓶或介质不符", (4, 5)),
    "vehicle": ("车用气瓶无有效登记证", (8,)),
    "decanting": ("已满或疑似倒气", (9, 10)),
    "licence": ("充装许可过期或暂停", (7,)),
    "platform": ("平台故障", (99,)),
}
"""Fill refusals grouped for readers: (label, GF-3 deny reasons)."""
GROUP_OF_REASON = {reason: group for group, (_, reasons) in REASON_GROUPS.items() for reason in reasons}


def months_back(today: date, count: int) -> list[str]:
    """The ``count`` CST months ending with today's, oldest first ('YYYY-MM')."""
    year, month = today.year, today.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


@dataclass(slots=True)
class MonthFigures:
    """One month's effect in one district (or the city)."""

    trapped: int = 0
    rescues: int = 0
    arrived: int = 0
    within_limit: int = 0
    median_min: float | None = None
    p90_min: float | None = None
    visits_verified: int = 0
    visits_flagged: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    """Reason group → fills refused."""
    fitted: int = 0
    """Lifts with a terminal installed by the end of the month."""

    @property
    def refused_total(self) -> int:
        return sum(self.refused.values())

    @property
    def within_share(self) -> float | None:
        return None if not self.arrived else self.within_limit / self.arrived

    @property
    def per_thousand(self) -> float | None:
        """Trapped incidents per 1,000 fitted lifts."""
        return None if not self.fitted else 1000 * self.trapped / self.fitted


Effect = dict[str, dict[str, MonthFigures]]
"""District code (CITY for the whole city) → month 'YYYY-MM' → figures."""


# The arrival times of a window's rescues, counted per (CST month, district) by the minute (migration 0042), then per
# tenth of a minute (0037) within the minutes where a percentile or the arrival limit falls: a district's month
# reads some 40 rows and a few tens more, whatever the number of its rescues (every tenth: some 320).
_ARRIVAL_MINUTES = """
SELECT month, district_code, minute, rescues FROM rescue_arrival_minutes
WHERE month >= :first AND month <= :last AND district_code != ''
"""
_ARRIVAL_TENTHS = """
SELECT a.month, a.district_code, a.tenths, a.rescues FROM json_each(:wanted) w JOIN rescue_arrivals a
    ON a.month = json_extract(w.value, '$[0]') AND a.district_code = json_extract(w.value, '$[1]')
    AND a.tenths >= json_extract(w.value, '$[2]') AND a.tenths <= json_extract(w.value, '$[3]')
"""


@dataclass(frozen=True, slots=True)
class ArrivalTimes:
    """Arrival times ranked: how many are within the limit, the median and the 90th percentile (minutes)."""

    within_limit: int
    median_min: float | None
    p90_min: float | None


def _tenths_of(minute: int) -> tuple[int, int]:
    """The first and last tenth counted in a minute (SQLite's integer division truncates: minute 0 holds -9 to 9)."""
    if minute > 0:
        return 10 * minute, 10 * minute + 9
    if minute < 0:
        return 10 * minute - 9, 10 * minute
    return -9, 9


@dataclass(slots=True)
class _Ranking:
    """One set of arrival times (a district's or the city's, in a month or over the window) being ranked."""

    cells: set[tuple[str, str]] = field(default_factory=set)
    """The (month, district) whose times it holds."""
    minutes: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    within_limit: int = 0
    straddled: int | None = None
    """The minute with tenths on either side of the limit."""
    ranks: list[tuple[int, int]] = field(default_factory=list)
    """Per percentile: the minute where its rank falls, and the rank within that minute."""

    def place(self, limit_tenths: float) -> None:
        n = sum(self.minutes.values())
        upto = 0
        for minute in sorted(self.minutes):
            first, last = _tenths_of(minute)
            if last <= limit_tenths:
                self.within_limit += self.minutes[minute]
            elif first <= limit_tenths:
                self.straddled = minute
            for rank in ((n + 1) // 2, (9 * n + 9) // 10)[len(self.ranks):]:
                if upto + self.minutes[minute] < rank:
                    break
                self.ranks.append((minute, rank - upto))
            upto += self.minutes[minute]

    def ranked(self, tenths: dict[tuple[str, str, int], dict[int, int]], limit_tenths: float) -> ArrivalTimes:
        """The times ranked, with the tenths of the minutes ``place`` found (by (month, district, minute))."""

        def of_minute(minute: int) -> dict[int, int]:
            counted: dict[int, int] = defaultdict(int)
            for month, district in self.cells:
                for tenth, rescues in tenths.get((month, district, minute), {}).items():
                    counted[tenth] += rescues
            return counted

        within = self.within_limit
        if self.straddled is not None:
            within += sum(rescues for tenth, rescues in of_minute(self.straddled).items() if tenth <= limit_tenths)
        found: list[float | None] = []
        for minute, rank in self.ranks:
            upto, counted = 0, of_minute(minute)
            for tenth in sorted(counted):
                upto += counted[tenth]
                if upto >= rank:
                    found.append(tenth / 10)
                    break
        found += [None] * (2 - len(found))
        return ArrivalTimes(within, found[0], found[1])


async def arrival_times(conn: aiosqlite.Connection, months: list[str], *, limit_min: float, by_month: bool
                        ) -> dict[tuple[str, str], ArrivalTimes]:  # fmt: skip
    """(month, or '' for the whole of ``months`` unless ``by_month``; district code, or CITY) → the arrival
    times of the rescues raised then, ranked."""
    limit_tenths = 10 * limit_min
    rankings: dict[tuple[str, str], _Ranking] = defaultdict(_Ranking)
    counted_minutes: set[tuple[str, str, int]] = set()
    for row in await conn.execute_fetchall(_ARRIVAL_MINUTES, {"first": months[0], "last": months[-1]}):
        month, district, minute = row["month"], row["district_code"], row["minute"]
        counted_minutes.add((month, district, minute))
        for key in ((month if by_month else "", district), (month if by_month else "", CITY)):
            rankings[key].cells.add((month, district))
            rankings[key].minutes[minute] += row["rescues"]
    wanted: set[tuple[str, str, int]] = set()
    for ranking in rankings.values():
        ranking.place(limit_tenths)
        for minute in {ranking.straddled, *(minute for minute, _ in ranking.ranks)} - {None}:
            wanted |= {(month, district, minute) for month, district in ranking.cells} & counted_minutes
    tenths: dict[tuple[str, str, int], dict[int, int]] = defaultdict(dict)
    if wanted:
        ranges = [[month, district, *_tenths_of(minute)] for month, district, minute in sorted(wanted)]
        for row in await conn.execute_fetchall(_ARRIVAL_TENTHS, {"wanted": json.dumps(ranges)}):
            minute = int(row["tenths"] / 10)  # (truncated, as SQLite counts it)
            tenths[(row["month"], row["district_code"], minute)][row["tenths"]] = row["rescues"]
    return {key: ranking.ranked(tenths, limit_tenths) for key, ranking in rankings.items()}


PARTS = frozenset({"trapped", "rescues", "visits", "refused", "fitted"})
"""What ``monthly_effect`` counts: trapped incidents, rescues (with their arrival times), maintenance visits,
fills refused, fitted lifts (with the incidents per 1,000 of them)."""
_COUNTED = {"trapped": ("alarms:trapped", {"alarms:trapped": "trapped"}),
            "rescues": ("rescues", {"rescues": "rescues", "rescues:arrived": "arrived"}),
            "visits": ("visits", {"visits:verified": "visits_verified", "visits:flagged": "visits_flagged"})}  # fmt: skip
"""Part → (the prefix of the figures read, figure → MonthFigures attribute). Trapped alarms are counted per
severity ('alarms:trapped:critical'...); 'rescues' reads 'rescues:arrival_cmin' and 'rescues:late' too."""


async def monthly_effect(conn: aiosqlite.Connection, months: list[str], *, limit_min: float,
                         district_code: str | None = None, parts: frozenset[str] = PARTS) -> Effect:  # fmt: skip
    """The figures of ``months`` (consecutive 'YYYY-MM', oldest first) for every district and the city,
    or for ``district_code`` only (then CITY holds that district's figures too); only ``parts`` of them are
    counted (the others stay 0 and None)."""
    districts = [district_code] if district_code else list(DISTRICTS)
    effect: Effect = {key: {m: MonthFigures() for m in months} for key in [CITY, *districts]}

    def cells(district: str, month: str) -> list[MonthFigures]:
        """The district's figures of that month and the city's (nothing for a district out of scope)."""
        if district not in districts or month not in effect[CITY]:
            return []
        return [effect[district][month], effect[CITY][month]]

    for part in sorted(parts & _COUNTED.keys()):
        prefix, names = _COUNTED[part]
        for (district, figure, month), n in (await figures.per_district_month(conn, prefix, months)).items():
            figure = prefix if part == "trapped" else figure
            if figure in names:
                for cell in cells(district, month):
                    setattr(cell, names[figure], getattr(cell, names[figure]) + n)
    if "refused" in parts:
        for (district, figure, month), n in (await figures.per_district_month(conn, "fills_denied", months)).items():
            group = GROUP_OF_REASON.get(int(figure.partition(":")[2]), "platform")
            for cell in cells(district, month):
                cell.refused[group] = cell.refused.get(group, 0) + n
    if "rescues" in parts:
        for (month, key), times in (await arrival_times(conn, months, limit_min=limit_min, by_month=True)).items():
            if (key != CITY and key not in districts) or (key == CITY and district_code is not None):
                continue  # the city's percentiles are not the district's
            cell = effect[key][month]
            cell.within_limit, cell.median_min, cell.p90_min = times.within_limit, times.median_min, times.p90_min
        if district_code is not None:
            for month, cell in effect[CITY].items():
                source = effect[district_code][month]
                cell.within_limit, cell.median_min, cell.p90_min = (source.within_limit, source.median_min,
                                                                    source.p90_min)  # fmt: skip
    if "fitted" in parts:
        fitted = await figures.fitted_by_month(conn)
        for key in districts:
            for month in months:
                effect[key][month].fitted = sum(n for fitted_in, n in fitted.get(key, {}).items() if fitted_in <= month)
        for month in months:
            effect[CITY][month].fitted = sum(effect[key][month].fitted for key in districts)
    return effect


async def online_share(conn: aiosqlite.Connection, today: date, days: int = 30) -> dict[str, float | None]:
    """The share of time fitted lifts were online over the ``days`` CST days before today, per district and
    for the city (CITY): online seconds of the lifts' daily figures over the seconds each fitted lift could
    have been online (from its first terminal's installation, within the window)."""
    window_from = today - timedelta(days=days)
    online: dict[str, float] = defaultdict(float)
    for (district, _, _), seconds in (await figures.per_district_day(conn, "online_s", window_from, today)).items():
        online[district] += seconds
    # Lifts fitted before the window's month (or on an unknown day) by month, those fitted since by day.
    before = await figures.fitted_by_month(conn, before=window_from.isoformat()[:7])
    since = await figures.fitted_since(conn, window_from.replace(day=1))
    shares: dict[str, float | None] = {}
    totals = [0.0, 0.0]
    for district in sorted(before.keys() | since.keys()):
        possible = float(sum(before.get(district, {}).values()) * days * 86400)
        for day, n in since.get(district, {}).items():
            counted_from = max(min(date.fromisoformat(day), today), window_from)
            possible += n * (today - counted_from).days * 86400
        shares[district] = min(1.0, online[district] / possible) if possible else None
        totals[0] += online[district]
        totals[1] += possible
    shares[CITY] = min(1.0, totals[0] / totals[1]) if totals[1] else None
    return shares


def as_dict(figures: MonthFigures) -> dict[str, Any]:
    """A month's figures as plain values (the evaluation workbook and tests)."""
    return {"trapped": figures.trapped, "rescues": figures.rescues, "arrived": figures.arrived,
            "within_limit": figures.within_limit, "within_share": figures.within_share,
            "median_min": figures.median_min, "p90_min": figures.p90_min, "visits_verified": figures.visits_verified,
            "visits_flagged": figures.visits_flagged, "refused": dict(figures.refused),
            "refused_total": figures.refused_total, "fitted": figures.fitted, "per_thousand": figures.per_thousand}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RescueSummary:
    rescues: int
    arrived: int
    within_limit: int
    median_min: float | None
    p90_min: float | None

    @property
    def within_share(self) -> float | None:
        return None if not self.arrived else self.within_limit / self.arrived


async def rescue_summary(conn: aiosqlite.Connection, months: list[str], *, limit_min: float
                         ) -> dict[str, RescueSummary]:  # fmt: skip
    """Rescues raised in ``months`` (whole CST months, 'YYYY-MM', oldest first) per district and for the city
    (CITY), arrival times ranked as in the monthly figures."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (district, figure, _), n in (await figures.per_district_month(conn, "rescues", months)).items():
        if district and figure in ("rescues", "rescues:arrived"):
            for key in (district, CITY):
                counts[key][figure != "rescues"] += n
    ranked = await arrival_times(conn, months, limit_min=limit_min, by_month=False)
    summary = {}
    for key, (rescues, arrived) in counts.items():
        times = ranked.get(("", key), ArrivalTimes(0, None, None))
        summary[key] = RescueSummary(rescues, arrived, times.within_limit, times.median_min, times.p90_min)
    return summary
