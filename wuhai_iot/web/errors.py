"""Error pages: every refused or failed page request answers in the site's layout, in Chinese, saying what
happened and where to go, with its status code kept (403, 404, 500 ...). API answers are left to
``api.api_errors`` (JSON); redirects pass through.

A handler raises the usual ``web.HTTPNotFound(text="没有这台电梯……")``: a Chinese ``text`` becomes the page's
explanation; aiohttp's default text ("404: Not Found") is replaced by the explanation below.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web.auth import Permission as P
from wuhai_iot.web.auth import USER_KEY, User, is_api
from wuhai_iot.web.pages import navigation, page_furniture, scope_label
from wuhai_iot.web.templating import render

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

EXPLANATIONS: dict[int, tuple[str, str]] = {
    400: ("请求有误", "提交的内容或链接中的参数无法处理，请检查后重试。"),
    401: ("需要登录", "请先登录。"),
    403: ("无权访问", "您的账号没有查看此页面或执行此操作的权限。如确需使用，请联系平台管理员开通。"),
    404: ("页面不存在", "没有这个页面或对象，或它不在您的管辖范围内。请检查链接是否完整。"),
    405: ("不支持的操作", "此页面不接受这种请求方式，请从页面上的按钮或链接进入。"),
    413: ("文件过大", "上传的文件超过平台允许的大小，请拆分后分批上传。"),
    429: ("操作过于频繁", "请稍候再试。"),
    500: ("系统内部错误", "平台处理请求时出错，错误已记入日志。请稍后重试；如仍出错，请联系平台管理员。"),
    503: ("服务暂不可用", "平台正在启动或维护，请稍后重试。"),
}

# Where a refused object's list lives: a way back that is more useful than the home page.
LISTS: tuple[tuple[str, str, P], ...] = (
    ("/lifts/", "电梯列表", P.VIEW_ELEVATORS),
    ("/alarms/", "告警处置", P.VIEW_ALARMS),
    ("/stations/", "充装站", P.VIEW_STATIONS),
)


def explanation(exc: web.HTTPException) -> tuple[str, str]:
    """The page's heading and text: the handler's own Chinese text where it gave one."""
    title, default = EXPLANATIONS.get(exc.status, EXPLANATIONS[500] if exc.status >= 500 else EXPLANATIONS[400])
    text = (exc.text or "").strip()
    given = bool(text) and text != f"{exc.status}: {exc.reason}" and any(ord(c) > 0x2E80 for c in text)
    return title, text if given else default


def ways_back(request: web.Request, user: User | None) -> list[tuple[str, str]]:
    """Links that lead on: the list the object belongs to, the page the visitor came from, the home page."""
    if user is None:
        return [("/login", "登录")]
    ways = [(prefix.rstrip("/"), label) for prefix, label, needed in LISTS
            if request.path.startswith(prefix) and user.can(needed)]  # fmt: skip
    referer = URL(request.headers.get("Referer", ""))
    if referer.host == request.url.host and referer.port == request.url.port and referer.path_qs != request.path_qs:
        ways.append((referer.path_qs, "返回上一页"))
    ways.append(("/", "返回首页"))
    return ways


async def error_page(request: web.Request, exc: web.HTTPException) -> web.Response:
    user: User | None = request.get(USER_KEY)
    title, text = explanation(exc)
    context: dict[str, Any] = {"user": user, "flash": None, "status": exc.status, "title": title, "text": text,
                               "ways": ways_back(request, user)}  # fmt: skip
    if user is not None:
        try:
            context |= await page_furniture(request, user)
        except Exception:  # the database may be what failed: the page still has its menu
            log.exception("error page without its banner")
            context |= {"csrf_token": user.csrf_token, "nav": navigation(user), "scope_label": scope_label(user),
                        "trapped": [], "open_alarm_count": 0, "flash": None}  # fmt: skip
    response = render(request, "error.html", context, status=exc.status)
    for name in ("Allow", "Retry-After"):
        if name in exc.headers:
            response.headers[name] = exc.headers[name]
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    if is_api(request):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or (exc.content_type not in ("text/plain", "application/octet-stream")):
            raise
        return await error_page(request, exc)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return await error_page(request, web.HTTPInternalServerError())


@hookimpl
def register_routes(app: web.Application, platform: Platform) -> None:
    # Outermost: it sees what the login check and the handlers refuse, with the user already known.
    app.middlewares.insert(0, error_pages)
