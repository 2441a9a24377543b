"""The web pages that change something, through the real app: roles and scopes on forms, CSRF, live updates
(each test with a platform of its own; the pages that only read are in test_pages_read.py)."""

from __future__ import annotations

import asyncio
import enum
import json
import re
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import aiosqlite
import jinja2
import pytest
from conftest import import_census
from lift_support import LIFT, LiftTerminal
from markupsafe import Markup
from web_support import add_user, base_url, browser, login, session_csrf, signed_in

from wuhai_iot.clock import cst_today
from wuhai_iot.config import Config
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.storage import db
from wuhai_iot.web import charts
from wuhai_iot.web.pages_filling import STATIONS_PER_PAGE
from wuhai_iot.web.templating import cst, duration, environment

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
    async with signed_in(site, USERS) as sessions:
        yield sessions


async def get(client: aiohttp.ClientSession, platform: Platform, path: str) -> tuple[int, str]:
    async with client.get(base_url(platform) + path, allow_redirects=False) as answer:
        return answer.status, await answer.text()


async def post(client: aiohttp.ClientSession, platform: Platform, path: str, data: dict) -> aiohttp.ClientResponse:
    async with client.post(base_url(platform) + path, data=data, allow_redirects=False) as answer:
        await answer.read()
        return answer


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


async def test_rescues_are_listed_a_page_at_a_time(site: Platform, clients: dict) -> None:
    """/rescues shows 50 rescues newest first and pages older ones by keyset: every rescue once, none twice."""
    now = time.time()
    await site.writer.write([(
        "INSERT INTO rescues (alarm_id, device_code, raised_at, arrived_at, arrival_source, arrival_min, late)"
        " VALUES (?, ?, ?, ?, 'card', 10.0, 0)", (9000 + n, LIFT, now - 3600 - n * 60.123456789, now - n * 60))
        for n in range(60)])  # fmt: skip
    client, path, pages = clients["haibowan"], "/rescues", []
    while path:
        status, listing = await get(client, site, path)
        assert status == 200
        pages.append(re.findall(r'<tr class="[^"]*">\s*<td class="nowrap">([^<]+)<', listing))  # (when raised)
        older = re.search(r'href="([^"]+)" id="rescues-older"', listing)
        path = older.group(1).replace("&amp;", "&") if older else None
    assert [len(rows) for rows in pages] == [50, 10]
    assert len(set(pages[0]) | set(pages[1])) == 60


async def upload_census(client: aiohttp.ClientSession, site: Platform, *files: tuple[str, bytes]) -> tuple[int, str]:
    """Post files to the census page as a browser does (file names in UTF-8 as they are: aiohttp's own form
    would percent-encode them)."""
    boundary = "----upload7MA4YWxkTrZu0gW"
    parts = [("csrf_token", None, session_csrf(client).encode()), ("kind", None, b"")]
    parts += [("files", name, content) for name, content in files]
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"'.encode()
        + (f'; filename="{name}"\r\nContent-Type: text/csv'.encode() if name else b"")
        + b"\r\n\r\n" + content + b"\r\n"
        for field, name, content in parts
    ) + f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with client.post(base_url(site) + "/census", data=body, headers=headers) as answer:
        return answer.status, await answer.text()


def rejections(html: str) -> list[tuple[str, str, str, str, str]]:
    """The upload page's rejected rows: (row, column, value, problem, what to do)."""
    return [tuple(re.sub(r"<[^>]+>", "", cell.split("<br>")[0]) for cell in cells)
            for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row)
                          for row in re.findall(r'<tr data-code="[a-z_]+">(.*?)</tr>', html))]  # fmt: skip


CENSUS_EXAMPLES = Path(__file__).resolve().parent / "data" / "census"
ENGLISH_REASON = re.compile(r"is not|not registered|required|named again|cannot|missing|not valid CSV")


def english_reason(html: str) -> str | None:
    """An English sentence of the importer in the page's text (tags and attributes left out), if any."""
    found = ENGLISH_REASON.search(re.sub(r"<[^>]+>", " ", html))
    return found and found.group()


