"""The JSON API calls that only read, through the real app: one platform and one token per user for the
whole module (the calls that change something are in test_api.py, each with its own platform)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from conftest import import_census, platform_config
from test_api import HAINAN_LIFT, HBW_LIFT, LPG_CYLINDER, LPG_TAG, PLATE, USERS, WUDA_LIFT, Api
from web_support import add_user, token_for

from wuhai_iot.server import Platform

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    config = platform_config(tmp_path_factory.mktemp("api"))
    await import_census(config.database.path)
    async with Platform(config) as platform:
        tokens = {}
        for name, fields in USERS.items():
            await add_user(platform, name, **fields)
            tokens[name] = await token_for(platform, name)
        async with aiohttp.ClientSession() as session:
            yield Api(platform, session, tokens)


async def test_tokens_are_required_and_errors_are_json(api: Api) -> None:
    assert await api.get("", "/api/v1/elevators") == (401, {"error": "authentication required"})
    api.tokens["forged"] = "wh_" + "A" * 43
    assert await api.get("forged", "/api/v1/elevators") == (401, {"error": "invalid or revoked token"})
    assert await api.get("admin", "/api/v1/no-such-thing") == (404, {"error": "not found"})
    assert await api.get("", "/api/v1/no-such-thing") == (404, {"error": "not found"})
    assert await api.call("DELETE", "admin", "/api/v1/elevators") == (405, {"error": "method not allowed"})


async def test_me_tells_role_scope_and_permissions(api: Api) -> None:
    status, me = await api.get("lifts_co", "/api/v1/me")
    assert status == 200
    assert me["role"] == "maintenance" and me["unit"] == "乌海市某电梯工程有限公司" and me["district"] is None
    assert "send_commands" in me["permissions"] and "view_vehicles" not in me["permissions"]


async def test_elevator_lists_are_scoped(api: Api) -> None:
    async def codes(who: str, query: str = "") -> list[str]:
        return [lift["device_code"] for lift in await api.items(who, "/api/v1/elevators" + query)]

    assert await codes("admin") == [HBW_LIFT, WUDA_LIFT, HAINAN_LIFT]
    assert await codes("hbw") == [HBW_LIFT]
    assert await codes("wuda") == [WUDA_LIFT]
    assert await codes("lifts_co") == [HBW_LIFT, WUDA_LIFT]
    assert await codes("escalator_co") == [HAINAN_LIFT]
    assert await codes("admin", "?district=乌达区") == [WUDA_LIFT]
    assert await codes("admin", "?district=150303") == [HAINAN_LIFT]
    assert await codes("hbw", "?district=乌达区") == [], "another district's filter gives nothing, not its lifts"
    for who in ("police", "transport", "station"):
        assert await api.get(who, "/api/v1/elevators") == (403, {"error": "forbidden"})
    status, body = await api.get("admin", "/api/v1/elevators?district=北京")
    assert status == 400 and "unknown district" in body["error"]


async def test_elevator_list_pages(api: Api) -> None:
    seen, path = [], "/api/v1/elevators?limit=1"
    while True:
        status, page = await api.get("admin", path)
        assert status == 200 and len(page["items"]) == 1
        seen.append(page["items"][0]["device_code"])
        if page["next"] is None:
            break
        path = f"/api/v1/elevators?limit=1&cursor={page['next']}"
    assert seen == [HBW_LIFT, WUDA_LIFT, HAINAN_LIFT]
    for query, message in (("limit=0", "limit"), ("limit=501", "limit"), ("limit=ten", "limit"),
                           ("cursor=!!!", "cursor"), ("cursor=MTIz", "cursor")):  # fmt: skip
        status, body = await api.get("admin", "/api/v1/elevators?" + query)
        assert status == 400 and message in body["error"], query
    status, page = await api.get("admin", "/api/v1/elevators?limit=500")
    assert status == 200 and len(page["items"]) == 3 and page["next"] is None


async def test_elevator_detail_is_404_outside_the_scope(api: Api) -> None:
    assert (await api.get("admin", f"/api/v1/elevators/{WUDA_LIFT}"))[0] == 200
    assert (await api.get("lifts_co", f"/api/v1/elevators/{WUDA_LIFT}"))[0] == 200
    for who in ("hbw", "escalator_co", "police", "station"):
        assert await api.get(who, f"/api/v1/elevators/{WUDA_LIFT}") in (
            (404, {"error": "no such elevator"}), (404, {"error": "not found"}))  # fmt: skip
    assert await api.get("admin", "/api/v1/elevators/00000000000000000000") == (404, {"error": "no such elevator"})


async def test_commands_refused_by_role_scope_and_input(api: Api) -> None:
    path = f"/api/v1/elevators/{HBW_LIFT}/commands"
    assert await api.post("police", path, json={"code": "restart"}) == (403, {"error": "forbidden"})
    assert await api.post("station", path, json={"code": "restart"}) == (403, {"error": "forbidden"})
    assert await api.post("wuda", path, json={"code": "restart"}) == (404, {"error": "no such elevator"})
    assert await api.post("escalator_co", path, json={"code": "restart"}) == (404, {"error": "no such elevator"})
    status, body = await api.post("admin", path, json={"code": "self_destruct"})
    assert status == 400 and "report_status" in body["error"]
    assert await api.post("admin", path, json={"code": "set_interval", "argument": "60"}) == (
        400, {"error": "argument must be a whole number or null"})  # fmt: skip
    assert await api.post("admin", path, data=b"{not json", headers={"Content-Type": "application/json"}) == (
        400, {"error": "the body is not valid JSON"})  # fmt: skip
    assert await api.post("admin", path, json=["report_status"]) == (400, {"error": "the body must be a JSON object"})


async def test_cylinder_by_code_or_tag(api: Api) -> None:
    for who in ("admin", "hbw", "police", "transport"):
        for key in (LPG_CYLINDER, LPG_TAG, LPG_TAG.lower()):
            status, cylinder = await api.get(who, f"/api/v1/cylinders/{key}")
            assert status == 200, (who, key, cylinder)
            assert cylinder["cylinder_code"] == LPG_CYLINDER and cylinder["tag_uid"] == LPG_TAG
    assert cylinder["district"] == {"code": "150302", "name": "海勃湾区"}
    assert cylinder["status"] == "in_service" and cylinder["fills"] == [] and cylinder["decisions"] == []
    for who in ("wuda", "station", "lifts_co"):
        assert (await api.get(who, f"/api/v1/cylinders/{LPG_CYLINDER}"))[0] == 404
    assert await api.get("admin", "/api/v1/cylinders/NO-SUCH-CYLINDER") == (404, {"error": "no such cylinder"})


async def test_vehicle_by_plate(api: Api) -> None:
    for who in ("admin", "hbw", "police", "transport"):
        for plate in (PLATE, "蒙LT1234"):
            status, vehicle = await api.get(who, f"/api/v1/vehicles/{plate}")
            assert status == 200, (who, plate, vehicle)
    assert vehicle["plate"] == PLATE and vehicle["certificate_status"] == "valid"
    assert vehicle["district"] == {"code": "150302", "name": "海勃湾区"}
    assert [c["cylinder_code"] for c in vehicle["cylinders"]] == ["CNG1-80-0000771"]
    for who in ("wuda", "station", "lifts_co"):
        assert (await api.get(who, f"/api/v1/vehicles/{PLATE}"))[0] == 404
    assert await api.get("admin", "/api/v1/vehicles/蒙A00000") == (404, {"error": "no such vehicle"})


async def test_station_detail(api: Api) -> None:
    for who in ("admin", "hbw", "station"):
        status, station = await api.get(who, "/api/v1/stations/150301")
        assert status == 200, (who, station)
    assert station["name"] == "乌海市某液化气充装站" and station["district"] == {"code": "150302", "name": "海勃湾区"}
    assert [s["terminal_id"] for s in station["scale_list"]] == ["150301-2"]
    assert (station["scales_installed"], station["open_alarms"]) == (1, 0)
    assert station["denials_by_reason"] == []
    for who in ("wuda", "other_station", "police", "lifts_co"):
        assert (await api.get(who, "/api/v1/stations/150301"))[0] == 404
    assert (await api.get("other_station", "/api/v1/stations/150402"))[0] == 200
    assert await api.get("admin", "/api/v1/stations/150") == (404, {"error": "no such station"})
    assert await api.get("admin", "/api/v1/stations/abc") == (404, {"error": "no such station"})
    assert (await api.get("admin", "/api/v1/stations/150301?days=0"))[0] == 400


async def test_station_list_is_scoped_and_paged(api: Api) -> None:
    async def codes(who: str, query: str = "") -> list[int]:
        return [station["station_code"] for station in await api.items(who, "/api/v1/stations" + query)]

    assert await codes("admin") == [150301, 150402]
    assert await codes("hbw") == [150301] and await codes("wuda") == [150402]
    assert await codes("station") == [150301] and await codes("other_station") == [150402]
    assert await codes("admin", "?district=乌达区") == [150402]
    assert await codes("hbw", "?district=乌达区") == [] and await codes("station", "?district=乌达区") == []
    for who in ("police", "transport", "lifts_co"):
        assert await api.get(who, "/api/v1/stations") == (403, {"error": "forbidden"})
    status, first = await api.get("admin", "/api/v1/stations?limit=1")
    assert status == 200 and [s["station_code"] for s in first["items"]] == [150301] and first["next"]
    status, second = await api.get("admin", f"/api/v1/stations?limit=1&cursor={first['next']}")
    assert status == 200 and [s["station_code"] for s in second["items"]] == [150402] and second["next"] is None
    station = first["items"][0]
    assert station["district"] == {"code": "150302", "name": "海勃湾区"} and station["media"] == "LPG"
    assert (station["scales"], station["scales_installed"], station["scales_online"]) == (4, 1, 0)
    assert station["today"] == {"permitted": 0, "denied": 0, "fills": 0} and station["open_alarms"] == 0
    status, body = await api.get("admin", "/api/v1/stations?cursor=Ingi")  # (a cursor of a string: '"x"')
    assert status == 400 and "cursor" in body["error"]


async def test_coverage_per_district(api: Api) -> None:
    items = await api.items("admin", "/api/v1/coverage")
    by_district = {item["district"]["name"]: item for item in items}
    assert set(by_district) == {"海勃湾区", "乌达区", "海南区"}
    hbw = by_district["海勃湾区"]
    assert hbw["elevators"] | {"online": 0} == {"registered": 1, "pilot": 1, "terminal_installed": 1, "online": 0,
                                               "online_95pct_last_7_days": 0}  # fmt: skip
    assert hbw["stations"]["registered"] == 1 and hbw["vehicles"] == {"registered": 1, "valid_certificate": 1}
    assert hbw["cylinders"]["registered"] == hbw["cylinders"]["tagged"] >= 2
    assert by_district["海南区"]["elevators"]["terminal_installed"] == 0
    assert [i["district"]["code"] for i in await api.items("wuda", "/api/v1/coverage")] == ["150304"]
    assert await api.items("wuda", "/api/v1/coverage?district=海南区") == []
    assert [i["district"]["code"] for i in await api.items("admin", "/api/v1/coverage?district=海南区")] == ["150303"]
    for who in ("police", "station", "lifts_co"):
        assert await api.get(who, "/api/v1/coverage") == (403, {"error": "forbidden"})
