"""The one plugin manager: built-in modules first, then the ``wuhai_iot`` entry-point group."""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

import pluggy

from wuhai_iot.plugins import hookspecs
from wuhai_iot.protocols.base import Protocol

ENTRY_POINT_GROUP = "wuhai_iot"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "wuhai_iot.protocols.elink",
    "wuhai_iot.protocols.lmt",
    "wuhai_iot.protocols.gasfill",
    "wuhai_iot.commands",
    "wuhai_iot.registry.users",
    "wuhai_iot.web.auth",
    "wuhai_iot.web.api",
    "wuhai_iot.web.metrics",
    "wuhai_iot.web.pages",
    "wuhai_iot.web.live",
    "wuhai_iot.web.pages_filling",
    "wuhai_iot.web.pages_admin",
    "wuhai_iot.registry.census",
    "wuhai_iot.alarms.book",
    "wuhai_iot.elevators.rules.builtin",
    "wuhai_iot.elevators.plugin",
    "wuhai_iot.alarms.webhook",
    "wuhai_iot.filling.plugin",
    "wuhai_iot.simulator.cli",
    "wuhai_iot.simulator.demo",
)
"""Modules of this package that implement hooks, registered exactly as outside plugins are."""


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("wuhai_iot")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    pm.check_pending()
    return pm


def protocols() -> dict[str, Protocol]:
    """Every registered protocol by name; a name registered twice is a configuration error."""
    found: dict[str, Protocol] = {}
    for contributed in get_plugin_manager().hook.register_protocols():
        for protocol in contributed or ():
            if protocol.name in found:
                raise ValueError(f"protocol {protocol.name!r} is registered by two plugins")
            found[protocol.name] = protocol
    return found


async def call_async(hook_name: str, **kwargs: Any) -> None:
    """Call a hook whose implementations may return awaitables, and await them in order."""
    for result in getattr(get_plugin_manager().hook, hook_name)(**kwargs):
        if inspect.isawaitable(result):
            await result
