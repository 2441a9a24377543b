"""Fill decisions over a real GF-3 connection: every deny reason, the permit, the order of the checks,
registry changes taking effect at once (CLI in another process, re-import), fail-closed on a broken
database, and the tag query."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiosqlite
import pytest
from conftest import import_census, run_cli
from filling_support import (
    CNG_FULL_G,
    CNG_STATION,
    EXPIRED_STATION,
    LPG_FULL_G,
    LPG_STATION,
    OTHER_STATION_OPERATOR,
    SCENARIO,
    TAGS,
    Controller,
    platform,  # noqa: F401 - the fixture
)

from wuhai_iot import events as ev
from wuhai_iot.events import Terminal
from wuhai_iot.filling.plugin import Filling
from wuhai_iot.server import Platform

UNKNOWN_TAG = "E0040000DEADBEEF"


async def committed(platform: Platform) -> None:
    """Wait until everything submitted to the writer so far has committed (units commit in order)."""
    await platform.writer.write([])


async def test_permit_household_lpg(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform)
    decision = await post.request("LPG-OK-0001", 14_100)
    assert (decision.permit, decision.reason, decision.net_limit_g) == (True, 0, LPG_FULL_G - 14_100)
    assert decision.cylinder_code == "LPG-OK-0001"
    assert decision.message == "准许充装 限量13.90kg"
    # Lighter than the tare: the limit is never more than the rated fill.
    lighter = await post.request("LPG-OK-0001", 13_400)
    assert (lighter.permit, lighter.net_limit_g) == (True, 14_500)
    await committed(platform)
    rows = await database.execute_fetchall(
        "SELECT station_code, scale, request_seq, tag, cylinder_code, operator_card, medium, gross_before_g,"
        " permit, reason, net_limit_g FROM fill_decisions ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        (LPG_STATION, 1, decision.request_seq, TAGS["LPG-OK-0001"], "LPG-OK-0001", 9001, "LPG", 14_100, 1, 0, 13_900),
        (LPG_STATION, 1, lighter.request_seq, TAGS["LPG-OK-0001"], "LPG-OK-0001", 9001, "LPG", 13_400, 1, 0, 14_500),
    ]
    assert platform.state.get(Filling).decider.counts[0] == 2
    await post.close()


async def test_permit_vehicle_cng(platform: Platform) -> None:
    post = await Controller.connect(platform, CNG_STATION)
    decision = await post.request("CNG-OK-0101", 65_000, medium="CNG")
    assert (decision.permit, decision.reason, decision.net_limit_g, decision.cylinder_code) == (
        True, 0, CNG_FULL_G - 65_000, "CNG-OK-0101"
    )  # fmt: skip
    await post.close()


# (station, cylinder, gross g, medium, operator card or None for the station's own, tag or None,
#  expected reason, expected cylinder code, a part of the message). Rows marked "order" have several
#  failing checks: the first in domain.md's order wins.
DENIALS = [
    pytest.param(LPG_STATION, "", 14_000, "LPG", None, UNKNOWN_TAG, 1, "", UNKNOWN_TAG, id="1-tag-unknown"),
    pytest.param(LPG_STATION, "LPG-INSP-0005", 14_000, "LPG", None, None, 2, "LPG-INSP-0005", "检验过期 2020-01-01",
                 id="2-inspection-overdue"),
    pytest.param(LPG_STATION, "LPG-SCRAP-0003", 14_000, "LPG", None, None, 3, "LPG-SCRAP-0003", "报废", id="3-scrapped"),
    pytest.param(LPG_STATION, "LPG-OLD-0004", 14_000, "LPG", None, None, 3, "LPG-OLD-0004", "1998-05-01",
                 id="3-past-design-life-order-before-inspection"),
    pytest.param(LPG_STATION, "LPG-OTHER-0006", 14_000, "LPG", None, None, 4, "LPG-OTHER-0006", "150310",
                 id="4-not-owner"),
    pytest.param(LPG_STATION, "LPG-OTHER-0006", 29_000, "LPG", None, None, 4, "LPG-OTHER-0006", "150310",
                 id="4-order-before-already-full"),
    pytest.param(LPG_STATION, "CNG-OK-0101", 65_000, "CNG", None, None, 5, "CNG-OK-0101", "本站无CNG充装许可",
                 id="5-station-not-licensed-for-medium"),
    pytest.param(CNG_STATION, "CNG-OK-0101", 65_000, "LNG", None, None, 5, "CNG-OK-0101", "气瓶为CNG",
                 id="5-medium-of-cylinder"),
    pytest.param(LPG_STATION, "LPG-BLACK-0002", 14_000, "LPG", None, None, 6, "LPG-BLACK-0002", "黑名单",
                 id="6-blacklisted-order-before-inspection"),
    pytest.param(EXPIRED_STATION, "LPG-OK-0001", 14_000, "LPG", None, None, 7, "LPG-OK-0001", "2020-01-01",
                 id="7-licence-expired"),
    pytest.param(EXPIRED_STATION, "", 14_000, "LPG", 4242, UNKNOWN_TAG, 7, "", "许可证过期",
                 id="7-order-before-operator-and-tag"),
    pytest.param(CNG_STATION, "CNG-REV-0102", 65_000, "CNG", None, None, 8, "CNG-REV-0102", "已注销 蒙L·T5678",
                 id="8-certificate-revoked"),
    pytest.param(CNG_STATION, "CNG-NOCERT-0103", 65_000, "CNG", None, None, 8, "CNG-NOCERT-0103", "蒙L·B0001",
                 id="8-no-certificate"),
    pytest.param(CNG_STATION, "CNG-REV-0102", 80_000, "CNG", None, None, 8, "CNG-REV-0102", "蒙L·T5678",
                 id="8-order-before-already-full"),
    pytest.param(LPG_STATION, "LPG-OK-0001", LPG_FULL_G, "LPG", None, None, 9, "LPG-OK-0001", "28.00kg",
                 id="9-already-full"),
    pytest.param(LPG_STATION, "LPG-OK-0001", 14_000, "LPG", OTHER_STATION_OPERATOR, None, 11, "LPG-OK-0001", "9004",
                 id="11-operator-of-another-station"),
    pytest.param(LPG_STATION, "", 14_000, "LPG", 123456, UNKNOWN_TAG, 11, "", "123456",
                 id="11-order-before-tag"),
    pytest.param(LPG_STATION, "", 14_000, "CNG", 123456, UNKNOWN_TAG, 5, "", "CNG",
                 id="5-station-medium-order-before-operator"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("station", "cylinder", "gross", "medium", "card", "tag", "reason", "code", "message"), DENIALS
)
async def test_deny(
    platform: Platform,
    station: int,
    cylinder: str,
    gross: int,
    medium: str,
    card: int | None,
    tag: str | None,
    reason: int,
    code: str,
    message: str,
) -> None:
    post = await Controller.connect(platform, station)
    decision = await post.request(cylinder, gross, card=card, medium=medium, tag=tag)
    assert (decision.permit, decision.reason, decision.net_limit_g, decision.cylinder_code) == (False, reason, 0, code)
    assert message in decision.message
    assert platform.state.get(Filling).decider.counts == {reason: 1}
    await post.close()


async def test_deny_vehicle_unknown(platform: Platform, database: aiosqlite.Connection) -> None:
    await database.execute("DELETE FROM vehicles WHERE plate = '蒙L·X9999'")
    post = await Controller.connect(platform, CNG_STATION)
    decision = await post.request("CNG-GONE-0104", 65_000, medium="CNG")
    assert (decision.permit, decision.reason, decision.cylinder_code) == (False, 8, "CNG-GONE-0104")
    assert decision.message == "车辆未登记 蒙L·X9999"
    await post.close()


async def test_refill_too_soon_household_only(platform: Platform) -> None:
    lpg = await Controller.connect(platform)
    first = await lpg.request("LPG-FILL-0007", 14_000)
    an_hour_ago = int(time.time()) - 3600
    assert await lpg.result("LPG-FILL-0007", first.request_seq, 14_000, 28_000, ended_at=an_hour_ago) == 0
    again = await lpg.request("LPG-FILL-0007", 14_000)
    assert (again.permit, again.reason, again.cylinder_code) == (False, 10, "LPG-FILL-0007")
    assert again.message.startswith("距上次充装不足12小时 上次")
    # An aborted fill is not a completed one.
    other = await lpg.request("LPG-OK-0001", 14_000)
    assert await lpg.result("LPG-OK-0001", other.request_seq, 14_000, 15_000, outcome=1) == 0
    assert (await lpg.request("LPG-OK-0001", 15_000)).permit
    # Vehicles fill daily: exempt.
    cng = await Controller.connect(platform, CNG_STATION)
    fill = await cng.request("CNG-OK-0101", 65_000, medium="CNG")
    assert await cng.result("CNG-OK-0101", fill.request_seq, 65_000, 76_000) == 0
    assert (await cng.request("CNG-OK-0101", 70_000, medium="CNG")).permit
    await lpg.close()
    await cng.close()


async def test_refill_interval_from_configuration(config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from filling_support import import_scenario

    config.rules.household_refill_min_h = 0.5
    await import_scenario(config)
    async with Platform(config) as running:
        post = await Controller.connect(running)
        first = await post.request("LPG-FILL-0007", 14_000)
        await post.result("LPG-FILL-0007", first.request_seq, 14_000, 28_000, ended_at=int(time.time()) - 3600)
        assert (await post.request("LPG-FILL-0007", 14_000)).permit
        await post.close()


async def cli(config_file: Path, *args: str) -> tuple[int, str]:
    """The command's exit status and its output (standard output, then standard error)."""
    status, out, err = await run_cli(*args, "--config", str(config_file))
    return status, out + err


