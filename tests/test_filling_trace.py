"""Traceability queries after real decisions and fills over GF-3: cylinder, station, vehicle, and the
district / station scopes."""

from __future__ import annotations

from datetime import UTC

import aiosqlite
from filling_support import (
    CNG_STATION,
    LPG_FULL_G,
    LPG_STATION,
    TAGS,
    Controller,
    platform,  # noqa: F401 - the fixture
)

from wuhai_iot.clock import cst_today
from wuhai_iot.filling.trace import cylinder_trace, find_cylinder, online_scales, station_trace, vehicle_trace
from wuhai_iot.server import Platform
from wuhai_iot.web.auth import Scope
from wuhai_iot.web.queries import list_stations

HAIBOWAN, WUDA = "150302", "150304"


async def fill_some(platform: Platform) -> tuple[Controller, Controller]:
    lpg = await Controller.connect(platform)
    permitted = await lpg.request("LPG-FILL-0007", 14_000)
    assert await lpg.result("LPG-FILL-0007", permitted.request_seq, 14_000, LPG_FULL_G + 900) == 0  # overfill
    assert (await lpg.request("LPG-INSP-0005", 14_000)).reason == 2
    cng = await Controller.connect(platform, CNG_STATION)
    vehicle = await cng.request("CNG-OK-0101", 65_000, medium="CNG")
    assert await cng.result("CNG-OK-0101", vehicle.request_seq, 65_000, 75_800) == 0
    await platform.writer.write([])
    return lpg, cng


async def test_cylinder_trace(platform: Platform, database: aiosqlite.Connection) -> None:
    lpg, cng = await fill_some(platform)
    trace = await cylinder_trace(database, code="LPG-FILL-0007")
    assert trace is not None
    assert (trace.condition, trace.district_code, trace.owner_station_name) == ("in_service", HAIBOWAN, "乌海市某液化气充装站")
    assert trace.cylinder["tag_uid"] == TAGS["LPG-FILL-0007"] and trace.vehicle is None
    [decision] = trace.decisions
    assert (decision.station_code, decision.scale, decision.operator_card, decision.operator_name) == (LPG_STATION, 1, 9001, "李某")
    assert (decision.permit, decision.net_limit_g, decision.decided_at.tzinfo) == (True, 14_000, UTC)
    [fill] = trace.fills
    assert (fill.decision_id, fill.operator_name, fill.added_g, fill.outcome) == (decision.id, "李某", 14_900, 0)
    assert trace.last_completed_fill_at == fill.ended_at
    assert [alarm.kind for alarm in trace.alarms] == ["overfill"]
    # By tag (any case); conditions.
    by_tag = await cylinder_trace(database, tag=TAGS["LPG-FILL-0007"].lower())
    assert by_tag is not None and by_tag.cylinder["cylinder_code"] == "LPG-FILL-0007"
    overdue = await cylinder_trace(database, code="LPG-INSP-0005")
    assert overdue is not None and overdue.condition == "inspection_overdue" and overdue.decisions[0].reason == 2
    assert [(await cylinder_trace(database, code=code)).condition for code in ("LPG-BLACK-0002", "LPG-SCRAP-0003",
            "LPG-OLD-0004")] == ["blacklisted", "scrapped", "past_design_life"]  # type: ignore[union-attr]  # fmt: skip
    assert await cylinder_trace(database, code="NO-SUCH") is None
    await lpg.close()
    await cng.close()


async def test_cylinder_trace_scopes(platform: Platform, database: aiosqlite.Connection) -> None:
    lpg, cng = await fill_some(platform)
    # District: the owner station's (household) or the vehicle's (vehicle cylinders).
    assert await cylinder_trace(database, code="LPG-FILL-0007", district_code=HAIBOWAN) is not None
    assert await cylinder_trace(database, code="LPG-FILL-0007", district_code=WUDA) is None
    assert await cylinder_trace(database, code="CNG-REV-0102", district_code=WUDA) is not None
    assert await cylinder_trace(database, code="CNG-REV-0102", district_code=HAIBOWAN) is None
    # Station: cylinders it owns or was asked to fill; only its own history.
    assert await cylinder_trace(database, code="LPG-FILL-0007", station_code=CNG_STATION) is None
    assert await cylinder_trace(database, code="CNG-REV-0102", station_code=CNG_STATION) is None
    seen = await cylinder_trace(database, code="CNG-OK-0101", station_code=CNG_STATION)
    assert seen is not None and len(seen.decisions) == 1 and len(seen.fills) == 1
    own = await cylinder_trace(database, code="LPG-FILL-0007", station_code=LPG_STATION)
    assert own is not None and [a.kind for a in own.alarms] == ["overfill"]
    await lpg.close()
    await cng.close()


