"""``wuhai-iot users add|list|disable`` and ``wuhai-iot tokens create|revoke``, run as the command line runs them
(disabling and revoking against a running platform: they take effect at once)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import sqlite3
from pathlib import Path

import aiohttp
import aiosqlite
import pytest
from conftest import import_census
from web_support import add_user, base_url, browser, login, token_for

from wuhai_iot.cli import main
from wuhai_iot.server import Platform
from wuhai_iot.storage import audit

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


class Terminal(io.StringIO):
    """Standard input that is a terminal (where getpass can prompt)."""

    def isatty(self) -> bool:
        return True


def test_password_from_the_prompt(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", Terminal())
    assert main(["users", "add", "boss", "--role", "admin", "--config", str(config_file)]) == 0
    assert main(["users", "add", "other", "--role", "admin", "--config", str(config_file)]) == 2
    assert rows(config_file, "SELECT name FROM users") == [("boss",)]


def test_without_a_terminal_the_password_comes_from_stdin(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "users", "add", "boss", "--role", "admin", monkeypatch=monkeypatch) == 2
    error = capsys.readouterr().err
    assert "no terminal to ask for the password on" in error and "--password-stdin" in error
    assert "Warning" not in error and not error.rstrip().endswith(":")
    assert run(config_file, "users", "add", "boss", "--role", "admin", "--password-stdin", monkeypatch=monkeypatch) == 2
    assert "no password on standard input" in capsys.readouterr().err
    assert rows(config_file, "SELECT name FROM users") == []


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


# --- disabling users and revoking tokens while the platform runs ------------------------------------


async def status_of(platform: Platform, client: aiohttp.ClientSession) -> int:
    async with client.get(base_url(platform) + "/api/v1/me") as me:
        return me.status


def bearer(token: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})


async def command(platform: Platform, tmp_path: Path, *args: str) -> int:
    """The command line against the running platform's database (in a thread: it runs its own loop)."""
    path = tmp_path / "cli.toml"
    path.write_text(f'[database]\npath = "{platform.config.database.path}"\n', encoding="utf-8")
    return await asyncio.to_thread(main, [*args, "--config", str(path)])


async def test_a_disabled_user_loses_its_session_and_tokens_at_once(
    platform: Platform, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await add_user(platform, "hbw", "district", district="海勃湾区")
    token = await token_for(platform, "hbw")
    async with browser() as session, bearer(token) as api:
        await login(session, platform, "hbw")
        assert (await status_of(platform, session), await status_of(platform, api)) == (200, 200)
        assert await command(platform, tmp_path, "users", "disable", "hbw") == 0
        assert "user hbw disabled (1 session(s) ended" in capsys.readouterr().out
        assert (await status_of(platform, session), await status_of(platform, api)) == (401, 401)
    async with browser() as again:
        answer = await login(again, platform, "hbw")
        assert answer.status != 302 and await status_of(platform, again) == 401
    assert await command(platform, tmp_path, "users", "disable", "nobody") == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    assert await command(platform, tmp_path, "users", "list") == 0
    assert "hbw\tdistrict 海勃湾区 (150302)  (disabled)" in capsys.readouterr().out.splitlines()


async def test_revoked_tokens_stop_working_at_once(
    platform: Platform, database: aiosqlite.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await add_user(platform, "cop", "police")
    tokens = [await token_for(platform, "cop") for _ in range(2)]
    async with browser() as session:
        await login(session, platform, "cop")
        assert await command(platform, tmp_path, "tokens", "revoke", "--user", "cop") == 0
        assert capsys.readouterr().out.strip() == "2 token(s) of cop revoked"
        for token in tokens:
            async with bearer(token) as api:
                assert await status_of(platform, api) == 401
        assert await status_of(platform, session) == 200, "revoking tokens leaves the user's sessions"
    async with bearer(await token_for(platform, "cop")) as api:
        assert await status_of(platform, api) == 200, "a token made afterwards works"
    assert await command(platform, tmp_path, "tokens", "revoke", "--user", "nobody") == 2
    entries = await audit.query(database, action="token.revoke")
    assert [(e.object_id, e.details) for e in entries] == [("cop", {"tokens_revoked": 2})]
