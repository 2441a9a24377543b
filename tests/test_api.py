"""The JSON API calls that change something (each test with a platform of its own; the calls that only read
are in test_api_read.py): alarm handling and its 409, commands to a connected terminal, /metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import aiosqlite
import pytest
from conftest import TerminalClient, fixture_bytes
from web_support import add_user, base_url, token_for

from wuhai_iot.alarms.book import alarm_book
from wuhai_iot.alarms.model import Subject
from wuhai_iot.protocols.elink import COMMAND
from wuhai_iot.server import Platform
from wuhai_iot.storage import audit

HBW_LIFT = "31101503022012000101"     # 海勃湾区, 乌海市某电梯工程有限公司, ELink terminal
WUDA_LIFT = "31101503042010000044"    # 乌达区, 乌海市某电梯工程有限公司, LMT terminal
HAINAN_LIFT = "33101503032013000007"  # 海南区, 内蒙古某机电设备有限公司, no terminal
LPG_CYLINDER, LPG_TAG = "LPG-YSP35.5-0012345", "E004015012345678"  # owner station 150301 (海勃湾区)
PLATE = "蒙L·T1234"                    # 海勃湾区
USERS: dict[str, dict[str, Any]] = {
    "admin": {"role": "admin"},
    "hbw": {"role": "district", "district": "海勃湾区"},
    "wuda": {"role": "district", "district": "150304"},
    "police": {"role": "police"},
    "transport": {"role": "transport"},
    "station": {"role": "station", "unit": "150301"},
    "other_station": {"role": "station", "unit": "150402"},
    "lifts_co": {"role": "maintenance", "unit": "乌海市某电梯工程有限公司"},
    "escalator_co": {"role": "maintenance", "unit": "内蒙古某机电设备有限公司"},
}


class Api:
    """Calls the API as one of the users above, by bearer token."""

    def __init__(self, platform: Platform, session: aiohttp.ClientSession, tokens: dict[str, str]) -> None:
        self.platform = platform
        self.session = session
        self.tokens = tokens

    async def call(self, method: str, who: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {}) | ({"Authorization": f"Bearer {self.tokens[who]}"} if who else {})
        async with self.session.request(method, base_url(self.platform) + path, headers=headers, **kwargs) as answer:
            assert answer.content_type == "application/json", await answer.text()
            return answer.status, await answer.json()

    async def get(self, who: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("GET", who, path, **kwargs)

    async def post(self, who: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", who, path, **kwargs)

    async def items(self, who: str, path: str) -> list[dict[str, Any]]:
        status, body = await self.get(who, path)
        assert status == 200, body
        return body["items"]


@pytest.fixture
async def api(platform: Platform) -> AsyncIterator[Api]:
    tokens = {}
    for name, fields in USERS.items():
        await add_user(platform, name, **fields)
        tokens[name] = await token_for(platform, name)
    async with aiohttp.ClientSession() as session:
        yield Api(platform, session, tokens)


async def raise_alarms(platform: Platform) -> dict[str, int]:
    """A trapped alarm on the 海勃湾区 lift, a door fault on the 乌达区 lift, an overfill at station 150301."""
    book = await alarm_book(platform)
    now = datetime.now(UTC)
    statements = book.raise_alarm(Subject(device_code=HBW_LIFT), "trapped", now)
    statements += book.raise_alarm(Subject(device_code=WUDA_LIFT), "door_fault", now, source="device", vendor_code="7")
    statements += book.record_alarm(Subject(cylinder_code=LPG_CYLINDER, station_code=150301), "overfill", now)
    await platform.writer.write(statements)
    rows = await book.conn.execute_fetchall("SELECT id, kind FROM alarms")
    return {row["kind"]: row["id"] for row in rows}


async def elink_terminal(platform: Platform) -> TerminalClient:
    """The 海勃湾区 lift's ELink terminal, logged in and having reported its status."""
    terminal = await TerminalClient.connect(platform, "elink")
    for name in ("elink/login_vendor_example.hex", "elink/status_vendor_example.hex"):
        await terminal.send(fixture_bytes(name))
        await terminal.receive()  # the ACK, sent once stored
    return terminal