async def test_station_trace(platform: Platform, database: aiosqlite.Connection) -> None:
    lpg, cng = await fill_some(platform)
    trace = await station_trace(database, LPG_STATION, online_terminals=online_scales(platform))
    assert trace is not None
    assert [(s.terminal_id, s.online) for s in trace.scales] == [("150301-1", True), ("150301-2", False)]
    [day] = trace.fills_per_day
    assert (day.day, day.fills, day.completed, day.net_g) == (cst_today(), 1, 1, 14_900)
    assert (trace.permits, trace.denials_by_reason) == (1, {2: 1})
    # The station list's today: the same decisions and fill, its scale online, its open alarm (the overfill).
    [today] = await list_stations(database, day=cst_today(), station_code=LPG_STATION)
    assert {name: today[name] for name in ("permitted", "denied", "fills", "scales_installed", "scales_online",
                                           "open_alarms")} == {"permitted": 1, "denied": 1, "fills": 1,
                                                               "scales_installed": 2, "scales_online": 1,
                                                               "open_alarms": 1}  # fmt: skip
    # Without the live set, the recorded sessions say who is online.
    recorded = await station_trace(database, LPG_STATION)
    assert recorded is not None and [s.online for s in recorded.scales] == [True, False]
    assert await station_trace(database, LPG_STATION, district_code=WUDA) is None
    assert await station_trace(database, LPG_STATION, station_code=CNG_STATION) is None
    assert await station_trace(database, 999) is None
    await lpg.close()
    await cng.close()


async def test_vehicle_trace(platform: Platform, database: aiosqlite.Connection) -> None:
    lpg, cng = await fill_some(platform)
    trace = await vehicle_trace(database, "蒙L·T1234")
    assert trace is not None and trace.certificate_valid
    assert [(c.cylinder_code, c.next_inspection.isoformat(), c.condition) for c in trace.cylinders] == [
        ("CNG-OK-0101", "2099-01-01", "in_service"),
        ("CNG1-80-0000771", "2026-07-01", "inspection_overdue"),
    ]
    assert [(f.cylinder_code, f.station_code, f.added_g) for f in trace.fills] == [("CNG-OK-0101", CNG_STATION, 10_800)]
    revoked = await vehicle_trace(database, "蒙L·T5678")
    assert revoked is not None and not revoked.certificate_valid and revoked.fills == []
    assert await vehicle_trace(database, "蒙L·T1234", district_code=WUDA) is None
    assert await vehicle_trace(database, "蒙L·T1234", station_code=LPG_STATION) is None
    assert await vehicle_trace(database, "蒙L·T1234", station_code=CNG_STATION) is not None
    await lpg.close()
    await cng.close()


async def test_a_station_user_sees_its_own_station_only(platform: Platform, database: aiosqlite.Connection) -> None:
    """The web layer passes a user's whole scope (``**user.scope.filters()``) next to the station asked for."""
    lpg, cng = await fill_some(platform)
    own = Scope(station_code=LPG_STATION).filters()
    found = await station_trace(database, LPG_STATION, **own)
    assert found is not None and found.station["station_code"] == LPG_STATION
    assert [(d.permit, d.reason) for d in found.decisions] == [(False, 2), (True, 0)], "newest first"
    assert await station_trace(database, CNG_STATION, **own) is None
    assert await station_trace(database, LPG_STATION, **Scope(district_code=HAIBOWAN).filters()) is not None
    await lpg.close()
    await cng.close()


async def test_look_ups_as_typed(platform: Platform, database: aiosqlite.Connection) -> None:
    """A cylinder by code or by tag in any case; a plate with or without its dot, spaces or lower case."""
    by_code = await find_cylinder(database, " LPG-FILL-0007 ")
    by_tag = await find_cylinder(database, TAGS["LPG-FILL-0007"].lower())
    assert by_code is not None and by_tag is not None and by_tag.cylinder == by_code.cylinder
    assert await find_cylinder(database, "LPG-FILL-0007", district_code=WUDA) is None
    assert await find_cylinder(database, "NO-SUCH-CYLINDER") is None
    for typed in ("蒙L·T1234", "蒙LT1234", "蒙l t1234"):
        found = await vehicle_trace(database, typed)
        assert found is not None and found.vehicle["plate"] == "蒙L·T1234", typed
    assert await vehicle_trace(database, "蒙A00000") is None
