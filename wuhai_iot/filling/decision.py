"""The fill decision (GF-3 FILL_REQUEST → FILL_DECISION) and the tag query (TAG_QUERY → TAG_INFO).

A controller waits 3 s and then fails closed, so this is the platform's fastest path: one indexed
point query on the decider's own connection (WAL: it never waits for the batch writer), no cache of
the registry (a change made by the CLI in another process counts on the very next request), and any
internal error answers "deny, reason 99".

The connection is a plain ``sqlite3`` one, queried in the event loop itself. The query takes ~0.1 ms;
through aiosqlite the same query needs two thread hand-offs and a turn of a loop busy with status
ingestion, and measured p99 24 ms inside the handler under ELink load against 0.6 ms inline
(benchmarks/bench_fill_decision.py). The cost is that a cold page read would block the loop: the
tables it touches are small and hot (300,000 cylinders ≈ 60 MB).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.clock import CST, add_years, cst_date, cst_midnight, cst_today
from wuhai_iot.config import RulesConfig
from wuhai_iot.events import Terminal
from wuhai_iot.filling.checks import raise_finding, request_findings
from wuhai_iot.filling.cylinders import HOUSEHOLD, VEHICLE_KINDS, CylinderWeights, grams
from wuhai_iot.filling.journal import DecisionJournal
from wuhai_iot.logs import RepeatedLog
from wuhai_iot.storage.db import connect_point_reader
from wuhai_iot.storage.writer import BatchWriter, Statement, WriterClosed, WriteUnit

log = logging.getLogger(__name__)
repeated = RepeatedLog(log)

PERMIT, TAG_UNKNOWN, INSPECTION_OVERDUE, SCRAPPED = 0, 1, 2, 3
NOT_OWNER, WRONG_MEDIUM, BLACKLISTED, STATION_NOT_LICENSED = 4, 5, 6, 7
NO_VEHICLE_CERTIFICATE, ALREADY_FULL, REFILL_TOO_SOON, OPERATOR_UNKNOWN = 8, 9, 10, 11
INSPECT_AFTER_ACCIDENT = 12
PLATFORM_ERROR = 99
UNDECIDED_MESSAGE = "平台暂时无法判定，禁止充装"


def undecided(request: ev.Event) -> ev.FillDecision:
    """Fail closed: the answer to a fill request that cannot be decided or recorded is a denial (99)."""
    return ev.FillDecision(permit=False, reason=PLATFORM_ERROR, message=UNDECIDED_MESSAGE)

# Everything the ten checks need, in one statement of indexed point look-ups (stations, workers and
# vehicles by primary key, cylinders by the unique tag, the last completed fill by fills_cylinder).
# The FROM (SELECT 1) keeps exactly one row whatever is missing.
DECISION_QUERY = """
SELECT s.station_code AS station_found, s.licence_expiry, s.media AS station_media,
       s.status AS station_status,
       w.card AS operator_found,
       c.cylinder_code, c.kind, c.medium, c.rated_fill_kg, c.tare_kg, c.manufacture_date,
       c.design_life_years, c.next_inspection, c.owner_station, c.vehicle_plate, c.status,
       c.last_inspection, c.inspection_recorded_at,
       (SELECT max(k.at) FROM vehicle_collisions k WHERE k.plate = c.vehicle_plate) AS last_collision_at,
       v.plate AS vehicle_found, v.certificate_no, v.certificate_status,
       (SELECT max(f.ended_at) FROM fills f
         WHERE f.cylinder_code = c.cylinder_code AND f.outcome = 0) AS last_fill_at
FROM (SELECT 1)
LEFT JOIN stations s ON s.station_code = :station
LEFT JOIN workers w ON w.card = :card AND w.role = 'filling_operator' AND w.unit = :station_text
LEFT JOIN cylinders c ON c.tag_uid = :tag
LEFT JOIN vehicles v ON v.plate = c.vehicle_plate
"""

TAG_QUERY = """
SELECT cylinder_code, medium, next_inspection, status, manufacture_date, design_life_years, owner_station
FROM cylinders WHERE tag_uid = ?
"""

DECISION_INSERT = (
    "INSERT INTO fill_decisions (id, decided_at, station_code, scale, request_seq, tag, cylinder_code,"
    " operator_card, medium, gross_before_g, permit, reason, net_limit_g, message)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


RECORD_RETRY_S = 1.0
"""How long after a failed commit a decision's record is submitted again."""
MAX_RETRYING = 20_000
"""Records kept in memory for a retry; beyond, they are left to the journal (about 150 fills a minute
city-wide: hours of a full disk)."""
READ_TIMEOUT_S = 0.5
"""A WAL reader waits only in rare cases (recovery); better to deny with 99 than to stall the loop."""