# --- authentication and errors ---------------------------------------------------------------------


# --- lifts -----------------------------------------------------------------------------------------


async def test_elevator_detail_with_live_state(api: Api) -> None:
    terminal = await elink_terminal(api.platform)
    try:
        status, lift = await api.get("hbw", f"/api/v1/elevators/{HBW_LIFT}")
    finally:
        await terminal.close()
    assert status == 200
    assert lift["district"] == {"code": "150302", "name": "海勃湾区"}
    assert lift["online"] is True and lift["pilot"] is True
    assert lift["last_status"] == {"floor": 7, "direction": "up", "door": "closed", "running": True,
                                   "door_zone": lift["last_status"]["door_zone"], "occupied": True,
                                   "speed_mps": 1.5, "at": "2025-11-29T07:06:45Z"}  # fmt: skip
    assert lift["terminals"][0]["terminal_id"] == "8613000100020003"
    assert isinstance(lift["maintenance_overdue"], bool) and lift["inspection_overdue"] is False
    assert lift["last_frame_at"].endswith("Z")


async def test_commands_go_to_the_connected_terminal(api: Api, database: aiosqlite.Connection) -> None:
    path = f"/api/v1/elevators/{HBW_LIFT}/commands"
    status, body = await api.post("hbw", path, json={"code": "report_status"})
    assert (status, body) == (409, {"error": "the elevator's terminal is not connected"})
    terminal = await elink_terminal(api.platform)
    try:
        status, sent = await api.post("hbw", path, json={"code": "report_status"})
        assert status == 202, sent
        assert (sent["protocol"], sent["terminal_id"], sent["code"]) == ("elink", "8613000100020003", "report_status")
        frame = await terminal.receive()
        assert frame[13] == COMMAND and int.from_bytes(frame[14:16], "big") == sent["seq"]
        status, body = await api.post("hbw", path, json={"code": "set_interval", "argument": 1})
        assert status == 400 and "interval" in body["error"]
    finally:
        await terminal.close()
    row = await (await database.execute("SELECT code, requested_by FROM commands")).fetchone()
    assert tuple(row) == ("report_status", "hbw")
    entry = (await audit.query(database, action="command.send"))[0]
    assert (entry.user_name, entry.object_id, entry.district_code) == ("hbw", HBW_LIFT, "150302")


# --- alarms ----------------------------------------------------------------------------------------


async def test_alarm_lists_are_scoped(api: Api) -> None:
    ids = await raise_alarms(api.platform)

    async def kinds(who: str, query: str = "") -> list[str]:
        return sorted(alarm["kind"] for alarm in await api.items(who, "/api/v1/alarms" + query))

    assert await kinds("admin") == ["door_fault", "overfill", "trapped"]
    assert await kinds("hbw") == ["overfill", "trapped"]
    assert await kinds("wuda") == ["door_fault"]
    assert await kinds("lifts_co") == ["door_fault", "trapped"]
    assert await kinds("escalator_co") == []
    assert await kinds("station") == ["overfill"]
    assert await kinds("other_station") == []
    for who in ("police", "transport"):  # (vehicle alarms alone: none here)
        assert await api.get(who, "/api/v1/alarms") == (200, {"items": [], "next": None})
    assert await kinds("admin", "?kind=trapped") == ["trapped"]
    assert await kinds("admin", f"?device_code={WUDA_LIFT}") == ["door_fault"]
    assert await kinds("admin", "?district=海勃湾区&status=open") == ["overfill", "trapped"]
    assert await kinds("admin", "?status=resolved") == []
    assert await kinds("wuda", "?district=海勃湾区") == []

    trapped = next(a for a in await api.items("admin", "/api/v1/alarms?kind=trapped"))
    assert trapped["id"] == ids["trapped"] and trapped["severity"] == "critical"
    assert (trapped["condition"], trapped["status"], trapped["device_code"]) == ("active", "raised", HBW_LIFT)
    assert trapped["district"] == {"code": "150302", "name": "海勃湾区"}
    assert trapped["raised_at"].endswith("Z") and trapped["acknowledged_at"] is None
    door = next(a for a in await api.items("admin", "/api/v1/alarms?kind=door_fault"))
    assert door["vendor_code"] == "7"

    for query, message in (("status=closed", "status"), ("kind=fire", "kind"), ("district=x", "district")):
        status, body = await api.get("admin", "/api/v1/alarms?" + query)
        assert status == 400 and message in body["error"], query


