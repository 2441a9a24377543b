"""Accepted installations: which installed terminal has proved itself, and the subsidy due for it.

A terminal is accepted once it has sent valid data on ``acceptance.valid_days`` consecutive CST days on or
after its installation date (census ``installed_on``); its acceptance date is the last of those days. An
accepted terminal silent for ``acceptance.lapse_days`` days is listed again, as lapsed (no subsidy is due
for it while it is). A terminal without an installation date is never accepted: the subsidy is paid for a
documented installation.

"Sent valid data on a day" is a row in ``terminal_days``: every RECORD_INTERVAL_S the recorder here adds
the CST day of each session's last valid frame (``terminal_sessions.last_frame_at``, which only frames
that were parsed and accepted move), one statement through the batch writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.clock import CST_OFFSET_S, cst_midnight, cst_today
from wuhai_iot.config import AcceptanceConfig, SubsidyConfig

RECORD_INTERVAL_S = 300.0
KIND_LABELS = {"elevator": "电梯终端", "filling_scale": "充装秤控制器", "vehicle": "车载终端"}
STATUS_LABELS = {"accepted": "已验收", "lapsed": "验收后中断", "pending": "未验收"}
NO_INSTALLER = "（未登记安装单位）"

RECORD_DAYS = (
    "INSERT OR IGNORE INTO terminal_days (protocol, terminal_id, day)"
    f" SELECT protocol, terminal_id, date(last_frame_at + {CST_OFFSET_S}, 'unixepoch') FROM terminal_sessions"
    " WHERE last_frame_at >= ? AND rowid > ? AND rowid <= ?"
)
RECORD_CHUNK = 2_000
"""Sessions recorded per statement. The first recording of a day adds a day to every terminal that sent data,
each extending its run (terminal_runs): about 20 µs a terminal in the writer's thread, so a statement each
chunk lets the ingest's transactions go between them instead of waiting seconds at the province."""


def record_days_statements(now: datetime, last_rowid: int) -> list[tuple[str, tuple[float, int, int]]]:
    """The statements that record today's (and yesterday's, across midnight or a restart) days with data of the
    sessions up to ``last_rowid``, RECORD_CHUNK sessions each: write them one at a time."""
    since = cst_midnight(cst_today(now) - timedelta(days=1)).timestamp()
    return [(RECORD_DAYS, (since, first, first + RECORD_CHUNK)) for first in range(0, max(last_rowid, 0), RECORD_CHUNK)]


# A terminal judged from its runs of consecutive days with data (terminal_runs, kept as days are recorded:
# migration 0037), clipped at its installation date: its first run of :valid days or more (accepted on its
# :valid-th day), its last day with data, and the length of its latest run. Each subquery reads the runs of
# one terminal, a handful of rows (runs do not overlap: the latest is the one that starts last).
_RUNS_OF = ("FROM terminal_runs r WHERE r.protocol = t.protocol AND r.terminal_id = t.terminal_id"
            " AND r.last_day >= t.installed_on")
_LENGTH = "julianday(r.last_day) - julianday(max(r.first_day, t.installed_on)) + 1"
_JUDGED = f"""
SELECT t.protocol, t.terminal_id, t.installed_on, coalesce(t.installer, '') AS installer,
       CASE WHEN t.device_code IS NOT NULL THEN 'elevator' WHEN t.station_code IS NOT NULL THEN 'filling_scale'
            ELSE 'vehicle' END AS kind,
       coalesce(e.district_code, s.district_code) AS district_code,
       (SELECT min(CASE WHEN {_LENGTH} >= :valid THEN date(max(r.first_day, t.installed_on),
                                                          '+' || (:valid - 1) || ' days') END) {_RUNS_OF}) AS accepted_on,
       (SELECT max(r.last_day) {_RUNS_OF}) AS last_day,
       (SELECT CAST({_LENGTH} AS INTEGER) {_RUNS_OF} ORDER BY r.first_day DESC LIMIT 1) AS latest_run
FROM terminals t LEFT JOIN elevators e ON e.device_code = t.device_code
     LEFT JOIN stations s ON s.station_code = t.station_code
"""
_DISTRICT = "coalesce(e.district_code, s.district_code) = :district"
_ORDER = "coalesce(t.installer, ''), t.protocol, t.terminal_id"
"""The list's order: by installing unit, then terminal (the index terminals_installer)."""


