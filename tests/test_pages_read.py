"""The web pages that only read, through the real app: one platform and one logged-in client per user
for the whole module (the pages that change something are in test_pages.py, each with its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from conftest import import_census, platform_config
from lift_support import LIFT, LIFT_2
from test_pages import HIDDEN_PAGES, PAGES, ROLES, USERS, get
from web_support import add_user, base_url, signed_in

from wuhai_iot.server import Platform
from wuhai_iot.web.auth import PAGES_CACHE_MIB, WEB_DB_KEY

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    config = platform_config(tmp_path_factory.mktemp("site"))
    await import_census(config.database.path)
    async with Platform(config) as running:
        for name, (role, extra) in USERS.items():
            await add_user(running, name, role, **extra)
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def clients(site: Platform) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    async with signed_in(site, USERS) as sessions:
        yield sessions


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


async def test_the_pages_connection_keeps_a_bounded_page_cache_of_its_own(site: Platform) -> None:
    assert site._runner is not None
    pages_cache = await (await site._runner.app[WEB_DB_KEY].execute("PRAGMA cache_size")).fetchone()
    pipeline_cache = await (await site.reader.execute("PRAGMA cache_size")).fetchone()
    assert pages_cache[0] == -PAGES_CACHE_MIB * 1024  # (negative: KiB)
    assert pipeline_cache[0] == -2000  # (SQLite's default, 2 MiB: only the pages' connection reads that much)
