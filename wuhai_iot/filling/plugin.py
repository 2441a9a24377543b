"""Plugs gas-cylinder supervision into the platform: the FILL_REQUEST and TAG_QUERY handlers, the
FILL_RESULT consumer and the registry-change commands."""

from __future__ import annotations

import argparse
import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wuhai_iot import events as ev
from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.alarms.kinds import AlarmKind
from wuhai_iot.filling.decision import (
    DECISION_INSERT,
    FillDecider,
    RecentDecisions,
    open_decision_connection,
    undecided,
)
from wuhai_iot.filling.journal import DecisionJournal, journal_path, journalled_rows
from wuhai_iot.filling.records import FillRecords
from wuhai_iot.filling.registry_changes import add_commands
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.plugins.metrics import Metric

if TYPE_CHECKING:
    from wuhai_iot.server import Platform


FILL_ALARM_KINDS = (
    AlarmKind("fill_without_permit", "critical", "无许可充装", "filling"),
    AlarmKind("overfill", "major", "超装", "filling"),
    AlarmKind("weight_tampering", "major", "疑似配重作假", "filling"),
    AlarmKind("short_fill", "minor", "充装不足", "filling"),
)
"""The gas-cylinder alarms of domain.md (found by ``filling.checks``)."""

log = logging.getLogger(__name__)
DECISION_REPLAY = DECISION_INSERT.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)


@dataclass
class Filling:
    """What gas-cylinder supervision keeps for a running platform (``platform.state``)."""

    conn: sqlite3.Connection
    """The fill decisions' own connection (see ``open_decision_connection``)."""
    decider: FillDecider
    journal: DecisionJournal
    """Each decision's record before its answer leaves (see ``filling.journal``)."""


@hookimpl
def register_alarm_kinds() -> list[AlarmKind]:
    return list(FILL_ALARM_KINDS)


@hookimpl
async def platform_starting(platform: Platform) -> None:
    book = await alarm_book(platform)
    path = platform.config.database.path
    replayed = journalled_rows(journal_path(path))
    if replayed:
        # Decisions answered before the process stopped, whose records may not have committed.
        await platform.writer.write([(DECISION_REPLAY, row) for row in replayed])
        log.info("decision journal: %d records checked into the database", len(replayed))
    journal = DecisionJournal(journal_path(path), empty=True)
    conn = open_decision_connection(path)
    last_decision, last_fill = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM fill_decisions), (SELECT coalesce(max(id), 0) FROM fills)"
    ).fetchone()
    rules = platform.config.rules
    recent = RecentDecisions()
    decider = FillDecider(conn, platform.writer, rules, recent, last_decision, book, journal)
    platform.ingest.answer_requests(ev.FillRequest, decider.decide, undecided)  # type: ignore[arg-type]
    platform.ingest.answer_requests(ev.TagQuery, decider.tag_info)  # type: ignore[arg-type]
    platform.ingest.consumers.append(FillRecords(platform.config.database.path, recent, rules, last_fill, book))
    platform.state.add(Filling(conn, decider, journal))


@hookimpl
def platform_stopping(platform: Platform) -> None:
    """The listeners have stopped: no more requests to decide."""
    filling = platform.state.pop(Filling)
    if filling is not None:
        filling.conn.close()
        filling.decider.flush()
        filling.journal.close()


@hookimpl
def collect_metrics(platform: Platform) -> list[Metric]:
    filling = platform.state.find(Filling)
    counts = filling.decider.counts if filling is not None else {}
    samples = [({"reason": str(reason)}, float(n)) for reason, n in sorted(counts.items())]
    return [Metric("wuhai_fill_decisions_total", "counter", "Fill decisions since start by reason (0 = permitted)",
                   samples)]  # fmt: skip


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    add_commands(subparsers)
