"""Helpers for tests of the web layer: users, tokens, logged-in browser-like sessions."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Iterable

import aiohttp

from wuhai_iot.registry import users
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web.auth import SESSION_COOKIE, csrf_for

PASSWORD = "correct horse 9"


async def add_user(platform: Platform, name: str, role: str, *, district: str | None = None,
                   unit: str | None = None, password: str = PASSWORD) -> None:  # fmt: skip
    conn = await db.connect(platform.config.database.path, migrate=False)
    try:
        await users.add_user(conn, name, role, password, district=district, unit=unit)
    finally:
        await conn.close()


async def token_for(platform: Platform, name: str) -> str:
    conn = await db.connect(platform.config.database.path, migrate=False)
    try:
        return await users.create_token(conn, name)
    finally:
        await conn.close()


def base_url(platform: Platform) -> str:
    return f"http://127.0.0.1:{platform.ports['web']}"


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 (aiohttp's default jar ignores IP hosts) and does not
    follow redirects unless asked."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(client: aiohttp.ClientSession, platform: Platform, name: str, password: str = PASSWORD, *,
                base: str | None = None) -> aiohttp.ClientResponse:  # fmt: skip
    """Log in through the login form, as a browser does (at ``base``, default the platform's own address);
    returns the answer to the POST."""
    url = (base or base_url(platform)) + "/login"
    async with client.get(url) as page:
        assert page.status == 200
        html = await page.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None, "the login form carries a CSRF token"
    async with client.post(url, data={"name": name, "password": password, "csrf_token": csrf.group(1)},
                           allow_redirects=False) as answer:  # fmt: skip
        await answer.read()
        return answer


@contextlib.asynccontextmanager
async def signed_in(platform: Platform, names: Iterable[str]) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """A browser-like session for each user of ``names``, logged in through the login form (closed after)."""
    sessions = {name: browser() for name in names}
    try:
        for name, client in sessions.items():
            answer = await login(client, platform, name)
            assert answer.status == 302, name
        yield sessions
    finally:
        for client in sessions.values():
            await client.close()


def session_csrf(client: aiohttp.ClientSession) -> str:
    """The CSRF token a page would carry for the client's current session."""
    for cookie in client.cookie_jar:
        if cookie.key == SESSION_COOKIE:
            return csrf_for(cookie.value)
    raise AssertionError("not logged in")
