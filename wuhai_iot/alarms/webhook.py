"""The built-in webhook notifier: every alarm change is POSTed as JSON to ``[notify] webhook_url``.

The ``alarm_changed`` hook only queues; a background task posts in order, retrying a failed POST with
exponential backoff (1 s, 2 s, 4 s ... ``webhook_retries`` times) before giving it up, so a slow or
unreachable receiver never holds up ingestion or the other notifiers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.tasks import supervised

if TYPE_CHECKING:
    from wuhai_iot.alarms.model import Alarm
    from wuhai_iot.config import NotifyConfig
    from wuhai_iot.server import Platform

log = logging.getLogger(__name__)

QUEUE_LIMIT = 10_000
"""Changes waiting beyond this are dropped (logged): memory stays bounded while the receiver is down."""
FIRST_BACKOFF_S = 1.0


class WebhookNotifier:
    def __init__(self, settings: NotifyConfig) -> None:
        self.settings = settings
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.delivered = 0
        self.failed = 0
        self.backoff_s = FIRST_BACKOFF_S
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task = supervised(self._run, "webhook-notifier")

    def enqueue(self, alarm: Alarm, change: str) -> None:
        try:
            self.queue.put_nowait({"change": change, "alarm": alarm.to_dict()})
        except asyncio.QueueFull:
            log.error("webhook queue full: alarm %d %s not sent", alarm.id, change)

    async def _run(self) -> None:
        while True:
            payload = await self.queue.get()
            await self._post(payload)
            self.queue.task_done()

    async def _post(self, payload: dict[str, Any]) -> None:
        assert self._session is not None
        delay = self.backoff_s
        for attempt in range(self.settings.webhook_retries + 1):
            try:
                async with self._session.post(self.settings.webhook_url, json=payload) as response:
                    if response.status < 300:
                        self.delivered += 1
                        return
                    log.warning("webhook answered %d (attempt %d)", response.status, attempt + 1)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("webhook failed (attempt %d): %s", attempt + 1, exc)
            if attempt < self.settings.webhook_retries:
                await asyncio.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("webhook gave up on alarm %s %s", payload["alarm"]["id"], payload["change"])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def webhook_notifier(platform: Platform) -> WebhookNotifier | None:
    """The platform's webhook notifier, when ``[notify] webhook_url`` is set."""
    return platform.state.find(WebhookNotifier)


@hookimpl
def platform_starting(platform: Platform) -> None:
    if platform.config.notify.webhook_url:
        platform.state.add(WebhookNotifier(platform.config.notify)).start()


@hookimpl
def alarm_changed(platform: Platform, alarm: Alarm, change: str) -> None:
    notifier = platform.state.find(WebhookNotifier)
    if notifier is not None:
        notifier.enqueue(alarm, change)


@hookimpl
async def platform_stopping(platform: Platform) -> None:
    notifier = platform.state.pop(WebhookNotifier)
    if notifier is not None:
        await notifier.stop()