async def test_registry_change_by_cli_takes_effect_on_next_request(
    platform: Platform, database: aiosqlite.Connection, tmp_path: Path
) -> None:
    config_file = tmp_path / "wuhai-iot.toml"
    config_file.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
    lpg = await Controller.connect(platform)
    cng = await Controller.connect(platform, CNG_STATION)
    assert (await lpg.request("LPG-OK-0001", 14_000)).permit

    assert await cli(config_file, "cylinders", "blacklist", "LPG-OK-0001", "--reason", "报失被盗") == (
        0, "cylinder LPG-OK-0001: now blacklisted\n"
    )  # fmt: skip
    assert (await lpg.request("LPG-OK-0001", 14_000)).reason == 6
    assert (await cli(config_file, "cylinders", "reinstate", "LPG-OK-0001"))[0] == 0
    assert (await lpg.request("LPG-OK-0001", 14_000)).permit

    assert (await cli(config_file, "stations", "suspend", str(LPG_STATION)))[0] == 0
    assert (await lpg.request("LPG-OK-0001", 14_000)).reason == 7
    assert (await cli(config_file, "stations", "activate", str(LPG_STATION)))[0] == 0
    assert (await lpg.request("LPG-OK-0001", 14_000)).permit

    assert (await cng.request("CNG-OK-0101", 65_000, medium="CNG")).permit
    assert (await cli(config_file, "vehicles", "revoke", "蒙L·T1234"))[0] == 0
    assert (await cng.request("CNG-OK-0101", 65_000, medium="CNG")).reason == 8

    assert (await cli(config_file, "cylinders", "scrap", "LPG-OK-0001"))[0] == 0
    assert (await lpg.request("LPG-OK-0001", 14_000)).reason == 3
    # A scrapped cylinder's code is void: it cannot be reinstated; an unknown code is reported.
    assert (await cli(config_file, "cylinders", "reinstate", "LPG-OK-0001"))[0] == 3
    assert (await cli(config_file, "cylinders", "blacklist", "NO-SUCH-CODE"))[0] == 1

    audit = await database.execute_fetchall(
        "SELECT object_type, object_id, district_code, json_extract(details, '$.action'),"
        " json_extract(details, '$.reason') FROM audit_log WHERE action = 'registry.change' ORDER BY id"
    )
    assert [tuple(row) for row in audit][:2] == [
        ("cylinder", "LPG-OK-0001", "150302", "blacklist", "报失被盗"),
        ("cylinder", "LPG-OK-0001", "150302", "reinstate", None),
    ]
    assert len(audit) == 6
    await lpg.close()
    await cng.close()


