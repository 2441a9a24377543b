"""Fill records and post-fill alarms over a real GF-3 connection: each FILL_RESULT stored once and linked
to its decision; overfill, short fill, fill without permit, weight tampering; results buffered offline
and delivered after a reconnect or after a platform restart."""

from __future__ import annotations

import json
import time

import aiosqlite
from filling_support import (
    CNG_FULL_G,
    CNG_STATION,
    LPG_FULL_G,
    LPG_STATION,
    LPG_TARE_G,
    Controller,
    import_scenario,
    platform,  # noqa: F401 - the fixture
)

from wuhai_iot.clock import cst_today
from wuhai_iot.config import Config
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web.queries import coverage


async def alarms(database: aiosqlite.Connection) -> list[tuple[object, ...]]:
    rows = await database.execute_fetchall(
        "SELECT kind, severity, cylinder_code, station_code, condition, detail FROM alarms ORDER BY id"
    )
    return [(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]


async def fills(database: aiosqlite.Connection) -> list[tuple[object, ...]]:
    rows = await database.execute_fetchall(
        "SELECT f.cylinder_code, f.decision_id, d.request_seq, f.permitted, f.operator_card, f.gross_before_g,"
        " f.gross_after_g, f.outcome, f.ended_at FROM fills f LEFT JOIN fill_decisions d ON d.id = f.decision_id"
        " ORDER BY f.id"
    )
    return [tuple(r) for r in rows]


async def test_permitted_fill_is_recorded_with_its_decision(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform)
    decision = await post.request("LPG-FILL-0007", 14_000)
    ended = int(time.time()) - 120
    assert await post.result("LPG-FILL-0007", decision.request_seq, 14_000, LPG_FULL_G, ended_at=ended) == 0
    assert await fills(database) == [
        ("LPG-FILL-0007", 1, decision.request_seq, 1, 9001, 14_000, LPG_FULL_G, 0, ended),
    ]
    assert await alarms(database) == []
    await post.close()


async def test_overfill_and_short_fill(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform)
    over = await post.request("LPG-FILL-0007", 14_000)
    assert await post.result("LPG-FILL-0007", over.request_seq, 14_000, LPG_FULL_G + 501) == 0
    short = await post.request("LPG-OK-0001", 14_000)
    assert await post.result("LPG-OK-0001", short.request_seq, 14_000, LPG_FULL_G - 501) == 0
    # Vehicle cylinders (exempt from the refill interval, so one can be filled again and again):
    # 3 % of the rated 14 kg = 420 g. Within it, or an aborted fill: no alarm.
    cng = await Controller.connect(platform, CNG_STATION)
    for after, outcome in ((CNG_FULL_G + 421, 0), (CNG_FULL_G + 420, 0), (CNG_FULL_G - 420, 0), (70_000, 1)):
        vehicle = await cng.request("CNG-OK-0101", 65_000, medium="CNG")
        assert vehicle.permit
        assert await cng.result("CNG-OK-0101", vehicle.request_seq, 65_000, after, outcome=outcome) == 0
    found = await alarms(database)
    assert [(kind, severity, code, station, condition) for kind, severity, code, station, condition, _ in found] == [
        ("overfill", "major", "LPG-FILL-0007", LPG_STATION, "cleared"),
        ("short_fill", "minor", "LPG-OK-0001", LPG_STATION, "cleared"),
        ("overfill", "major", "CNG-OK-0101", CNG_STATION, "cleared"),
    ]
    assert found[0][5]["tolerance_g"] == 500 and found[0][5]["gross_after_g"] == LPG_FULL_G + 501
    assert found[2][5]["tolerance_g"] == 420
    await post.close()
    await cng.close()


async def test_fill_without_permit(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform)
    denied = await post.request("LPG-INSP-0005", 14_000)
    assert denied.reason == 2
    assert await post.result("LPG-INSP-0005", denied.request_seq, 14_000, 19_000, outcome=1) == 0
    # Never asked: a result whose request SEQ the platform never answered.
    assert await post.result("LPG-OK-0001", 200, 14_000, 20_000, outcome=1) == 0
    # Less than 0.2 kg added after a deny is no fill.
    again = await post.request("LPG-INSP-0005", 14_000)
    assert await post.result("LPG-INSP-0005", again.request_seq, 14_000, 14_200, outcome=1) == 0
    found = await alarms(database)
    assert [(kind, severity, code, detail["decision"]) for kind, severity, code, _, _, detail in found] == [
        ("fill_without_permit", "critical", "LPG-INSP-0005", "denied"),
        ("fill_without_permit", "critical", "LPG-OK-0001", "never_asked"),
    ]
    recorded = await fills(database)
    assert [(r[0], r[1] is None, r[3]) for r in recorded] == [
        ("LPG-INSP-0005", False, 0), ("LPG-OK-0001", True, 0), ("LPG-INSP-0005", False, 0)
    ]  # fmt: skip
    await post.close()


async def test_weight_tampering_at_request_whatever_the_decision(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    post = await Controller.connect(platform)
    permitted = await post.request("LPG-OK-0001", LPG_TARE_G - 301)
    assert permitted.permit
    denied = await post.request("LPG-INSP-0005", LPG_TARE_G - 1000)
    assert denied.reason == 2
    assert (await post.request("LPG-FILL-0007", LPG_TARE_G - 300)).permit  # at the threshold: no alarm
    await platform.writer.write([])  # decision records commit in order: everything before is in
    found = await alarms(database)
    assert [(kind, severity, code, detail["gross_before_g"], detail["tare_g"]) for kind, severity, code, _, _, detail in found] == [
        ("weight_tampering", "major", "LPG-OK-0001", LPG_TARE_G - 301, LPG_TARE_G),
        ("weight_tampering", "major", "LPG-INSP-0005", LPG_TARE_G - 1000, LPG_TARE_G),
    ]  # fmt: skip
    await post.close()


async def test_result_resent_after_reconnect_is_stored_once(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform, key=None)
    decision = await post.request("LPG-FILL-0007", 14_000)
    ended = int(time.time()) - 30
    body = post.result_frame_body("LPG-FILL-0007", decision.request_seq, 14_000, LPG_FULL_G + 900, ended_at=ended)
    assert await post.ack(await post.send(0x11, body)) == 0
    await post.close()  # the ACK is "lost": the controller keeps the result and sends it after its next LOGIN
    again = await Controller.connect(platform)
    again.seq = 40
    assert await again.ack(await again.send(0x11, body)) == 0
    assert len(await fills(database)) == 1
    assert [a[0] for a in await alarms(database)] == ["overfill"]
    await again.close()


async def test_result_buffered_across_a_platform_restart(config: Config) -> None:
    """The decision was taken before the restart: the result finds it in the database."""
    await import_scenario(config)
    async with Platform(config) as first:
        post = await Controller.connect(first, key=None)
        permitted = await post.request("LPG-FILL-0007", 14_000)
        denied = await post.request("LPG-INSP-0005", 14_000)
        await post.close()
    async with Platform(config) as second:
        post = await Controller.connect(second)
        assert await post.result("LPG-FILL-0007", permitted.request_seq, 14_000, LPG_FULL_G) == 0
        assert await post.result("LPG-INSP-0005", denied.request_seq, 14_000, 20_000, outcome=1) == 0
        # The decision ids go on from the stored ones.
        assert (await post.request("LPG-OK-0001", 14_000)).permit
        await post.close()
    conn = await db.connect(config.database.path, migrate=False)
    try:
        assert [row[:-1] for row in await fills(conn)] == [
            ("LPG-FILL-0007", 1, permitted.request_seq, 1, 9001, 14_000, LPG_FULL_G, 0),
            ("LPG-INSP-0005", 2, denied.request_seq, 0, 9001, 14_000, 20_000, 1),
        ]
        assert [a[0] for a in await alarms(conn)] == ["fill_without_permit"]
        ids = await conn.execute_fetchall("SELECT id FROM fill_decisions ORDER BY id")
        assert [row[0] for row in ids] == [1, 2, 3]
    finally:
        await conn.close()


async def test_a_filled_cylinder_counts_once_in_the_rollout_figures(
    platform: Platform, database: aiosqlite.Connection
) -> None:
    async def filled() -> int:
        return sum(f["cylinders_filled_30d"] for f in await coverage(database, today=cst_today()))

    before = await filled()
    post = await Controller.connect(platform)
    for _ in range(2):
        decision = await post.request("LPG-FILL-0007", 14_000)
        assert await post.result("LPG-FILL-0007", decision.request_seq, 14_000, LPG_FULL_G) == 0
    assert await filled() == before + 1
    await post.close()
