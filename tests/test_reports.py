"""The phase evaluation report and the accepted installations: figures equal a recount from the raw
records, the workbooks open and hold numbers, and only admin and expert may read them."""

from __future__ import annotations

import csv
import html
import io
import math
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from publishing_support import import_generated, small_district_census, write_year_of_records
from web_support import add_user, base_url, browser, login

from wuhai_iot.clock import cst_midnight, cst_today
from wuhai_iot.config import Config
from wuhai_iot.publishing.plugin import record_days
from wuhai_iot.server import Platform
from wuhai_iot.web import pages_reports


def _record_plan(database: Path, starts: str, ends: str) -> None:
    conn = sqlite3.connect(database)
    conn.execute("INSERT INTO plan_phases (phase, starts_on, ends_on, updated_at) VALUES ('pilot', ?, ?, 0)", (starts, ends))
    conn.commit()
    conn.close()


@pytest.fixture
async def city(config: Config, tmp_path: Path):
    census, paths = small_district_census(tmp_path / "census")
    await import_generated(config.database.path, paths)
    write_year_of_records(config.database.path, census, cst_today())
    today = cst_today()
    _record_plan(config.database.path, (today - timedelta(days=200)).isoformat(), (today + timedelta(days=10)).isoformat())
    async with Platform(config) as running:
        for name, role in (("boss", "admin"), ("panel", "expert")):
            await add_user(running, name, role)
        await add_user(running, "hbw", "district", district="150302")
        yield running


def _nearest_rank(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(share * len(ordered)) - 1]


def _table(sheet, caption: str) -> dict[str, list]:
    """The rows under a table's caption, by their first cell."""
    rows = list(sheet.iter_rows(values_only=True))
    start = next(i for i, row in enumerate(rows) if row[0] == caption)
    found = {}
    for row in rows[start + 2:]:
        if row[0] is None:
            break
        found[row[0]] = list(row)
    return found


async def test_the_evaluation_report_equals_a_recount_and_its_workbook_holds_numbers(city: Platform) -> None:
    platform = city
    async with browser() as client:
        await login(client, platform, "panel")
        async with client.get(base_url(platform) + "/reports/evaluation?phase=pilot") as answer:
            page = await answer.text()
            assert answer.status == 200
        async with client.get(base_url(platform) + "/reports/evaluation.xlsx?phase=pilot") as answer:
            assert answer.status == 200
            body = await answer.read()
        async with client.get(base_url(platform) + "/reports/evaluation?phase=final") as answer:
            assert answer.status == 404  # no dates for it in the plan
    for title in ("覆盖情况与计划完成", "数据质量", "告警与救援", "维保合规及趋势", "气瓶充装与拒绝", "燃气车辆",
                  "每千台电梯困人故障", "待解决问题"):
        assert title in page
    assert "<svg" in page and "report-print.css" in page
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    assert "告警与救援" in book.sheetnames and "充装" in book.sheetnames

    since = cst_midnight(cst_today() - timedelta(days=200)).timestamp()
    until = cst_midnight(cst_today() + timedelta(days=1)).timestamp()
    raw = sqlite3.connect(platform.config.database.path)
    # Rescues over the phase's whole months, arrival times rounded up to a tenth of a minute.
    first_month = cst_midnight((cst_today() - timedelta(days=200)).replace(day=1)).timestamp()
    arrivals = [row[0] for row in raw.execute(
        "SELECT arrival_min FROM rescues WHERE raised_at >= ? AND raised_at < ?", (first_month, until))]  # fmt: skip
    arrived = [math.ceil(round(a * 100) / 10) / 10 for a in arrivals if a is not None]
    rescues = _table(book["告警与救援"], next(row[0] for row in book["告警与救援"].iter_rows(values_only=True)
                                               if str(row[0]).startswith("困人救援（整月")))["全市"]  # fmt: skip
    assert rescues[1:6] == [len(arrivals), len(arrived), _nearest_rank(arrived, 0.5), _nearest_rank(arrived, 0.9),
                            sum(a <= 30 for a in arrived)]  # fmt: skip
    assert rescues[6] == pytest.approx(sum(a <= 30 for a in arrived) / len(arrived))
    denied = dict(raw.execute("SELECT reason, count(*) FROM fill_decisions WHERE permit = 0 AND decided_at >= ?"
                              " AND decided_at < ? GROUP BY reason", (since, until)).fetchall())  # fmt: skip
    reasons = _table(book["充装"], "拒绝原因")
    assert {code: row[-1] for code, row in reasons.items() if isinstance(code, int)} == denied
    verified, flagged = raw.execute(
        "SELECT sum(flags = '' AND started_at IS NOT NULL AND ended_at IS NOT NULL), sum(flags != '')"
        " FROM maintenance_visits WHERE started_at >= ? AND started_at < ?",  # the trend counts whole months
        (cst_midnight((cst_today() - timedelta(days=200)).replace(day=1)).timestamp(), until)).fetchone()  # fmt: skip
    months = _table(book["维保"], "维保记录（逐月，整月）")
    assert sum(row[10] for row in months.values()) == verified and sum(row[11] for row in months.values()) == flagged
    raw.close()
    for sheet in ("告警与救援", "充装", "维保", "每千台困人"):
        numbers = [cell for row in book[sheet].iter_rows(values_only=True) for cell in row[1:]
                   if isinstance(cell, (int, float))]  # fmt: skip
        assert numbers, sheet
    assert not any(isinstance(c, str) and c.replace(".", "").isdigit()
                   for row in book["告警与救援"].iter_rows(values_only=True) for c in row)


