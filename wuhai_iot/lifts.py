"""Queries about lifts for the web pages and the JSON API: live state and daily figures.

Each lift row joins the registry, its latest state (``elevator_state``), whether its terminal is online,
its open alarms and the overdue flags (maintenance > 15 days, inspection past or due within 30 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot.maintenance import cst_today

LIFT_SQL = """
SELECT e.*, s.at AS state_at, s.floor, s.direction, s.door, s.running, s.door_zone, s.occupied, s.speed_mps,
       s.load_pct, s.power, s.mode,
       (SELECT max(ts.online) FROM terminals t JOIN terminal_sessions ts
          ON ts.protocol = t.protocol AND ts.terminal_id = t.terminal_id WHERE t.device_code = e.device_code) AS online,
       (SELECT count(*) FROM terminals t WHERE t.device_code = e.device_code) AS terminals,
       (SELECT count(*) FROM alarms a WHERE a.device_code = e.device_code AND a.status != 'resolved'
          AND a.merged_into IS NULL) AS open_alarms,
       (SELECT max(v.ended_at) FROM maintenance_visits v WHERE v.device_code = e.device_code
          AND v.started_at IS NOT NULL AND v.ended_at IS NOT NULL) AS last_maintenance_at
FROM elevators e LEFT JOIN elevator_state s ON s.device_code = e.device_code
"""


@dataclass(slots=True)
class LiftView:
    device_code: str
    registry: dict[str, Any]
    """The registry row (address, user unit, maintenance company, district_code, rated speed ...)."""
    state: dict[str, Any] | None
    """The latest status (``at`` is a datetime), or None before the first sample."""
    online: bool
    has_terminal: bool
    open_alarms: int
    last_maintenance_at: datetime | None
    maintenance_overdue: bool
    inspection_overdue: bool
    inspection_due_soon: bool


STATE_COLUMNS = ("floor", "direction", "door", "running", "door_zone", "occupied", "speed_mps", "load_pct", "power",
                 "mode")  # fmt: skip
FLAGS = ("running", "door_zone", "occupied", "power")


def _view(row: aiosqlite.Row, now: datetime | None, maintenance_days: int, inspection_days: int) -> LiftView:
    data = dict(row)
    today = cst_today(now)
    state = None
    if data["state_at"] is not None:
        state = {name: data[name] for name in STATE_COLUMNS}
        for name in FLAGS:
            state[name] = None if state[name] is None else bool(state[name])
        state["at"] = datetime.fromtimestamp(data["state_at"], UTC)
    registry = {k: v for k, v in data.items() if k not in STATE_COLUMNS and k not in
                ("state_at", "online", "terminals", "open_alarms", "last_maintenance_at")}  # fmt: skip
    last = data["last_maintenance_at"]
    last_at = None if last is None else datetime.fromtimestamp(last, UTC)
    inspection = data["next_inspection"]
    return LiftView(
        device_code=data["device_code"],
        registry=registry,
        state=state,
        online=bool(data["online"]),
        has_terminal=data["terminals"] > 0,
        open_alarms=data["open_alarms"],
        last_maintenance_at=last_at,
        maintenance_overdue=last_at is None or (today - cst_today(last_at)).days > maintenance_days,
        inspection_overdue=inspection < today.isoformat(),
        inspection_due_soon=today.isoformat() <= inspection <= (today + timedelta(days=inspection_days)).isoformat(),
    )


async def list_lifts(
    conn: aiosqlite.Connection,
    *,
    after: str | None = None,
    limit: int = 500,
    online: bool | None = None,
    now: datetime | None = None,
    maintenance_days: int = 15,
    inspection_days: int = 30,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[LiftView]:
    """Lifts by device code (``after`` is the cursor) with their live state and flags."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (("e.device_code > ?", after), ("e.district_code = ?", district_code),
                          ("e.maintenance_company = ?", maintenance_company)):  # fmt: skip
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = LIFT_SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.device_code LIMIT ?"
    rows = await (await conn.execute(sql, [*params, limit])).fetchall()
    lifts = [_view(row, now, maintenance_days, inspection_days) for row in rows]
    return [lift for lift in lifts if online is None or lift.online == online]


async def get_lift(
    conn: aiosqlite.Connection,
    device_code: str,
    *,
    now: datetime | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> LiftView | None:
    """One lift, or None when unknown or outside the filters."""
    where, params = ["e.device_code = ?"], [device_code]
    for clause, value in (("e.district_code = ?", district_code), ("e.maintenance_company = ?", maintenance_company)):
        if value is not None:
            where.append(clause)
            params.append(value)
    row = await (await conn.execute(LIFT_SQL + " WHERE " + " AND ".join(where), params)).fetchone()
    return None if row is None else _view(row, now, 15, 30)


async def daily_figures(
    conn: aiosqlite.Connection,
    *,
    device_code: str | None = None,
    since_day: str | None = None,
    until_day: str | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[dict[str, Any]]:
    """Per-lift per-day (CST) runs, running seconds, faults and online seconds, in ``[since_day, until_day]``."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("d.device_code = ?", device_code),
        ("d.day >= ?", since_day),
        ("d.day <= ?", until_day),
        ("e.district_code = ?", district_code),
        ("e.maintenance_company = ?", maintenance_company),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = "SELECT d.* FROM lift_daily d LEFT JOIN elevators e ON e.device_code = d.device_code"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = await (await conn.execute(sql + " ORDER BY d.day, d.device_code", params)).fetchall()
    return [dict(row) for row in rows]
