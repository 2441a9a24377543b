"""The ``wuhai-iot`` command. Sub-commands come from plugins (``register_commands``), built-in ones too."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from wuhai_iot import __version__
from wuhai_iot.config import ConfigError, load_config
from wuhai_iot.plugins import get_plugin_manager
from wuhai_iot.storage.db import SchemaError

EXIT_USAGE = 2
EXIT_NEWER_DATABASE = 3


class _Parser(argparse.ArgumentParser):
    """Adds ``--config`` to every sub-command, so it is taken after the command's own name."""

    def add_subparsers(self, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("parser_class", _Parser)
        action = super().add_subparsers(**kwargs)
        original = action.add_parser

        def add_parser(name: str, **options):  # type: ignore[no-untyped-def]
            parser = original(name, **options)
            parser.add_argument(
                "--config",
                metavar="FILE",
                help="configuration file (default: $WUHAI_IOT_CONFIG, else built-in defaults)",
            )
            return parser

        action.add_parser = add_parser  # type: ignore[method-assign]
        return action


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wuhai-iot", description="Special-equipment safety platform of Wuhai city.")
    parser.add_argument("--version", action="version", version=f"wuhai-iot {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    get_plugin_manager().hook.register_commands(subparsers=commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.settings = load_config(args.config)
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"wuhai-iot: {line}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SchemaError as exc:  # any command that opens the database
        print(f"wuhai-iot: {exc}", file=sys.stderr)
        return EXIT_NEWER_DATABASE


if __name__ == "__main__":
    raise SystemExit(main())
