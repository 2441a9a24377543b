"""Rescue of trapped passengers: raised (the trapped alarm) → arrival → released (the alarm clears).

Arrival is a maintenance card swipe (MaintenanceStart) at that lift, or a staff entry. The maintenance
company must arrive within ``rules.rescue_arrival_limit_min`` (TSG T5002-2017 art. 5: 30 minutes); a
later arrival, or none yet after the limit, is flagged ``late``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.alarms.model import Alarm
from wuhai_iot.clock import utc
from wuhai_iot.config import RulesConfig
from wuhai_iot.elevators.queries import LIFT_SCOPE
from wuhai_iot.events import Terminal
from wuhai_iot.storage.writer import BatchWriter, Statement, WriteUnit

ARRIVAL_WATCH = timedelta(hours=24)
"""A rescue without an arrival is forgotten (stays unarrived, flagged late) this long after it was raised."""

RESCUE_UPSERT = (
    "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source, arrived_by, released_at,"
    " arrival_min, late) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alarm_id) DO UPDATE SET"
    " arrived_at = excluded.arrived_at, arrival_source = excluded.arrival_source, arrived_by = excluded.arrived_by,"
    " released_at = excluded.released_at, arrival_min = excluded.arrival_min, late = excluded.late"
)



@dataclass(slots=True)
class Rescue:
    alarm_id: int
    device_code: str
    raised_at: datetime
    arrived_at: datetime | None = None
    arrival_source: str | None = None
    """``card`` or ``staff``"""
    arrived_by: str | None = None
    released_at: datetime | None = None
    late: bool = False

    @property
    def arrival_min(self) -> float | None:
        if self.arrived_at is None:
            return None
        return round((self.arrived_at - self.raised_at).total_seconds() / 60, 2)

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Rescue:
        return cls(
            alarm_id=row["alarm_id"],
            device_code=row["device_code"],
            raised_at=utc(row["raised_at"]),  # type: ignore[arg-type]
            arrived_at=utc(row["arrived_at"]),
            arrival_source=row["arrival_source"],
            arrived_by=row["arrived_by"],
            released_at=utc(row["released_at"]),
            late=bool(row["late"]),
        )


class RescueTracker:
    """Follows every trapped alarm until someone has arrived and the passengers are released."""

    def __init__(self, book: AlarmBook, writer: BatchWriter, settings: RulesConfig) -> None:
        self.writer = writer
        self.limit = timedelta(minutes=settings.rescue_arrival_limit_min)
        self.open: dict[int, Rescue] = {}
        """Rescues still waiting for an arrival or a release, by alarm id."""
        book.observers.append(self.observe)

    async def load(self, conn: aiosqlite.Connection) -> None:
        cursor = await conn.execute(
            "SELECT * FROM rescues WHERE (arrived_at IS NULL OR released_at IS NULL) AND raised_at >= ?",
            ((datetime.now(UTC) - ARRIVAL_WATCH).timestamp(),),
        )
        for row in await cursor.fetchall():
            rescue = Rescue.from_row(row)
            self.open[rescue.alarm_id] = rescue

    def observe(self, alarm: Alarm, change: str) -> list[Statement]:
        if alarm.kind != "trapped" or alarm.device_code is None:
            return []
        if change == "raised":
            rescue = self.open[alarm.id] = Rescue(alarm.id, alarm.device_code, alarm.raised_at)
            return [self._upsert(rescue)]
        rescue = self.open.get(alarm.id)
        if rescue is None:
            return []
        if change == "cleared" and rescue.released_at is None:
            rescue.released_at = alarm.cleared_at
        elif change in ("reactivated", "flapping"):
            rescue.released_at = None
        else:
            return []
        return self._settle(rescue)

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        statements: list[Statement] = []
        for event in events:
            if isinstance(event, ev.MaintenanceStart) and terminal.device_code:
                for rescue in list(self.open.values()):
                    if rescue.device_code == terminal.device_code and rescue.arrived_at is None:
                        statements += self.arrive(rescue, event.time, "card", str(event.card))
        return statements

    def arrive(self, rescue: Rescue, at: datetime, source: str, by: str) -> list[Statement]:
        rescue.arrived_at = max(at, rescue.raised_at)
        rescue.arrival_source = source
        rescue.arrived_by = by
        rescue.late = rescue.arrived_at - rescue.raised_at > self.limit
        return self._settle(rescue)

    async def record_arrival(self, alarm_id: int, *, user: str, at: datetime | None = None) -> Rescue:
        """A staff entry: the rescuers have arrived (LookupError when the rescue is not awaiting arrival)."""
        rescue = self.open.get(alarm_id)
        if rescue is None or rescue.arrived_at is not None:
            raise LookupError(f"no rescue awaiting arrival for alarm {alarm_id}")
        when = at or datetime.now(UTC)
        await self.writer.submit(WriteUnit(on_new=lambda: self.arrive(rescue, when, "staff", user)))
        return rescue

    def tick(self, now: datetime) -> list[Statement]:
        """Flag rescues still without arrival past the limit; forget the old ones."""
        statements: list[Statement] = []
        for rescue in list(self.open.values()):
            if rescue.arrived_at is None and not rescue.late and now - rescue.raised_at > self.limit:
                rescue.late = True
                statements.append(self._upsert(rescue))
            if now - rescue.raised_at > ARRIVAL_WATCH:
                del self.open[rescue.alarm_id]
        return statements

    def _settle(self, rescue: Rescue) -> list[Statement]:
        if rescue.arrived_at is not None and rescue.released_at is not None:
            self.open.pop(rescue.alarm_id, None)
        return [self._upsert(rescue)]

    @staticmethod
    def _upsert(rescue: Rescue) -> Statement:
        def ts(value: datetime | None) -> float | None:
            return None if value is None else value.timestamp()

        return (
            RESCUE_UPSERT,
            (rescue.alarm_id, rescue.device_code, rescue.raised_at.timestamp(), ts(rescue.arrived_at),
             rescue.arrival_source, rescue.arrived_by, ts(rescue.released_at), rescue.arrival_min, int(rescue.late)),
        )  # fmt: skip


async def list_rescues(
    conn: aiosqlite.Connection,
    *,
    device_code: str | None = None,
    late: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
    district_code: str | None = None,
    maintenance_company: str | None = None,
) -> list[Rescue]:
    """Rescues newest first (raised in ``[since, until)``), with their arrival minutes and late flag."""
    where: list[str] = []
    params: list[Any] = []
    for clause, value in (
        ("r.device_code = ?", device_code),
        ("r.late = ?", None if late is None else int(late)),
        ("r.raised_at >= ?", since and since.timestamp()),
        ("r.raised_at < ?", until and until.timestamp()),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    sql = "SELECT r.* FROM rescues r LEFT JOIN elevators e ON e.device_code = r.device_code"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = await (await conn.execute(sql + " ORDER BY r.raised_at DESC LIMIT ?", [*params, limit])).fetchall()
    return [Rescue.from_row(row) for row in rows]
