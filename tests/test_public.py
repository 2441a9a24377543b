"""The public page and /public.json: open to anyone, aggregates only, small districts masked, cheap to serve."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from publishing_support import (
    SMALL_CODE,
    identifiers,
    import_generated,
    small_district_census,
    write_year_of_records,
)
from web_support import base_url

from wuhai_iot.clock import cst_today
from wuhai_iot.config import Config
from wuhai_iot.server import Platform


@pytest.fixture
async def city(config: Config, tmp_path: Path):
    census, paths = small_district_census(tmp_path / "census")
    await import_generated(config.database.path, paths)
    write_year_of_records(config.database.path, census, cst_today())
    async with Platform(config) as running:
        yield running, census


async def _get(platform: Platform, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict]:
    async with aiohttp.ClientSession() as client:
        async with client.get(base_url(platform) + path, headers=headers or {}, allow_redirects=False) as answer:
            return answer.status, await answer.text(), answer.headers.copy()


async def test_the_page_and_its_json_name_nothing_of_the_census(city) -> None:
    platform, census = city
    status, html, _ = await _get(platform, "/public")
    assert status == 200 and "建设进度与运行效果" in html
    status, body, headers = await _get(platform, "/public.json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    secrets = identifiers(census)
    assert len(secrets) > 200
    for text in (html, body):
        leaked = sorted(secret for secret in secrets if secret in text)
        assert leaked == []


async def test_a_district_with_fewer_than_five_lifts_shows_ranges_and_the_city_cannot_give_it_away(city) -> None:
    platform, census = city
    status, _, _ = await _get(platform, "/public.json")
    async with aiohttp.ClientSession() as client:
        async with client.get(base_url(platform) + "/public.json") as answer:
            data = await answer.json()
    areas = {area["code"]: area for area in data["areas"]}
    small = areas[SMALL_CODE]["coverage"]["lifts_fitted"]
    assert small["of"] == {"range": [1, 4]}
    assert small["share"]["range"][0] >= 0 and small["share"]["range"][1] <= 1
    lifts_per_district = {}
    for lift in census["elevators"]:
        lifts_per_district[lift["district"]] = lifts_per_district.get(lift["district"], 0) + 1
    assert areas["150302"]["coverage"]["lifts_fitted"]["of"] == lifts_per_district["海勃湾区"]
    low, high = areas["city"]["coverage"]["lifts_fitted"]["of"]["range"]
    assert low <= len(census["elevators"]) <= high and low < high
    for month in areas[SMALL_CODE]["months"]:
        for name in ("trapped", "visits_verified", "visits_flagged", "refused_total"):
            value = month[name]
            assert value == 0 or value == {"range": [1, 4]} or value >= 5
        for name in ("rescue_median_min", "rescue_p90_min"):
            assert month[name] is None or isinstance(month[name], dict)
    assert data["taken_at"] <= datetime.now(UTC).isoformat()


async def test_conditional_get_answers_304_and_the_figures_are_served_from_the_cache(city) -> None:
    platform, _ = city
    for path in ("/public.json", "/public"):
        status, first, headers = await _get(platform, path)
        assert status == 200 and headers["ETag"] and headers["Last-Modified"]
        assert "max-age=" in headers["Cache-Control"]
        status, body, _ = await _get(platform, path, {"If-None-Match": headers["ETag"]})
        assert (status, body) == (304, "")
        status, _, _ = await _get(platform, path, {"If-Modified-Since": headers["Last-Modified"]})
        assert status == 304
        status, again, _ = await _get(platform, path, {"If-None-Match": '"something-else"'})
        assert status == 200 and again == first  # read once, served again


async def test_too_many_requests_from_one_address_are_refused(config: Config, tmp_path: Path) -> None:
    config.public.requests_per_minute = 3
    async with Platform(config) as platform:
        answers = [(await _get(platform, "/public.json"))[0] for _ in range(3)]
        status, _, headers = await _get(platform, "/public.json")
    assert answers == [200, 200, 200]
    assert status == 429 and int(headers["Retry-After"]) >= 1


async def test_turned_off_in_the_configuration_both_addresses_are_404(config: Config) -> None:
    config.public.enabled = False
    async with Platform(config) as platform:
        assert (await _get(platform, "/public"))[0] == 404
        assert (await _get(platform, "/public.json"))[0] == 404