async def test_alarm_list_pages_newest_first(api: Api) -> None:
    ids = await raise_alarms(api.platform)
    status, first = await api.get("admin", "/api/v1/alarms?limit=2")
    assert status == 200 and [a["id"] for a in first["items"]] == sorted(ids.values(), reverse=True)[:2]
    status, second = await api.get("admin", f"/api/v1/alarms?limit=2&cursor={first['next']}")
    assert [a["id"] for a in second["items"]] == [min(ids.values())] and second["next"] is None


async def test_alarm_detail_is_404_outside_the_scope(api: Api) -> None:
    ids = await raise_alarms(api.platform)
    status, alarm = await api.get("hbw", f"/api/v1/alarms/{ids['trapped']}")
    assert status == 200 and alarm["kind"] == "trapped" and isinstance(alarm["samples"], list)
    for who in ("wuda", "escalator_co", "station"):
        assert await api.get(who, f"/api/v1/alarms/{ids['trapped']}") == (404, {"error": "no such alarm"})
    assert await api.get("police", f"/api/v1/alarms/{ids['trapped']}") == (404, {"error": "no such alarm"})
    assert await api.get("admin", "/api/v1/alarms/99999") == (404, {"error": "no such alarm"})
    assert await api.get("admin", "/api/v1/alarms/abc") == (404, {"error": "no such alarm"})


async def test_acknowledge_then_resolve_then_409(api: Api, database: aiosqlite.Connection) -> None:
    ids = await raise_alarms(api.platform)
    alarm = f"/api/v1/alarms/{ids['trapped']}"
    status, body = await api.post("hbw", alarm + "/acknowledge", json={"note": "维保人员已出发"})
    assert status == 200
    assert (body["status"], body["acknowledged_by"], body["acknowledge_note"]) == ("acknowledged", "hbw", "维保人员已出发")
    assert body["acknowledged_at"].endswith("Z")
    status, body = await api.post("lifts_co", alarm + "/resolve", json={"note": "乘客已救出"})
    assert status == 200 and (body["status"], body["resolved_by"]) == ("resolved", "lifts_co")
    assert await api.post("hbw", alarm + "/acknowledge", json={}) == (409, {"error": "the alarm is already resolved"})
    assert await api.post("admin", alarm + "/resolve") == (409, {"error": "the alarm is already resolved"})
    assert [a["id"] for a in await api.items("admin", "/api/v1/alarms?status=resolved")] == [ids["trapped"]]
    assert sorted(a["kind"] for a in await api.items("admin", "/api/v1/alarms?status=open")) == ["door_fault", "overfill"]
    actions = [(e.action, e.user_name, e.object_id) for e in await audit.query(database, action="alarm.")]
    assert actions == [("alarm.resolve", "lifts_co", str(ids["trapped"])),
                       ("alarm.acknowledge", "hbw", str(ids["trapped"]))]  # fmt: skip


async def test_handling_refused_by_role_scope_and_input(api: Api) -> None:
    ids = await raise_alarms(api.platform)
    trapped = f"/api/v1/alarms/{ids['trapped']}"
    assert await api.post("police", trapped + "/acknowledge", json={}) == (403, {"error": "forbidden"})
    assert await api.post("transport", trapped + "/resolve", json={}) == (403, {"error": "forbidden"})
    for who in ("wuda", "escalator_co", "station"):
        assert await api.post(who, trapped + "/acknowledge", json={}) == (404, {"error": "no such alarm"})
    status, body = await api.post("station", f"/api/v1/alarms/{ids['overfill']}/acknowledge", json={"note": "复核"})
    assert status == 200 and body["status"] == "acknowledged"
    assert await api.post("admin", trapped + "/acknowledge", json={"note": 5}) == (
        400, {"error": "note must be text of at most 2000 characters"})  # fmt: skip
    assert (await api.post("admin", trapped + "/acknowledge", json={"note": "x" * 2001}))[0] == 400
    assert await api.post("admin", "/api/v1/alarms/424242/resolve", json={}) == (404, {"error": "no such alarm"})
    status, alarm = await api.get("admin", trapped)
    assert alarm["status"] == "raised", "no refused request changed the alarm"


