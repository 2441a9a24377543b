"""What the pages say, through the real app: the trapped banner counts people inside now, error pages in the
site's layout, supervisor pages in Chinese without raw data, deny-reason charts by name, and the small things
an officer stumbles on (filters kept, trapped lifts first, the favicon, maintenance paging)."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import aiosqlite
import pytest
from lift_support import LIFT, LiftTerminal
from web_support import add_user, base_url, browser, login, session_csrf

from wuhai_iot.clock import cst_today
from wuhai_iot.filling import decision, reasons
from wuhai_iot.server import Platform
from wuhai_iot.web import charts, queries
from wuhai_iot.web.errors import error_pages
from wuhai_iot.web.pages import ALARMS_PER_PAGE
from wuhai_iot.web.templating import readable_details, report_cells

USERS = {
    "admin1": ("admin", {}),
    "haibowan": ("district", {"district": "海勃湾区"}),
    "police1": ("police", {}),
    "station1": ("station", {"unit": "150301"}),
}
ADDRESS = "海勃湾区滨河区黄河花园3号楼1单元"


@pytest.fixture
async def clients(platform: Platform) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    for name, (role, extra) in USERS.items():
        await add_user(platform, name, role, **extra)
    sessions = {name: browser() for name in USERS}
    for name, client in sessions.items():
        assert (await login(client, platform, name)).status == 302, name
    yield sessions
    for client in sessions.values():
        await client.close()


async def get(client: aiohttp.ClientSession, platform: Platform, path: str, **headers: str) -> tuple[int, str]:
    async with client.get(base_url(platform) + path, allow_redirects=False, headers=headers) as answer:
        return answer.status, await answer.text()


async def post(client: aiohttp.ClientSession, platform: Platform, path: str, data: dict) -> aiohttp.ClientResponse:
    async with client.post(base_url(platform) + path, data=data, allow_redirects=False) as answer:
        await answer.read()
        return answer


def banner(page: str) -> str:
    found = re.search(r'<div class="trapped-banner".*?</ul>', page, re.S)
    assert found is not None
    return found.group(0)


async def wait_for_alarm(database: aiosqlite.Connection, condition: str) -> int:
    """The trapped alarm's id once its condition is as asked (the ACK came after commit: no wait expected)."""
    async with asyncio.timeout(5):
        while True:
            row = await (await database.execute("SELECT id, condition FROM alarms WHERE kind = 'trapped'")).fetchone()
            if row is not None and row["condition"] == condition:
                return int(row["id"])
            await asyncio.sleep(0.05)


