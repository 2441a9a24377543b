"""Logging in and out, sessions, CSRF, bearer tokens and what is stored: through the real app."""

from __future__ import annotations

import aiohttp
import aiosqlite
import pytest
from web_support import (
    PASSWORD,
    add_user,
    base_url,
    browser,
    login,
    session_csrf,
    token_for,
)
from yarl import URL

from wuhai_iot.registry import users
from wuhai_iot.registry.users import Role
from wuhai_iot.server import Platform
from wuhai_iot.storage import audit
from wuhai_iot.web.auth import LOGIN_FAILURES_ALLOWED, SESSION_COOKIE, Scope, User


async def test_login_sets_a_safe_session_cookie_and_is_audited(platform: Platform, database: aiosqlite.Connection) -> None:
    await add_user(platform, "hbw", "district", district="海勃湾区")
    async with browser() as client:
        answer = await login(client, platform, "hbw")
        assert answer.status == 302 and answer.headers["Location"] == "/"
        cookie = next(c for c in answer.cookies.values() if c.key == SESSION_COOKIE)
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert int(cookie["max-age"]) == platform.config.web.session_hours * 3600
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 200
            assert (await me.json())["district"] == {"code": "150302", "name": "海勃湾区"}
    entries = await audit.query(database, action="login")
    assert [(e.user_name, e.object_id, e.district_code) for e in entries] == [("hbw", "hbw", "150302")]


async def test_wrong_password_or_unknown_user_is_refused_alike(platform: Platform, database: aiosqlite.Connection) -> None:
    await add_user(platform, "hbw", "district", district="150302")
    async with browser() as client:
        for name, password in (("hbw", "wrong password"), ("nobody", PASSWORD)):
            answer = await login(client, platform, name, password)
            assert answer.status == 401
            assert SESSION_COOKIE not in {c.key for c in answer.cookies.values()}
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401
    failed = await audit.query(database, action="login.failed")
    assert sorted(e.object_id for e in failed) == ["hbw", "nobody"]


