"""Maintenance visits (TSG T5002-2017): building, flagging and listing them (the overdue flags of lifts
are in ``wuhai_iot.elevators.queries``).

A visit is a card swipe at start (MaintenanceStart) and at end (MaintenanceEnd) at a lift. Each visit
is checked against the registered workers and the lift's maintenance company and flagged with every
reason that makes it suspicious (domain.md):

- ``short``: shorter than ``maintenance_min_visit_min``;
- ``unregistered_card``, ``other_company``, ``certificate_expired``;
- ``overlap`` / ``impossible_travel``: the same card at two lifts whose visits overlap, or between which the
  travel would be faster than ``maintenance_max_speed_kmh`` (coordinates known) or take less than
  ``maintenance_min_gap_min`` at different addresses (both visits are flagged);
- ``no_end``: no end within ``maintenance_end_within_h`` of the start, in device times. While no end has
  arrived the wait runs on the platform clock (the tick flags the visit); an end that then arrives with a
  device time inside the window takes the flag back (docs/time.md). ``no_start``: an end without a start.

Only a visit with no flag is maintenance: it alone resets the lift's 15-day clock (``queries``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.clock import cst_date, utc
from wuhai_iot.config import RulesConfig
from wuhai_iot.elevators.queries import LIFT_SCOPE
from wuhai_iot.events import Terminal
from wuhai_iot.storage.writer import Statement

CARD_MEMORY = timedelta(hours=24)
"""A card's visits are compared with its other visits of this long before."""

VISIT_UPSERT = (
    "INSERT INTO maintenance_visits (id, device_code, card, worker_name, worker_company, started_at, ended_at,"
    " duration_min, items, flags, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " ended_at = excluded.ended_at, duration_min = excluded.duration_min, items = excluded.items,"
    " flags = excluded.flags, detail = excluded.detail"
)



def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


@dataclass(slots=True)
class Visit:
    id: int
    device_code: str
    card: int
    worker_name: str | None
    worker_company: str | None
    started_at: datetime | None
    ended_at: datetime | None = None
    items: int | None = None
    flags: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    district_code: str | None = None
    """The lift's district, when read from the database (None for a lift not in the registry)."""

    @property
    def duration_min(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.started_at).total_seconds() / 60, 2)

    def flag(self, reason: str, **detail: Any) -> None:
        if reason not in self.flags:
            self.flags.append(reason)
        self.detail.update(detail)

    def unflag(self, reason: str, *details: str) -> None:
        if reason in self.flags:
            self.flags.remove(reason)
        for name in details:
            self.detail.pop(name, None)

    @classmethod
    def from_row(cls, row: aiosqlite.Row) -> Visit:
        return cls(
            id=row["id"],
            device_code=row["device_code"],
            card=row["card"],
            worker_name=row["worker_name"],
            worker_company=row["worker_company"],
            started_at=utc(row["started_at"]),
            ended_at=utc(row["ended_at"]),
            items=row["items"],
            flags=[f for f in row["flags"].split("|") if f],
            detail=json.loads(row["detail"]),
            district_code=row["district_code"] if "district_code" in row.keys() else None,
        )


