"""Plugins keep per-platform state on the platform (``platform.state``) and report figures through the
``collect_metrics`` hook: no module-level dictionaries keyed by the platform, no getattr on it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from wuhai_iot.alarms.book import AlarmBook
from wuhai_iot.elevators.plugin import Monitoring
from wuhai_iot.filling.plugin import Filling
from wuhai_iot.plugins import get_plugin_manager, hookimpl
from wuhai_iot.plugins.metrics import Metric
from wuhai_iot.plugins.state import PluginState
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.web.metrics import exposition

ROOT = Path(__file__).resolve().parent.parent


class Counter:
    def __init__(self) -> None:
        self.seen = 0


async def test_one_object_per_class_found_by_its_class() -> None:
    state = PluginState()
    counter = state.add(Counter())
    assert state.get(Counter) is counter and state.find(Counter) is counter
    with pytest.raises(ValueError, match="already has a Counter"):
        state.add(Counter())
    assert state.pop(Counter) is counter and state.find(Counter) is None
    with pytest.raises(LookupError, match="no Counter on this platform"):
        state.get(Counter)


async def test_created_once_whichever_plugin_asks_first() -> None:
    state = PluginState()
    made = 0

    async def create() -> Counter:
        nonlocal made
        made += 1
        await asyncio.sleep(0)  # another plugin asks meanwhile
        return Counter()

    first, second = await asyncio.gather(state.get_or_create(Counter, create), state.get_or_create(Counter, create))
    assert first is second and made == 1


async def test_the_built_ins_keep_their_state_on_the_platform(platform: Platform) -> None:
    assert isinstance(platform.state.get(AlarmBook), AlarmBook)
    assert isinstance(platform.state.get(Monitoring), Monitoring)
    assert isinstance(platform.state.get(Filling), Filling)


def test_no_module_keeps_state_keyed_by_the_platform() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "wuhai_iot").rglob("*.py")
        if "WeakKeyDictionary" in path.read_text(encoding="utf-8") or "getattr(platform" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


class Visits:
    @hookimpl
    def collect_metrics(self, platform: Platform) -> list[Metric]:
        return [Metric("wuhai_example_visits_total", "counter", "Visits", [({"door": "front"}, 3.0)])]


@pytest.fixture
def visits_plugin() -> Iterator[None]:
    get_plugin_manager().register(Visits(), name="visits")
    yield
    get_plugin_manager().unregister(name="visits")


async def test_collect_metrics_adds_a_plugins_figures(platform: Platform, visits_plugin: None) -> None:
    conn = await db.connect(platform.config.database.path, migrate=False)
    text = await exposition(platform, conn)
    await conn.close()
    assert "# TYPE wuhai_example_visits_total counter" in text
    assert 'wuhai_example_visits_total{door="front"} 3' in text
    assert "# TYPE wuhai_fill_decisions_total counter" in text  # the filling plugin's, through the same hook