def open_decision_connection(path: str | Path) -> sqlite3.Connection:
    """The decider's own read-only connection (autocommit: each query sees the latest commit)."""
    return connect_point_reader(path, READ_TIMEOUT_S)


def life_end(manufacture_date: str, design_life_years: int) -> date:
    """The first day a cylinder is past its design service life."""
    return add_years(date.fromisoformat(manufacture_date), design_life_years)


def evaluate(
    facts: Mapping[str, Any], request: ev.FillRequest, station_code: int, now: datetime, rules: RulesConfig
) -> ev.FillDecision:
    """The checks of domain.md in their order; the first that fails decides."""
    today = cst_date(now)
    code = facts["cylinder_code"] or ""

    def deny(reason: int, message: str) -> ev.FillDecision:
        return ev.FillDecision(permit=False, reason=reason, cylinder_code=code, message=message)

    # 1. The station: registered, licence in force, not suspended, licensed for the medium.
    if facts["station_found"] is None:
        return deny(STATION_NOT_LICENSED, f"充装站{station_code}未登记")
    if facts["station_status"] == "suspended":
        return deny(STATION_NOT_LICENSED, "充装站已被暂停充装")
    if date.fromisoformat(facts["licence_expiry"]) < today:
        return deny(STATION_NOT_LICENSED, f"充装许可证过期 {facts['licence_expiry']}")
    if request.medium not in facts["station_media"].split("|"):
        return deny(WRONG_MEDIUM, f"本站无{request.medium}充装许可")
    # 2. The operator's card belongs to this station.
    if facts["operator_found"] is None:
        return deny(OPERATOR_UNKNOWN, f"操作员卡未登记 {request.operator_card}")
    # 3. The tag.
    if not code:
        return deny(TAG_UNKNOWN, f"标签未登记 {request.tag}")
    # 4. Blacklisted; scrapped or past its design life.
    if facts["status"] == "blacklisted":
        return deny(BLACKLISTED, "气瓶已列入黑名单")
    if facts["status"] == "scrapped":
        return deny(SCRAPPED, "气瓶已报废")
    end_of_life = life_end(facts["manufacture_date"], facts["design_life_years"])
    if end_of_life <= today:
        return deny(SCRAPPED, f"超过设计使用年限 {end_of_life.isoformat()}")
    # 5. Periodic inspection.
    if date.fromisoformat(facts["next_inspection"]) < today:
        return deny(INSPECTION_OVERDUE, f"检验过期 {facts['next_inspection']}")
    collision_at = facts["last_collision_at"]
    if facts["kind"] in VEHICLE_KINDS and collision_at is not None and collision_at > inspected_at(facts):
        when = datetime.fromtimestamp(collision_at, CST).strftime("%m-%d %H:%M")
        return deny(INSPECT_AFTER_ACCIDENT, f"车辆{when}发生碰撞 气瓶须检验后充装")
    # 6. The medium of the cylinder.
    if request.medium != facts["medium"]:
        return deny(WRONG_MEDIUM, f"介质不符 气瓶为{facts['medium']}")
    kind = facts["kind"]
    # 7. Household LPG: only the owner station fills it.
    if kind == HOUSEHOLD and facts["owner_station"] != station_code:
        return deny(NOT_OWNER, f"非本站产权气瓶 产权站{facts['owner_station'] or '无'}")
    # 8. Vehicle cylinders: a registered vehicle with a registration certificate in force.
    if kind in VEHICLE_KINDS:
        plate = facts["vehicle_plate"] or ""
        if facts["vehicle_found"] is None:
            return deny(NO_VEHICLE_CERTIFICATE, f"车辆未登记 {plate}")
        if not facts["certificate_no"]:
            return deny(NO_VEHICLE_CERTIFICATE, f"无气瓶使用登记证 {plate}")
        if facts["certificate_status"] == "revoked":
            return deny(NO_VEHICLE_CERTIFICATE, f"使用登记证已注销 {plate}")
    # 9. Already full.
    cylinder = weights(facts)
    if request.gross_before_g >= cylinder.full_g:
        return deny(ALREADY_FULL, f"气瓶已满 毛重{request.gross_before_g / 1000:.2f}kg")
    # 10. Household LPG refilled too soon after its last completed fill (decanting).
    last_fill_at = facts["last_fill_at"]
    if kind == HOUSEHOLD and last_fill_at is not None:
        if now.timestamp() - last_fill_at < rules.household_refill_min_h * 3600:
            last = datetime.fromtimestamp(last_fill_at, CST).strftime("%m-%d %H:%M")
            return deny(REFILL_TOO_SOON, f"距上次充装不足{rules.household_refill_min_h:g}小时 上次{last}")
    net_limit = min(cylinder.full_g - request.gross_before_g, cylinder.rated_fill_g)
    return ev.FillDecision(
        permit=True, reason=PERMIT, net_limit_g=net_limit, cylinder_code=code,
        message=f"准许充装 限量{net_limit / 1000:.2f}kg",
    )  # fmt: skip


