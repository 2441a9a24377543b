"""Rescues through the JSON API: the list (district, late), one rescue with its alarm, the staff's dispatch
and arrival entries (audited, each once), every call scoped like the other lift routes; and the lifts'
overdue filters."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import aiosqlite
from lift_support import LIFT, LiftTerminal
from test_api import Api, api  # noqa: F401 - the fixture

from wuhai_iot.elevators.plugin import monitoring
from wuhai_iot.server import Platform


async def trapped_episode(platform: Platform, minutes_ago: int = 90) -> int:
    """A passenger trapped on the 海勃湾区 lift (a past episode, delivered now); the rescue's alarm id."""
    lift = await LiftTerminal.connect(platform, LIFT)
    t0 = int(time.time()) - minutes_ago * 60
    await lift.replay("trapped_40s.jsonl", t0)
    await lift.close()
    database = await platform.open_database()
    (alarm_id,) = await (await database.execute("SELECT alarm_id FROM rescues")).fetchone()
    return int(alarm_id)


async def test_rescue_list_and_detail_are_scoped(api: Api) -> None:
    alarm_id = await trapped_episode(api.platform)
    for who in ("admin", "hbw", "lifts_co"):
        (item,) = await api.items(who, "/api/v1/rescues")
        assert (item["alarm_id"], item["device_code"], item["district"]["name"]) == (alarm_id, LIFT, "海勃湾区")
        assert item["dispatched_at"] is None and item["arrived_at"] is None and item["released_at"] is not None
    for who in ("wuda", "escalator_co"):
        assert await api.items(who, "/api/v1/rescues") == []
        assert (await api.get(who, f"/api/v1/rescues/{alarm_id}"))[0] == 404
    assert await api.items("admin", "/api/v1/rescues?district=乌达区") == []
    assert await api.items("hbw", "/api/v1/rescues?district=乌达区") == []
    for who in ("police", "station"):
        assert (await api.get(who, "/api/v1/rescues"))[0] == 403
    status, detail = await api.get("hbw", f"/api/v1/rescues/{alarm_id}")
    assert status == 200 and detail["alarm"]["kind"] == "trapped" and detail["alarm"]["id"] == alarm_id
    assert (await api.get("admin", "/api/v1/rescues?late=maybe"))[0] == 400
    assert (await api.get("admin", "/api/v1/rescues/abc"))[0] == 404


async def test_dispatch_and_arrival_entries(api: Api, database: aiosqlite.Connection) -> None:
    alarm_id = await trapped_episode(api.platform, minutes_ago=90)
    path = f"/api/v1/rescues/{alarm_id}"
    assert (await api.post("wuda", path + "/dispatch", json={"to": "李师傅"}))[0] == 404
    assert (await api.post("escalator_co", path + "/dispatch", json={"to": "李师傅"}))[0] == 404
    assert (await api.post("police", path + "/dispatch", json={"to": "李师傅"}))[0] == 403
    assert (await api.post("station", path + "/arrival", json={}))[0] == 403
    assert (await api.post("hbw", path + "/dispatch", json={}))[0] == 400
    assert (await api.post("hbw", path + "/dispatch", json={"to": "x", "dispatched_at": "tomorrow"}))[0] == 400
    status, dispatched = await api.post("hbw", path + "/dispatch", json={"to": "李师傅"})
    assert status == 200 and (dispatched["dispatched_to"], dispatched["dispatched_by"]) == ("李师傅", "hbw")
    assert (await api.post("hbw", path + "/dispatch", json={"to": "王师傅"}))[0] == 409
    # Arrived 20 minutes after the alarm was raised (entered later): in time, not late.
    _, before = await api.get("admin", path)
    raised = before["raised_at"]
    arrived = (datetime.fromisoformat(raised.replace("Z", "+00:00")) + timedelta(minutes=20)).isoformat()
    status, done = await api.post("lifts_co", path + "/arrival", json={"arrived_at": arrived})
    assert status == 200, done
    assert (done["arrival_source"], done["arrived_by"], done["arrival_min"], done["late"]) == ("staff", "lifts_co", 20.0, False)
    assert (await api.post("lifts_co", path + "/arrival", json={}))[0] == 409
    assert await api.items("admin", "/api/v1/rescues?late=true") == []
    assert [r["alarm_id"] for r in await api.items("admin", "/api/v1/rescues?late=false")] == [alarm_id]
    actions = await (await database.execute(
        "SELECT user_name, action, object_id FROM audit_log WHERE action LIKE 'rescue.%' ORDER BY id"
    )).fetchall()  # fmt: skip
    assert [tuple(row) for row in actions] == [("hbw", "rescue.dispatch", str(alarm_id)),
                                               ("lifts_co", "rescue.arrival", str(alarm_id))]  # fmt: skip


async def test_a_rescue_without_arrival_past_the_limit_is_late(api: Api) -> None:
    await trapped_episode(api.platform, minutes_ago=90)
    await monitoring(api.platform).advance()
    (item,) = await api.items("admin", "/api/v1/rescues?late=true")
    assert item["late"] is True and item["arrival_min"] is None


async def test_rescues_are_paged(api: Api) -> None:
    first = await trapped_episode(api.platform, minutes_ago=200)
    lift = await LiftTerminal.connect(api.platform, LIFT)
    await lift.replay("trapped_40s.jsonl", int(time.time()) - 60 * 60)
    await lift.close()
    status, page = await api.get("admin", "/api/v1/rescues?limit=1")
    assert status == 200 and len(page["items"]) == 1 and page["next"]
    status, rest = await api.get("admin", f"/api/v1/rescues?limit=1&cursor={page['next']}")
    assert [r["alarm_id"] for r in rest["items"]] == [first] and rest["next"] is None


async def test_overdue_filters_of_the_elevator_list(api: Api) -> None:
    async def codes(query: str) -> list[str]:
        return [lift["device_code"] for lift in await api.items("admin", "/api/v1/elevators" + query)]

    everything = await codes("")
    overdue = await codes("?maintenance_overdue=true")
    not_overdue = await codes("?maintenance_overdue=false")
    assert sorted(overdue + not_overdue) == sorted(everything)
    for lift in await api.items("admin", "/api/v1/elevators?maintenance_overdue=true&inspection_overdue=true"):
        assert lift["maintenance_overdue"] and lift["inspection_overdue"]
    both = await codes("?maintenance_overdue=true&inspection_overdue=true")
    assert both and set(both) <= set(overdue)
    assert (await api.get("admin", "/api/v1/elevators?inspection_overdue=yes"))[0] == 400
    # Scoped: a district officer sees only their own district's overdue lifts.
    for lift in await api.items("wuda", "/api/v1/elevators?maintenance_overdue=true"):
        assert lift["district"]["name"] == "乌达区"
