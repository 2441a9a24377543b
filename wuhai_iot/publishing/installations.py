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
    " WHERE last_frame_at >= ?"
)


def record_days_statement(now: datetime) -> tuple[str, tuple[float]]:
    """The statement that records today's (and yesterday's, across midnight or a restart) days with data."""
    since = cst_midnight(cst_today(now) - timedelta(days=1)).timestamp()
    return RECORD_DAYS, (since,)


async def run_recorder(platform: Any) -> None:
    """Record the days with data every RECORD_INTERVAL_S until cancelled (run it ``supervised``)."""
    while True:
        await asyncio.sleep(RECORD_INTERVAL_S)
        await platform.writer.write([record_days_statement(datetime.now(UTC))])


# Runs of consecutive days on or after the installation date (gaps and islands: within a run, the day
# minus its rank is constant), and each terminal's first run long enough.
_RUNS = """
WITH days AS (
  SELECT d.protocol, d.terminal_id, d.day,
         julianday(d.day) - row_number() OVER (PARTITION BY d.protocol, d.terminal_id ORDER BY d.day) AS island
  FROM terminal_days d JOIN terminals t ON t.protocol = d.protocol AND t.terminal_id = d.terminal_id
  WHERE t.installed_on IS NOT NULL AND d.day >= t.installed_on {only}
), runs AS (
  SELECT protocol, terminal_id, min(day) AS first_day, max(day) AS last_day, count(*) AS length
  FROM days GROUP BY protocol, terminal_id, island
)
SELECT protocol, terminal_id,
       min(CASE WHEN length >= :valid THEN date(first_day, '+' || (:valid - 1) || ' days') END) AS accepted_on,
       max(last_day) AS last_day,
       max(CASE WHEN last_day = (SELECT max(r.last_day) FROM runs r WHERE r.protocol = runs.protocol
                AND r.terminal_id = runs.terminal_id) THEN length END) AS latest_run
FROM runs GROUP BY protocol, terminal_id
"""

_TERMINALS = """
SELECT t.protocol, t.terminal_id, t.installed_on, coalesce(t.installer, '') AS installer,
       CASE WHEN t.device_code IS NOT NULL THEN 'elevator' WHEN t.station_code IS NOT NULL THEN 'filling_scale'
            ELSE 'vehicle' END AS kind,
       coalesce(e.district_code, s.district_code) AS district_code
FROM terminals t LEFT JOIN elevators e ON e.device_code = t.device_code
     LEFT JOIN stations s ON s.station_code = t.station_code
{where} ORDER BY installer, district_code, t.protocol, t.terminal_id
"""


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


def _judge(row: dict[str, Any], runs: dict[str, Any] | None, today: date, rules: AcceptanceConfig,
           subsidy: SubsidyConfig) -> Installation:  # fmt: skip
    installed = date.fromisoformat(row["installed_on"]) if row["installed_on"] else None
    accepted = date.fromisoformat(runs["accepted_on"]) if runs and runs["accepted_on"] else None
    last = date.fromisoformat(runs["last_day"]) if runs and runs["last_day"] else None
    if accepted is not None and last is not None and (today - last).days >= rules.lapse_days:
        status, holdup = "lapsed", f"自 {last.isoformat()} 起 {(today - last).days} 天无有效数据"
    elif accepted is not None:
        status, holdup = "accepted", ""
    elif installed is None:
        status, holdup = "pending", "安装日期未登记"
    elif last is None:
        status, holdup = "pending", "安装后尚无有效数据"
    else:
        run = int(runs["latest_run"] or 0) if runs else 0
        gap = (today - last).days
        holdup = f"最近连续 {run} 天有效数据（需 {rules.valid_days} 天）"
        if gap > 1:
            holdup += f"，{last.isoformat()} 后中断"
        status = "pending"
    amount = getattr(subsidy, row["kind"], 0.0) if status == "accepted" else 0.0
    return Installation(row["protocol"], row["terminal_id"], row["kind"], row["installer"], row["district_code"],
                        installed, accepted, last, status, holdup, float(amount))  # fmt: skip


async def installations(
    conn: aiosqlite.Connection, *, today: date, rules: AcceptanceConfig, subsidy: SubsidyConfig,
    district_code: str | None = None,
) -> AsyncIterator[Installation]:  # fmt: skip
    """Every terminal judged, by installing unit, district and terminal (a report streams them)."""
    where, params = ("", []) if district_code is None else (
        "WHERE coalesce(e.district_code, s.district_code) = ?", [district_code])  # fmt: skip
    runs = {(row["protocol"], row["terminal_id"]): dict(row)
            for row in await conn.execute_fetchall(_RUNS.format(only=""), {"valid": rules.valid_days})}  # fmt: skip
    async with conn.execute(_TERMINALS.format(where=where), params) as cursor:
        async for row in cursor:
            data = dict(row)
            yield _judge(data, runs.get((data["protocol"], data["terminal_id"])), today, rules, subsidy)


@dataclass(slots=True)
class Totals:
    terminals: int = 0
    accepted: int = 0
    lapsed: int = 0
    pending: int = 0
    subsidy: float = 0.0

    def add(self, item: Installation) -> None:
        self.terminals += 1
        setattr(self, item.status, getattr(self, item.status) + 1)
        self.subsidy += item.subsidy