# --- maintenance -----------------------------------------------------------------------------------


async def test_maintenance_visits_are_scoped_and_flagged(api: Api) -> None:
    start = time.time() - 3 * 86400
    visits = [(9001, HBW_LIFT, start, start + 1800, ""), (9002, HBW_LIFT, start + 86400, start + 86400 + 600, "short"),
              (9003, WUDA_LIFT, start, start + 2400, "")]  # fmt: skip
    await api.platform.writer.write([(
        "INSERT INTO maintenance_visits (id, device_code, card, worker_name, worker_company, started_at, ended_at,"
        " duration_min, items, flags) VALUES (?, ?, 123456, '张某', '乌海市某电梯工程有限公司', ?, ?, ?, 31, ?)",
        (visit_id, lift, started, ended, (ended - started) / 60, flags),
    ) for visit_id, lift, started, ended, flags in visits])  # fmt: skip

    async def ids(who: str, query: str = "") -> list[int]:
        return [v["id"] for v in await api.items(who, "/api/v1/maintenance/visits" + query)]

    assert await ids("admin") == [9003, 9002, 9001]
    assert await ids("hbw") == [9002, 9001]
    assert await ids("lifts_co") == [9003, 9002, 9001]
    assert await ids("escalator_co") == []
    assert await ids("admin", "?flagged=true") == [9002]
    assert await ids("admin", "?flagged=false&district=150304") == [9003]
    assert await ids("admin", f"?device_code={HBW_LIFT}&limit=1") == [9002]
    flagged = (await api.items("hbw", "/api/v1/maintenance/visits?flagged=true"))[0]
    assert flagged["flags"] == ["short"] and flagged["duration_min"] == 10 and flagged["started_at"].endswith("Z")
    assert flagged["district"] == {"code": "150302", "name": "海勃湾区"}
    assert await api.get("police", "/api/v1/maintenance/visits") == (403, {"error": "forbidden"})
    assert (await api.get("admin", "/api/v1/maintenance/visits?flagged=yes"))[0] == 400


# --- cylinders, vehicles, stations -----------------------------------------------------------------


# --- metrics ---------------------------------------------------------------------------------------


async def test_metrics_for_admins(api: Api) -> None:
    await raise_alarms(api.platform)
    terminal = await elink_terminal(api.platform)
    try:
        headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
        async with api.session.get(base_url(api.platform) + "/metrics", headers=headers) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            text = await answer.text()
    finally:
        await terminal.close()
    lines = set(text.splitlines())
    assert 'wuhai_connections{protocol="elink"} 1.0' in lines
    assert 'wuhai_frames_in_total{protocol="elink"} 2.0' in lines
    assert 'wuhai_terminals_logged_in{protocol="elink"} 1.0' in lines
    assert 'wuhai_alarms_open{kind="trapped"} 1.0' in lines and 'wuhai_alarms_open{kind="overspeed"} 0.0' in lines
    assert "# TYPE wuhai_decode_errors_total counter" in lines and "wuhai_write_backlog 0.0" in lines
    # A busy counter keeps every digit (it was once printed as 1.23457e+06).
    api.platform.listeners["elink"].counters.frames_in = 12_345_678
    async with api.session.get(base_url(api.platform) + "/metrics", headers=headers) as answer:
        text = await answer.text()
    assert 'wuhai_frames_in_total{protocol="elink"} 1.2345678e+07' in text.splitlines()
    status, _ = await api.get("hbw", "/metrics")
    assert status == 403
    assert await api.get("", "/metrics") == (401, {"error": "authentication required"})
