"""The alarm book: the active and recently cleared alarms in memory, and the one place that changes them.

It turns raise/clear calls into whole-row upserts (ids allocated here), so a consumer can return them inside
the transaction of the message that caused them. Staff actions go through the batch writer. Notifications
(the ``alarm_changed`` hook) are sent from a background task after the change has committed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiosqlite

from wuhai_iot import events as ev
from wuhai_iot.alarms.kinds import severity_of
from wuhai_iot.alarms.model import (
    Alarm,
    AlarmAlreadyResolved,
    AlarmNotFound,
    Subject,
)
from wuhai_iot.alarms.queries import get_alarm
from wuhai_iot.clock import unix
from wuhai_iot.config import RulesConfig
from wuhai_iot.plugins import get_plugin_manager
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.storage.writer import BatchWriter, Statement
from wuhai_iot.tasks import supervised

if TYPE_CHECKING:
    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)


ALARM_UPSERT = (
    "INSERT INTO alarms (id, kind, severity, device_code, cylinder_code, station_code, vendor_code, sources,"
    " active_sources, condition, since, raised_at, updated_at, cleared_at, cleared_by, repeats, episodes,"
    " flapping, merged_into, detail, created_at, plate, system) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (id) DO UPDATE SET vendor_code=excluded.vendor_code, sources=excluded.sources,"
    " active_sources=excluded.active_sources, condition=excluded.condition, since=excluded.since,"
    " raised_at=excluded.raised_at, updated_at=excluded.updated_at, cleared_at=excluded.cleared_at,"
    " cleared_by=excluded.cleared_by, repeats=excluded.repeats, episodes=excluded.episodes,"
    " flapping=excluded.flapping, merged_into=excluded.merged_into, detail=excluded.detail"
)
"""The condition part of an alarm row; the handling columns are only ever set by staff actions."""
ACKNOWLEDGE = (
    "UPDATE alarms SET status = 'acknowledged', acknowledged_by = ?, acknowledged_at = ?, acknowledge_note = ?"
    " WHERE id = ? AND status = 'raised'"
)
RESOLVE = (
    "UPDATE alarms SET status = 'resolved', resolved_by = ?, resolved_at = ?, resolve_note = ?"
    " WHERE id = ? AND status != 'resolved'"
)
RESOLVED_BY_PLATFORM = "platform"
"""``resolved_by`` of an alarm the platform resolved itself (an undone wait, or a condition whose end leaves
nobody anything to do)."""
SAMPLE_INSERT = "INSERT OR IGNORE INTO alarm_samples (alarm_id, at, record) VALUES (?, ?, ?)"


def _upsert(alarm: Alarm) -> Statement:
    return (
        ALARM_UPSERT,
        (alarm.id, alarm.kind, alarm.severity, alarm.device_code, alarm.cylinder_code, alarm.station_code,
         alarm.vendor_code, ",".join(sorted(alarm.sources)), ",".join(sorted(alarm.active_sources)),
         alarm.condition, alarm.since.timestamp(), alarm.raised_at.timestamp(), alarm.updated_at.timestamp(),
         unix(alarm.cleared_at), alarm.cleared_by, alarm.repeats, alarm.episodes, int(alarm.flapping),
         alarm.merged_into, json.dumps(alarm.detail, ensure_ascii=False, sort_keys=True),
         alarm.created_at.timestamp(), alarm.plate, alarm.system),
    )  # fmt: skip


EventTimeOf = Callable[[str, float], float | None]
"""(subject key, platform time) → the subject's event time then, or None when not known (Unix seconds)."""
Observer = Callable[[Alarm, str], list[Statement]]
Also = Callable[[Alarm], list[Statement]]
"""Statements to commit in the same transaction as a staff change, made from the changed alarm (its audit
entry: ``lambda alarm: [audit.entry(...)]``)."""
"""Called synchronously on every change, inside the same transaction; returns more statements."""