@dataclass(frozen=True, slots=True)
class Installation:
    protocol: str
    terminal_id: str
    kind: str
    installer: str
    district_code: str | None
    installed_on: date | None
    accepted_on: date | None
    last_day: date | None
    """The last CST day with valid data."""
    status: str
    """accepted, lapsed or pending (STATUS_LABELS)."""
    holdup: str
    """What holds the acceptance back, or why it lapsed ('' when accepted)."""
    subsidy: float

    @property
    def installer_label(self) -> str:
        return self.installer or NO_INSTALLER

    @property
    def cursor(self) -> Cursor:
        return (self.installer, self.protocol, self.terminal_id)


def _judge(row: Any, today: date, rules: AcceptanceConfig, subsidy: SubsidyConfig) -> Installation:
    installed = date.fromisoformat(row["installed_on"]) if row["installed_on"] else None
    accepted = date.fromisoformat(row["accepted_on"]) if row["accepted_on"] else None
    last = date.fromisoformat(row["last_day"]) if row["last_day"] else None
    if accepted is not None and last is not None and (today - last).days >= rules.lapse_days:
        status, holdup = "lapsed", f"自 {last.isoformat()} 起 {(today - last).days} 天无有效数据"
    elif accepted is not None:
        status, holdup = "accepted", ""
    elif installed is None:
        status, holdup = "pending", "安装日期未登记"
    elif last is None:
        status, holdup = "pending", "安装后尚无有效数据"
    else:
        run = int(row["latest_run"] or 0)
        gap = (today - last).days
        holdup = f"最近连续 {run} 天有效数据（需 {rules.valid_days} 天）"
        if gap > 1:
            holdup += f"，{last.isoformat()} 后中断"
        status = "pending"
    amount = getattr(subsidy, row["kind"], 0.0) if status == "accepted" else 0.0
    return Installation(row["protocol"], row["terminal_id"], row["kind"], row["installer"], row["district_code"],
                        installed, accepted, last, status, holdup, float(amount))  # fmt: skip


Cursor = tuple[str, str, str]
"""Where a page of the list ends: (installer, protocol, terminal id) of its last terminal."""


async def page_of_installations(
    conn: aiosqlite.Connection, *, today: date, rules: AcceptanceConfig, subsidy: SubsidyConfig,
    after: Cursor | None = None, limit: int, district_code: str | None = None, installer: str | None = None,
) -> list[Installation]:  # fmt: skip
    """Up to ``limit`` terminals judged, by installing unit and terminal, after ``after`` (keyset)."""
    where, params = ["1"], {"valid": rules.valid_days, "limit": limit}
    if installer is not None:
        where.append("coalesce(t.installer, '') = :installer")
        params["installer"] = installer
    if district_code is not None:
        where.append(_DISTRICT)
        params["district"] = district_code
    conditions = " AND ".join(where)
    if after is None:
        sql = f"{_JUDGED} WHERE {conditions} ORDER BY {_ORDER} LIMIT :limit"
    else:
        # The rest of the last unit's terminals, then the units after it: each a seek on the index. (One
        # comparison of the three as a row value is not: every page read the list from its start.)
        params |= {"after_installer": after[0], "after_protocol": after[1], "after_terminal": after[2]}
        sql = (f"SELECT * FROM ({_JUDGED} WHERE {conditions} AND coalesce(t.installer, '') = :after_installer"
               " AND (t.protocol, t.terminal_id) > (:after_protocol, :after_terminal)"
               " ORDER BY t.protocol, t.terminal_id LIMIT :limit)"
               f" UNION ALL SELECT * FROM ({_JUDGED} WHERE {conditions} AND coalesce(t.installer, '') > :after_installer"
               f" ORDER BY {_ORDER} LIMIT :limit) LIMIT :limit")  # fmt: skip
    rows = await conn.execute_fetchall(sql, params)
    return [_judge(row, today, rules, subsidy) for row in rows]


