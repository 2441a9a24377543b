"""Plugin hook specifications.

The docstrings are the hook reference: written in Markdown, they are copied into docs/plugins.md by
``python -m wuhai_iot.plugins.reference docs/plugins.md`` (a test fails when the two differ), and every
hook is exercised by a test.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from wuhai_iot.alarms.kinds import AlarmKind
    from wuhai_iot.alarms.model import Alarm
    from wuhai_iot.config import Config
    from wuhai_iot.elevators.rules.base import Rule
    from wuhai_iot.plugins.metrics import Metric
    from wuhai_iot.protocols.base import Protocol
    from wuhai_iot.server import Platform

hookspec = pluggy.HookspecMarker("wuhai_iot")
hookimpl = pluggy.HookimplMarker("wuhai_iot")


@hookspec
def register_protocols() -> list["Protocol"]:
    """Return wire protocols to serve (`wuhai_iot.protocols.base.Protocol` instances). Each one gets its own
    TCP listener, configured under `[protocols.<name>]` (`enabled`, `host`, `port`; the port defaults to
    the protocol's `default_port`), and may also be recognised on the `auto` port by its `sniff`.
    Two plugins may not register the same name; a protocol that lacks `name`, `title`, `default_port` or
    `terminal_id_format` is refused and reported by `wuhai-iot plugins`, and the others are served.
    """


@hookspec
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Add sub-commands to the `wuhai-iot` command line. `subparsers` is argparse's sub-parser action;
    every parser you add automatically takes `--config FILE`. Set the handler with
    `parser.set_defaults(handler=fn)`; `fn(args) -> int` returns the exit status and finds the loaded
    configuration in `args.settings`.

    ```python
    @hookimpl
    def register_commands(subparsers):
        parser = subparsers.add_parser("hello", help="say hello")
        parser.set_defaults(handler=lambda args: print("hello") or 0)
    ```
    """


@hookspec
def platform_starting(platform: "Platform") -> "Awaitable[None] | None":
    """Called when `wuhai-iot serve` (or a test) starts the platform, after the database, the batch
    writer and the ingest pipeline exist and before any listener accepts a connection. Create what your
    plugin keeps for this platform and put it on `platform.state` (`platform.state.add(obj)`, found later
    with `platform.state.get(Cls)`); attach event consumers (`platform.ingest.consumers`), request
    handlers, and start background tasks here.

    A request handler (`handler(terminal, event) -> reply`) is registered with
    `platform.ingest.answer_requests(EventType, handler, failure)`: `failure(event) -> reply` is the answer
    when the handler raises (the fill decision's is a denial with reason 99; without one the request is
    refused with `BAD_CONTENT`). A handler that is a plain function is answered in the same turn of the
    event loop that read the request, ahead of the rest of that turn: do that for anything with a latency
    target, as the fill decision does. A coroutine function may wait (for a vendor's service, say); its
    answer follows in a later turn.
    """


@hookspec
def platform_stopping(platform: "Platform") -> "Awaitable[None] | None":
    """Called on shutdown after the listeners have stopped and before pending writes are committed and
    the database is closed. Take your object back (`platform.state.pop(Cls)`) and stop its background
    tasks here.
    """


@hookspec
def register_routes(app: "web.Application", platform: "Platform") -> None:
    """Add routes, middlewares or sub-applications to the platform's aiohttp application. The platform is
    reachable from handlers as `request.app[wuhai_iot.server.PLATFORM_KEY]`.
    """


@hookspec
def register_rules(config: "Config") -> list["Rule"]:
    """Return rules for the elevator rule engine, built with the thresholds in `config.rules`. A rule is a
    subclass of `wuhai_iot.rules.base.Rule` (also importable from `wuhai_iot.elevators.rules.base`) with a
    unique `name`. Rules run on **event time** ([time.md](time.md)): `on_event(lift, event, state)` sees
    each record of a lift in device-time order (a record older than the newest one evaluated never reaches
    it); `on_time(lift, at_s, state)` sees the lift's own clock reach `at_s` (Unix seconds) while your
    `state` is not empty — before each record, after each message and on every tick — which is where
    durations fire, dated when their threshold was reached; `on_tick(lift, now, state)` sees the platform
    clock (for waits on something that has not arrived; enable `ticks_when_idle` to be called while your
    state is empty, and define `idle_until(lift)` to say until when such a call can do nothing: the tick then
    skips the idle lift until that time). All three return `Transition`s (an alarm condition of a registered `kind`, see
    `register_alarm_kinds`, becoming active or ending at a time); the engine turns them into alarms (one
    episode one alarm, flapping collapse) in the transaction of the message. Set `events` to the event
    classes your `on_event` takes (`Rule[ElevatorStatus]` with `events = (ElevatorStatus,)`); by default it
    sees every event. `state` is a per-lift dict of JSON values that the engine stores under the rule's
    name whenever it changes and reloads at start, so a condition survives a restart. The built-in lift
    rules (`wuhai_iot/elevators/rules/builtin.py`) are registered through this hook too.

    ```python
    from wuhai_iot.events import ElevatorStatus
    from wuhai_iot.plugins.hookspecs import hookimpl
    from wuhai_iot.elevators.rules.base import Rule, Transition

    class HeavyLoad(Rule[ElevatorStatus]):
        name = "heavy_load"
        events = (ElevatorStatus,)

        def on_event(self, lift, event, state):
            if (event.load_pct or 0) > 110:
                return [Transition("alarm_button", True, event.time, detail={"load_pct": event.load_pct})]
            return []

    @hookimpl
    def register_rules(config):
        return [HeavyLoad()]
    ```
    """


@hookspec
def register_alarm_kinds() -> list["AlarmKind"]:
    """Return the alarm kinds your plugin raises, each a `wuhai_iot.alarms.kinds.AlarmKind(name,
    severity, label, domain)`: `name` is the identifier stored with the alarm (`machine_room_smoke`),
    `severity` one of `critical`, `major`, `minor`, `label` what the pages show (Simplified Chinese),
    `domain` who raises it (your plugin's name). There is one registry of kinds (`alarm_kinds()`); the
    built-in lift and cylinder kinds are registered through this hook too (`elevators/plugin.py`,
    `filling/plugin.py`). The alarm book refuses to raise a kind nobody registered, a name registered
    twice stops the platform, and the pages, the API's `?kind=` filter and `/metrics` list every
    registered kind.

    ```python
    from wuhai_iot.alarms.kinds import AlarmKind
    from wuhai_iot.plugins.hookspecs import hookimpl

    @hookimpl
    def register_alarm_kinds():
        return [AlarmKind("machine_room_smoke", "critical", "机房烟雾", "acme-smoke")]
    ```
    """


@hookspec
def alarm_changed(platform: "Platform", alarm: "Alarm", change: str) -> "Awaitable[None] | None":
    """Called after an alarm change has been committed: `change` is `raised`, `cleared`, `reactivated`,
    `flapping`, `merged`, `acknowledged` or `resolved`; `alarm` is a `wuhai_iot.alarms.model.Alarm`
    snapshot (`alarm.to_dict()` is JSON-ready). It runs in a background task, never in ingestion; an
    exception is logged and does not stop the other notifiers. Attach an SMS or 96333 gateway here (queue
    slow work and return). The built-in webhook notifier (`[notify] webhook_url`,
    `wuhai_iot/alarms/webhook.py`) is one implementation. See docs/alarms.md.
    """


@hookspec
def collect_metrics(platform: "Platform") -> list["Metric"]:
    """Return figures for `GET /metrics`: `wuhai_iot.plugins.metrics.Metric(name, type, help, samples)`
    families, read from the object your plugin keeps on the platform (`platform.state`). Called on every
    scrape, in the event loop: return what is in memory, never query the database. The fill decisions'
    counts by reason come through this hook (`filling/plugin.py`).

    ```python
    @hookimpl
    def collect_metrics(platform):
        sms = platform.state.find(SmsGateway)
        sent = sms.sent if sms else 0
        return [Metric("wuhai_sms_sent_total", "counter", "SMS sent since start", [({}, sent)])]
    ```
    """
