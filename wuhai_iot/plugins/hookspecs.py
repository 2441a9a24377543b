"""Plugin hook specifications. Every hook is documented in docs/plugins.md and exercised by a test."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from wuhai_iot.protocols.base import Protocol

hookspec = pluggy.HookspecMarker("wuhai_iot")
hookimpl = pluggy.HookimplMarker("wuhai_iot")


@hookspec
def register_protocols() -> list["Protocol"]:
    """Return wire protocols to serve. Each gets its own TCP listener (``[protocols.<name>]``)."""


@hookspec
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Add sub-commands to the ``wuhai-iot`` command line.

    Each parser must set ``handler`` with ``set_defaults(handler=fn)``; ``fn(args) -> int`` returns
    the exit status. ``--config`` is added to every sub-command by the CLI itself.
    """
