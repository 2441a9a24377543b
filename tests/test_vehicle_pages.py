"""Vehicles on the web: the API answer with position and telemetry, the track, vehicle alarms in the alarm
list with their plate, the vehicles list and a vehicle's page with its track; scoping by role and
district; an admin records a cylinder inspection from the page (audited)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import aiosqlite
from conftest import import_census
from vehicle_support import BUS, ROADSIDE, STATION, TAGS, VehicleTerminal, platform, record  # noqa: F401
from web_support import add_user, base_url, browser, login, session_csrf, token_for

from wuhai_iot.config import Config
from wuhai_iot.server import Platform
from wuhai_iot.simulator.census import CensusSize, generate_census, write_census
from wuhai_iot.storage import db
from wuhai_iot.vehicles.queries import LIST_LIMIT

NOW = datetime.now(UTC).replace(microsecond=0)


async def drive(platform: Platform) -> None:
    """The bus reports three points today, the second with a collision, the third at station 150402."""
    terminal = await VehicleTerminal.connect(platform)
    try:
        await terminal.report([
            record(NOW - timedelta(minutes=3), ROADSIDE, speed_kmh=40, pressure_mpa=12.0, gas_lel_pct=0.5,
                   tags=(TAGS["CNG-BUS-0201"], TAGS["CNG-BUS-0202"])),
            record(NOW - timedelta(minutes=2), (39.55, 106.76), speed_kmh=0, alarm_flags=1 << 29, pressure_mpa=12.0),
            record(NOW - timedelta(minutes=1), STATION, speed_kmh=0, pressure_mpa=-1, gas_lel_pct=1.5),
        ])  # fmt: skip
    finally:
        await terminal.close()


async def api_get(platform: Platform, token: str, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as client, client.get(
        base_url(platform) + path, headers={"Authorization": f"Bearer {token}"}
    ) as answer:
        return answer.status, await answer.json()


async def test_vehicle_api_position_telemetry_track_and_alarms(platform: Platform) -> None:
    await drive(platform)
    for name, role, district in (("admin1", "admin", None), ("police1", "police", None), ("wuda", "district", "150304"),
                                 ("hainan", "district", "150303")):  # fmt: skip
        await add_user(platform, name, role, district=district)
    admin = await token_for(platform, "admin1")
    status, vehicle = await api_get(platform, admin, f"/api/v1/vehicles/{quote(BUS)}")
    assert status == 200
    assert vehicle["position"]["latitude"] == STATION[0] and vehicle["position"]["speed_kmh"] == 0
    assert vehicle["position"]["at"] == (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert vehicle["telemetry"]["pressure_fault"] and vehicle["telemetry"]["pressure_mpa"] is None
    assert vehicle["telemetry"]["gas_lel_pct"] == 1.5
    assert [a["kind"] for a in vehicle["alarms"]] == ["collision"] and vehicle["alarms"][0]["plate"] == BUS
    status, track = await api_get(platform, admin, f"/api/v1/vehicles/{quote(BUS)}/track")
    assert status == 200 and [p["latitude"] for p in track["points"]] == [ROADSIDE[0], 39.55, STATION[0]]
    assert track["next"] is None
    start = quote((NOW - timedelta(minutes=2)).isoformat())
    status, part = await api_get(platform, admin, f"/api/v1/vehicles/{quote(BUS)}/track?from={start}")
    assert len(part["points"]) == 2
    assert (await api_get(platform, admin, f"/api/v1/vehicles/{quote(BUS)}/track?from=yesterday"))[0] == 400
    status, listed = await api_get(platform, admin, f"/api/v1/alarms?plate={quote(BUS)}")
    assert [(a["kind"], a["plate"], a["district"]["code"]) for a in listed["items"]] == [("collision", BUS, "150304")]
    # Police see the vehicle and its alarms; district staff only their district's vehicles.
    status, seen = await api_get(platform, await token_for(platform, "police1"), f"/api/v1/vehicles/{quote(BUS)}")
    assert status == 200 and seen["alarms"][0]["kind"] == "collision"
    assert (await api_get(platform, await token_for(platform, "wuda"), f"/api/v1/vehicles/{quote(BUS)}"))[0] == 200
    hainan = await token_for(platform, "hainan")
    assert (await api_get(platform, hainan, f"/api/v1/vehicles/{quote(BUS)}"))[0] == 404
    assert (await api_get(platform, hainan, f"/api/v1/vehicles/{quote(BUS)}/track"))[0] == 404
    assert (await api_get(platform, hainan, f"/api/v1/alarms?plate={quote(BUS)}"))[1]["items"] == []


async def test_police_and_transport_read_the_vehicle_alarms_alone(platform: Platform) -> None:
    from test_api import raise_alarms

    await drive(platform)
    lift_alarms = await raise_alarms(platform)  # a trapped passenger, a door fault, an overfill at a station
    await add_user(platform, "police1", "police")
    await add_user(platform, "transport1", "transport")
    for name in ("police1", "transport1"):
        token = await token_for(platform, name)
        status, listed = await api_get(platform, token, "/api/v1/alarms")
        assert status == 200 and [(a["kind"], a["plate"]) for a in listed["items"]] == [("collision", BUS)]
        collision = listed["items"][0]["id"]
        for query, kinds in (("?district=乌达区", ["collision"]), ("?district=150302", []), ("?kind=trapped", []),
                             ("?status=open&kind=collision", ["collision"])):  # fmt: skip
            status, found = await api_get(platform, token, "/api/v1/alarms" + query)
            assert status == 200 and [a["kind"] for a in found["items"]] == kinds, (name, query)
        status, alarm = await api_get(platform, token, f"/api/v1/alarms/{collision}")
        assert status == 200 and alarm["plate"] == BUS and alarm["district"]["code"] == "150304"
        for kind in ("trapped", "door_fault", "overfill"):
            hidden = await api_get(platform, token, f"/api/v1/alarms/{lift_alarms[kind]}")
            assert hidden == (404, {"error": "no such alarm"}), kind
        async with aiohttp.ClientSession() as client, client.post(
            base_url(platform) + f"/api/v1/alarms/{collision}/acknowledge", json={},
            headers={"Authorization": f"Bearer {token}"},
        ) as answer:  # fmt: skip
            assert answer.status == 403  # read only


async def test_vehicle_page_list_and_inspection_action(platform: Platform, database: aiosqlite.Connection) -> None:
    await drive(platform)
    await add_user(platform, "admin1", "admin")
    await add_user(platform, "transport1", "transport")
    async with browser() as client:
        await login(client, platform, "admin1")
        async with client.get(base_url(platform) + f"/vehicles?plate={quote(BUS)}") as page:
            html = await page.text()
        assert page.status == 200
        assert 'class="chart track"' in html and "<polyline" in html and "乌达区某加气站" in html  # the station marked
        assert "传感器故障" in html and "1.5 %LEL" in html and "碰撞/侧翻" in html
        async with client.get(base_url(platform) + "/") as page:
            dashboard = await page.text()
        assert "碰撞/侧翻" in dashboard and f"车辆 {BUS}" in dashboard  # the dashboard counts and lists it
        async with client.get(base_url(platform) + "/vehicles?alarm=1") as page:
            listing = await page.text()
        assert BUS in listing and "蒙LT2345" not in listing
        assert 'id="vehicles-total">共 1 辆' in listing
        async with client.get(base_url(platform) + "/vehicles?certificate_invalid=1") as page:
            listing = await page.text()
        assert "蒙LT2345" in listing and f">{BUS}<" not in listing
        assert 'id="vehicles-total">共 3 辆' in listing  # (蒙LT2345 and two of the census examples)
        async with client.post(base_url(platform) + "/cylinders/CNG-BUS-0201/inspected", allow_redirects=False,
                               data={"csrf_token": session_csrf(client), "plate": BUS,
                                     "date": NOW.date().isoformat()}) as answer:  # fmt: skip
            assert answer.status == 302 and "done=inspected" in answer.headers["Location"]
    [row] = await database.execute_fetchall(
        "SELECT inspection_recorded_at IS NOT NULL, last_inspection FROM cylinders WHERE cylinder_code = 'CNG-BUS-0201'"
    )
    assert tuple(row) == (1, NOW.date().isoformat())
    [entry] = await database.execute_fetchall("SELECT user_name FROM audit_log WHERE action = 'cylinder.inspected'")
    assert entry[0] == "admin1"
    async with browser() as client:
        await login(client, platform, "transport1")
        async with client.get(base_url(platform) + f"/vehicles?plate={quote(BUS)}") as page:
            html = await page.text()
        assert page.status == 200 and "碰撞/侧翻" in html and 'data-action="inspected"' not in html
        async with client.post(base_url(platform) + "/cylinders/CNG-BUS-0201/inspected", allow_redirects=False,
                               data={"csrf_token": session_csrf(client), "plate": BUS,
                                     "date": NOW.date().isoformat()}) as answer:  # fmt: skip
            assert answer.status == 403


async def test_vehicle_list_pages_through_every_vehicle_with_its_total(config: Config, tmp_path: Path) -> None:
    """The list of a generated city's 260 vehicles: its pages (LIST_LIMIT each, keyset by plate) hold every vehicle of
    the scope once, in plate order; the total says how many there are, for each filter and district; a
    district officer sees their district's alone."""
    census = tmp_path / "census"
    write_census(generate_census(CensusSize(lifts=40, stations=6, cylinders=400, vehicles=260, seed=5)), census)
    await import_census(config.database.path, sorted(census.glob("*.csv")))
    async with Platform(config) as running:
        await add_user(running, "admin1", "admin")
        await add_user(running, "wuda", "district", district="150304")
        conn = await db.connect(config.database.path, migrate=False)
        try:
            rows = await conn.execute_fetchall(
                "SELECT plate, district_code, coalesce(certificate_no, '') = '' OR certificate_status = 'revoked'"
                " FROM vehicles ORDER BY plate")  # fmt: skip
        finally:
            await conn.close()
        expected = {
            ("admin1", ""): [plate for plate, _, _ in rows],
            ("admin1", "certificate_invalid=1"): [plate for plate, _, invalid in rows if invalid],
            ("admin1", "district=150302"): [plate for plate, district, _ in rows if district == "150302"],
            ("admin1", "offline=1"): [plate for plate, _, _ in rows],  # (none has reported)
            ("admin1", "alarm=1"): [],
            ("wuda", ""): [plate for plate, district, _ in rows if district == "150304"],
            ("wuda", "certificate_invalid=1"): [plate for plate, district, invalid in rows
                                                if district == "150304" and invalid],  # fmt: skip
        }
        assert len(expected[("admin1", "")]) > 200 and expected[("admin1", "certificate_invalid=1")]
        for (name, query), plates in expected.items():
            async with browser() as client:
                await login(client, running, name)
                listed, url, pages = [], f"/vehicles?{query}", 0
                while url:
                    async with client.get(base_url(running) + url) as page:
                        html = await page.text()
                    assert page.status == 200, (name, query)
                    pages += 1
                    total = re.search(r'id="vehicles-total">共 (\d+)(\+?) 辆', html)
                    assert total is not None and (int(total[1]), total[2]) == (len(plates), ""), (name, query)
                    listed += re.findall(r'<tr><td><a href="/vehicles\?plate=[^"]+">([^<]+)</a>', html)
                    following = re.search(r'<a href="([^"]+)">下一页', html)
                    url = following[1].replace("&amp;", "&") if following else ""
                    assert ("第一页" in html) == (pages > 1)
                assert listed == plates, (name, query)
                assert pages == max(1, -(-len(plates) // LIST_LIMIT)), (name, query)
            # The API lists the same, a cursor at a time.
            token = await token_for(running, name)
            listed, cursor = [], None
            while True:
                asked = re.sub(r"=1$", "=true", query) + "&limit=70" + (f"&cursor={cursor}" if cursor else "")
                status, answer = await api_get(running, token, f"/api/v1/vehicles?{asked}")
                assert status == 200, (name, query, answer)
                listed += [item["plate"] for item in answer["items"]]
                if (cursor := answer["next"]) is None:
                    break
            assert listed == plates, (name, query)
        admin = await token_for(running, "admin1")
        status, answer = await api_get(running, admin, "/api/v1/vehicles?limit=1")
        [first] = answer["items"]
        assert first["plate"] == rows[0][0] and first["district"]["code"] == rows[0][1] and first["position"] is None
        assert (await api_get(running, admin, "/api/v1/vehicles?alarm=false"))[0] == 400
        assert (await api_get(running, await token_for(running, "wuda"), "/api/v1/vehicles?district=150302")) == (
            200, {"items": [], "next": None})
