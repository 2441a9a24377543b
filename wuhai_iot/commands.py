"""Core sub-commands: ``serve`` and ``decode``."""

from __future__ import annotations

import argparse
from typing import Any

from wuhai_iot.plugins.hookspecs import hookimpl


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    pass