async def test_only_admin_and_expert_read_the_reports(city: Platform) -> None:
    async with browser() as client:
        await login(client, city, "hbw")
        for path in ("/reports/evaluation?phase=pilot", "/reports/installations", "/reports/installations.csv"):
            async with client.get(base_url(city) + path, allow_redirects=False) as answer:
                assert answer.status == 403, path
    async with browser() as client:
        await login(client, city, "boss")
        async with client.get(base_url(city) + "/reports/evaluation?phase=pilot") as answer:
            assert answer.status == 200


TERMINALS = """protocol,terminal_id,device_code,key,installed_on,installer
elink,8613000100020003,31101503022012000101,kkkkkkkkkkkkkkkk,{installed},乌海市甲安装公司
lmt,861234567890123,31101503042010000044,secret-lmt-key01,{installed},乌海市甲安装公司
gasfill,150301-2,,station-150301-k,{installed},内蒙古乙工程公司
gasfill,150301-3,,station-150301-3,,内蒙古乙工程公司
"""


async def test_installations_are_accepted_after_seven_days_lapse_after_thirty_and_the_subsidy_adds_up(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import CENSUS, import_census

    today = cst_today()
    day = lambda n: (today - timedelta(days=n)).isoformat()  # noqa: E731
    terminals = tmp_path / "terminals.csv"
    terminals.write_text(TERMINALS.format(installed=day(60)), encoding="utf-8")
    await import_census(config.database.path, [*sorted(p for p in CENSUS.glob("*.csv") if p.name != "terminals.csv"),
                                               terminals])  # fmt: skip
    raw = sqlite3.connect(config.database.path)
    days = [("elink", "8613000100020003", day(n)) for n in range(20, 13, -1)]  # 7 days: accepted
    days += [("gasfill", "150301-2", day(n)) for n in range(45, 38, -1)]  # 7 days, then 39 days silent: lapsed
    days += [("lmt", "861234567890123", day(n)) for n in (9, 8, 7, 6, 5, 4, 2, 1)]  # at most 6 in a row
    days += [("gasfill", "150301-3", day(n)) for n in range(30, 20, -1)]  # no installation date
    raw.executemany("INSERT INTO terminal_days VALUES (?, ?, ?)", days)
    raw.commit()
    config.subsidy.elevator = 1200
    config.subsidy.filling_scale = 800
    async with Platform(config) as platform:
        await add_user(platform, "boss", "admin")
        raw.execute("INSERT INTO terminal_sessions (protocol, terminal_id, online, last_frame_at) VALUES"
                    " ('lmt', '861234567890123', 1, ?)", (datetime.now(UTC).timestamp(),))  # as a login writes it
        raw.commit()
        await record_days(platform)
        monkeypatch.setattr(pages_reports, "INSTALLATIONS_PER_PAGE", 3)
        async with browser() as client:
            await login(client, platform, "boss")
            async with client.get(base_url(platform) + "/reports/installations") as answer:
                page = await answer.text()
            next_url = html.unescape(re.search(r'href="([^"]+)" id="next-page"', page).group(1))
            async with client.get(base_url(platform) + next_url) as answer:
                second = await answer.text()
            async with client.get(base_url(platform) + "/reports/installations?district=150302&unit=内蒙古乙工程公司") as answer:
                filtered = await answer.text()
            async with client.get(base_url(platform) + "/reports/installations.csv") as answer:
                listing = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
            async with client.get(base_url(platform) + "/reports/installations.xlsx") as answer:
                book = openpyxl.load_workbook(io.BytesIO(await answer.read()), read_only=True)
            monkeypatch.setattr(pages_reports, "XLSX_TERMINALS", 3)  # (a workbook lists this many at most)
            async with client.get(base_url(platform) + "/reports/installations.xlsx") as answer:
                capped = openpyxl.load_workbook(io.BytesIO(await answer.read()), read_only=True)
    assert raw.execute("SELECT day FROM terminal_days WHERE terminal_id = '861234567890123' AND day = ?",
                       (today.isoformat(),)).fetchone() is not None  # fmt: skip
    raw.close()
    rows = {row[4]: row for row in listing[1:]}
    assert listing[0][0] == "安装单位" and len(rows) == 4
    assert rows["8613000100020003"][6:9] == [day(14), "已验收", ""] and rows["8613000100020003"][10] == "1200.0"
    assert rows["150301-2"][6:8] == [day(39), "验收后中断"] and "39 天无有效数据" in rows["150301-2"][8]
    assert rows["150301-2"][10] == "0.0"
    assert rows["861234567890123"][7] == "未验收" and "最近连续 3 天有效数据（需 7 天）" in rows["861234567890123"][8]
    assert rows["150301-3"][7:9] == ["未验收", "安装日期未登记"]
    assert "乌海市甲安装公司" in page and "1200.00" in page
    # A page at a time, by installing unit and terminal, as the CSV lists them; the total is every terminal's.
    listed = [re.findall(r'<td class="mono">\S+ ([^<]+)</td>', text) for text in (page, second)]
    assert listed[0] + listed[1] == [row[4] for row in listing[1:]] and len(listed[0]) == 3
    assert 'id="next-page"' not in second and "共 4 个" in page and "共 4 个" in second
    assert re.findall(r'<td class="mono">\S+ ([^<]+)</td>', filtered) == ["150301-2", "150301-3"]
    assert "共 2 个" in filtered and "乌海市甲安装公司" not in filtered
    listed_in_book = [row for row in list(book["终端明细"].iter_rows(values_only=True))[2:] if row[0]]
    assert [row[4] for row in listed_in_book] == [row[4] for row in listing[1:]]
    capped_rows = [row for row in list(capped["终端明细"].iter_rows(values_only=True))[2:] if row[0]]
    assert [row[4] for row in capped_rows[:3]] == [row[4] for row in listing[1:4]]
    assert len(capped_rows) == 4 and "仅列前 3 个终端（共 4 个）" in capped_rows[3][0]
    summary = {(row[0], row[1]): list(row) for row in list(book["汇总"].iter_rows(values_only=True))[2:]}
    assert summary[("乌海市甲安装公司", "海勃湾区")][2:] == [1, 1, 0, 0, 1200]
    assert summary[("内蒙古乙工程公司", "海勃湾区")][2:] == [2, 0, 1, 1, 0]