class MaintenanceTracker:
    """An event consumer that builds the visits, and a tick that flags visits never ended."""

    events = (ev.MaintenanceStart, ev.MaintenanceEnd)

    def __init__(self, settings: RulesConfig, lifts: dict[str, dict[str, Any]]) -> None:
        self.settings = settings
        self.lifts = lifts
        """The lifts' registry rows by device code (shared with the rule engine, refreshed by it)."""
        self.workers: dict[int, dict[str, Any]] = {}
        self.open: dict[tuple[str, int], Visit] = {}
        self.by_card: dict[int, list[Visit]] = {}
        self._next_id = 1

    async def load(self, conn: aiosqlite.Connection) -> None:
        await self.refresh_workers(conn)
        row = await (await conn.execute("SELECT coalesce(max(id), 0) FROM maintenance_visits")).fetchone()
        self._next_id = row[0] + 1
        horizon = (datetime.now(UTC) - CARD_MEMORY - timedelta(hours=self.settings.maintenance_end_within_h))
        cursor = await conn.execute(
            "SELECT * FROM maintenance_visits WHERE started_at >= ? OR ended_at >= ? ORDER BY id",
            (horizon.timestamp(), horizon.timestamp()),
        )
        for visit in map(Visit.from_row, await cursor.fetchall()):
            self.by_card.setdefault(visit.card, []).append(visit)
            if visit.ended_at is None and visit.started_at is not None:
                self.open[(visit.device_code, visit.card)] = visit

    async def refresh_workers(self, conn: aiosqlite.Connection) -> None:
        cursor = await conn.execute("SELECT * FROM workers")
        self.workers = {row["card"]: dict(row) for row in await cursor.fetchall()}

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        statements: list[Statement] = []
        if not terminal.device_code:
            return statements
        for event in events:
            if isinstance(event, ev.MaintenanceStart):
                statements += self._start(terminal.device_code, event)
            elif isinstance(event, ev.MaintenanceEnd):
                statements += self._end(terminal.device_code, event)
        return statements

    def _new_visit(self, device_code: str, card: int, started_at: datetime | None) -> Visit:
        worker = self.workers.get(card)
        visit = Visit(
            id=self._next_id,
            device_code=device_code,
            card=card,
            worker_name=worker["name"] if worker else None,
            worker_company=worker["unit"] if worker else None,
            started_at=started_at,
        )
        self._next_id += 1
        self.by_card.setdefault(card, []).append(visit)
        return visit

    def _start(self, device_code: str, event: ev.MaintenanceStart) -> list[Statement]:
        if (device_code, event.card) in self.open:
            return []  # a repeated swipe at the same lift: the visit goes on
        visit = self.open[(device_code, event.card)] = self._new_visit(device_code, event.card, event.time)
        self._check_worker(visit)
        return [self._upsert(v) for v in self._check_travel(visit)]

    def _end(self, device_code: str, event: ev.MaintenanceEnd) -> list[Statement]:
        visit = self.open.pop((device_code, event.card), None)
        if visit is None:
            visit = self._new_visit(device_code, event.card, None)
            self._check_worker(visit)
            visit.flag("no_start")
        visit.ended_at = event.time
        visit.items = event.items
        duration = visit.duration_min
        if duration is not None and duration < self.settings.maintenance_min_visit_min:
            visit.flag("short", min_visit_min=self.settings.maintenance_min_visit_min)
        if duration is not None:
            within_h = self.settings.maintenance_end_within_h
            if duration > within_h * 60:
                visit.flag("no_end", end_within_h=within_h)
            else:  # the tick's wait on the platform clock is undone: the end came in time by device time
                visit.unflag("no_end", "end_within_h")
        return [self._upsert(visit)]

    def _check_worker(self, visit: Visit) -> None:
        worker = self.workers.get(visit.card)
        lift = self.lifts.get(visit.device_code) or {}
        if worker is None or worker["role"] != "maintenance":
            visit.flag("unregistered_card")
            return
        if lift.get("maintenance_company") and worker["unit"] != lift["maintenance_company"]:
            visit.flag("other_company", lift_company=lift["maintenance_company"])
        expiry = worker.get("certificate_expiry")
        when = visit.started_at or datetime.now(UTC)
        if not expiry or expiry < cst_date(when).isoformat():
            visit.flag("certificate_expired", certificate_expiry=expiry)

    def _check_travel(self, visit: Visit) -> list[Visit]:
        """Compare a new visit with the card's other visits at other lifts; return every visit flagged."""
        assert visit.started_at is not None
        start = visit.started_at
        here = self.lifts.get(visit.device_code) or {}
        s = self.settings
        changed = [visit]
        recent = [v for v in self.by_card.get(visit.card, ()) if v is not visit
                  and start - (v.ended_at or v.started_at or start) <= CARD_MEMORY]  # fmt: skip
        self.by_card[visit.card] = recent + [visit]
        for other in recent:
            if other.device_code == visit.device_code or other.started_at is None:
                continue
            there = self.lifts.get(other.device_code) or {}
            still_open = other.ended_at is None and start - other.started_at < timedelta(hours=s.maintenance_end_within_h)
            if still_open or (other.ended_at is not None and other.started_at <= start < other.ended_at):
                visit.flag("overlap", overlap_with=other.id)
                other.flag("overlap", overlap_with=visit.id)
                changed.append(other)
                continue
            if other.ended_at is None or other.ended_at > start:
                continue
            gap_min = (start - other.ended_at).total_seconds() / 60
            reason: dict[str, Any] = {}
            coordinates = (here.get("latitude"), here.get("longitude"), there.get("latitude"), there.get("longitude"))
            if None not in coordinates:
                km = distance_km(coordinates[:2], coordinates[2:])  # type: ignore[arg-type]
                speed = math.inf if gap_min <= 0 else km / (gap_min / 60)
                if km > 0 and speed > s.maintenance_max_speed_kmh:
                    reason = {"distance_km": round(km, 1), "speed_kmh": round(speed, 1)}
            if not reason and gap_min < s.maintenance_min_gap_min and here.get("address") != there.get("address"):
                reason = {"gap_min": round(gap_min, 1)}
            if reason:
                visit.flag("impossible_travel", travel_from=other.id, **reason)
                other.flag("impossible_travel", travel_to=visit.id)
                changed.append(other)
        return changed

    def tick(self, now: datetime) -> list[Statement]:
        """Flag visits with no end within the limit (they stay open: a late end still closes them)."""
        limit = timedelta(hours=self.settings.maintenance_end_within_h)
        statements: list[Statement] = []
        for key, visit in list(self.open.items()):
            assert visit.started_at is not None
            if "no_end" not in visit.flags and now - visit.started_at >= limit:
                visit.flag("no_end", end_within_h=self.settings.maintenance_end_within_h)
                statements.append(self._upsert(visit))
            if now - visit.started_at > CARD_MEMORY:
                del self.open[key]
        return statements

    @staticmethod
    def _upsert(visit: Visit) -> Statement:
        def ts(value: datetime | None) -> float | None:
            return None if value is None else value.timestamp()

        return (
            VISIT_UPSERT,
            (visit.id, visit.device_code, visit.card, visit.worker_name, visit.worker_company, ts(visit.started_at),
             ts(visit.ended_at), visit.duration_min, visit.items, "|".join(visit.flags),
             json.dumps(visit.detail, ensure_ascii=False, sort_keys=True)),
        )  # fmt: skip


