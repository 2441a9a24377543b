"""Each lifecycle hook is called when it should be, for an outside plugin registered at run time."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from wuhai_iot.cli import main
from wuhai_iot.config import Config
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.server import Platform
from wuhai_iot.web.auth import public


class RecordingPlugin:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def register_commands(self, subparsers: "argparse._SubParsersAction[Any]") -> None:
        parser = subparsers.add_parser("hello", help="say hello")
        parser.set_defaults(handler=lambda args: self.calls.append(f"hello {args.config}") or 0)

    @hookimpl
    async def platform_starting(self, platform: Platform) -> None:
        self.calls.append("starting")
        platform.plugin_probe = "attached"  # type: ignore[attr-defined]

    @hookimpl
    def platform_stopping(self, platform: Platform) -> None:
        self.calls.append("stopping")

    @hookimpl
    def register_routes(self, app: web.Application, platform: Platform) -> None:
        @public  # a plugin's page is behind the login like every other unless it says otherwise
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="hello from a plugin")

        app.router.add_get("/plugin-hello", hello)


@pytest.fixture
def plugin() -> Iterator[RecordingPlugin]:
    recording = RecordingPlugin()
    get_plugin_manager().register(recording, name="recording")
    yield recording
    get_plugin_manager().unregister(name="recording")


def test_register_commands_adds_a_subcommand_with_config(plugin: RecordingPlugin, tmp_path: Any) -> None:
    config = tmp_path / "c.toml"
    config.write_text("", encoding="utf-8")
    assert main(["hello", "--config", str(config)]) == 0
    assert plugin.calls == [f"hello {config}"]


async def test_platform_starting_stopping_and_register_routes(plugin: RecordingPlugin, config: Config) -> None:
    async with Platform(config) as platform:
        assert plugin.calls == ["starting"]
        assert platform.plugin_probe == "attached"  # type: ignore[attr-defined]
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{platform.ports['web']}/plugin-hello") as response:
                assert await response.text() == "hello from a plugin"
    assert plugin.calls == ["starting", "stopping"]