async def test_reimport_takes_effect_on_next_request(platform: Platform, tmp_path: Path) -> None:
    post = await Controller.connect(platform)
    assert (await post.request("LPG-OK-0001", 14_000)).permit
    rows = (SCENARIO / "cylinders.csv").read_text(encoding="utf-8").splitlines()
    blacklisted = [rows[0]] + [row.replace("in_service", "blacklisted") for row in rows if row.startswith("LPG-OK-0001")]
    changed = tmp_path / "cylinders-recall.csv"
    changed.write_text("\n".join(blacklisted) + "\n", encoding="utf-8")
    await import_census(platform.config.database.path, [changed])
    assert (await post.request("LPG-OK-0001", 14_000)).reason == 6
    await post.close()


async def test_database_failure_denies_with_99(platform: Platform, database: aiosqlite.Connection) -> None:
    post = await Controller.connect(platform)
    assert (await post.request("LPG-OK-0001", 14_000)).permit
    # Break the database under the decision: a table it needs is gone.
    await database.execute("ALTER TABLE workers RENAME TO workers_lost")
    decision = await post.request("LPG-OK-0001", 14_000)
    assert (decision.permit, decision.reason, decision.net_limit_g) == (False, 99, 0)
    assert platform.state.get(Filling).decider.counts[99] == 1
    await committed(platform)
    row = await (await database.execute("SELECT permit, reason FROM fill_decisions ORDER BY id DESC")).fetchone()
    assert tuple(row) == (0, 99)
    await post.close()