async def test_too_many_failures_block_the_name(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    async with browser() as client:
        for _ in range(LOGIN_FAILURES_ALLOWED):
            assert (await login(client, platform, "admin", "guess")).status == 401
        # Even the right password is refused now: the guesser must not learn it.
        assert (await login(client, platform, "admin")).status == 429


async def test_anonymous_pages_go_to_login_and_api_answers_401(platform: Platform) -> None:
    async with aiohttp.ClientSession() as client:
        async with client.get(base_url(platform) + "/lifts?district=150302", allow_redirects=False) as page:
            assert page.status == 302
            location = URL(page.headers["Location"])
            assert (location.path, location.query["next"]) == ("/login", "/lifts?district=150302")
        async with client.get(base_url(platform) + "/api/v1/elevators") as api:
            assert api.status == 401
            assert api.content_type == "application/json"
            assert await api.json() == {"error": "authentication required"}
        async with client.get(base_url(platform) + "/healthz") as health:
            assert health.status == 200


async def test_login_leads_only_to_a_path_of_this_site(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    for target, expected in (("/alarms?status=open", "/alarms?status=open"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/")):  # fmt: skip
        async with browser() as client:
            url = base_url(platform) + "/login"
            async with client.get(url) as page:
                await page.read()
            csrf = next(c.value for c in client.cookie_jar if c.key == "wuhai_login")
            form = {"name": "admin", "password": PASSWORD, "csrf_token": csrf, "next": target}
            async with client.post(url, data=form, allow_redirects=False) as answer:
                assert answer.status == 302
                assert answer.headers["Location"] == expected


async def test_login_form_needs_its_csrf_token(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    async with browser() as client:
        async with client.get(base_url(platform) + "/login") as page:
            await page.read()
        form = {"name": "admin", "password": PASSWORD, "csrf_token": "forged"}
        async with client.post(base_url(platform) + "/login", data=form, allow_redirects=False) as answer:
            assert answer.status == 403
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401


async def test_changes_by_cookie_need_the_csrf_token(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    async with browser() as client:
        await login(client, platform, "admin")
        async with client.post(base_url(platform) + "/logout", allow_redirects=False) as refused:
            assert refused.status == 403
        for forged in ("x" * 64, "令牌"):
            async with client.post(base_url(platform) + "/logout", data={"csrf_token": forged},
                                   allow_redirects=False) as refused:  # fmt: skip
                assert refused.status == 403
        async with client.post(base_url(platform) + "/api/v1/alarms/1/resolve", json={"note": "x"}) as api:
            assert api.status == 403
            assert await api.json() == {"error": "CSRF token missing or wrong"}
        # With the header the request gets through the CSRF check (and finds no alarm 1).
        async with client.post(base_url(platform) + "/api/v1/alarms/1/resolve", json={"note": "x"},
                               headers={"X-CSRF-Token": session_csrf(client)}) as api:  # fmt: skip
            assert api.status == 404
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 200, "the refused logouts left the session alone"


async def test_bearer_requests_need_no_csrf_token(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    token = await token_for(platform, "admin")
    async with aiohttp.ClientSession() as client:
        async with client.post(base_url(platform) + "/api/v1/alarms/1/resolve", json={"note": "x"},
                               headers={"Authorization": f"Bearer {token}"}) as api:  # fmt: skip
            assert api.status == 404
            assert await api.json() == {"error": "no such alarm"}


async def test_logout_ends_the_session_on_the_server(platform: Platform, database: aiosqlite.Connection) -> None:
    await add_user(platform, "admin", "admin")
    async with browser() as client:
        await login(client, platform, "admin")
        stolen = next(c.value for c in client.cookie_jar if c.key == SESSION_COOKIE)
        async with client.post(base_url(platform) + "/logout", data={"csrf_token": session_csrf(client)},
                               allow_redirects=False) as answer:  # fmt: skip
            assert answer.status == 302 and answer.headers["Location"] == "/login"
    assert (await (await database.execute("SELECT count(*) FROM web_sessions")).fetchone())[0] == 0
    # A copy of the cookie taken before the logout is worth nothing now.
    async with aiohttp.ClientSession(cookies={SESSION_COOKIE: stolen}) as thief:
        async with thief.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401
    assert [e.action for e in await audit.query(database, user_name="admin")] == ["logout", "login"]


async def test_an_expired_session_is_anonymous(platform: Platform, database: aiosqlite.Connection) -> None:
    await add_user(platform, "admin", "admin")
    async with browser() as client:
        await login(client, platform, "admin")
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 200
        await database.execute("UPDATE web_sessions SET expires_at = expires_at - ?",
                               (platform.config.web.session_hours * 3600 + 1,))  # fmt: skip
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401
        async with client.get(base_url(platform) + "/alarms", allow_redirects=False) as page:
            assert page.status == 302 and page.headers["Location"].startswith("/login")


async def test_a_disabled_user_loses_sessions_and_tokens(platform: Platform, database: aiosqlite.Connection) -> None:
    await add_user(platform, "admin", "admin")
    token = await token_for(platform, "admin")
    async with browser() as client:
        await login(client, platform, "admin")
        await database.execute("UPDATE users SET active = 0 WHERE name = 'admin'")
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as client:
        async with client.get(base_url(platform) + "/api/v1/me") as me:
            assert me.status == 401


async def test_bad_or_malformed_tokens_are_401(platform: Platform) -> None:
    await add_user(platform, "admin", "admin")
    token = await token_for(platform, "admin")
    async with aiohttp.ClientSession() as client:
        for header in (f"Bearer {token}x", "Bearer ", "Basic YWRtaW46eA==", token):
            async with client.get(base_url(platform) + "/api/v1/me", headers={"Authorization": header}) as me:
                assert me.status == 401, header
                assert "error" in await me.json()
        async with client.get(base_url(platform) + "/api/v1/me", headers={"Authorization": f"bearer {token}"}) as me:
            assert me.status == 200


async def test_no_secret_is_stored_in_clear(platform: Platform, database: aiosqlite.Connection) -> None:
    password = "a very particular passphrase 42"
    await add_user(platform, "admin", "admin", password=password)
    token = await token_for(platform, "admin")
    async with browser() as client:
        await login(client, platform, "admin", password)
        session = next(c.value for c in client.cookie_jar if c.key == SESSION_COOKIE)
        csrf = session_csrf(client)
    stored = b"".join(path.read_bytes() for path in platform.config.database.path.parent.glob("wuhai-iot.sqlite3*"))
    for secret in (password, token, token.removeprefix("wh_"), session, csrf):
        assert secret.encode() not in stored
    row = await (await database.execute("SELECT password_hash FROM users WHERE name = 'admin'")).fetchone()
    cost = users.PASSWORD_COST
    assert row[0].startswith(f"scrypt${cost.n}${cost.r}${cost.p}$")


def test_new_passwords_are_hashed_at_owasp_cost_unless_the_suite_lowers_it() -> None:
    assert users.ScryptCost() == users.ScryptCost(n=2**14, r=8, p=1)
    assert users.PASSWORD_COST.n < 2**14  # tests/conftest.py: each test logs users in; 80 ms a hash adds up


async def test_a_login_rehashes_a_password_stored_at_another_cost(
    platform: Platform, database: aiosqlite.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_user(platform, "admin", "admin")
    stronger = users.ScryptCost(n=users.PASSWORD_COST.n * 2)
    monkeypatch.setattr(users, "PASSWORD_COST", stronger)
    async with browser() as client:
        assert (await login(client, platform, "admin")).status == 302
    row = await (await database.execute("SELECT password_hash FROM users WHERE name = 'admin'")).fetchone()
    assert row[0].startswith(f"scrypt${stronger.n}$8$1$") and not users.needs_rehash(row[0])
    async with browser() as client:  # the new hash holds the same password
        assert (await login(client, platform, "admin")).status == 302


def test_scope_filters_and_allows() -> None:
    district = User(1, "hbw", Role.DISTRICT, "150302", None, "token")
    company = User(2, "m", Role.MAINTENANCE, None, "乌海市某电梯工程有限公司", "token")
    station = User(3, "s", Role.STATION, None, "150301", "token")
    assert district.scope.filters() == {"district_code": "150302"}
    assert company.scope.filters() == {"maintenance_company": "乌海市某电梯工程有限公司"}
    assert station.scope.filters() == {"station_code": 150301}
    assert Scope().whole_city and not district.scope.whole_city
    assert district.scope.allows(district_code="150302") and not district.scope.allows(district_code="150304")
    assert not company.scope.allows(district_code="150302", maintenance_company="other")
    assert station.scope.allows(station_code=150301) and not station.scope.allows(station_code=None)