async def test_census_upload_speaks_chinese_row_by_row(
    site: Platform, clients: dict, database: aiosqlite.Connection
) -> None:
    """District staff upload the census templates: the examples go in; each broken row is named by its line and
    column with what is wrong and what to do in Chinese, and every other row of the file is imported."""
    client = clients["admin1"]
    examples = [(path.name, path.read_bytes()) for path in sorted(CENSUS_EXAMPLES.glob("*.csv"))]
    status, html = await upload_census(client, site, *examples)
    assert status == 200 and html.count('<span class="badge ok">成功</span>') == len(examples) == 6
    assert "部分拒绝" not in html and "未导入" not in html

    header, good = (CENSUS_EXAMPLES / "elevators.csv").read_text(encoding="utf-8").splitlines()[:2]

    def lift(code: str, **cells: str) -> str:
        values = dict(zip(header.split(","), good.split(",")), device_code=code, **cells)
        return ",".join(values.values())

    broken = "\r\n".join([
        header,
        lift("31101503022012000901"),                                  # line 2: good
        lift("31101503022012000902", next_inspection="2027/1/31"),    # 3: a spreadsheet's date
        lift("3.11015E+19"),                                           # 4: a spreadsheet's number
        lift("31101503022012000903", district="包头市"),               # 5
        lift("31101503022012000904", maintenance_company=""),          # 6
        "31101503022012000905," + "x" * 140_000,                       # 7: not CSV (a cell over the limit)
        lift("31101503022012000901"),                                  # 8: line 2 again
        lift("31101503022012000906"),                                  # 9: good, after all that
    ]).encode("gb18030")  # (as a Chinese spreadsheet saves it)
    stations = b"station_code,name,district,licence_no,media\n150999,\xe6\x96\xb0\xe7\xab\x99,150302,TS,LPG\n"
    status, html = await upload_census(
        client, site, ("elevators-海勃湾区-2026-12.csv", broken), ("stations-new.csv", stations)
    )

    assert status == 200
    assert "新增 2 条，更新 0 条，拒绝 6 行" in html and "其余各行已导入" in html
    found = rejections(html)
    assert [(row, column) for row, column, *_ in found] == [
        ("第 3 行", "next_inspection"), ("第 4 行", "device_code"), ("第 5 行", "district"),
        ("第 6 行", "maintenance_company"), ("第 7 行", "整行"), ("第 8 行", "device_code"),
    ]  # fmt: skip
    assert found[0][2:] == ("2027/1/31", "「2027/1/31」不是有效日期",
                            "请按“年-月-日”四位年份填写，如 2027-01-31；若表格软件改动了它（科学计数法、日期格式），"
                            "请把该列设为“文本”格式后重新输入。")  # fmt: skip
    assert found[1][3] == "「3.11015E+19」不是 20 位数字"
    assert found[2][3:] == ("「包头市」不是乌海市的区", "请填写区名或行政区划代码：海勃湾区（150302）、乌达区（150304）、海南区（150303）。")
    assert found[3][2:4] == ("（空）", "必填项为空")
    assert '<span class="mono">maintenance_company</span><br><span class="muted">维保单位</span>' in html
    assert found[4][3] == "该行不是有效的 CSV"
    assert found[5][3] == "「31101503022012000901」在本文件中重复（第 2 行已有）"
    assert "整个文件未导入：缺少必填列：address" not in html
    assert "整个文件未导入：缺少必填列：licence_expiry" in html
    assert english_reason(html) is None, english_reason(html)
    stored = await database.execute_fetchall(
        "SELECT device_code FROM elevators WHERE device_code LIKE '311015030220120009%' ORDER BY 1"
    )
    assert [code for (code,) in stored] == ["31101503022012000901", "31101503022012000906"]
    _, audit_page = await get(client, site, "/audit?action=census.import")
    assert "elevators-海勃湾区-2026-12.csv" in audit_page and "stations-new.csv" in audit_page
    audit_text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", audit_page))
    assert "数据类型 电梯 新增 2 条 更新 0 条 拒绝 6 行" in audit_text and "错误 缺少必填列：licence_expiry" in audit_text
    assert english_reason(audit_page) is None and "elevators 新增" not in audit_text

    status, html = await upload_census(client, site, ("unknown.csv", b"a,b\n1,2\n"))
    assert status == 400 and "无法从文件名「unknown.csv」判断数据类型" in html and "在“类型”中选择" in html
    assert english_reason(html) is None


async def test_a_census_file_wrong_throughout_is_summed_up_and_the_list_bounded(site: Platform, clients: dict) -> None:
    header, good = (CENSUS_EXAMPLES / "elevators.csv").read_text(encoding="utf-8").splitlines()[:2]
    cells = dict(zip(header.split(","), good.split(",")), district="乌海")
    rows = [",".join({**cells, "device_code": f"311015030220130{n:05d}"}.values()) for n in range(250)]
    rows[7] = rows[7].replace(",traction,", ",lift,")
    status, html = await upload_census(clients["admin1"], site, ("elevators.csv", "\n".join([header, *rows]).encode()))
    assert status == 200 and "拒绝 250 行" in html and "共 251 处问题" in html
    assert len(rejections(html)) == 200
    summary = re.findall(r'<td data-label="列"><span class="mono">(\w+)</span>.*?</td>'
                         r'<td class="num" data-label="处数">(\d+)</td>', html)  # fmt: skip
    assert summary == [("district", "250"), ("kind", "1")]


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


