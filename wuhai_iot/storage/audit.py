"""The audit log: who changed what, when. Every change made by staff is recorded here.

Record a change together with the change itself when you can (same transaction)::

    statements = [("UPDATE alarms SET ...", params),
                  audit.entry(user.name, "alarm.acknowledge", "alarm", alarm_id,
                              district_code=district, details={"note": note})]
    await platform.writer.write(statements)

(``alarms.acknowledge_alarm`` / ``resolve_alarm`` take such statements as ``also=``),

or on its own: ``await audit.record(platform.writer, user.name, "login", "user", user.name)``.

Actions in use: ``login``, ``login.failed``, ``logout``, ``user.add``, ``user.disable``, ``token.create``,
``token.revoke``, ``alarm.acknowledge``, ``alarm.resolve``, ``command.send``, ``census.import``,
``registry.change``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from wuhai_iot.clock import utc
from wuhai_iot.storage.scope import ScopeColumns
from wuhai_iot.storage.writer import BatchWriter, Statement

INSERT = (
    "INSERT INTO audit_log (at, user_name, action, object_type, object_id, district_code, details)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_name: str | None
    action: str
    object_type: str | None
    object_id: str | None
    district_code: str | None
    details: dict[str, Any]


def entry(
    user_name: str | None,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    *,
    district_code: str | None = None,
    details: dict[str, Any] | None = None,
    at: float | None = None,
) -> Statement:
    """The statement that records one change (to run in the same transaction as the change)."""
    return (
        INSERT,
        (
            time.time() if at is None else at,
            user_name,
            action,
            object_type,
            None if object_id is None else str(object_id),
            district_code,
            json.dumps(details or {}, ensure_ascii=False, default=str),
        ),
    )


async def record(
    writer: BatchWriter,
    user_name: str | None,
    action: str,
    object_type: str | None = None,
    object_id: object = None,
    *,
    district_code: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one change on its own and wait until it is committed."""
    await writer.write([entry(user_name, action, object_type, object_id,
                              district_code=district_code, details=details)])  # fmt: skip


AUDIT_SCOPE = ScopeColumns(district="district_code")
"""An entry belongs to the district of what was changed (none: only the whole city sees it)."""


async def query(
    conn: aiosqlite.Connection,
    *,
    district_code: str | None = None,
    user_name: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """Entries newest first; ``before_id`` pages on (pass the last id of the previous page).

    ``action`` matches a whole action or a prefix ending in a dot (``alarm.`` for every alarm action).
    """
    where: list[str] = []
    params: list[Any] = []
    AUDIT_SCOPE.narrow(where, params, district_code=district_code)
    if user_name is not None:
        where.append("user_name = ?")
        params.append(user_name)
    if action is not None:
        if action.endswith("."):
            where.append("substr(action, 1, ?) = ?")
            params += [len(action), action]
        else:
            where.append("action = ?")
            params.append(action)
    if object_type is not None:
        where.append("object_type = ?")
        params.append(object_type)
    if object_id is not None:
        where.append("object_id = ?")
        params.append(object_id)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    sql = "SELECT * FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "")
    rows = await conn.execute_fetchall(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [
        AuditEntry(
            id=row["id"], at=utc(row["at"]), user_name=row["user_name"],
            action=row["action"], object_type=row["object_type"], object_id=row["object_id"],
            district_code=row["district_code"], details=json.loads(row["details"] or "{}"),
        )  # fmt: skip
        for row in rows
    ]
