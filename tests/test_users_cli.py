"""``wuhai-iot users add|list`` and ``wuhai-iot tokens create``, run as the command line runs them."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
from pathlib import Path

import pytest
from conftest import import_census

from wuhai_iot.cli import main

PASSWORD = "district officer 1"


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A configuration naming a database that holds the census examples."""
    database = tmp_path / "db" / "wuhai-iot.sqlite3"
    asyncio.run(import_census(database))
    path = tmp_path / "wuhai-iot.toml"
    path.write_text('[database]\npath = "db/wuhai-iot.sqlite3"\n', encoding="utf-8")
    return path


def run(config_file: Path, *args: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main([*args, "--config", str(config_file)])


def rows(config_file: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(config_file.parent / "db" / "wuhai-iot.sqlite3") as conn:
        return conn.execute(sql).fetchall()


def test_add_users_of_every_role_and_list_them(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (
        ["boss", "--role", "admin"],
        ["hbw", "--role", "district", "--district", "海勃湾区"],
        ["wuda", "--role", "district", "--district", "150304"],
        ["cop", "--role", "police"],
        ["traffic", "--role", "transport"],
        ["lpg", "--role", "station", "--unit", "150301"],
        ["lifts", "--role", "maintenance", "--unit", "乌海市某电梯工程有限公司"],
    ):
        assert run(config_file, "users", "add", *args, "--password-stdin", stdin=PASSWORD + "\n",
                   monkeypatch=monkeypatch) == 0, args  # fmt: skip
    assert "user hbw added (district 海勃湾区 (150302))" in capsys.readouterr().out
    assert run(config_file, "users", "list", monkeypatch=monkeypatch) == 0
    assert capsys.readouterr().out.splitlines() == [
        "boss\tadmin",
        "cop\tpolice",
        "hbw\tdistrict 海勃湾区 (150302)",
        "lifts\tmaintenance 乌海市某电梯工程有限公司",
        "lpg\tstation 150301",
        "traffic\ttransport",
        "wuda\tdistrict 乌达区 (150304)",
    ]
    assert rows(config_file, "SELECT user_name, action, object_id FROM audit_log WHERE object_id = 'hbw'") == [
        (None, "user.add", "hbw")
    ]


def test_password_from_the_prompt(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(config_file, "users", "add", "boss", "--role", "admin", monkeypatch=monkeypatch) == 0
    assert run(config_file, "users", "add", "other", "--role", "admin", monkeypatch=monkeypatch) == 2
    assert rows(config_file, "SELECT name FROM users") == [("boss",)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--role", "mayor"], "unknown role 'mayor'"),
        (["x", "--role", "district"], "role district needs --district"),
        (["x", "--role", "district", "--district", "朝阳区"], "unknown district '朝阳区'"),
        (["x", "--role", "admin", "--district", "150302"], "--district applies to role district only"),
        (["x", "--role", "police", "--unit", "150301"], "--unit applies to roles station and maintenance only"),
        (["x", "--role", "station"], "role station needs --unit"),
        (["x", "--role", "station", "--unit", "999999"], "no station 999999 in the registry"),
        (["x", "--role", "maintenance", "--unit", "无名公司"], "no maintenance company '无名公司'"),
        (["two words", "--role", "admin"], "without spaces"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str],
    message: str,
) -> None:  # fmt: skip
    assert run(config_file, "users", "add", *args, "--password-stdin", stdin=PASSWORD + "\n",
               monkeypatch=monkeypatch) == 2  # fmt: skip
    assert message in capsys.readouterr().err
    assert rows(config_file, "SELECT count(*) FROM users") == [(0,)]


def test_short_passwords_and_taken_names_are_refused(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "users", "add", "boss", "--role", "admin", "--password-stdin", stdin="short\n",
               monkeypatch=monkeypatch) == 2  # fmt: skip
    assert "at least 8 characters" in capsys.readouterr().err
    for expected in (0, 2):
        assert run(config_file, "users", "add", "boss", "--role", "admin", "--password-stdin", stdin=PASSWORD,
                   monkeypatch=monkeypatch) == expected  # fmt: skip
    assert "exists already" in capsys.readouterr().err


def test_missing_role_is_a_usage_error(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(config_file, "users", "add", "boss", monkeypatch=monkeypatch)
    assert exit_info.value.code == 2


def test_tokens_are_printed_once_and_stored_hashed(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "users", "add", "cop", "--role", "police", "--password-stdin", stdin=PASSWORD,
               monkeypatch=monkeypatch) == 0  # fmt: skip
    capsys.readouterr()
    assert run(config_file, "tokens", "create", "--user", "cop", "--label", "交警支队系统", monkeypatch=monkeypatch) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("wh_") and len(token) > 40
    stored = rows(config_file, "SELECT token_hash, label FROM api_tokens")
    assert stored == [(hashlib.sha256(token.encode()).hexdigest(), "交警支队系统")]
    password_hash = rows(config_file, "SELECT password_hash FROM users")[0][0]
    assert PASSWORD not in password_hash and str(password_hash).startswith("scrypt$")
    assert run(config_file, "tokens", "create", "--user", "nobody", monkeypatch=monkeypatch) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