def test_display_filters() -> None:
    assert cst(1764376200) == "2025-11-29 08:30"  # 00:30 UTC
    assert cst(None) == "—"
    assert [duration(s) for s in (45, 720, 3900, 2 * 86400 + 7200)] == ["45秒", "12分", "1小时5分", "2天2小时"]


class _Level(enum.IntEnum):
    HIGH = 3


def test_pages_escape_what_they_write_as_jinja_does() -> None:
    """The pages' own escaping of each value (templating.output_escape) writes what Jinja's escape would,
    whatever the value; a Jinja whose compiled templates no longer call it fails here."""
    source = (
        "<p title=\"{{ v }}\">{{ v }}</p>{% set kept %}<i>{{ v }}</i>{% endset %}{{ kept }}"
        "{% macro m(x) %}<b>{{ x }}</b>{% endmacro %}{{ m(v) }}{% autoescape false %}{{ v }}{% endautoescape %}"
    )
    ours = environment().from_string(source)
    jinjas = jinja2.Environment(autoescape=True).from_string(source)
    values = ["<script>alert('x') & \"y\"</script>", "乌海", "", Markup("<b>kept</b>"), 7, -12, 0, True, None,
              1.5, _Level.HIGH, date(2026, 12, 3), ["<a>"], {"k": "<v>"}]  # fmt: skip
    for value in values:
        assert ours.render(v=value) == jinjas.render(v=value), value
    assert "&lt;script&gt;alert(&#39;x&#39;) &amp; &#34;y&#34;&lt;/script&gt;" in ours.render(v=values[0])
    assert "environment.output_escape(" in environment().compile(source, raw=True)


def test_the_pages_urlencode_filter_writes_what_jinjas_does() -> None:
    """templating.urlencode (a character at a time from a table) writes Jinja's text for every value."""
    ours = environment().from_string("{{ v | urlencode }}")
    jinjas = jinja2.Environment(autoescape=True).from_string("{{ v | urlencode }}")
    values = ["蒙L·A0006", "蒙L·A0006", "a b/c?d=e&f+g%h#i'j\"k<l>", "", "é😀x\n\t", "LPG-YSP35.5-0012345",
              {"a b": "c&d", "乌海": 1}, [("k", "v w")], 42, None]  # fmt: skip
    for value in values:
        assert ours.render(v=value) == jinjas.render(v=value), value


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


async def test_station_list_pages_through_every_station_with_its_total(config: Config, tmp_path: Path) -> None:
    """A city of more stations than a page holds: the pages (keyset by station code) list every station once,
    in code order, each page saying the total; a district officer's pages hold their district's alone."""
    census = tmp_path / "census"
    write_census(generate_census(CensusSize(lifts=20, stations=2 * STATIONS_PER_PAGE + 7, cylinders=100,
                                            vehicles=20, seed=3)), census)  # fmt: skip
    await import_census(config.database.path, sorted(census.glob("*.csv")))
    conn = await db.connect(config.database.path, migrate=False)
    try:
        rows = await conn.execute_fetchall("SELECT station_code, district_code FROM stations ORDER BY station_code")
    finally:
        await conn.close()
    async with Platform(config) as running:
        await add_user(running, "admin1", "admin")
        await add_user(running, "wuda", "district", district="150304")
        for name, codes in (("admin1", [code for code, _ in rows]),
                            ("wuda", [code for code, district in rows if district == "150304"])):  # fmt: skip
            async with browser() as client:
                await login(client, running, name)
                listed, url, pages = [], "/stations", 0
                while url:
                    async with client.get(base_url(running) + url) as answer:
                        assert answer.status == 200, name
                        html = await answer.text()
                    pages += 1
                    assert f"共 {len(codes)} 座" in html, name
                    listed += [int(code) for code in re.findall(r'<td><a href="/stations/(\d+)">', html)]
                    following = re.search(r'<a href="([^"]+)">下一页', html)
                    url = following[1].replace("&amp;", "&") if following else ""
                assert listed == codes and pages == max(1, -(-len(codes) // STATIONS_PER_PAGE)), name
