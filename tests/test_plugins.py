"""Every plugin hook is documented in docs/plugins.md and exercised by some test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

from wuhai_iot.plugins import hookspecs
from wuhai_iot.plugins.reference import hook_reference, with_reference

HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "wuhai_iot_spec"))


def test_hooks_are_found() -> None:
    assert {"register_protocols", "register_commands", "platform_starting", "register_routes"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert re.search(rf"^#+ `?{hook}", docs, re.MULTILINE), f"docs/plugins.md has no section for {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    this = Path(__file__).name
    tests = [p for p in Path(__file__).parent.glob("test_*.py") if p.name != this]
    assert any(hook in p.read_text(encoding="utf-8") for p in tests), f"no test mentions the hook {hook}"


def test_the_hook_reference_is_the_hookspec_docstrings() -> None:
    # docs/plugins.md cannot drift from the specifications: regenerate it with
    # `python -m wuhai_iot.plugins.reference docs/plugins.md` after changing a docstring.
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert hook_reference() in docs
    assert with_reference(docs) == docs
    for hook in HOOKS:
        assert f"### {hook}\n\n`{hook}(" in hook_reference()