async def test_a_coroutine_request_handler_is_awaited_and_its_failure_denies_with_99(platform: Platform) -> None:
    """Request handlers may wait (a vendor's): their answer follows later, a failure still fails closed."""
    decide = platform.ingest.request_handlers[ev.FillRequest]

    async def slow(terminal: Terminal, request: ev.Event) -> ev.Reply:
        await asyncio.sleep(0.01)
        return decide(terminal, request)  # type: ignore[return-value]

    async def broken(terminal: Terminal, request: ev.Event) -> ev.Reply:
        await asyncio.sleep(0)
        raise RuntimeError("the vendor's service is down")

    post = await Controller.connect(platform)
    platform.ingest.request_handlers[ev.FillRequest] = slow
    assert (await post.request("LPG-OK-0001", 14_000)).permit
    platform.ingest.request_handlers[ev.FillRequest] = broken
    decision = await post.request("LPG-OK-0001", 14_000)
    assert (decision.permit, decision.reason) == (False, 99)
    await post.close()


async def test_tag_query(platform: Platform) -> None:
    post = await Controller.connect(platform)
    assert await post.query(TAGS["LPG-OK-0001"]) == {
        "found": 1, "cylinder_code": "LPG-OK-0001", "medium": 1, "next_inspection": 20990101, "status": 0,
        "owner_station": LPG_STATION,
    }  # fmt: skip
    assert (await post.query(TAGS["LPG-BLACK-0002"]))["status"] == 2  # blacklisted and overdue: 2 first
    assert (await post.query(TAGS["LPG-SCRAP-0003"]))["status"] == 1
    assert (await post.query(TAGS["LPG-OLD-0004"]))["status"] == 1  # past design life and overdue: 1 first
    assert (await post.query(TAGS["LPG-INSP-0005"]))["status"] == 3
    vehicle = await post.query(TAGS["CNG-OK-0101"])
    assert (vehicle["cylinder_code"], vehicle["medium"], vehicle["owner_station"]) == ("CNG-OK-0101", 2, 0)
    assert await post.query(UNKNOWN_TAG) == {
        "found": 0, "cylinder_code": "", "medium": 9, "next_inspection": 0, "status": 0, "owner_station": 0
    }  # fmt: skip
    await post.close()