def inspected_at(facts: Mapping[str, Any]) -> float:
    """When the cylinder's last inspection was recorded: by staff (CLI or page), else the end of the census's
    last_inspection day (CST), else never."""
    if facts["inspection_recorded_at"] is not None:
        return float(facts["inspection_recorded_at"])
    if facts["last_inspection"]:
        return cst_midnight(date.fromisoformat(facts["last_inspection"]) + timedelta(days=1)).timestamp()
    return 0.0


def weights(facts: Mapping[str, Any]) -> CylinderWeights:
    return CylinderWeights(
        cylinder_code=facts["cylinder_code"],
        kind=facts["kind"],
        tare_g=grams(facts["tare_kg"]),
        rated_fill_g=grams(facts["rated_fill_kg"]),
    )


def tag_status(facts: Mapping[str, Any], today: date) -> int:
    """GF-3 TAG_INFO status: 2 blacklisted, else 1 scrapped or past design life, else 3 inspection
    overdue, else 0 in service."""
    if facts["status"] == "blacklisted":
        return 2
    if facts["status"] == "scrapped" or life_end(facts["manufacture_date"], facts["design_life_years"]) <= today:
        return 1
    if date.fromisoformat(facts["next_inspection"]) < today:
        return 3
    return 0


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """A decision as a FILL_RESULT needs it: which record, permitted or not, the cylinder's weights."""

    decision_id: int
    tag: str
    permit: bool
    operator_card: int
    cylinder: CylinderWeights | None


class RecentDecisions:
    """The last decision of each scale and request SEQ, kept by the serving process.

    Decisions are immutable, so this is never stale; it lets a FILL_RESULT find a decision whose record
    the writer has not committed yet. Bounded: one entry per scale and SEQ (256 per scale).
    """

    def __init__(self) -> None:
        self._by_request: dict[tuple[int, int, int], RecordedDecision] = {}

    def remember(self, station: int, scale: int, seq: int, decision: RecordedDecision) -> None:
        self._by_request[(station, scale, seq)] = decision

    def find(self, station: int, scale: int, seq: int, tag: str) -> RecordedDecision | None:
        found = self._by_request.get((station, scale, seq))
        return found if found is not None and found.tag == tag else None


