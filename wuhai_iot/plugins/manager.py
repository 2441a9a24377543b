"""The one plugin manager: built-in modules first, then the ``wuhai_iot`` entry-point group.

A vendor's entry point that cannot be imported or registered, or whose protocols are incomplete, is
recorded in ``failed`` with the reason (``wuhai-iot plugins`` lists it, ``serve`` logs it) and the
other plugins run.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import inspect
import logging
from dataclasses import dataclass
from typing import Any

import pluggy

from wuhai_iot.plugins import hookspecs
from wuhai_iot.protocols.base import Protocol

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "wuhai_iot"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "wuhai_iot.protocols.elink",
    "wuhai_iot.protocols.lmt",
    "wuhai_iot.protocols.gasfill",
    "wuhai_iot.protocols.jt808",
    "wuhai_iot.commands",
    "wuhai_iot.storage.backup",
    "wuhai_iot.storage.disk",
    "wuhai_iot.registry.users",
    "wuhai_iot.web.auth",
    "wuhai_iot.web.api",
    "wuhai_iot.web.metrics",
    "wuhai_iot.web.pages",
    "wuhai_iot.web.live",
    "wuhai_iot.web.pages_filling",
    "wuhai_iot.web.pages_vehicles",
    "wuhai_iot.web.pages_admin",
    "wuhai_iot.web.errors",
    "wuhai_iot.web.pages_public",
    "wuhai_iot.web.pages_reports",
    "wuhai_iot.registry.census",
    "wuhai_iot.alarms.book",
    "wuhai_iot.alarms.system",
    "wuhai_iot.elevators.rules.builtin",
    "wuhai_iot.elevators.plugin",
    "wuhai_iot.alarms.webhook",
    "wuhai_iot.filling.plugin",
    "wuhai_iot.publishing.plugin",
    "wuhai_iot.vehicles.plugin",
    "wuhai_iot.simulator.cli",
    "wuhai_iot.simulator.demo",
)
"""Modules of this package that implement hooks, registered exactly as outside plugins are."""

REQUIRED_PROTOCOL_ATTRIBUTES = ("name", "title", "default_port", "terminal_id_format")


@dataclass(frozen=True, slots=True)
class FailedPlugin:
    """An entry point that could not be loaded, or a plugin whose contribution was refused."""

    name: str
    distribution: str
    reason: str


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, with what the platform asks of its plugins computed once."""

    def __init__(self) -> None:
        super().__init__("wuhai_iot")
        self.failed: list[FailedPlugin] = []
        self._protocols: dict[str, Protocol] | None = None
        self.protocol_plugins: dict[str, str] = {}
        """Protocol name → name of the plugin that registered it."""

    def load_entry_points(self, group: str) -> None:
        """Like ``load_setuptools_entrypoints``, but one broken package is reported, not fatal."""
        for dist in importlib.metadata.distributions():
            for entry_point in dist.entry_points:
                if entry_point.group != group or self.has_plugin(entry_point.name):
                    continue
                distribution = f"{dist.metadata['Name']} {dist.version}"
                try:
                    plugin = entry_point.load()
                    self.register(plugin, name=entry_point.name)
                    self.check_pending()
                except Exception as exc:  # noqa: BLE001 - any failure of a vendor's package is reported
                    if self.has_plugin(entry_point.name):
                        self.unregister(name=entry_point.name)
                    reason = f"{type(exc).__name__}: {exc}"
                    log.error("plugin %s (%s) not loaded: %s", entry_point.name, distribution, reason)
                    self.failed.append(FailedPlugin(entry_point.name, distribution, reason))
                    continue
                self._plugin_distinfo.append((plugin, dist))  # (what list_plugin_distinfo reports)

    def protocols(self) -> dict[str, Protocol]:
        """Every registered protocol by name, built once. A plugin whose protocol is incomplete or takes a
        name already taken is refused and reported; a built-in protocol's problem is a bug and raises."""
        if self._protocols is None:
            found: dict[str, Protocol] = {}
            for impl in self.hook.register_protocols.get_hookimpls():  # (in registration order)
                builtin = impl.plugin_name in BUILTIN_PLUGINS
                try:
                    contributed = impl.function() or ()
                except Exception as exc:
                    if builtin:
                        raise
                    log.exception("plugin %s: register_protocols failed", impl.plugin_name)
                    self.failed.append(FailedPlugin(impl.plugin_name, self.distribution_of(impl.plugin),
                                                    f"register_protocols raised {type(exc).__name__}: {exc}"))
                    continue
                for protocol in contributed:
                    problem = _protocol_problem(protocol, found)
                    if problem and builtin:
                        raise ValueError(f"{impl.plugin_name}: {problem}")
                    if problem:
                        log.error("plugin %s: protocol refused: %s", impl.plugin_name, problem)
                        self.failed.append(FailedPlugin(impl.plugin_name, self.distribution_of(impl.plugin), problem))
                        continue
                    found[protocol.name] = protocol
                    self.protocol_plugins[protocol.name] = impl.plugin_name
            self._protocols = found
        return dict(self._protocols)

    def distribution_of(self, plugin: object) -> str:
        """``name version`` of the package a plugin came from (``wuhai-iot <version>`` for built-ins)."""
        for registered, dist in self.list_plugin_distinfo():
            if registered is plugin:
                return f"{dist.metadata['Name']} {dist.version}"
        return f"wuhai-iot {importlib.metadata.version('wuhai-iot')}"


def _protocol_problem(protocol: object, found: dict[str, Protocol]) -> str:
    if not isinstance(protocol, Protocol):
        return f"{protocol!r} is not a wuhai_iot.protocols.base.Protocol"
    missing = [name for name in REQUIRED_PROTOCOL_ATTRIBUTES if not hasattr(protocol, name)]
    if missing:
        return f"{type(protocol).__name__} does not set {', '.join(missing)}"
    if protocol.name in found:
        return f"protocol {protocol.name!r} is registered by two plugins"
    return ""


@functools.cache
def get_plugin_manager() -> PluginManager:
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    pm.check_pending()
    pm.load_entry_points(ENTRY_POINT_GROUP)
    return pm


def protocols() -> dict[str, Protocol]:
    """Every registered protocol by name (the same instances on every call)."""
    return get_plugin_manager().protocols()


async def call_async(hook_name: str, **kwargs: Any) -> None:
    """Call a hook whose implementations may return awaitables, and await them in order."""
    for result in getattr(get_plugin_manager().hook, hook_name)(**kwargs):
        if inspect.isawaitable(result):
            await result