async def test_banner_counts_people_inside_now(platform: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    client = clients["haibowan"]
    terminal = await LiftTerminal.connect(platform, LIFT)
    now = int(time.time())
    await terminal.fault(now - 300, code=1, active=True)
    await wait_for_alarm(database, "active")
    _, page = await get(client, platform, "/")
    assert "hidden" not in banner(page).split(">")[0] and ADDRESS in banner(page)
    assert 'id="trapped-count">1<' in page and 'data-count="trapped">1<' in page
    assert "已困 5分" in banner(page)
    _, lifts_page = await get(client, platform, "/lifts")
    assert 'id="trapped-lifts"' in lifts_page, "a lift with people inside is pinned above the list"

    # The doors open: released, but nobody has handled the alarm yet.
    await terminal.fault(now - 60, code=1, active=False)
    alarm_id = await wait_for_alarm(database, "cleared")
    _, page = await get(client, platform, "/")
    assert banner(page).startswith('<div class="trapped-banner" id="trapped-banner" role="alert" hidden>')
    assert ADDRESS not in banner(page) and 'data-count="trapped">0<' in page
    # It still waits in the alarm list, and its duration stopped at the release (4 minutes, not 5 and counting).
    _, alarms = await get(client, platform, "/alarms?kind=trapped")
    assert f"/alarms/{alarm_id}" in alarms and "已恢复" in alarms
    _, detail = await get(client, platform, f"/alarms/{alarm_id}")
    assert "<dt>历时</dt><dd>4分</dd>" in detail
    _, lift = await get(client, platform, f"/lifts/{LIFT}")
    assert 'class="floor-box trapped"' not in lift and ADDRESS not in banner(lift)
    _, lifts_page = await get(client, platform, "/lifts")
    assert 'id="trapped-lifts"' not in lifts_page
    await terminal.close()


async def test_acknowledging_keeps_the_list_filters(platform: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    terminal = await LiftTerminal.connect(platform, LIFT)
    await terminal.fault(int(time.time()), code=1, active=True)
    alarm_id = await wait_for_alarm(database, "active")
    client = clients["haibowan"]
    _, listing = await get(client, platform, "/alarms?kind=trapped")
    assert 'name="next" value="/alarms?kind=trapped"' in listing
    answer = await post(client, platform, f"/alarms/{alarm_id}/acknowledge",
                        {"csrf_token": session_csrf(client), "note": "已派人", "next": "/alarms?kind=trapped"})  # fmt: skip
    assert answer.headers["Location"] == "/alarms?kind=trapped&done=acknowledged"
    # Only a path on this site: another host is never where a form leads.
    answer = await post(client, platform, f"/alarms/{alarm_id}/resolve",
                        {"csrf_token": session_csrf(client), "next": "//evil.example/x"})  # fmt: skip
    assert answer.headers["Location"] == "/alarms?done=resolved"
    await terminal.close()


async def test_error_pages_are_in_the_layout_and_chinese(platform: Platform, clients: dict) -> None:
    police, district = clients["police1"], clients["haibowan"]
    status, page = await get(police, platform, f"/lifts/{LIFT}")
    assert status == 404 and 'id="error-page"' in page and 'class="sidenav"' in page
    assert "没有这个页面或对象" in page and 'href="/"' in page and "Not Found" not in page
    status, page = await get(district, platform, "/no/such/page", Referer=base_url(platform) + "/lifts")
    assert status == 404 and "页面不存在" in page and 'href="/lifts" class="primary">返回上一页' in page
    status, page = await get(district, platform, "/users")
    assert status == 403 and "无权访问" in page and 'class="sidenav"' in page and "Forbidden" not in page
    status, page = await get(district, platform, "/alarms/999999")
    assert status == 404 and "没有这条告警" in page and 'href="/alarms"' in page
    status, page = await get(district, platform, "/alarms?status=maybe")
    assert status == 400 and "未知的状态" in page and 'class="sidenav"' in page
    answer = await post(district, platform, "/users", {"name": "x"})  # no CSRF token
    assert answer.status == 403
    # The API keeps answering JSON.
    async with district.get(base_url(platform) + "/api/v1/elevators/nope") as answer:
        assert answer.status == 404 and answer.content_type == "application/json"


async def test_an_internal_error_is_a_page_with_a_way_back() -> None:
    """A handler that fails: 500, in Chinese, in the layout, with the home page to go back to."""
    from aiohttp import web

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("boom")

    app = web.Application(middlewares=[error_pages])
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{port}/broken") as answer:
            page = await answer.text()
        assert answer.status == 500 and "系统内部错误" in page and 'lang="zh-CN"' in page and "boom" not in page
    finally:
        await runner.cleanup()


async def test_supervisor_pages_show_no_raw_data(platform: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    admin = clients["admin1"]
    terminal = await LiftTerminal.connect(platform, LIFT)
    now = int(time.time())
    await terminal.status(now - 60, floor=1, door="closed", occupied=True)
    await terminal.status(now, floor=1, door="closed", occupied=True)  # 60 s inside: the platform's own rule
    alarm_id = await wait_for_alarm(database, "active")
    status, detail = await get(admin, platform, f"/alarms/{alarm_id}")
    assert status == 200 and 'id="alarm-evidence"' in detail
    evidence = detail.split('id="alarm-evidence"')[1].split("</dl>")[0]
    assert "持续多久告警" in evidence and "40 秒" in evidence and "楼层" in evidence
    assert not re.search(r"after_s|clear_s|\{&#34;|\{\"", detail)
    assert "T0" not in detail.split("告警前后的状态记录")[-1], "sample times in China time, not ISO text"
    admin_name = "admin1"
    status, audit = await get(admin, platform, f"/audit?user={admin_name}")
    assert status == 200 and "\\u" not in audit and ">登录<" in audit and "来源地址" in audit
    assert not re.search(r">(login|user\.add|alarm\.acknowledge)<", audit)
    _, audit_filter = await get(admin, platform, "/audit")
    assert '<option value="alarm.">告警处置' in audit_filter
    _, census = await get(admin, platform, "/census")
    assert ">充装站</option>" in census and ">stations</option>" not in census
    _, users_page = await get(admin, platform, "/users")
    assert "乌海市某液化气充装站" in users_page
    await terminal.close()


def test_details_read_as_chinese() -> None:
    pairs = dict(readable_details({"after_s": 40, "clear_s": 10, "floor": 1, "ended_by": "person_clear",
                                   "gross_after_g": 28950, "kind": "overfill", "peer": "127.0.0.1", "gone": None}))  # fmt: skip
    assert pairs == {"持续多久告警": "40 秒", "恢复判定": "10 秒", "楼层": "1 层", "恢复原因": "轿厢内人员感应消失",
                     "充装后毛重": "28.95 kg", "告警类型": "超装", "来源地址": "127.0.0.1"}  # fmt: skip


def test_report_cells_show_numbers_shares_and_blanks_and_escape_text() -> None:
    """A report table's row (the evaluation report): numbers right-aligned, shares as percentages, other floats
    to two decimals, None as a dash, text escaped."""
    assert report_cells(["海勃湾区", 3, None, 0.25, 1.5, "<b>", 0.0], {3, 6}) == (
        '<td>海勃湾区</td><td class="num">3</td><td>—</td><td class="num">25.0%</td><td class="num">1.50</td>'
        '<td>&lt;b&gt;</td><td class="num">0.0%</td>')


def test_every_deny_reason_has_a_short_chinese_name() -> None:
    codes = {value for name, value in vars(decision).items() if name.isupper() and isinstance(value, int)
             and name not in ("READ_TIMEOUT_S", "MAX_RETRYING")}  # fmt: skip
    assert codes <= set(reasons.BY_CODE), codes - set(reasons.BY_CODE)
    assert set(range(13)) | {99} == set(reasons.BY_CODE)
    assert reasons.BY_CODE[12].name == "collision"
    for reason in reasons.REASONS:
        assert reason.short and len(reason.short) <= 8 and not reason.short.isdigit()
    assert reasons.short_name(77) == "原因 77"


def test_horizontal_bars_name_each_bar() -> None:
    chart = charts.hbar_chart([(reasons.short_name(10), 12), (reasons.short_name(5), 3), ("<x>", 0)], title="拒绝", unit="次")
    assert chart.count("<li>") == 3 and "疑似倒气" in chart and "介质不符" in chart and "&lt;x&gt;" in chart
    assert 'style="width:100.0%"' in chart and 'style="width:25.0%"' in chart
    assert "暂无数据" in charts.hbar_chart([], title="x")


async def test_deny_reasons_charted_by_name(platform: Platform, clients: dict) -> None:
    """Denials of reasons the old hand-written legend left out (5, 7, 9, 11, 12) are named on the bars."""
    now = time.time()
    rows = [(now - i, 150301, 1, i, "E0", None, 9001, "LPG", 0, 0, reason, 0, "")
            for i, reason in enumerate((5, 7, 9, 11, 12, 12), start=1)]  # fmt: skip
    insert = ("INSERT INTO fill_decisions (decided_at, station_code, scale, request_seq, tag, cylinder_code,"
              " operator_card, medium, gross_before_g, permit, reason, net_limit_g, message)"
              " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    await platform.writer.write([(insert, row) for row in rows])
    for path in ("/", "/stations", "/stations/150301", f"/reports/monthly?month={cst_today():%Y-%m}"):
        status, page = await get(clients["admin1"], platform, path)
        assert status == 200, path
        assert 'class="hbars"' in page and "碰撞后待检验" in page and "操作员卡未登记" in page, path
    _, dashboard = await get(clients["admin1"], platform, "/")
    assert "原因代码" not in dashboard


async def test_the_alarm_list_is_read_a_page_at_a_time(platform: Platform, clients: dict) -> None:
    """130 alarms: the first page shows the newest ALARMS_PER_PAGE, its "更早" link the next ones, none twice."""
    now = time.time()
    insert = ("INSERT INTO alarms (id, kind, severity, device_code, sources, active_sources, condition, since,"
              " raised_at, updated_at, created_at, status) VALUES (?, 'door_fault', 'minor', ?, 'device', '',"
              " 'cleared', ?, ?, ?, ?, 'resolved')")  # fmt: skip
    await platform.writer.write([(insert, (1000 + i, LIFT, now - i, now - i, now - i, now - i)) for i in range(130)])
    seen: list[str] = []
    path: str | None = "/alarms?status=all&kind=door_fault"
    while path:
        status, page = await get(clients["admin1"], platform, path)
        assert status == 200
        rows = re.findall(r'data-alarm-row="(\d+)"', page)
        assert len(rows) <= ALARMS_PER_PAGE
        seen += rows
        older = re.search(r'<a href="([^"]+)">更早', page)
        path = html.unescape(older.group(1)) if older else None
    assert len(seen) == len(set(seen)) >= 130 and seen[:ALARMS_PER_PAGE] == sorted(seen, key=int, reverse=True)[:ALARMS_PER_PAGE]


async def test_small_things(platform: Platform, clients: dict, database: aiosqlite.Connection) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(base_url(platform) + "/favicon.ico") as answer:
        assert answer.status == 200 and answer.content_type == "image/svg+xml"
    status, vehicles = await get(clients["police1"], platform, "/vehicles")
    assert status == 200 and ">首页总览<" not in vehicles
    _, dashboard = await get(clients["haibowan"], platform, "/")
    assert ">首页总览<" in dashboard and 'rel="icon"' in dashboard
    _, maintenance = await get(clients["haibowan"], platform, "/maintenance")
    assert maintenance.index('id="flagged-visits"') < maintenance.index('id="overdue-lifts"')
    assert "共 1 台" in maintenance and ADDRESS in maintenance.split('id="overdue-lifts"')[1]
    _, overdue = await get(clients["haibowan"], platform, "/lifts?overdue=maintenance")
    assert ADDRESS in overdue and "共 1 台" in overdue
    _, overdue = await get(clients["haibowan"], platform, "/lifts?overdue=1")
    assert ADDRESS in overdue and "维保超期 1 台" in overdue.split('id="lifts-total"')[1]
    # Today is not over: no online rate for it in the monthly report.
    today = cst_today()
    await platform.writer.write([("INSERT INTO lift_daily (device_code, day, online_s) VALUES (?, ?, ?)",
                                  (LIFT, today.isoformat(), 300.0)),
                                 ("INSERT INTO lift_daily (device_code, day, online_s) VALUES (?, ?, ?)",
                                  (LIFT, (today - timedelta(days=1)).isoformat(), 86400.0))])  # fmt: skip
    figures = await queries.monthly_figures(database, first_day=today.replace(day=1))
    by_day = {d["day"]: d["online_rate"] for d in figures["days"]}
    assert by_day[today.isoformat()] is None
    if today.day > 1:
        assert by_day[(today - timedelta(days=1)).isoformat()] is not None
