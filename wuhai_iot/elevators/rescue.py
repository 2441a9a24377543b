"""Rescue of trapped passengers: raised (the trapped alarm) → dispatch → arrival → released (the alarm
clears: doors open or the person sensor clear, never the car moving).

Dispatch is a staff entry (who was sent, when). Arrival is a maintenance card swipe (MaintenanceStart) at
that lift, or a staff entry. The maintenance company must arrive within ``rules.rescue_arrival_limit_min``
(TSG T5002-2017 art. 5: 30 minutes); a later arrival, or none yet after the limit, is flagged ``late``.
"Not yet arrived" is a wait on the platform clock (the tick flags it); an arrival that then comes with a
time inside the limit takes the flag back (docs/time.md).
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


RESCUE_DISPATCH = "UPDATE rescues SET dispatched_at = ?, dispatched_to = ?, dispatched_by = ? WHERE alarm_id = ?"


class RescueNotFound(LookupError):
    """No rescue for that alarm, or it is outside the caller's scope (the API answers 404)."""


class RescueAlreadyRecorded(Exception):
    """The dispatch or arrival of that rescue is already recorded (the API answers 409)."""



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
    dispatched_at: datetime | None = None
    dispatched_to: str | None = None
    """Who was sent (a team, a name)."""
    dispatched_by: str | None = None
    """The staff user who entered the dispatch."""
    district_code: str | None = None
    """The lift's district, when read from the database."""

    @property
    def arrival_min(self) -> float | None:
        if self.arrived_at is None:
            return None
        return round((self.arrived_at - self.raised_at).total_seconds() / 60, 2)

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Rescue:
        keys = row.keys()
        return cls(
            alarm_id=row["alarm_id"],
            device_code=row["device_code"],
            raised_at=utc(row["raised_at"]),  # type: ignore[arg-type]
            arrived_at=utc(row["arrived_at"]),
            arrival_source=row["arrival_source"],
            arrived_by=row["arrived_by"],
            released_at=utc(row["released_at"]),
            late=bool(row["late"]),
            dispatched_at=utc(row["dispatched_at"]),
            dispatched_to=row["dispatched_to"],
            dispatched_by=row["dispatched_by"],
            district_code=row["district_code"] if "district_code" in keys else None,
        )


class RescueTracker:
    """Follows every trapped alarm until someone has arrived and the passengers are released."""

    events = (ev.MaintenanceStart,)
    """As an event consumer: a maintenance card is an arrival."""

    def __init__(self, book: AlarmBook, writer: BatchWriter, settings: RulesConfig) -> None:
        self.writer = writer
        self.conn: aiosqlite.Connection | None = None
        """A read connection (set by ``load``): staff entries on rescues no longer followed in memory."""
        self.limit = timedelta(minutes=settings.rescue_arrival_limit_min)
        self.open: dict[int, Rescue] = {}
        """Rescues still waiting for an arrival or a release, by alarm id."""
        book.observers.append(self.observe)

    async def load(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
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

    async def record_arrival(
        self, alarm_id: int, *, user: str, at: datetime | None = None, also: Sequence[Statement] = ()
    ) -> Rescue:
        """A staff entry: the rescuers have arrived at ``at`` (default now). RescueNotFound, or
        RescueAlreadyRecorded when an arrival is recorded; ``also`` (the audit entry) commits with it."""
        rescue = await self._rescue(alarm_id)
        if rescue.arrived_at is not None:
            raise RescueAlreadyRecorded(f"the arrival of rescue {alarm_id} is already recorded")
        when = at or datetime.now(UTC)
        await self.writer.submit(WriteUnit(on_new=lambda: self.arrive(rescue, when, "staff", user) + list(also)))
        return rescue

    async def record_dispatch(
        self, alarm_id: int, *, to: str, user: str, at: datetime | None = None, also: Sequence[Statement] = ()
    ) -> Rescue:
        """A staff entry: ``to`` (a team, a name) was sent at ``at`` (default now). RescueNotFound, or
        RescueAlreadyRecorded when a dispatch is recorded; ``also`` (the audit entry) commits with it."""
        rescue = await self._rescue(alarm_id)
        if rescue.dispatched_at is not None:
            raise RescueAlreadyRecorded(f"the dispatch of rescue {alarm_id} is already recorded")
        when = max(at or datetime.now(UTC), rescue.raised_at)
        rescue.dispatched_at, rescue.dispatched_to, rescue.dispatched_by = when, to, user
        statement = (RESCUE_DISPATCH, (when.timestamp(), to, user, alarm_id))
        await self.writer.write([statement, *also])
        return rescue

    async def _rescue(self, alarm_id: int) -> Rescue:
        """The rescue followed in memory, or else as stored."""
        rescue = self.open.get(alarm_id)
        if rescue is None and self.conn is not None:
            rescue = await get_rescue(self.conn, alarm_id)
        if rescue is None:
            raise RescueNotFound(f"no rescue for alarm {alarm_id}")
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
    alarm_id: int | None = None,
    before: tuple[float, int] | None = None,
) -> list[Rescue]:
    """Rescues newest first (raised in ``[since, until)``; ``before``: keyset paging after the rescue
    (raised_at, alarm_id) of a previous page), with their arrival minutes, late flag and district."""
    where: list[str] = []
    params: list[Any] = []
    if before is not None:
        # The cursor's raised_at went through a datetime (microseconds) and a URL: the stored value of the
        # cursor's own rescue, where it still exists, is the exact key (a rounded one repeats a row).
        where.append("(r.raised_at, r.alarm_id) < (coalesce((SELECT raised_at FROM rescues WHERE alarm_id = ?), ?), ?)")
        params += (before[1], before[0], before[1])
    for clause, value in (
        ("r.alarm_id = ?", alarm_id),
        ("r.device_code = ?", device_code),
        ("r.late = ?", None if late is None else int(late)),
        ("r.raised_at >= ?", since and since.timestamp()),
        ("r.raised_at < ?", until and until.timestamp()),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    sql = "SELECT r.*, e.district_code FROM rescues r LEFT JOIN elevators e ON e.device_code = r.device_code"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = await (await conn.execute(sql + " ORDER BY r.raised_at DESC, r.alarm_id DESC LIMIT ?", [*params, limit])).fetchall()
    return [Rescue.from_row(row) for row in rows]


async def get_rescue(
    conn: aiosqlite.Connection, alarm_id: int, *, district_code: str | None = None,
    maintenance_company: str | None = None,
) -> Rescue | None:  # fmt: skip
    """One rescue (by its trapped alarm's id) within the scope, or None."""
    found = await list_rescues(conn, alarm_id=alarm_id, limit=1, district_code=district_code,
                               maintenance_company=maintenance_company)  # fmt: skip
    return found[0] if found else None
