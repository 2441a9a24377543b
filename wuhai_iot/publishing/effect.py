"""The system's effect month by month, per district and for the whole city: trapped-passenger incidents,
rescue arrival times, maintenance visits verified and flagged, fills refused by reason group, incidents per
1,000 fitted lifts. The public page masks them; the evaluation reports show them as they are.

Every figure is counted in SQL and grouped by (CST month, district): the answer is a few rows per month,
whatever the size of the city. Percentiles are nearest-rank: the p-th percentile of n sorted arrival times is
the value at rank ⌈p·n⌉ (the median: rank ⌈n/2⌉).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.clock import cst_midnight
from wuhai_iot.registry.districts import DISTRICTS

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

_MONTH = "strftime('%Y-%m', {column} + 8 * 3600, 'unixepoch')"


def months_back(today: date, count: int) -> list[str]:
    """The ``count`` CST months ending with today's, oldest first ('YYYY-MM')."""
    year, month = today.year, today.month
    found = []
    for _ in range(count):
        found.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return found[::-1]


def month_bounds(first: str, last: str) -> tuple[float, float]:
    """Unix seconds of the start of CST month ``first`` and of the month after ``last``."""
    start = date.fromisoformat(first + "-01")
    end = (date.fromisoformat(last + "-01").replace(day=28) + timedelta(days=4)).replace(day=1)
    return cst_midnight(start).timestamp(), cst_midnight(end).timestamp()


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


_RESCUES_BY = """
WITH arrivals AS (
  SELECT {period} AS month, e.district_code AS district, r.arrival_min
  FROM rescues r JOIN elevators e ON e.device_code = r.device_code WHERE r.raised_at >= :since AND r.raised_at < :until
), scoped AS (
  SELECT month, district, arrival_min FROM arrivals UNION ALL SELECT month, '' AS district, arrival_min FROM arrivals
), ranked AS (
  SELECT month, district, arrival_min,
         row_number() OVER (PARTITION BY month, district ORDER BY arrival_min) AS rank,
         count(arrival_min) OVER (PARTITION BY month, district) AS n
  FROM scoped
)
SELECT month, district, count(*) AS rescues, count(arrival_min) AS arrived,
       sum(arrival_min <= :limit) AS within_limit,
       max(CASE WHEN arrival_min IS NOT NULL AND rank = (n + 1) / 2 THEN arrival_min END) AS median_min,
       max(CASE WHEN arrival_min IS NOT NULL AND rank = (9 * n + 9) / 10 THEN arrival_min END) AS p90_min
FROM ranked GROUP BY month, district
""".replace("ORDER BY arrival_min)", "ORDER BY arrival_min IS NULL, arrival_min)")
# (The rescues not yet arrived sort last: the ranks 1..n are the arrived ones, n = how many arrived.)
_RESCUES = _RESCUES_BY.replace("{period}", _MONTH.format(column="r.raised_at"))

_TRAPPED = f"""
SELECT {_MONTH.format(column="a.raised_at")} AS month, e.district_code AS district, count(*) AS n
FROM alarms a JOIN elevators e ON e.device_code = a.device_code
WHERE a.kind = 'trapped' AND a.merged_into IS NULL AND a.raised_at >= :since AND a.raised_at < :until
GROUP BY month, district
"""

_VISITS = f"""
SELECT {_MONTH.format(column="coalesce(v.started_at, v.ended_at)")} AS month, e.district_code AS district,
       sum(v.flags = '' AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL) AS verified,
       sum(v.flags != '') AS flagged
FROM maintenance_visits v JOIN elevators e ON e.device_code = v.device_code
WHERE coalesce(v.started_at, v.ended_at) >= :since AND coalesce(v.started_at, v.ended_at) < :until
GROUP BY month, district
"""

_REFUSED = f"""
SELECT {_MONTH.format(column="d.decided_at")} AS month, s.district_code AS district, d.reason, count(*) AS n
FROM fill_decisions d JOIN stations s ON s.station_code = d.station_code
WHERE d.permit = 0 AND d.decided_at >= :since AND d.decided_at < :until
GROUP BY month, district, d.reason
"""

# Lifts counted by the month their first terminal was installed ('' = date unknown: fitted long ago).
_FITTED = """
SELECT district, coalesce(substr(first_installed, 1, 7), '') AS month, count(*) AS n FROM (
  SELECT e.district_code AS district, min(coalesce(t.installed_on, '')) AS first_installed
  FROM elevators e JOIN terminals t ON t.device_code = e.device_code GROUP BY e.device_code
) GROUP BY district, month
"""


