"""Fill records: each FILL_RESULT stored once, linked to its decision, and checked after the fill."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.config import RulesConfig
from wuhai_iot.events import Terminal
from wuhai_iot.filling.checks import raise_finding, result_findings
from wuhai_iot.filling.cylinders import CylinderWeights, grams
from wuhai_iot.filling.decision import RecentDecisions, RecordedDecision
from wuhai_iot.storage.writer import Statement

FILL_INSERT = (
    "INSERT OR IGNORE INTO fills (id, station_code, scale, request_seq, tag, cylinder_code, decision_id,"
    " permitted, operator_card, gross_before_g, gross_after_g, duration_s, outcome, ended_at, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
CYLINDER_FILLED = "UPDATE cylinders SET last_filled_at = max(coalesce(last_filled_at, 0), ?) WHERE cylinder_code = ?"
"""A cylinder's newest fill (the rollout counts the cylinders filled in the last 30 days by it)."""
STORED_DECISION = (
    "SELECT d.id, d.permit, d.operator_card, c.cylinder_code, c.kind, c.tare_kg, c.rated_fill_kg"
    " FROM fill_decisions d LEFT JOIN cylinders c ON c.cylinder_code = d.cylinder_code"
    " WHERE d.station_code = ? AND d.scale = ? AND d.request_seq = ? AND d.tag = ?"
    " ORDER BY d.decided_at DESC, d.id DESC LIMIT 1"
)
CYLINDER_BY_TAG = "SELECT cylinder_code, kind, tare_kg, rated_fill_kg FROM cylinders WHERE tag_uid = ?"


class FillRecords:
    """The ingest consumer of FILL_RESULTs.

    ``consume`` is synchronous and runs inside the writer's transaction, so what it needs but does not
    have in ``RecentDecisions`` (a decision taken before a restart, for a result buffered offline; the
    cylinder of a request never asked) is read with a short-lived plain ``sqlite3`` connection: indexed
    point queries on a rare path, and no connection to close while the writer may still consume.
    """

    events = (ev.FillResult,)

    def __init__(
        self,
        database: Path,
        recent: RecentDecisions,
        rules: RulesConfig,
        last_fill_id: int,
        alarms: AlarmBook,
    ) -> None:
        self.database = database
        self.recent = recent
        self.rules = rules
        self.alarms = alarms
        self._last_id = last_fill_id

    def consume(self, terminal: Terminal, events: Sequence[ev.Event]) -> list[Statement]:
        statements: list[Statement] = []
        for event in events:
            if isinstance(event, ev.FillResult) and terminal.station_code is not None:
                statements += self._record(terminal, event)
        return statements

    def _record(self, terminal: Terminal, result: ev.FillResult) -> list[Statement]:
        station, scale = terminal.station_code or 0, terminal.scale or 0
        decision = self.recent.find(station, scale, result.request_seq, result.tag)
        cylinder = decision.cylinder if decision is not None else None
        if decision is None or cylinder is None:
            with closing(sqlite3.connect(self.database, timeout=10)) as reader:
                if decision is None:
                    decision = _stored_decision(reader, station, scale, result)
                    cylinder = decision.cylinder if decision is not None else None
                if cylinder is None:
                    cylinder = _cylinder_by_tag(reader, result.tag)
        permitted = decision.permit if decision is not None else None
        code = cylinder.cylinder_code if cylinder is not None else None
        # The controller's end time (buffered results arrive late), or the receive time when the ingest
        # found its clock impossible (docs/time.md) and took the device time away.
        ended_at = result.ended_at if result.device_time is not None else result.received_at
        self._last_id += 1
        statements: list[Statement] = [
            (
                FILL_INSERT,
                (self._last_id, station, scale, result.request_seq, result.tag, code,
                 decision.decision_id if decision else None, int(bool(permitted)),
                 decision.operator_card if decision else None, result.gross_before_g, result.gross_after_g,
                 result.duration_s, result.outcome, ended_at.timestamp(), result.received_at.timestamp()),
            )
        ]  # fmt: skip
        if code is not None:
            statements.append((CYLINDER_FILLED, (ended_at.timestamp(), code)))
        for finding in result_findings(result, permitted, cylinder, self.rules):
            finding.detail.update(scale=scale, request_seq=result.request_seq, tag=result.tag)
            statements += raise_finding(self.alarms, finding, station, code, ended_at)
        return statements


def _stored_decision(
    reader: sqlite3.Connection, station: int, scale: int, result: ev.FillResult
) -> RecordedDecision | None:
    row = reader.execute(STORED_DECISION, (station, scale, result.request_seq, result.tag)).fetchone()
    if row is None:
        return None
    cylinder = _weights(row[3:]) if row[3] is not None else None
    return RecordedDecision(row[0], result.tag, bool(row[1]), row[2], cylinder)


def _cylinder_by_tag(reader: sqlite3.Connection, tag: str) -> CylinderWeights | None:
    row = reader.execute(CYLINDER_BY_TAG, (tag,)).fetchone()
    return _weights(row) if row is not None else None


def _weights(row: Sequence[object]) -> CylinderWeights:
    code, kind, tare_kg, rated_kg = row
    return CylinderWeights(str(code), str(kind), grams(float(tare_kg)), grams(float(rated_kg)))  # type: ignore[arg-type]
