"""What every web response and request goes through before any page: security headers, and a body that
must keep arriving.

- **Headers.** A Content-Security-Policy that lets a page load only this site's scripts, styles and
  images and be framed by nobody; ``X-Frame-Options``, ``X-Content-Type-Options`` and
  ``Referrer-Policy`` for older browsers; a ``Server`` header that names no software version.
- **Slow bodies.** aiohttp closes a connection whose request headers do not arrive within its
  keep-alive timeout (``[limits] web_header_timeout_s``), but waits for a body as long as it trickles;
  a body that stops arriving for ``[limits] web_body_idle_s`` is cut off here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from wuhai_iot.config import Config

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    " connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
"""Inline style attributes are allowed (the pages and SVG charts use them); inline scripts are not."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

SERVER = "wuhai-iot"
"""The ``Server`` header: no software version for a scanner to match."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """(``on_response_prepare``) Every response, error pages included, gets the headers above."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER


def body_watchdog(idle_s: float) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """A middleware that closes the connection of a request whose body stops arriving for ``idle_s``."""

    @web.middleware
    async def watch_body(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists or request.transport is None:
            return await handler(request)
        loop = asyncio.get_running_loop()
        content = request.content
        seen = -1

        def check() -> None:
            nonlocal seen, timer
            if content.is_eof():
                return
            if content.total_bytes == seen and request.transport is not None:
                request.transport.close()  # the handler's read ends with an error; nothing was stored
                return
            seen = content.total_bytes
            timer = loop.call_later(idle_s, check)

        timer = loop.call_later(idle_s, check)
        try:
            return await handler(request)
        finally:
            timer.cancel()

    return watch_body


def install(app: web.Application, config: Config) -> None:
    """Put the headers and the body watchdog in front of every route."""
    app.on_response_prepare.append(security_headers)
    app.middlewares.append(body_watchdog(config.limits.web_body_idle_s))
