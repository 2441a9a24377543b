"""docs/operations.md stays true: its configuration and the container's load and pass the check, and the
commands it names exist."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

from wuhai_iot.cli import build_parser
from wuhai_iot.config import load_config

GUIDE = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")


def test_the_guides_configuration_loads_with_every_key_right(tmp_path: Path) -> None:
    block = re.search(r"cat > /etc/wuhai-iot/config.toml <<'EOF'\n(.*?)\nEOF\n", GUIDE, re.S)
    assert block, "the guide writes /etc/wuhai-iot/config.toml"
    file = tmp_path / "config.toml"
    file.write_text(block.group(1), encoding="utf-8")
    config = load_config(file)  # raises ConfigError naming any wrong key
    assert config.web.behind_proxy and config.log.format == "json"
    assert str(config.database.path) == "/var/lib/wuhai-iot/wuhai-iot.sqlite3"


def test_the_containers_configuration_loads() -> None:
    config = load_config(ROOT / "deploy" / "container-config.toml")
    assert config.web.host == "0.0.0.0" and str(config.database.path).startswith("/var/lib/wuhai-iot/")


def test_every_command_the_guide_runs_exists() -> None:
    commands = set(re.findall(r"bin/wuhai-iot (\w+)", GUIDE)) | set(re.findall(r"wuhai-iot wuhai-iot (\w+)", GUIDE))
    assert {"serve", "backup", "restore", "import", "users"} <= commands
    parser = build_parser()
    known = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert commands <= known, commands - known
    serve_options = parser.parse_args(["serve", "--check-config"])
    assert serve_options.check_config
