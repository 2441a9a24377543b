"""The disk, forecast: database size, free space, 7-day growth and days left on the system page and in
/metrics; under 30 days left or under 5 % free the disk alarm shows to admins, and goes once space is back."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import aiohttp
import aiosqlite
import pytest
from web_support import add_user, base_url, browser, login, token_for

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