EXPORT_BATCH = 1_000


async def installations(
    conn: aiosqlite.Connection, *, today: date, rules: AcceptanceConfig, subsidy: SubsidyConfig,
    district_code: str | None = None, installer: str | None = None, batch: int = EXPORT_BATCH,
) -> AsyncIterator[list[Installation]]:  # fmt: skip
    """Every terminal judged, by installing unit and terminal, read ``batch`` at a time (an export streams
    them: what it holds is one batch, whatever the number of terminals)."""
    after: Cursor | None = None
    while True:
        found = await page_of_installations(conn, today=today, rules=rules, subsidy=subsidy, after=after, limit=batch,
                                            district_code=district_code, installer=installer)  # fmt: skip
        if found:
            yield found
        if len(found) < batch:
            return
        after = found[-1].cursor


# --- totals per installing unit, district and kind: counted when days are recorded --------------------------

_COUNTED = f"""
SELECT installer, district_code, kind, count(*) AS terminals,
       sum(accepted_on IS NOT NULL AND julianday(:today) - julianday(last_day) < :lapse) AS accepted,
       sum(accepted_on IS NOT NULL AND julianday(:today) - julianday(last_day) >= :lapse) AS lapsed
FROM ({_JUDGED}) GROUP BY installer, district_code, kind
"""


@dataclass(frozen=True, slots=True)
class Counted:
    """How many terminals each (installer, district code, kind) has, accepted, lapsed and pending, as judged
    on ``today`` from the days recorded by ``taken_at``."""

    today: date
    taken_at: datetime
    groups: dict[tuple[str, str | None, str], tuple[int, int, int]]
    """(installer, district code, kind) → (accepted, lapsed, pending)."""


async def count_installations(conn: aiosqlite.Connection, *, today: date, rules: AcceptanceConfig) -> Counted:
    """Every terminal judged and counted in one grouped read of the registry and the terminals' runs. Its
    cost grows with the number of terminals, so pages do not call it: the recorder does, each time it has
    recorded the days with data (``totals_of``: what a page reads)."""
    rows = await conn.execute_fetchall(_COUNTED, {"valid": rules.valid_days, "today": today.isoformat(),
                                                  "lapse": rules.lapse_days})  # fmt: skip
    return Counted(today, datetime.now(UTC), {
        (row["installer"], row["district_code"], row["kind"]): (
            int(row["accepted"] or 0), int(row["lapsed"] or 0), row["terminals"] - int(row["accepted"] or 0)
            - int(row["lapsed"] or 0)) for row in rows})  # fmt: skip


@dataclass(slots=True)
class Totals:
    terminals: int = 0
    accepted: int = 0
    lapsed: int = 0
    pending: int = 0
    subsidy: float = 0.0

    def add(self, kind: str, accepted: int, lapsed: int, pending: int, subsidy: SubsidyConfig) -> None:
        self.terminals += accepted + lapsed + pending
        self.accepted += accepted
        self.lapsed += lapsed
        self.pending += pending
        self.subsidy += accepted * float(getattr(subsidy, kind, 0.0))


def totals_of(counted: Counted, subsidy: SubsidyConfig, *, district_code: str | None = None,
              installer: str | None = None) -> tuple[dict[tuple[str, str | None], Totals], Totals]:
    """Totals per (installer, district code) and overall, of the groups in the filters."""
    groups: dict[tuple[str, str | None], Totals] = {}
    total = Totals()
    for (unit, district, kind), counts in counted.groups.items():
        if (district_code is not None and district != district_code) or (installer is not None and unit != installer):
            continue
        groups.setdefault((unit, district), Totals()).add(kind, *counts, subsidy)
        total.add(kind, *counts, subsidy)
    return groups, total
