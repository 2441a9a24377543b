"""Reading alarms for the web pages and the JSON API, scoped by district, company or station."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import aiosqlite

from wuhai_iot.alarms.model import STATUSES, Alarm
from wuhai_iot.storage.scope import ScopeColumns

_FROM = (
    " FROM alarms a LEFT JOIN elevators e ON e.device_code = a.device_code"
    " LEFT JOIN stations s ON s.station_code = a.station_code"
    " LEFT JOIN vehicles v ON v.plate = a.plate"
)
_DISTRICT = "coalesce(e.district_code, s.district_code, v.district_code)"
"""The district of an alarm: its lift's, its station's or its vehicle's."""
_SELECT = f"SELECT a.*, {_DISTRICT} AS district_code" + _FROM


ALARM_SCOPE = ScopeColumns(district=_DISTRICT, company="e.maintenance_company", station="a.station_code")


async def get_alarm(
    conn: aiosqlite.Connection,
    alarm_id: int,
    *,
    district_code: str | None = None,
    maintenance_company: str | None = None,
    station_code: int | None = None,
    vehicles_only: bool = False,
    platform_alarms: bool = False,
) -> Alarm | None:
    """One alarm, or None when it does not exist or is outside the filters (an alarm of the platform's own
    is outside unless ``platform_alarms``)."""
    where, params = ["a.id = ?"], [alarm_id]
    if vehicles_only:
        where.append("a.plate IS NOT NULL")
    if not platform_alarms:
        where.append("a.system IS NULL")
    ALARM_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company,
                       station_code=station_code)  # fmt: skip
    row = await (await conn.execute(f"{_SELECT} WHERE {' AND '.join(where)}", params)).fetchone()
    return None if row is None else Alarm.from_row(row)


def _conditions(
    *,
    status: str | None = None,
    kind: str | None = None,
    severity: str | None = None,
    condition: str | None = None,
    device_code: str | None = None,
    cylinder_code: str | None = None,
    plate: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    district_code: str | None = None,
    maintenance_company: str | None = None,
    station_code: int | None = None,
    vehicles_only: bool = False,
    platform_alarms: bool = False,
) -> tuple[list[str], list[Any]]:
    """The filters of ``list_alarms`` as SQL conditions and their parameters."""
    where, params = ["a.merged_into IS NULL"], []
    if vehicles_only:
        where.append("a.plate IS NOT NULL")
    if not platform_alarms:
        where.append("a.system IS NULL")
    if status == "open":
        where.append("a.status != 'resolved'")
    elif status is not None:
        if status not in STATUSES:
            raise ValueError(f"unknown alarm status {status!r}")
        where.append("a.status = ?")
        params.append(status)
    for column, value in (("kind", kind), ("severity", severity), ("condition", condition),
                          ("device_code", device_code), ("cylinder_code", cylinder_code), ("plate", plate)):  # fmt: skip
        if value is not None:
            where.append(f"a.{column} = ?")
            params.append(value)
    if since is not None:
        where.append("a.raised_at >= ?")
        params.append(since.timestamp())
    if until is not None:
        where.append("a.raised_at < ?")
        params.append(until.timestamp())
    ALARM_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company,
                       station_code=station_code)  # fmt: skip
    return where, params


MOST_URGENT_FIRST = ("a.kind != 'trapped', CASE a.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 ELSE 2 END,"
                     " a.status != 'raised', a.raised_at DESC, a.id DESC")  # fmt: skip
"""Open alarms as staff work through them: trapped first, then by severity, unhandled before acknowledged,
newest first."""


async def list_alarms(
    conn: aiosqlite.Connection,
    *,
    before_id: int | None = None,
    limit: int = 50,
    most_urgent_first: bool = False,
    **filters: Any,
) -> list[Alarm]:
    """Alarms newest first (by id; ``before_id`` is the cursor), or ``most_urgent_first`` (see
    MOST_URGENT_FIRST; no cursor). ``filters``: ``status`` ('open' means not resolved), ``kind``,
    ``severity``, ``condition``, ``device_code``, ``cylinder_code``, ``plate``, ``since`` and ``until`` (raised), and the scope
    (``district_code``, ``maintenance_company``, ``station_code``, ``vehicles_only``, ``platform_alarms``: the
    platform's own alarms, such as its disk's, are left out unless True). Episodes merged into a flapping alarm
    are left out."""
    if before_id is not None and most_urgent_first:
        raise ValueError("the cursor pages alarms by id only")
    where, params = _conditions(**filters)
    if before_id is not None:
        where.append("a.id < ?")
        params.append(before_id)
    order = MOST_URGENT_FIRST if most_urgent_first else "a.id DESC"
    sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?"
    rows = await (await conn.execute(sql, [*params, limit])).fetchall()
    return [Alarm.from_row(row) for row in rows]


async def open_alarms(conn: aiosqlite.Connection, **filters: Any) -> list[Alarm]:
    """Every alarm not yet resolved, newest first."""
    return await list_alarms(conn, status="open", limit=10_000, **filters)


_GROUPS = {"severity": "a.severity", "kind": "a.kind", "day": "date(a.raised_at + 8 * 3600, 'unixepoch')"}


async def open_platform_alarms(conn: aiosqlite.Connection,
                               by: Literal["severity", "kind"] = "severity") -> dict[str, int]:  # fmt: skip
    """The platform's own open alarms (its disk's) per severity or kind; the running figures leave them out."""
    rows = await conn.execute_fetchall(
        f"SELECT {_GROUPS[by]}, count(*) FROM alarms a WHERE a.system IS NOT NULL AND a.status != 'resolved'"
        f" AND a.merged_into IS NULL GROUP BY {_GROUPS[by]}"
    )
    return {value: n for value, n in rows}


async def count_alarms(conn: aiosqlite.Connection, *, by: Sequence[str], **filters: Any) -> list[dict[str, Any]]:
    """``list_alarms``'s alarms (same ``filters``) counted in SQL for each combination of ``by``: "severity",
    "kind", "day" (the CST date 'YYYY-MM-DD' the alarm was raised on). One dict per combination that has
    alarms: its ``by`` values and ``n``."""
    where, params = _conditions(**filters)
    groups = [_GROUPS[name] for name in by]
    columns = ", ".join(f"{group} AS {name}" for group, name in zip(groups, by))
    rows = await conn.execute_fetchall(
        f"SELECT {columns}, count(*) AS n{_FROM} WHERE {' AND '.join(where)} GROUP BY {', '.join(groups)}", params,
    )  # fmt: skip
    return [dict(zip(row.keys(), row)) for row in rows]


async def alarm_samples(conn: aiosqlite.Connection, alarm_id: int) -> list[dict[str, Any]]:
    """The status records kept with an alarm, oldest first."""
    rows = await (
        await conn.execute("SELECT record FROM alarm_samples WHERE alarm_id = ? ORDER BY at", (alarm_id,))
    ).fetchall()
    return [json.loads(row[0]) for row in rows]