class FillDecider:
    """The request handlers for FILL_REQUEST and TAG_QUERY."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        writer: BatchWriter,
        rules: RulesConfig,
        recent: RecentDecisions,
        last_decision_id: int,
        alarms: AlarmBook,
        journal: DecisionJournal,
    ) -> None:
        self.conn = conn
        self.journal = journal
        self.writer = writer
        self.rules = rules
        self.recent = recent
        self.alarms = alarms
        self.counts: collections.Counter[int] = collections.Counter()
        """Decisions by reason since start (0 = permitted), for /metrics."""
        self._last_id = last_decision_id
        self._retrying: dict[int, tuple[asyncio.TimerHandle, list[Statement], bool]] = {}
        """Records whose commit failed, waiting to be submitted again (bounded by MAX_RETRYING)."""
        self._retry_keys = itertools.count()

    def decide(self, terminal: Terminal, request: ev.FillRequest) -> ev.FillDecision:
        now = datetime.now(UTC)
        station = terminal.station_code or 0
        cylinder: CylinderWeights | None = None
        try:
            facts = self.conn.execute(
                DECISION_QUERY,
                {"station": station, "station_text": str(station), "card": request.operator_card, "tag": request.tag},
            ).fetchone()
            decision = evaluate(facts, request, station, now, self.rules)
            cylinder = weights(facts) if facts["cylinder_code"] else None
            if decision.permit and self.writer.failure is not None:
                repeated.error(("permit withheld", "writer"), "fill permits are denied (99): the database cannot"
                               " commit their records (%s)", self.writer.failure)  # fmt: skip
                decision = undecided(request)
            decision = self._record(terminal, request, decision, cylinder, now)
        except Exception:
            log.exception("fill decision for %s seq %d failed: denying (99)", terminal.terminal_id, request.seq)
            decision = undecided(request)
            try:
                self._record(terminal, request, decision, None, now)
            except Exception:
                log.exception("recording the fail-closed decision failed too")
        self.counts[decision.reason] += 1
        return decision

    def _record(
        self,
        terminal: Terminal,
        request: ev.FillRequest,
        decision: ev.FillDecision,
        cylinder: CylinderWeights | None,
        now: datetime,
    ) -> ev.FillDecision:
        """Record the decision: in the journal at once, in the database without waiting for its commit.
        Return the decision to answer: a permit whose record could not be journalled becomes a deny (99).

        Awaiting the commit would put every decision behind the batch writer's queue (status
        ingestion from thousands of lifts: tens of milliseconds a batch), far from the millisecond
        target; the journal (``filling/journal.py``) keeps the record if the process dies before it.
        The FILL_RESULT that closes this request goes through the same writer queue after this record
        (the controller sends it only after our answer), and it finds the decision in
        ``RecentDecisions`` even before the record commits. A record whose commit fails is submitted
        again until it commits.
        """
        station, scale = terminal.station_code or 0, terminal.scale or 0
        self._last_id += 1
        decision_id = self._last_id
        journalled = False
        while True:
            row = (decision_id, now.timestamp(), station, scale, request.seq, request.tag,
                   decision.cylinder_code or None, request.operator_card, request.medium, request.gross_before_g,
                   int(decision.permit), decision.reason, decision.net_limit_g, decision.message)  # fmt: skip
            try:
                self.journal.append(row)
                journalled = True
                break
            except OSError as exc:
                repeated.error(("journal", str(exc)), "a fill decision could not be journalled (%s): permits are"
                               " denied (99) until it can", exc)  # fmt: skip
                if not decision.permit:
                    break
                decision = undecided(request)
        statements: list[Statement] = [(DECISION_INSERT, row)]
        if cylinder is not None:
            # Weight tampering is checked whatever the decision, and commits with its record.
            for finding in request_findings(request, cylinder, self.rules):
                finding.detail.update(scale=scale, request_seq=request.seq, tag=request.tag, decision_id=decision_id)
                statements += raise_finding(self.alarms, finding, station, cylinder.cylinder_code, now)
        self._store(statements, journalled)
        self.recent.remember(
            station, scale, request.seq,
            RecordedDecision(decision_id, request.tag, decision.permit, request.operator_card, cylinder),
        )  # fmt: skip
        return decision

    def _store(self, statements: list[Statement], journalled: bool) -> None:
        """Submit a decision's record; when its commit fails, submit it again RECORD_RETRY_S later."""

        def stored(future: asyncio.Future[bool]) -> None:
            if future.cancelled() or future.exception() is None:
                if journalled:
                    self.journal.committed()
                return
            repeated.error(("record", str(future.exception())), "a fill decision record was not stored yet"
                           " (%s); retrying every %.0f s", future.exception(), RECORD_RETRY_S)  # fmt: skip
            if len(self._retrying) >= MAX_RETRYING:
                repeated.error(("record", "dropped"), "more than %d fill decision records wait for a retry: the"
                               " newest are left to the journal (checked in at the next start)", MAX_RETRYING)
                return
            key = next(self._retry_keys)
            handle = asyncio.get_running_loop().call_later(RECORD_RETRY_S, self._retry, key)
            self._retrying[key] = (handle, statements, journalled)

        try:
            self.writer.submit(WriteUnit(statements=statements)).add_done_callback(stored)
        except WriterClosed:  # stopping: the journal keeps the record
            repeated.log(logging.WARNING, ("record", "writer closed"),
                         "a fill decision record is left to the journal: the writer is closed")  # fmt: skip

    def _retry(self, key: int) -> None:
        _handle, statements, journalled = self._retrying.pop(key)
        self._store(statements, journalled)

    def flush(self) -> None:
        """Submit the records waiting for a retry now (before the platform stops its writer)."""
        for key in list(self._retrying):
            handle, statements, journalled = self._retrying.pop(key)
            handle.cancel()
            self._store(statements, journalled)

    def tag_info(self, terminal: Terminal, query: ev.TagQuery) -> ev.TagInfo:
        facts = self.conn.execute(TAG_QUERY, (query.tag,)).fetchone()
        if facts is None:
            return ev.TagInfo(found=False)
        return ev.TagInfo(
            found=True,
            cylinder_code=facts["cylinder_code"],
            medium=facts["medium"],
            next_inspection=date.fromisoformat(facts["next_inspection"]),
            status=tag_status(facts, cst_today()),
            owner_station=facts["owner_station"] or 0,
        )


