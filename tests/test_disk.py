"""The disk, forecast: database size, free space, 7-day growth and days left on the system page and in
/metrics; under 30 days left or under 5 % free the disk alarm shows to admins, as a banner and as an alarm of
the platform (the alarm book, pages, API and webhook), and goes once space is back."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import aiosqlite
import pytest
from aiohttp import web
from conftest import import_census
from web_support import add_user, base_url, browser, login, token_for

from wuhai_iot.config import Config
from wuhai_iot.server import Platform
from wuhai_iot.storage import disk
from wuhai_iot.storage.disk import GROWTH_WINDOW, Usage, database_bytes, forecast

GIB = 2**30


def test_the_forecast_takes_the_growth_over_the_window_and_the_free_space() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    week_ago = (now - timedelta(days=7)).timestamp()
    found = forecast(now, 10 * GIB, Usage(1000 * GIB, 960 * GIB, 40 * GIB), (week_ago, 3 * GIB))
    assert (found.growth_bytes, found.growth_per_day, found.days_left) == (7 * GIB, GIB, 40)
    assert found.free_pct == 4.0 and found.alarm_reasons == ["4.0 % free"]
    found = forecast(now, 10 * GIB, Usage(1000 * GIB, 980 * GIB, 20 * GIB), (week_ago, 3 * GIB))
    assert found.alarm_reasons == ["20.0 days left at 1024.0 MiB a day", "2.0 % free"]
    steady = forecast(now, 10 * GIB, Usage(1000 * GIB, 500 * GIB, 500 * GIB), (week_ago, 10 * GIB))
    assert (steady.growth_per_day, steady.days_left, steady.alarm_reasons) == (0, None, [])
    fresh = forecast(now, GIB, Usage(100, 50, 50), ((now - timedelta(minutes=20)).timestamp(), GIB // 2))
    assert (fresh.growth_bytes, fresh.days_left) == (None, None), "under an hour of samples: no rate"


async def test_the_system_page_metrics_and_the_alarm_follow_the_disk(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    watch = disk.disk_watch(platform)
    assert watch is not None and watch.latest is not None, "sampled at start"
    assert watch.latest.database_bytes > 0 and watch.latest.total_bytes > 0
    now = datetime.now(UTC)
    size = database_bytes(platform.config.database.path)
    async with aiosqlite.connect(platform.config.database.path) as conn:  # a week of samples: 1 GiB a day
        await conn.execute("INSERT INTO disk_samples VALUES (?, ?, ?, ?)",
                           ((now - GROWTH_WINDOW + timedelta(minutes=1)).timestamp(), size - 7 * GIB, 0, 0))  # fmt: skip
        await conn.commit()
    await add_user(platform, "admin", "admin")
    await add_user(platform, "officer", "district", district="海勃湾区")
    token = await token_for(platform, "admin")

    async def metrics() -> dict[str, float]:
        async with client.get(base_url(platform) + "/metrics", headers={"Authorization": f"Bearer {token}"}) as answer:
            text = await answer.text()
        return {m[1]: float(m[2]) for m in re.finditer(r"^(wuhai_(?:disk|database)_\w+) (\S+)$", text, re.M)}

    async def page(who: aiohttp.ClientSession, path: str) -> str:
        async with who.get(base_url(platform) + path) as answer:
            assert answer.status == 200
            return await answer.text()

    with caplog.at_level(logging.INFO, logger="wuhai_iot.storage.disk"):
        watch.usage = lambda folder: Usage(1000 * GIB, 980 * GIB, 20 * GIB)
        await watch.sample()
        async with browser() as client, browser() as officer:
            assert (await login(client, platform, "admin")).status == 302
            assert (await login(officer, platform, "officer")).status == 302
            figures = await metrics()
            assert figures["wuhai_disk_alarm"] == 1 and figures["wuhai_disk_free_bytes"] == 20 * GIB
            assert figures["wuhai_disk_total_bytes"] == 1000 * GIB
            assert figures["wuhai_database_growth_bytes_per_day"] == pytest.approx(GIB, rel=0.01)
            assert figures["wuhai_disk_days_left"] == pytest.approx(20, abs=0.2)
            dashboard = await page(client, "/")
            assert 'id="disk-alarm"' in dashboard and "按近7日增长约 20 天后写满" in dashboard
            assert 'id="disk-alarm"' not in await page(officer, "/"), "the platform's disk is the admin's"
            system = await page(client, "/system")
            assert "告警中" in system and "20.0 GB / 1000.0 GB（2.0%）" in system and "约 20 天" in system
            assert 'href="/alarms?kind=disk_space&amp;status=all"' in system and "恢复到 35 天以上且 6.0% 以上时解除" in system
            async with officer.get(base_url(platform) + "/system", allow_redirects=False) as refused:
                assert refused.status == 403

            watch.usage = lambda folder: Usage(1000 * GIB, 100 * GIB, 900 * GIB)
            await watch.sample()
            assert (await metrics())["wuhai_disk_alarm"] == 0
            assert 'id="disk-alarm"' not in await page(client, "/")
            assert "正常" in await page(client, "/system")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("disk alarm: 20.0 days left at") and "2.0 % free" in messages[0]
    assert messages[1].startswith("disk alarm over: 900.0 GiB free (90.0 %)")


async def test_the_disk_alarm_is_an_alarm_of_the_platform_for_those_who_run_it(config: Config) -> None:
    """Low space raises a ``disk_space`` alarm about the platform itself: in the admin's alarm list, dashboard,
    alarm page and API, and through the webhook; hidden from a district officer and the expert; it stays while
    the disk hovers at the threshold, and is cleared and resolved by the platform once space is back."""
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        await received.put(await request.json())
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/alarms", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config.notify.webhook_url = f"http://127.0.0.1:{port}/alarms"
    config.rules.tick_interval_s = 0
    await import_census(config.database.path)

    async def next_change() -> tuple[str, dict[str, Any]]:
        async with asyncio.timeout(10):
            payload = await received.get()
        return payload["change"], payload["alarm"]

    async def disk_alarms() -> list[tuple[Any, ...]]:
        async with aiosqlite.connect(config.database.path) as conn:
            rows = await conn.execute_fetchall(
                "SELECT id, kind, severity, condition, status, resolved_by, device_code, station_code FROM alarms"
                " WHERE system = 'disk'"
            )  # fmt: skip
        return [tuple(row) for row in rows]

    try:
        async with Platform(config) as platform:
            watch = disk.disk_watch(platform)
            assert watch is not None
            for name, role, district in (("admin", "admin", None), ("officer", "district", "海勃湾区"),
                                         ("expert", "expert", None)):  # fmt: skip
                await add_user(platform, name, role, district=district)
            tokens = {name: await token_for(platform, name) for name in ("admin", "officer")}

            watch.usage = lambda folder: Usage(1000 * GIB, 980 * GIB, 20 * GIB)
            await watch.sample()
            [(alarm_id, *row)] = await disk_alarms()
            assert row == ["disk_space", "major", "active", "raised", None, None, None]
            change, sent = await next_change()
            assert (change, sent["kind"], sent["system"]) == ("raised", "disk_space", "disk")
            assert sent["district_code"] is None
            assert sent["detail"]["free_bytes"] == 20 * GIB and sent["detail"]["free_pct"] == 2.0

            async with browser() as admin, browser() as officer, browser() as expert:
                for client, name in ((admin, "admin"), (officer, "officer"), (expert, "expert")):
                    assert (await login(client, platform, name)).status == 302

                async def page(client: aiohttp.ClientSession, path: str) -> tuple[int, str]:
                    async with client.get(base_url(platform) + path, allow_redirects=False) as answer:
                        return answer.status, await answer.text()

                async def api(name: str, path: str, method: str = "GET") -> tuple[int, Any]:
                    async with aiohttp.ClientSession() as client, client.request(
                        method, base_url(platform) + path, headers={"Authorization": f"Bearer {tokens[name]}"}
                    ) as answer:
                        return answer.status, await answer.json()

                _, listing = await page(admin, "/alarms")
                assert "磁盘空间不足" in listing and "平台 · 数据库所在磁盘" in listing
                assert re.search(r"告警处置\s*<[^>]*>1<", listing), "the header counts it for the admin"
                assert re.search(r"告警处置\s*<[^>]*>0<", (await page(officer, "/lifts"))[1])
                _, dashboard = await page(admin, "/")
                assert "磁盘空间不足" in dashboard.split('id="open-alarms"')[1] and 'id="disk-alarm"' in dashboard
                status, detail = await page(admin, f"/alarms/{alarm_id}")
                assert status == 200 and "可用空间" in detail and "20.0 GB" in detail and "可用比例" in detail
                status, found = await api("admin", "/api/v1/alarms?kind=disk_space")
                assert status == 200 and [(a["id"], a["system"], a["district"]) for a in found["items"]] == [
                    (alarm_id, "disk", None)
                ]
                for client in (officer, expert):  # (the expert reads the whole city, but not the platform's own alarms)
                    assert (await page(client, f"/alarms/{alarm_id}"))[0] == 404
                    assert "磁盘空间不足" not in (await page(client, "/alarms"))[1]
                assert (await api("officer", f"/api/v1/alarms/{alarm_id}"))[0] == 404
                assert (await api("officer", f"/api/v1/alarms/{alarm_id}/acknowledge", "POST"))[0] == 404
                status, acknowledged = await api("admin", f"/api/v1/alarms/{alarm_id}/acknowledge", "POST")
                assert status == 200 and acknowledged["status"] == "acknowledged"
                assert (await next_change())[0] == "acknowledged"

                watch.usage = lambda folder: Usage(1000 * GIB, 945 * GIB, 55 * GIB)  # 5.5 %: above 5, under 6
                await watch.sample()
                assert watch.alarm and (await disk_alarms())[0][3:5] == ("active", "acknowledged")

                watch.usage = lambda folder: Usage(1000 * GIB, 100 * GIB, 900 * GIB)
                await watch.sample()
                assert (await disk_alarms())[0][3:6] == ("cleared", "resolved", "platform")
                assert [(await next_change())[0] for _ in range(2)] == ["cleared", "resolved"]
                status, detail = await page(admin, f"/alarms/{alarm_id}")
                assert "平台自动" in detail and "磁盘空间已恢复：可用 900.0 GB（90.0%）" in detail
                assert "告警撤销" not in detail
                _, dashboard = await page(admin, "/")
                assert "磁盘空间不足" not in dashboard.split('id="open-alarms"')[1]

            watch.usage = lambda folder: Usage(1000 * GIB, 980 * GIB, 20 * GIB)
            await watch.sample()  # low again: a new alarm (the last one is resolved)
            assert [row[3:5] for row in await disk_alarms()] == [("cleared", "resolved"), ("active", "raised")]
        async with Platform(config) as again:  # a restart keeps the one active alarm (whatever this disk is)
            assert len(await disk_alarms()) == 2
            watch = disk.disk_watch(again)
            assert watch is not None and watch.alarm == ((await disk_alarms())[1][3] == "active")
    finally:
        await runner.cleanup()