# --- queries -----------------------------------------------------------------------------------------


async def list_visits(
    conn: aiosqlite.Connection,
    *,
    device_code: str | None = None,
    card: int | None = None,
    flagged: bool | None = None,
    flag: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
    district_code: str | None = None,
    maintenance_company: str | None = None,
    by_id: bool = False,
    before_id: int | None = None,
) -> list[Visit]:
    """Visits newest first (by start, or end for a visit without start; ``by_id``: by id, a stable order
    for paging with ``before_id``), with their flags and districts."""
    where: list[str] = []
    params: list[Any] = []
    moment = "coalesce(v.started_at, v.ended_at)"
    for clause, value in (
        ("v.device_code = ?", device_code),
        ("v.card = ?", card),
        (f"{moment} >= ?", since and since.timestamp()),
        (f"{moment} < ?", until and until.timestamp()),
        ("('|' || v.flags || '|') LIKE ?", flag and f"%|{flag}|%"),
        ("v.id < ?", before_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if flagged is not None:
        where.append("v.flags != ''" if flagged else "v.flags = ''")
    LIFT_SCOPE.narrow(where, params, district_code=district_code, maintenance_company=maintenance_company)
    sql = "SELECT v.*, e.district_code FROM maintenance_visits v LEFT JOIN elevators e ON e.device_code = v.device_code"
    if where:
        sql += " WHERE " + " AND ".join(where)
    order = "v.id DESC" if by_id else f"{moment} DESC, v.id DESC"
    rows = await (await conn.execute(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])).fetchall()
    return [Visit.from_row(row) for row in rows]
