"""The web pages through the real app: roles and scopes on every page, CSRF on forms, live updates."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import aiosqlite
import pytest
from lift_support import LIFT, LIFT_2, LiftTerminal
from web_support import add_user, base_url, browser, login, session_csrf

from wuhai_iot.clock import cst_today
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web import charts
from wuhai_iot.web.templating import cst, duration

USERS = {
    "admin1": ("admin", {}),
    "haibowan": ("district", {"district": "海勃湾区"}),
    "wuda": ("district", {"district": "150304"}),
    "police1": ("police", {}),
    "transport1": ("transport", {}),
    "station1": ("station", {"unit": "150301"}),
    "lifts_co": ("maintenance", {"unit": "乌海市某电梯工程有限公司"}),
}
ROLES = {name: role for name, (role, _) in USERS.items()}

# Page → the roles that may see it. Everyone else is refused (403, or 404 for one object).
PAGES: dict[str, set[str]] = {
    "/lifts": {"admin", "district", "maintenance"},
    "/alarms": {"admin", "district", "maintenance", "station"},
    "/rescues": {"admin", "district", "maintenance"},
    "/maintenance": {"admin", "district", "maintenance"},
    "/inspections": {"admin", "district", "maintenance"},
    "/stations": {"admin", "district", "station"},
    "/cylinders": {"admin", "district", "police", "transport"},
    "/vehicles": {"admin", "district", "police", "transport"},
    "/rollout": {"admin", "district"},
    "/reports/monthly": {"admin", "district"},
    "/reports/monthly.csv": {"admin", "district"},
    "/census": {"admin"},
    "/users": {"admin"},
    "/audit": {"admin"},
}
HIDDEN_PAGES: dict[str, set[str]] = {  # objects in 海勃湾区 (user wuda: see the scope test)
    f"/lifts/{LIFT}": {"admin", "district", "maintenance"},
    "/stations/150301": {"admin", "district", "station"},
}


@pytest.fixture
async def site(platform: Platform) -> Platform:
    for name, (role, extra) in USERS.items():
        await add_user(platform, name, role, **extra)
    return platform


@pytest.fixture
async def clients(site: Platform) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    sessions = {name: browser() for name in USERS}
    for name, client in sessions.items():
        answer = await login(client, site, name)
        assert answer.status == 302, name
    yield sessions
    for client in sessions.values():
        await client.close()


async def get(client: aiohttp.ClientSession, platform: Platform, path: str) -> tuple[int, str]:
    async with client.get(base_url(platform) + path, allow_redirects=False) as answer:
        return answer.status, await answer.text()


async def post(client: aiohttp.ClientSession, platform: Platform, path: str, data: dict) -> aiohttp.ClientResponse:
    async with client.post(base_url(platform) + path, data=data, allow_redirects=False) as answer:
        await answer.read()
        return answer


async def test_every_page_for_the_roles_that_may_see_it(site: Platform, clients: dict) -> None:
    for path, allowed in {**PAGES, **HIDDEN_PAGES}.items():
        refusal = 404 if path in HIDDEN_PAGES else 403
        for name, client in clients.items():
            if name == "wuda" and path in HIDDEN_PAGES:
                continue
            status, text = await get(client, site, path)
            expected = 200 if ROLES[name] in allowed else refusal
            assert status == expected, f"{name} ({ROLES[name]}) GET {path}: {status}"
            if status == 200 and not path.endswith(".csv"):
                assert 'lang="zh-CN"' in text and "乌海市特种设备安全监管平台" in text


async def test_anonymous_visitors_are_sent_to_login(site: Platform) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for path in [*PAGES, *HIDDEN_PAGES, "/", "/live/alarms"]:
            async with anonymous.get(base_url(site) + path, allow_redirects=False) as answer:
                assert answer.status == 302 and answer.headers["Location"].startswith("/login?next="), path
        async with anonymous.get(base_url(site) + "/login") as answer:
            html = await answer.text()
    assert 'name="csrf_token"' in html and "登录" in html


async def test_home_leads_each_role_to_its_start(site: Platform, clients: dict) -> None:
    expectations = {"admin1": 200, "haibowan": 200, "lifts_co": 200, "police1": 302, "station1": 302}
    for name, status in expectations.items():
        async with clients[name].get(base_url(site) + "/", allow_redirects=False) as answer:
            assert answer.status == status, name
            if name == "police1":
                assert answer.headers["Location"] == "/vehicles"
            if name == "station1":
                assert answer.headers["Location"] == "/stations/150301"


async def test_navigation_follows_the_role(site: Platform, clients: dict) -> None:
    _, admin = await get(clients["admin1"], site, "/")
    _, district = await get(clients["haibowan"], site, "/")
    _, police = await get(clients["police1"], site, "/vehicles")
    assert 'href="/users"' in admin and 'href="/audit"' in admin
    assert 'href="/users"' not in district and 'href="/lifts"' in district and "海勃湾区" in district
    assert 'href="/lifts"' not in police and 'href="/cylinders"' in police


async def test_another_districts_objects_are_not_found(site: Platform, clients: dict) -> None:
    # LIFT is in 海勃湾区, LIFT_2 in 乌达区; station 150301 in 海勃湾区.
    assert (await get(clients["wuda"], site, f"/lifts/{LIFT}"))[0] == 404
    assert (await get(clients["wuda"], site, f"/lifts/{LIFT_2}"))[0] == 200
    assert (await get(clients["wuda"], site, "/stations/150301"))[0] == 404
    assert (await get(clients["station1"], site, "/stations/150402"))[0] == 404
    status, text = await get(clients["wuda"], site, "/cylinders?q=LPG-YSP35.5-0012345")
    assert status == 404 and "没有找到" in text
    status, text = await get(clients["wuda"], site, "/lifts")
    assert LIFT_2 in text and LIFT not in text
    # A maintenance company sees its own lifts only (the escalator belongs to another company).
    assert (await get(clients["lifts_co"], site, "/lifts/33101503032013000007"))[0] == 404


async def test_lookups_find_by_code_tag_and_plate(site: Platform, clients: dict) -> None:
    police = clients["police1"]
    status, text = await get(police, site, "/cylinders?q=e004015012345678")  # tag, any case
    assert status == 200 and "LPG-YSP35.5-0012345" in text and "民用液化气瓶" in text
    status, text = await get(police, site, "/vehicles?plate=蒙L·T1234")
    assert status == 200 and "CNG1-80-0000771" in text and "使用登记证有效" in text
    assert (await get(police, site, "/vehicles?plate=蒙L99999"))[0] == 404
    assert (await get(police, site, "/vehicles?plate=" + "X" * 100))[0] == 400


async def test_bad_input_is_a_clear_400(site: Platform, clients: dict) -> None:
    admin = clients["admin1"]
    for path in ("/lifts?district=北京", "/alarms?status=maybe", "/alarms?from=yesterday",
                 "/reports/monthly?month=2026-13", "/audit?before=x"):  # fmt: skip
        status, text = await get(admin, site, path)
        assert status == 400, path
        assert "Traceback" not in text


async def test_forms_without_csrf_token_are_refused(site: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    admin = clients["admin1"]
    for path, data in ((f"/lifts/{LIFT}/command", {"terminal": "elink:8613000100020003", "code": "report_status"}),
                       ("/alarms/1/acknowledge", {"note": "x"}),
                       ("/users", {"name": "intruder", "role": "admin", "password": "long enough 1"}),
                       ("/census", {"kind": "stations"})):  # fmt: skip
        answer = await post(admin, site, path, data)
        assert answer.status == 403, path
        answer = await post(admin, site, path, {**data, "csrf_token": "wrong"})
        assert answer.status == 403, path
    assert await (await database.execute("SELECT 1 FROM users WHERE name = 'intruder'")).fetchone() is None


async def read_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict]:
    """The ``update`` events of an SSE stream, decoded."""
    buffer = ""
    async for chunk in response.content.iter_any():
        buffer += chunk.decode("utf-8")
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            data = [line[6:] for line in block.splitlines() if line.startswith("data: ")]
            if data:
                yield json.loads("\n".join(data))


async def test_trapped_alarm_appears_on_the_live_stream(site: Platform, clients: dict) -> None:
    haibowan, wuda = clients["haibowan"], clients["wuda"]
    async with haibowan.get(base_url(site) + "/live/alarms?page=/") as mine, \
            wuda.get(base_url(site) + "/live/alarms?page=/") as theirs:  # fmt: skip
        assert mine.headers["Content-Type"].startswith("text/event-stream")
        events, other_events = read_events(mine), read_events(theirs)
        first = await anext(events)
        assert first["counts"]["trapped"] == 0 and "hidden" in first["fragments"]["trapped-zone"]
        await anext(other_events)
        terminal = await LiftTerminal.connect(site, LIFT)
        await terminal.fault(int(time.time()), code=1, active=True, floor=-1)
        async with asyncio.timeout(10):
            update = await anext(events)
            while update["counts"]["trapped"] == 0:
                update = await anext(events)
        assert update["counts"]["critical"] == 1
        assert "海勃湾区滨河区黄河花园3号楼1单元" in update["fragments"]["trapped-zone"]
        assert "困人" in update["fragments"]["open-alarms"] and 'data-action="acknowledge"' in update["fragments"]["open-alarms"]
        # Another district's stream does not carry it.
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                while True:
                    other = await anext(other_events)
                    assert other["counts"]["trapped"] == 0
        await terminal.close()


async def test_lift_stream_and_its_scope(site: Platform, clients: dict) -> None:
    async with clients["wuda"].get(base_url(site) + f"/live/lifts/{LIFT}") as refused:
        assert refused.status == 404
    terminal = await LiftTerminal.connect(site, LIFT)
    await terminal.status(int(time.time()), floor=12, running=True, speed=1.5)
    async with clients["haibowan"].get(base_url(site) + f"/live/lifts/{LIFT}?page=/lifts/{LIFT}") as stream:
        async with asyncio.timeout(10):
            update = await anext(read_events(stream))
    state = update["fragments"]["lift-state"]
    assert '<div class="floor">12</div>' in state and "在线" in state and "1.50 m/s" in state
    await terminal.close()


async def test_acknowledge_and_resolve_a_trapped_alarm(site: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    terminal = await LiftTerminal.connect(site, LIFT)
    await terminal.fault(int(time.time()), code=1, active=True)
    row = await (await database.execute("SELECT id FROM alarms WHERE kind = 'trapped'")).fetchone()
    alarm_id = row["id"]
    # Another district may not touch it, and is not told it exists.
    wuda = clients["wuda"]
    answer = await post(wuda, site, f"/alarms/{alarm_id}/acknowledge", {"csrf_token": session_csrf(wuda), "note": "x"})
    assert answer.status == 404
    # Police may not handle alarms at all.
    police = clients["police1"]
    answer = await post(police, site, f"/alarms/{alarm_id}/acknowledge", {"csrf_token": session_csrf(police)})
    assert answer.status == 404
    client = clients["haibowan"]
    _, page = await get(client, site, "/")
    assert 'id="trapped-banner"' in page and "困人 <span" in page and "黄河花园" in page
    answer = await post(client, site, f"/alarms/{alarm_id}/acknowledge",
                        {"csrf_token": session_csrf(client), "note": "已通知维保单位", "next": "/"})  # fmt: skip
    assert answer.status == 302 and answer.headers["Location"] == "/?done=acknowledged"
    row = await (await database.execute("SELECT status, acknowledged_by, acknowledge_note FROM alarms WHERE id = ?",
                                        (alarm_id,))).fetchone()  # fmt: skip
    assert tuple(row) == ("acknowledged", "haibowan", "已通知维保单位")
    answer = await post(client, site, f"/alarms/{alarm_id}/resolve", {"csrf_token": session_csrf(client), "note": "已解困"})
    assert answer.headers["Location"] == "/alarms?done=resolved"
    answer = await post(client, site, f"/alarms/{alarm_id}/resolve", {"csrf_token": session_csrf(client)})
    assert answer.headers["Location"] == "/alarms?done=already_resolved"
    actions = await database.execute_fetchall(
        "SELECT action, user_name, district_code FROM audit_log WHERE object_type = 'alarm' ORDER BY id"
    )
    assert [tuple(a) for a in actions] == [("alarm.acknowledge", "haibowan", "150302"), ("alarm.resolve", "haibowan", "150302")]
    status, history = await get(client, site, "/alarms?status=resolved&kind=trapped")
    assert status == 200 and f"/alarms/{alarm_id}" in history
    await terminal.close()


async def test_lift_page_shows_frames_and_sends_commands(site: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    terminal = await LiftTerminal.connect(site, LIFT)
    client = clients["haibowan"]
    status, page = await get(client, site, f"/lifts/{LIFT}")
    assert status == 200 and "45 4c" in page  # the login frame, in hex
    answer = await post(client, site, f"/lifts/{LIFT}/command", {
        "csrf_token": session_csrf(client), "terminal": "elink:8613000100020003", "code": "set_interval", "argument": "60",
    })  # fmt: skip
    assert answer.headers["Location"] == f"/lifts/{LIFT}?done=command_sent"
    command = await terminal.client.receive()
    assert command[13] == 0x90  # an ELink COMMAND frame reached the terminal
    row = await (await database.execute("SELECT code, argument, requested_by FROM commands")).fetchone()
    assert tuple(row) == ("set_interval", 60, "haibowan")
    answer = await post(client, site, f"/lifts/{LIFT}/command", {
        "csrf_token": session_csrf(client), "terminal": "elink:8613000100020003", "code": "set_interval", "argument": "1",
    })  # fmt: skip
    assert answer.headers["Location"].endswith("done=bad_command")
    await terminal.close()
    # The maintenance role of another company cannot command it (not found), police not at all.
    police = clients["police1"]
    answer = await post(police, site, f"/lifts/{LIFT}/command", {"csrf_token": session_csrf(police), "code": "restart"})
    assert answer.status == 404


async def test_lift_page_records_a_rescues_dispatch_and_arrival(site: Platform, clients: dict) -> None:
    terminal = await LiftTerminal.connect(site, LIFT)
    await terminal.replay("trapped_40s.jsonl", int(time.time()) - 3600)
    await terminal.close()
    client = clients["haibowan"]
    status, page = await get(client, site, f"/lifts/{LIFT}")
    found = re.search(r'action="/rescues/(\d+)/dispatch"', page)
    assert status == 200 and found and "登记到场" in page
    rescue_id = found.group(1)
    answer = await post(client, site, f"/rescues/{rescue_id}/dispatch",
                        {"csrf_token": session_csrf(client), "to": "李师傅", "next": f"/lifts/{LIFT}"})  # fmt: skip
    assert answer.headers["Location"] == f"/lifts/{LIFT}?done=dispatched"
    maintenance = clients["lifts_co"]
    answer = await post(maintenance, site, f"/rescues/{rescue_id}/arrival", {"csrf_token": session_csrf(maintenance)})
    assert answer.headers["Location"] == f"/lifts/{LIFT}?done=arrived"
    _, page = await get(client, site, f"/lifts/{LIFT}")
    assert "李师傅" in page and "登记到场" not in page and "登记派出" not in page
    _, listing = await get(client, site, "/rescues")
    assert "李师傅" in listing
    for name, refused in (("wuda", 404), ("police1", 404), ("station1", 404)):  # (hidden: not found)
        other = clients[name]
        answer = await post(other, site, f"/rescues/{rescue_id}/arrival", {"csrf_token": session_csrf(other)})
        assert answer.status == refused, name


async def test_census_upload_shows_rejected_rows(site: Platform, clients: dict, tmp_path: Path) -> None:
    client = clients["admin1"]
    bad = "station_code,name,district,address,licence_no,licence_expiry,media,scales\n" \
          "150999,新站,海勃湾区,某地,TS1,2030-01-01,LPG,2\n150998,坏站,北京,某地,TS2,2030-13-01,LPG,2\n"  # fmt: skip
    form = aiohttp.FormData()
    form.add_field("csrf_token", session_csrf(client))
    form.add_field("kind", "")
    form.add_field("files", bad.encode("utf-8"), filename="stations-new.csv", content_type="text/csv")
    async with client.post(base_url(site) + "/census", data=form) as answer:
        assert answer.status == 200
        html = await answer.text()
    assert "新增 1 条" in html and "拒绝 1 行" in html
    assert re.search(r'<td class="num">3</td><td class="mono">district</td>', html)
    _, audit_page = await get(client, site, "/audit?action=census.import")
    assert "stations-new.csv" in audit_page
    form = aiohttp.FormData()
    form.add_field("csrf_token", session_csrf(client))
    form.add_field("files", b"a,b\n1,2\n", filename="unknown.csv", content_type="text/csv")
    async with client.post(base_url(site) + "/census", data=form) as answer:
        assert answer.status == 400 and "cannot tell the kind" in await answer.text()


async def test_admin_adds_a_user(site: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    client = clients["admin1"]
    answer = await post(client, site, "/users", {"csrf_token": session_csrf(client), "name": "hainan1", "role": "district",
                                                 "district": "150303", "password": "long enough 1"})  # fmt: skip
    assert answer.headers["Location"] == "/users?done=user_added"
    row = await (await database.execute("SELECT role, district_code FROM users WHERE name = 'hainan1'")).fetchone()
    assert tuple(row) == ("district", "150303")
    answer = await post(client, site, "/users", {"csrf_token": session_csrf(client), "name": "x", "role": "district",
                                                 "password": "long enough 1"})  # fmt: skip
    assert answer.status == 400
    newcomer = browser()
    assert (await login(newcomer, site, "hainan1", "long enough 1")).status == 302
    await newcomer.close()


async def test_rollout_and_monthly_report(site: Platform, clients: dict) -> None:
    client = clients["admin1"]
    status, page = await get(client, site, "/rollout")
    # 海勃湾区: one lift, a pilot unit with a terminal; 乌达区: one lift, LMT terminal, not pilot.
    assert status == 200 and page.count("<section class=\"panel\">") == 3 and "试点阶段" in page
    _, district_page = await get(clients["haibowan"], site, "/rollout")
    assert "海勃湾区" in district_page and "乌达区" not in district_page.split("</nav>")[1]
    status, report = await get(client, site, "/reports/monthly?month=2026-11")
    assert status == 200 and report.count("<svg") + report.count('class="empty"') >= 5
    async with client.get(base_url(site) + "/reports/monthly.csv?month=2026-11&district=150302") as answer:
        assert answer.headers["Content-Disposition"] == 'attachment; filename="wuhai-iot-2026-11-150302.csv"'
        lines = (await answer.read()).decode("utf-8-sig").splitlines()
    assert lines[0] == "day,alarms,critical,trapped,online_rate,permitted,denied"
    assert len(lines) == 31 and lines[1].startswith("2026-11-01,")


def test_display_filters() -> None:
    assert cst(1764376200) == "2025-11-29 08:30"  # 00:30 UTC
    assert cst(None) == "—"
    assert [duration(s) for s in (45, 720, 3900, 2 * 86400 + 7200)] == ["45秒", "12分", "1小时5分", "2天2小时"]


def test_charts_are_plain_svg() -> None:
    bars = charts.bar_chart([("a", 10), ("b", 45), ("<c>", 0)], title="到场", unit="分", threshold=30, threshold_label="30分钟")
    assert bars.startswith("<svg") and bars.count('class="bar alert"') == 1 and "&lt;c&gt;" in bars
    assert 'class="threshold"' in bars
    line = charts.line_chart([("1", 90.0), ("2", None), ("3", 99.5)], title="在线率", unit="%", y_max=100)
    assert line.count("<polyline") == 2 and "http" not in line.replace("http://www.w3.org", "")
    assert "暂无数据" in charts.bar_chart([], title="x")


async def test_inspections_page_counts_and_pages_on_the_index(site: Platform, clients: dict) -> None:
    status, page = await get(clients["admin1"], site, "/inspections")
    conn = await db.connect(site.config.database.path, migrate=False)
    try:
        due_until = (cst_today() + timedelta(days=site.config.rules.inspection_due_days)).isoformat()
        (due,) = await (await conn.execute("SELECT count(*) FROM elevators WHERE next_inspection <= ?",
                                           (due_until,))).fetchone()  # fmt: skip
    finally:
        await conn.close()
    assert due >= 1 and status == 200 and f"共 {due} 台" in page and page.count('href="/lifts/') == due
    status, _ = await get(clients["admin1"], site, "/inspections?after=not-a-cursor")
    assert status == 400


async def test_stations_page_shows_its_total_and_refuses_a_bad_cursor(site: Platform, clients: dict) -> None:
    status, page = await get(clients["admin1"], site, "/stations")
    conn = await db.connect(site.config.database.path, migrate=False)
    try:
        (stations,) = await (await conn.execute("SELECT count(*) FROM stations")).fetchone()
    finally:
        await conn.close()
    assert stations >= 2 and status == 200 and f"共 {stations} 座" in page
    status, later = await get(clients["admin1"], site, "/stations?after=150301")
    assert status == 200 and "/stations/150301" not in later
    assert (await get(clients["admin1"], site, "/stations?after=x"))[0] == 400
