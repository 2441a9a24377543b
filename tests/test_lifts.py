"""Lift queries on the census examples: the maintenance-overdue rule (a never-maintained lift counts from its
terminal's installation), filters and keyset paging in SQL, and ordering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest
from conftest import import_census

from wuhai_iot.elevators.queries import cursor_of, get_lift, list_lifts, total_lifts
from wuhai_iot.storage import db

HBW_LIFT = "31101503022012000101"     # ELink terminal installed 2025-11-01 (before the vendor's example frames)
WUDA_LIFT = "31101503042010000044"    # LMT terminal installed 2026-11-02
HAINAN_LIFT = "33101503032013000007"  # no terminal


def cst_noon(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 4, 0, tzinfo=UTC)


@pytest.fixture
async def registry(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    path = tmp_path / "wuhai-iot.sqlite3"
    await import_census(path)
    conn = await db.connect(path)
    yield conn
    await conn.close()


async def overdue(conn: aiosqlite.Connection, now: datetime) -> list[str]:
    return [lift.device_code for lift in await list_lifts(conn, now=now, maintenance_overdue=True)]


async def test_never_maintained_lifts_count_from_the_terminal_installation(registry: aiosqlite.Connection) -> None:
    # 15 CST days after installation is still on time; the 16th day is overdue. No terminal: not tracked.
    await registry.execute("UPDATE terminals SET installed_on = '2026-11-01' WHERE device_code = ?", (HBW_LIFT,))
    assert await overdue(registry, cst_noon(16)) == []
    assert await overdue(registry, cst_noon(17)) == [HBW_LIFT]
    assert await overdue(registry, cst_noon(18)) == [HBW_LIFT, WUDA_LIFT]
    hainan = await get_lift(registry, HAINAN_LIFT, now=cst_noon(1, month=12))
    assert hainan is not None and not hainan.has_terminal and not hainan.maintenance_overdue
    # A terminal without an installation date: tracked since always, so overdue at once.
    await registry.execute("UPDATE terminals SET installed_on = NULL WHERE device_code = ?", (WUDA_LIFT,))
    assert await overdue(registry, cst_noon(3)) == [WUDA_LIFT]


async def test_a_visit_restarts_the_count(registry: aiosqlite.Connection) -> None:
    ended = datetime(2026, 11, 10, 2, 0, tzinfo=UTC).timestamp()  # 10:00 CST on 10 Nov
    await registry.execute(
        "INSERT INTO maintenance_visits (id, device_code, card, started_at, ended_at) VALUES (1, ?, 9001, ?, ?)",
        (HBW_LIFT, ended - 1800, ended),
    )
    assert await overdue(registry, cst_noon(25)) == [WUDA_LIFT]
    lift = await get_lift(registry, HBW_LIFT, now=cst_noon(26))
    assert lift is not None and (lift.days_since_maintenance, lift.maintenance_overdue) == (16, True)
    assert lift.last_maintenance_at == datetime.fromtimestamp(ended, UTC)
    # Longest since the reference date first: 2 Nov (installed) before 10 Nov (visited).
    found = await list_lifts(registry, now=cst_noon(26), maintenance_overdue=True, order="maintenance")
    assert [lift.device_code for lift in found] == [WUDA_LIFT, HBW_LIFT]
    # The configured interval is the one in force.
    relaxed = await list_lifts(registry, now=cst_noon(25), maintenance_overdue=True, maintenance_interval_days=30)
    assert relaxed == []


async def test_keyset_pages_with_filters_in_sql(registry: aiosqlite.Connection) -> None:
    first = await list_lifts(registry, limit=2)
    assert [lift.device_code for lift in first] == [HBW_LIFT, WUDA_LIFT]
    rest = await list_lifts(registry, after=first[-1].device_code, limit=2)
    assert [lift.device_code for lift in rest] == [HAINAN_LIFT]
    # A filter on a computed flag narrows before the limit, so a page is never short.
    offline = await list_lifts(registry, online=False, limit=1, after=HBW_LIFT)
    assert [lift.device_code for lift in offline] == [WUDA_LIFT]
    assert [lift.device_code for lift in await list_lifts(registry, search="0044")] == [WUDA_LIFT]
    assert [lift.device_code for lift in await list_lifts(registry, district_code="150303")] == [HAINAN_LIFT]
    with pytest.raises(ValueError, match="not paged"):
        await list_lifts(registry, after=HBW_LIFT, order="urgency")


async def test_a_total_no_running_figure_gives_is_counted_up_to_a_cap(registry: aiosqlite.Connection) -> None:
    # The scope alone or one flag: a running figure. A search or two flags: the matching lifts, at most cap + 1.
    assert await total_lifts(registry) == (3, False)
    assert await total_lifts(registry, online=False) == (3, False)
    assert await total_lifts(registry, search="0044") == (1, False)
    two_flags = {"online": False, "with_alarm": False}
    assert await total_lifts(registry, **two_flags) == (len(await list_lifts(registry, **two_flags)), False) == (3, False)
    assert await total_lifts(registry, cap=2, **two_flags) == (2, True)
    assert await total_lifts(registry, cap=3, **two_flags) == (3, False)


async def test_overdue_lists_page_by_keyset_in_their_own_order(registry: aiosqlite.Connection) -> None:
    # The overdue list is longest-overdue first; a page's cursor continues it in that order.
    ended = datetime(2026, 11, 1, 2, 0, tzinfo=UTC).timestamp()  # HBW visited 1 Nov, WUDA installed 2 Nov
    await registry.execute(
        "INSERT INTO maintenance_visits (id, device_code, card, started_at, ended_at) VALUES (1, ?, 9001, ?, ?)",
        (HBW_LIFT, ended - 1800, ended),
    )
    overdue = {"now": cst_noon(26), "maintenance_overdue": True, "order": "maintenance", "limit": 1}
    first = await list_lifts(registry, **overdue)
    assert [lift.device_code for lift in first] == [HBW_LIFT] and first[0].maintenance_ref == "2026-11-01"
    second = await list_lifts(registry, after=cursor_of(first[0], "maintenance"), **overdue)
    assert [lift.device_code for lift in second] == [WUDA_LIFT]
    assert await list_lifts(registry, after=cursor_of(second[0], "maintenance"), **overdue) == []
    by_inspection = await list_lifts(registry, order="inspection")
    dates = [lift.registry["next_inspection"] for lift in by_inspection]
    assert dates == sorted(dates)
    paged = await list_lifts(registry, order="inspection", limit=2)
    paged += await list_lifts(registry, order="inspection", after=cursor_of(paged[-1], "inspection"))
    assert [lift.device_code for lift in paged] == [lift.device_code for lift in by_inspection]
    with pytest.raises(ValueError, match="cursor"):
        await list_lifts(registry, order="inspection", after=HBW_LIFT)