async def monthly_effect(
    conn: aiosqlite.Connection, months: list[str], *, limit_min: float, district_code: str | None = None
) -> Effect:
    """The figures of ``months`` (consecutive 'YYYY-MM', oldest first) for every district and the city,
    or for ``district_code`` only (then CITY holds that district's figures too)."""
    since, until = month_bounds(months[0], months[-1])
    params = {"since": since, "until": until, "limit": limit_min}
    districts = [district_code] if district_code else list(DISTRICTS)
    effect: Effect = {key: {m: MonthFigures() for m in months} for key in [CITY, *districts]}

    def cell(district: str, month: str) -> MonthFigures | None:
        return effect.get(district, {}).get(month) if district in districts or district == CITY else None

    for row in await conn.execute_fetchall(_TRAPPED, params):
        for key in (row["district"], CITY):
            if (figures := cell(key, row["month"])) is not None:
                figures.trapped += row["n"]
    for row in await conn.execute_fetchall(_RESCUES, params):
        if district_code is not None and row["district"] == CITY:
            continue  # the city's percentiles are not the district's
        key = row["district"] if row["district"] else CITY
        if (figures := cell(key, row["month"])) is not None:
            figures.rescues, figures.arrived = row["rescues"], row["arrived"]
            figures.within_limit = int(row["within_limit"] or 0)
            figures.median_min, figures.p90_min = row["median_min"], row["p90_min"]
    if district_code is not None:
        mine = effect[district_code]
        for month, figures in effect[CITY].items():
            source = mine[month]
            figures.rescues, figures.arrived, figures.within_limit = source.rescues, source.arrived, source.within_limit
            figures.median_min, figures.p90_min = source.median_min, source.p90_min
    for row in await conn.execute_fetchall(_VISITS, params):
        for key in (row["district"], CITY):
            if (figures := cell(key, row["month"])) is not None:
                figures.visits_verified += int(row["verified"] or 0)
                figures.visits_flagged += int(row["flagged"] or 0)
    for row in await conn.execute_fetchall(_REFUSED, params):
        group = GROUP_OF_REASON.get(row["reason"], "platform")
        for key in (row["district"], CITY):
            if (figures := cell(key, row["month"])) is not None:
                figures.refused[group] = figures.refused.get(group, 0) + row["n"]
    installed: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for row in await conn.execute_fetchall(_FITTED):
        installed[row["district"]].append((row["month"], row["n"]))
    for key in districts:
        for month in months:
            fitted = sum(n for first, n in installed.get(key, []) if first <= month)
            effect[key][month].fitted = fitted
    for month in months:
        effect[CITY][month].fitted = sum(effect[key][month].fitted for key in districts)
    return effect


_ONLINE = """
WITH lifts AS (
  SELECT e.district_code AS district, e.device_code,
         max(min(coalesce(t.installed_on, ''), :today), :window_from) AS counted_from
  FROM elevators e JOIN terminals t ON t.device_code = e.device_code GROUP BY e.device_code
)
SELECT l.district, sum(julianday(:today) - julianday(l.counted_from)) * 86400 AS possible_s,
       (SELECT coalesce(sum(d.online_s), 0) FROM lift_daily d JOIN elevators e ON e.device_code = d.device_code
        WHERE e.district_code = l.district AND d.day >= :window_from AND d.day < :today) AS online_s
FROM lifts l GROUP BY l.district
"""


async def online_share(conn: aiosqlite.Connection, today: date, days: int = 30) -> dict[str, float | None]:
    """The share of time fitted lifts were online over the ``days`` CST days before today, per district and
    for the city (CITY): online seconds of the lifts' daily figures over the seconds each fitted lift could
    have been online (from its first terminal's installation, within the window)."""
    params = {"today": today.isoformat(), "window_from": (today - timedelta(days=days)).isoformat()}
    rows = await conn.execute_fetchall(_ONLINE, params)
    shares: dict[str, float | None] = {}
    totals = [0.0, 0.0]
    for row in rows:
        possible, online = float(row["possible_s"] or 0), float(row["online_s"] or 0)
        shares[row["district"]] = min(1.0, online / possible) if possible else None
        totals[0] += online
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


async def rescue_summary(conn: aiosqlite.Connection, since: float, until: float, *, limit_min: float
                         ) -> dict[str, RescueSummary]:  # fmt: skip
    """Rescues raised in [since, until) per district and for the city (CITY), arrival times ranked as in the
    monthly figures."""
    sql = _RESCUES_BY.replace("{period}", "'all'")
    rows = await conn.execute_fetchall(sql, {"since": since, "until": until, "limit": limit_min})
    return {row["district"]: RescueSummary(row["rescues"], row["arrived"], int(row["within_limit"] or 0),
                                           row["median_min"], row["p90_min"]) for row in rows}  # fmt: skip
