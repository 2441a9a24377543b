"""The plan: the admin records phases and targets; the rollout and public pages show progress against it."""

from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import aiohttp
from web_support import PASSWORD, add_user, base_url, browser, login, session_csrf

from wuhai_iot.clock import cst_today
from wuhai_iot.registry import users
from wuhai_iot.server import Platform
from wuhai_iot.storage import db


async def test_the_admin_records_the_plan_and_the_pages_say_what_is_left_and_what_is_late(platform: Platform) -> None:
    await add_user(platform, "boss", "admin")
    await add_user(platform, "panel", "expert")
    today = cst_today()
    pilot_end = today + timedelta(days=9)
    form = {"pilot_starts": (today - timedelta(days=90)).isoformat(), "pilot_ends": pilot_end.isoformat(),
            "rollout_starts": (today - timedelta(days=200)).isoformat(),
            "rollout_ends": (today - timedelta(days=100)).isoformat(),
            "final_starts": "", "final_ends": "", "target_pilot_150303_stations": "2"}  # fmt: skip
    async with browser() as client:
        await login(client, platform, "boss")
        async with client.post(base_url(platform) + "/plan", data=form | {"csrf_token": session_csrf(client)},
                               allow_redirects=False) as answer:  # fmt: skip
            assert answer.status == 302 and answer.headers["Location"] == "/plan?done=plan_saved"
        async with client.get(base_url(platform) + "/rollout") as answer:
            rollout = await answer.text()
        async with client.post(base_url(platform) + "/plan", data={"pilot_starts": "2026-12-31", "pilot_ends": "2026-09-01",
                               "csrf_token": session_csrf(client)}) as answer:  # fmt: skip
            assert answer.status == 400 and "开始日期晚于截止日期" in await answer.text()
    deadline = f"{pilot_end.month} 月 {pilot_end.day} 日截止"
    # The census examples: 海勃湾区 has one pilot lift, fitted; 海南区 none fitted, no pilot lift.
    assert f"海勃湾区：试点电梯 1 台，已安装 1 台，{deadline}，已完成" in rollout
    assert f"海南区：试点充装站 2 座，已联网 0 座，{deadline}，剩 9 天" in rollout
    # The rollout ended 100 days ago and 海南区's lift has no terminal: late.
    assert "海南区：电梯 1 台，已安装 0 台" in rollout and "已逾期 100 天" in rollout
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(base_url(platform) + "/public.json") as answer:
            data = await answer.json()
    texts = [item["text"] for item in data["plan"]["progress"]]
    assert f"海南区：试点充装站 1–4 座，已联网 0 座，{deadline}，剩 9 天" in texts  # 2 stations: fewer than 5
    assert data["plan"]["current"] == "pilot"
    async with browser() as client:
        await login(client, platform, "panel")
        async with client.post(base_url(platform) + "/plan", data=form | {"csrf_token": session_csrf(client)},
                               allow_redirects=False) as answer:  # fmt: skip
            assert answer.status == 403
        async with client.get(base_url(platform) + "/rollout") as answer:
            assert answer.status == 200 and "试点电梯" in await answer.text()


async def test_the_expert_role_arrives_without_losing_a_session_or_a_token(tmp_path: Path) -> None:
    path = tmp_path / "earlier.sqlite3"
    earlier = await db.connect(path, migrate=False)
    await db.apply_migrations(earlier, through=23)
    await users.add_user(earlier, "boss", "admin", PASSWORD)
    token = await users.create_token(earlier, "boss")
    await earlier.execute("INSERT INTO web_sessions (token_hash, user_id, created_at, expires_at) VALUES ('h', 1, 0, 9e9)")
    await earlier.close()
    conn = await db.connect(path)
    try:
        await users.add_user(conn, "panel", "expert", PASSWORD)
        roles = {row[0]: row[1] for row in await conn.execute_fetchall("SELECT name, role FROM users")}
    finally:
        await conn.close()
    assert roles == {"boss": "admin", "panel": "expert"}
    plain = sqlite3.connect(path)
    assert plain.execute("SELECT count(*) FROM web_sessions").fetchone() == (1,)
    assert plain.execute("SELECT count(*) FROM api_tokens WHERE token_hash = ?", (users.secret_hash(token),)).fetchone() == (1,)
    assert plain.execute("PRAGMA foreign_key_check").fetchall() == []
    plain.close()
    assert re.fullmatch(r"wh_\S+", token)
