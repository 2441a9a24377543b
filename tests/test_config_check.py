"""``serve --check-config`` and the check ``serve`` runs first: one line per problem, naming section.key;
exit 2, never a traceback, and nothing bound."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_in_process
from load_support import any_free_ports

from wuhai_iot.config import ConfigError, check_config, load_config


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """``wuhai-iot serve ARGS`` where it stops at the check (in this process: nothing is started)."""
    status, out, err = cli_in_process("serve", *args)
    return subprocess.CompletedProcess(["serve", *args], status, out, err)


def serve_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``wuhai-iot serve ARGS`` in a process of its own (for a serve that gets as far as opening the database)."""
    return subprocess.run([sys.executable, "-m", "wuhai_iot", "serve", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


BAD = """
[database]
path = 5

[web]
port = 70000
host = 8
session_hours = 0
certificate = "cert.pem"

[protocols.elink]
port = 5701.5
enabled = "yes"

[rules]
trapped_after_s = -1

[log]
level = "LOUD"
format = "xml"
colour = true
"""
EXPECTED = [
    "database.path: must be a path (a string), not 5",
    "web.port: must be a port from 1 to 65535 (0: any free port), not 70000",
    "web.host: must be a string, not 8",
    "web.session_hours: must be at least 1, not 0",
    "protocols.elink.port: must be a whole number, not 5701.5",
    "protocols.elink.enabled: must be true or false, not 'yes'",
    "rules.trapped_after_s: must not be negative, not -1",
    "log.level: must be one of DEBUG, INFO, WARNING, ERROR, not 'LOUD'",
    "log.format: must be one of text, json, not 'xml'",
    "log.colour: unknown key",
]


def test_every_wrong_key_is_one_line_naming_it_and_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(BAD, encoding="utf-8")
    for args in (["--check-config"], []):
        result = serve(*args, "--config", str(file))
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr and result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == len(EXPECTED), lines
        for line, expected in zip(lines, EXPECTED, strict=True):
            assert line.startswith(f"wuhai-iot: {file}: {expected}"), (line, expected)
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert [problem.split(";")[0] for problem in caught.value.problems] == EXPECTED


def test_database_path_five_is_a_sentence_and_nothing_is_bound(tmp_path: Path) -> None:
    with socket.socket() as taken:  # the web port is taken: a serve that got as far as binding would exit 3
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        file = tmp_path / "c.toml"
        file.write_text(f"[database]\npath = 5\n[web]\nport = {taken.getsockname()[1]}\n", encoding="utf-8")
        result = serve("--config", str(file))
    assert (result.returncode, result.stderr) == (2, f"wuhai-iot: {file}: database.path: must be a path (a string), not 5\n")
    assert not list(tmp_path.glob("**/*.sqlite3"))


def test_folders_files_and_ports_are_checked_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    file = tmp_path / "c.toml"
    file.write_text(
        '[database]\npath = "afile/db/x.sqlite3"\n[log]\nfile = "afile/wuhai.log"\n'
        '[web]\ncertificate = "missing.pem"\nport = 5701\n[protocols.nosuch]\nport = 1\n'
        '[notify]\nwebhook_url = "ftp://alarms.example"\n',
        encoding="utf-8",
    )
    problems = check_config(load_config(file))
    assert problems == [
        f"database.path: {tmp_path / 'afile'} is not a folder",
        f"log.file: {tmp_path / 'afile'} is not a folder",
        "notify.webhook_url: must be an http:// or https:// address, not 'ftp://alarms.example'",
        "web.certificate: HTTPS needs both web.certificate and web.key",
        f"web.certificate: cannot read {tmp_path / 'missing.pem'}",
        "protocols.elink.port: 5701 is also web.port",
        "protocols.nosuch: no such protocol; installed: elink, gasfill, jt808, lmt",
    ]
    result = serve("--check-config", "--config", str(file))
    assert result.returncode == 2 and len(result.stderr.splitlines()) == len(problems)


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: every folder is writable")
def test_a_folder_this_user_cannot_write_is_a_problem(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    file = tmp_path / "c.toml"
    file.write_text('[database]\npath = "locked/db/x.sqlite3"\n', encoding="utf-8")
    assert check_config(load_config(file)) == [
        f"database.path: the folder {locked} is not writable by this user (to create {locked / 'db'})"
    ]


def test_a_good_configuration_checks_ok(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[database]\npath = "data/x.sqlite3"\n[log]\nformat = "json"\nfile = "log/wuhai.log"\n',
                    encoding="utf-8")  # fmt: skip
    result = serve("--check-config", "--config", str(file))
    assert (result.returncode, result.stderr) == (0, ""), result
    assert "configuration OK" in result.stdout
    assert not (tmp_path / "data").exists(), "checking creates nothing"


def test_the_printed_configuration_reads_back_as_the_same(tmp_path: Path) -> None:
    """``serve --print-config`` writes TOML that loads to the same configuration, whatever a string holds."""
    first = tmp_path / "first.toml"
    first.write_text(
        '[database]\npath = "data/a \\"quoted\\" \\\\ name\\nwith a newline.sqlite3"\n'
        '[notify]\nwebhook_url = "http://127.0.0.1:9/hook?a=1&b=\\"2\\""\n'
        "[protocols.elink]\nport = 0\n",
        encoding="utf-8",
    )
    config = load_config(first)
    assert config.database.path.name == 'a "quoted" \\ name\nwith a newline.sqlite3'
    printed = tmp_path / "printed.toml"
    printed.write_text(config.to_toml(), encoding="utf-8")
    again = load_config(printed)
    assert dataclasses.replace(again, source=None) == dataclasses.replace(config, source=None)


def test_a_folder_for_a_file_and_a_file_that_is_no_database_are_sentences(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    file = tmp_path / "c.toml"
    file.write_text('[database]\npath = "db"\n', encoding="utf-8")
    result = serve("--check-config", "--config", str(file))
    assert (result.returncode, result.stderr) == (
        2, f"wuhai-iot: {file}: database.path: {tmp_path / 'db'} is a folder; name the database file in it\n"
    )
    (tmp_path / "junk.sqlite3").write_bytes(b"this is not a database, it only has the name of one" * 100)
    file.write_text(f'[database]\npath = "junk.sqlite3"\n[web]\nport = 0\n{any_free_ports()}', encoding="utf-8")
    result = serve_process("--config", str(file))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"cannot use the database {tmp_path / 'junk.sqlite3'}: file is not a database" in result.stderr


def test_the_auto_port_is_a_known_section_and_its_port_must_be_free_of_the_others() -> None:
    from wuhai_iot.config import Config, ProtocolConfig, check_config

    config = Config()
    config.web.port = 0
    config.protocols = {"auto": ProtocolConfig(port=5700)}
    assert not [p for p in check_config(config) if "auto" in p]
    config.protocols = {"auto": ProtocolConfig(port=5701)}  # ELink's default port
    assert "protocols.auto.port: 5701 is also protocols.elink.port" in check_config(config)