class AlarmBook:
    """The active and recently cleared alarms, and the one place that changes them."""

    def __init__(self, conn: aiosqlite.Connection, writer: BatchWriter, rules: RulesConfig) -> None:
        self.conn = conn
        """A read connection of the book's own."""
        self.writer = writer
        self.rules = rules
        self.observers: list[Observer] = []
        self._next_id = 1
        self._recent: dict[tuple[str, str, str | None], list[Alarm]] = {}
        """Per episode key, the alarms not merged whose condition is active or cleared within the flapping window."""
        self._activations: dict[tuple[str, str, str | None], list[float]] = {}
        self._keys_of: dict[str, set[tuple[str, str, str | None]]] = {}
        """Subject key → its episode keys in ``_recent`` (a lift's alarms are found without a scan)."""
        self.event_clocks: dict[str, EventTimeOf] = {}
        """Subject key prefix (``lift``) → the event time of such a subject at a platform time: cleared
        alarms are forgotten by their subject's clock, so that records delivered late still see the
        episodes of their flapping window (docs/time.md). Registered by the rule engines."""
        self._changes: list[tuple[Alarm, str]] = []
        self._changed = asyncio.Event()
        self._closing = False
        self.notifier: asyncio.Task[None] | None = None
        """The task running ``notify_forever`` (started by this module's ``platform_starting``)."""

    async def load(self) -> None:
        """Reload the next id and the alarms that are active or cleared within the flapping window."""
        row = await (await self.conn.execute("SELECT coalesce(max(id), 0) FROM alarms")).fetchone()
        self._next_id = row[0] + 1
        horizon = time.time() - self.rules.flapping_window_s
        cursor = await self.conn.execute(
            "SELECT * FROM alarms WHERE merged_into IS NULL AND (condition = 'active' OR cleared_at >= ?)"
            " ORDER BY id",
            (horizon,),
        )
        for row in await cursor.fetchall():
            alarm = Alarm.from_row(row)
            key = self._key(alarm.subject, alarm.kind, alarm.vendor_code)
            self._episodes(key).append(alarm)
            self._activations.setdefault(key, []).append(alarm.since.timestamp())

    # --- condition --------------------------------------------------------------------------------

    @staticmethod
    def _key(subject: Subject, kind: str, vendor_code: str | None) -> tuple[str, str, str | None]:
        return subject.key, kind, vendor_code if kind == "unknown_fault" else None

    def active(self, subject: Subject, kind: str, vendor_code: str | None = None) -> Alarm | None:
        """The alarm whose condition is active for this subject and kind, if any."""
        for alarm in self._recent.get(self._key(subject, kind, vendor_code), ()):
            if alarm.condition == "active":
                return alarm
        return None

    def active_for(self, subject: Subject) -> list[Alarm]:
        """Every active alarm of a subject."""
        keys = self._keys_of.get(subject.key)
        if not keys:
            return []
        return [alarm for key in keys for alarm in self._recent[key] if alarm.condition == "active"]

    def _episodes(self, key: tuple[str, str, str | None]) -> list[Alarm]:
        alarms = self._recent.get(key)
        if alarms is None:
            alarms = self._recent[key] = []
            self._keys_of.setdefault(key[0], set()).add(key)
        return alarms

    def raise_alarm(
        self,
        subject: Subject,
        kind: str,
        at: datetime,
        *,
        source: str = "rule",
        since: datetime | None = None,
        vendor_code: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> list[Statement]:
        """The condition is active at ``at`` (since ``since``): raise a new alarm or update the episode's."""
        severity = severity_of(kind)  # (ValueError for a kind nobody registered)
        key = self._key(subject, kind, vendor_code)
        recent = self._episodes(key)
        current = next((a for a in recent if a.condition == "active"), None)
        if current is not None:
            current.repeats += 1
            current.sources.add(source)
            current.active_sources.add(source)
            if at > current.updated_at:
                current.updated_at = at
            if vendor_code and not current.vendor_code:
                current.vendor_code = vendor_code
            if detail:
                current.detail.update(detail)
            return [_upsert(current)]

        window = self.rules.flapping_window_s
        stamp = at.timestamp()
        activations = [t for t in self._activations.get(key, ()) if t > stamp - window] + [stamp]
        self._activations[key] = activations
        recent[:] = [a for a in recent if a.cleared_at and a.cleared_at.timestamp() >= stamp - window]
        unresolved = [a for a in recent if a.open]
        flapping = len(activations) >= self.rules.flapping_count or any(a.flapping for a in unresolved)
        statements: list[Statement] = []
        if flapping and unresolved:
            survivor = unresolved[0]
            for other in unresolved[1:]:
                other.merged_into = survivor.id
                survivor.episodes += other.episodes
                recent.remove(other)
                statements += self._changed_to(other, "merged", upsert=True)
            survivor.episodes += 1
            survivor.condition = "active"
            survivor.cleared_at = survivor.cleared_by = None
            survivor.sources.add(source)
            survivor.active_sources = {source}
            survivor.updated_at = max(survivor.updated_at, at)
            survivor.repeats += 1
            if detail:
                survivor.detail.update(detail)
            change = "reactivated" if survivor.flapping else "flapping"
            survivor.flapping = True
            return statements + self._changed_to(survivor, change, upsert=True)

        alarm = Alarm(
            id=self._next_id,
            kind=kind,
            severity=severity,
            device_code=subject.device_code,
            cylinder_code=subject.cylinder_code,
            station_code=subject.station_code,
            plate=subject.plate,
            system=subject.system,
            vendor_code=vendor_code,
            sources={source},
            active_sources={source},
            condition="active",
            since=since or at,
            raised_at=at,
            updated_at=at,
            created_at=datetime.now(UTC),
            flapping=flapping,
            detail=dict(detail or {}),
        )
        self._next_id += 1
        recent.append(alarm)
        return self._changed_to(alarm, "raised", upsert=True)

    def clear_alarm(
        self,
        subject: Subject,
        kind: str,
        at: datetime,
        *,
        source: str = "rule",
        vendor_code: str | None = None,
        detail: dict[str, Any] | None = None,
        undone: bool = False,
        resolve_note: str | None = None,
    ) -> list[Statement]:
        """The condition reported by ``source`` has ended; the alarm clears once no source keeps it active.

        ``undone``: the alarm should never have been raised (a wait on the platform clock that a late record
        proved wrong); it is also resolved, by the platform, so that nobody is left to handle it.
        ``resolve_note``: the condition's end leaves nobody anything to do (the platform's disk has space
        again); it is resolved by the platform with this note."""
        alarm = self.active(subject, kind, vendor_code)
        if alarm is None:
            return []
        alarm.active_sources.discard(source)
        if detail:
            alarm.detail.update(detail)
        if alarm.active_sources:
            return [_upsert(alarm)]
        alarm.condition = "cleared"
        alarm.cleared_at = max(at, alarm.raised_at)
        alarm.cleared_by = source
        statements = self._changed_to(alarm, "cleared", upsert=True)
        if (undone or resolve_note) and alarm.open:
            now = datetime.now(UTC)
            alarm.status, alarm.resolved_by, alarm.resolved_at = "resolved", RESOLVED_BY_PLATFORM, now
            alarm.resolve_note = resolve_note
            statements.append((RESOLVE, (RESOLVED_BY_PLATFORM, now.timestamp(), resolve_note, alarm.id)))
            statements += self._changed_to(alarm, "resolved", upsert=False)
        return statements

    def record_alarm(
        self,
        subject: Subject,
        kind: str,
        at: datetime,
        *,
        source: str = "rule",
        vendor_code: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> list[Statement]:
        """An alarm for a one-off finding (an overfill): raised and, as a condition, over at once."""
        return self.raise_alarm(
            subject, kind, at, source=source, vendor_code=vendor_code, detail=detail
        ) + self.clear_alarm(subject, kind, at, source=source, vendor_code=vendor_code)

    def samples(self, alarm_id: int, statuses: Sequence[ev.ElevatorStatus]) -> list[Statement]:
        """Keep status records with an alarm (as ``events.event_record`` JSON, by their time)."""
        return [(SAMPLE_INSERT, (alarm_id, s.time.timestamp(), ev.event_json(s))) for s in statuses]

    def prune(self, now: datetime) -> None:
        """Forget cleared alarms older than the flapping window by their subject's clock (platform time
        ``now`` for subjects without one); memory stays bounded: a subject keeps at most the episodes of
        one window, which flapping merges into one alarm."""
        now_s = now.timestamp()
        window = self.rules.flapping_window_s
        clocks = self.event_clocks
        for key in list(self._recent):
            clock = clocks.get(key[0].partition(":")[0]) if clocks else None
            subject_s = clock(key[0], now_s) if clock is not None else None
            horizon = (now_s if subject_s is None else min(now_s, subject_s)) - window
            alarms = [a for a in self._recent[key]
                      if a.condition == "active" or (a.cleared_at and a.cleared_at.timestamp() >= horizon)]  # fmt: skip
            if alarms:
                self._recent[key] = alarms
            else:
                del self._recent[key]
                self._activations.pop(key, None)
                keys = self._keys_of[key[0]]
                keys.discard(key)
                if not keys:
                    del self._keys_of[key[0]]

    def _changed_to(self, alarm: Alarm, change: str, *, upsert: bool, notify: bool = True) -> list[Statement]:
        statements = [_upsert(alarm)] if upsert else []
        for observer in self.observers:
            statements += observer(alarm, change)
        if notify:
            self._notify(alarm, change)
        return statements

    def _notify(self, alarm: Alarm, change: str) -> None:
        """Queue a change for the ``alarm_changed`` hook (sent once what holds it has committed)."""
        self._changes.append((dataclasses.replace(alarm, detail=dict(alarm.detail)), change))
        self._changed.set()

    # --- handling ---------------------------------------------------------------------------------

    async def acknowledge(
        self, alarm_id: int, *, user: str, note: str = "", at: datetime | None = None, also: Also | None = None,
        **filters: Any,
    ) -> Alarm:  # fmt: skip
        """raised → acknowledged (acknowledging an acknowledged alarm changes nothing and writes nothing);
        ``also``'s statements commit with the change."""
        alarm = await self._for_action(alarm_id, filters)
        if alarm.status == "acknowledged":
            return alarm
        at = at or datetime.now(UTC)
        before = dataclasses.replace(alarm)
        alarm.status, alarm.acknowledged_by, alarm.acknowledged_at, alarm.acknowledge_note = (
            "acknowledged", user, at, note
        )  # fmt: skip
        await self._commit_handling(alarm, before, (ACKNOWLEDGE, (user, at.timestamp(), note, alarm_id)), also)
        return alarm

    async def resolve(
        self, alarm_id: int, *, user: str, note: str = "", at: datetime | None = None, also: Also | None = None,
        **filters: Any,
    ) -> Alarm:  # fmt: skip
        """raised or acknowledged → resolved: the alarm is no longer open; ``also``'s statements commit with
        the change."""
        alarm = await self._for_action(alarm_id, filters)
        at = at or datetime.now(UTC)
        before = dataclasses.replace(alarm)
        alarm.status, alarm.resolved_by, alarm.resolved_at, alarm.resolve_note = "resolved", user, at, note
        await self._commit_handling(alarm, before, (RESOLVE, (user, at.timestamp(), note, alarm_id)), also)
        return alarm

    async def _commit_handling(self, alarm: Alarm, before: Alarm, change: Statement, also: Also | None) -> None:
        """Write a staff change with ``also``'s statements in one transaction. The in-memory copy changes
        first (a rule's upsert queued meanwhile must carry the new handling) and is put back if the write fails."""
        self._apply_handling(alarm)
        statements = [
            change, *self._changed_to(alarm, alarm.status, upsert=False, notify=False), *(also(alarm) if also else [])
        ]
        try:
            await self.writer.write(statements)
        except BaseException:
            self._apply_handling(before)
            raise
        self._notify(alarm, alarm.status)  # only a change that committed is announced

    async def _for_action(self, alarm_id: int, filters: dict[str, Any]) -> Alarm:
        alarm = await get_alarm(self.conn, alarm_id, **filters)
        if alarm is None:
            raise AlarmNotFound(f"no alarm {alarm_id}")
        if alarm.status == "resolved":
            raise AlarmAlreadyResolved(f"alarm {alarm_id} is already resolved")
        return alarm

    def _apply_handling(self, changed: Alarm) -> None:
        """Keep the in-memory copy's handling in step (a resolved alarm is never merged into)."""
        for alarms in self._recent.values():
            for alarm in alarms:
                if alarm.id == changed.id:
                    for name in ("status", "acknowledged_by", "acknowledged_at", "acknowledge_note",
                                 "resolved_by", "resolved_at", "resolve_note"):  # fmt: skip
                        setattr(alarm, name, getattr(changed, name))
                    return

    # --- notifications ----------------------------------------------------------------------------

    async def notify_forever(self, platform: Platform) -> None:
        """Send changes to the ``alarm_changed`` hook once the transaction holding them has committed;
        return after ``close`` once everything pending is sent."""
        hook = get_plugin_manager().hook.alarm_changed
        while True:
            await self._changed.wait()
            self._changed.clear()
            changes, self._changes = self._changes, []
            if changes:
                # Units commit in submission order: once this empty unit has committed, so have the changes.
                await self.writer.write([])
            for alarm, change in changes:
                try:
                    results = hook(platform=platform, alarm=alarm, change=change)
                except Exception:
                    log.exception("an alarm_changed notifier failed for alarm %d", alarm.id)
                    continue
                for result in results:
                    if inspect.isawaitable(result):
                        try:
                            await result
                        except Exception:
                            log.exception("an alarm_changed notifier failed for alarm %d", alarm.id)
            if self._closing and not self._changes:
                return

    def close(self) -> None:
        """Let ``notify_forever`` finish once what is pending has been sent."""
        self._closing = True
        self._changed.set()


async def alarm_book(platform: Platform) -> AlarmBook:
    """The platform's alarm book (created and loaded on first use; safe to call from any
    ``platform_starting`` hook, whichever plugin runs first)."""

    async def load() -> AlarmBook:
        book = AlarmBook(await platform.open_database(), platform.writer, platform.config.rules)
        await book.load()
        return book

    return await platform.state.get_or_create(AlarmBook, load)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    book = await alarm_book(platform)
    book.notifier = supervised(lambda: book.notify_forever(platform), "alarm-notifications")


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    """Send what is pending before the writer closes."""
    book = platform.state.pop(AlarmBook)
    if book is not None and book.notifier is not None:
        book.close()
        await book.notifier


# --- staff actions ----------------------------------------------------------------------------------

async def acknowledge_alarm(
    platform: Platform, alarm_id: int, *, user: str, note: str = "", also: Also | None = None, **filters: Any
) -> Alarm:
    """Acknowledge an alarm (AlarmNotFound → 404, AlarmAlreadyResolved → 409); ``also``'s statements (its
    audit entry) commit in the same transaction."""
    return await (await alarm_book(platform)).acknowledge(alarm_id, user=user, note=note, also=also, **filters)


async def resolve_alarm(
    platform: Platform, alarm_id: int, *, user: str, note: str = "", also: Also | None = None, **filters: Any
) -> Alarm:
    """Resolve an alarm (AlarmNotFound → 404, AlarmAlreadyResolved → 409); ``also``'s statements (its audit
    entry) commit in the same transaction."""
    return await (await alarm_book(platform)).resolve(alarm_id, user=user, note=note, also=also, **filters)
