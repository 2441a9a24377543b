"""The web port against a hostile client (issue 15, items 4, 7 and 8), through the real platform."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import pytest
from conftest import import_census
from web_support import PASSWORD, add_user, base_url

from wuhai_iot.config import Config
from wuhai_iot.server import Platform
from wuhai_iot.web.auth import ADDRESS_FAILURES_ALLOWED, LOGIN_FAILURES_ALLOWED, LoginThrottle

HEADER_TIMEOUT_S = 1.0
BODY_IDLE_S = 1.0
SLOW_CLIENTS = 200
"""Connections that never finish their request headers (all 1,000 of 1,000 were held for ever)."""


@pytest.fixture
async def site(config: Config) -> Platform:
    await import_census(config.database.path)
    config.limits.web_header_timeout_s = HEADER_TIMEOUT_S
    config.limits.web_body_idle_s = BODY_IDLE_S
    async with Platform(config) as platform:
        await add_user(platform, "admin", "admin")
        yield platform  # type: ignore[misc]


def client_from(address: str) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(client: aiohttp.ClientSession, platform: Platform, name: str, password: str,
                  next_path: str | None = None) -> aiohttp.ClientResponse:  # fmt: skip
    url = base_url(platform) + "/login" + ("" if next_path is None else f"?next={next_path}")
    async with client.get(url) as page:
        html = await page.text()
        login_cookie = page.cookies["wuhai_login"].value  # (sent by hand: a Secure cookie over plain HTTP here)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf is not None
    form = {"name": name, "password": password, "csrf_token": csrf.group(1)}
    async with client.post(url, data=form, allow_redirects=False, cookies={"wuhai_login": login_cookie}) as answer:
        await answer.read()
        return answer


@pytest.mark.parametrize("control", ["%09", "%0A", "%0D", "%0D%0A", "%20"])
async def test_no_open_redirect_through_control_characters(site: Platform, control: str) -> None:
    async with client_from("127.0.0.1") as client:
        answer = await sign_in(client, site, "admin", PASSWORD, next_path=f"%2F{control}%2Fevil.example")
        assert answer.status == 302
        assert answer.headers["Location"] == "/"


async def test_guessing_locks_out_the_guesser_not_the_user(site: Platform) -> None:
    async with client_from("127.0.0.2") as guesser:
        for _ in range(LOGIN_FAILURES_ALLOWED):
            assert (await sign_in(guesser, site, "admin", "guess")).status == 401
        assert (await sign_in(guesser, site, "admin", PASSWORD)).status == 429, "the guesser learns nothing"
    async with client_from("127.0.0.1") as user:
        assert (await sign_in(user, site, "admin", PASSWORD)).status == 302, "the real user still logs in"
    # One address trying many names is stopped after ADDRESS_FAILURES_ALLOWED failures.
    async with client_from("127.0.0.3") as sprayer:
        statuses = [(await sign_in(sprayer, site, f"name{n}", "guess")).status for n in range(30)]
    assert statuses[:ADDRESS_FAILURES_ALLOWED] == [401] * ADDRESS_FAILURES_ALLOWED
    assert set(statuses[ADDRESS_FAILURES_ALLOWED:]) == {429}


def test_throttle_state_is_bounded() -> None:
    throttle = LoginThrottle(max_keys=1000)
    for n in range(50_000):
        throttle.failed(f"invented-{n}", f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
    assert throttle.size <= 2 * 1000


async def test_security_headers_and_no_server_banner(site: Platform) -> None:
    async with aiohttp.ClientSession() as client:
        for path in ("/login", "/static/app.css", "/no-such-page", "/healthz"):
            async with client.get(base_url(site) + path, allow_redirects=False) as answer:
                headers = answer.headers
                assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
                assert "script-src 'self'" in headers["Content-Security-Policy"]
                assert headers["X-Frame-Options"] == "DENY"
                assert headers["X-Content-Type-Options"] == "nosniff"
                assert headers["Referrer-Policy"] == "same-origin"
                assert headers["Server"] == "wuhai-iot", "no Python or aiohttp version"


async def test_secure_cookies_behind_a_tls_proxy(config: Config) -> None:
    await import_census(config.database.path)
    config.web.behind_proxy = True
    async with Platform(config) as platform:
        await add_user(platform, "admin", "admin")
        proxy_headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
        async with aiohttp.ClientSession(headers=proxy_headers, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            answer = await sign_in(client, platform, "admin", PASSWORD)
            assert answer.status == 302
            cookie = answer.cookies["wuhai_session"]
            assert cookie["secure"] and cookie["httponly"]
        throttle = next(v for v in platform._runner.app._state.values() if isinstance(v, LoginThrottle))  # type: ignore[union-attr]
        async with aiohttp.ClientSession(headers=proxy_headers, cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
            await sign_in(client, platform, "admin", "guess")
        assert throttle._recent(throttle._by_address, "203.0.113.9") == 1, "the client's address, not the proxy's"
    config.web.behind_proxy, config.web.secure_cookies = False, True
    async with Platform(config) as platform, aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        answer = await sign_in(client, platform, "admin", PASSWORD)
        assert answer.cookies["wuhai_session"]["secure"]


async def test_unfinished_headers_and_stalled_bodies_are_cut_off(site: Platform) -> None:
    port = site.ports["web"]

    async def slow_headers() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        opened = time.monotonic()
        assert await reader.read() == b""
        writer.close()
        return time.monotonic() - opened

    async def stalled_body() -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\nname=admin&password=")  # fmt: skip
        opened = time.monotonic()
        data = await reader.read()
        writer.close()
        assert b"200 OK" not in data
        return time.monotonic() - opened

    async with asyncio.timeout(HEADER_TIMEOUT_S + BODY_IDLE_S + 10):
        held = await asyncio.gather(*(slow_headers() for _ in range(SLOW_CLIENTS)), stalled_body())
    assert max(held[:-1]) <= HEADER_TIMEOUT_S + 2, f"headers: held up to {max(held[:-1]):.1f} s"
    assert held[-1] <= BODY_IDLE_S * 2 + 2, f"body: held {held[-1]:.1f} s"
