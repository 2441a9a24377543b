"""The ``[log]`` section: JSON lines with context fields, a file that logrotate may move away, a device's
connect/login/close and a web sign-in logged once each, and no secret at any level."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TerminalClient, fixture_bytes
from web_support import PASSWORD, add_user, base_url, browser, login, session_csrf, token_for

from wuhai_iot import logs
from wuhai_iot.config import LogConfig
from wuhai_iot.server import Platform
from wuhai_iot.simulator.elink import login_frame as signed_login
from wuhai_iot.web.auth import SESSION_COOKIE

ELINK_KEY = "kkkkkkkkkkkkkkkk"  # tests/data/census/terminals.csv


@pytest.fixture
def debug_log(tmp_path: Path) -> Iterator[Path]:
    """The process's log at DEBUG, as JSON lines, in a file (installed before the platform starts)."""
    file = tmp_path / "log" / "wuhai-iot.log"
    handler = logs.configure(LogConfig(level="DEBUG", format="json", file=file))
    yield file
    logging.getLogger().removeHandler(handler)
    handler.close()
    logs._installed = None
    logging.getLogger().setLevel(logging.WARNING)


def entries(file: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()]


async def logged(file: Path, predicate: object, timeout: float = 5) -> dict[str, object]:
    """The first entry matching ``predicate``, waiting for it to be written."""
    async with asyncio.timeout(timeout):
        while True:
            for entry in entries(file):
                if predicate(entry):  # type: ignore[operator]
                    return entry
            await asyncio.sleep(0.02)


def wrong_key_login() -> bytes:
    return signed_login(bytes.fromhex("8613000100020003"), "not-the-key-0000", 1764400000, 1, 30, firmware="EL200-13")


async def test_a_full_session_at_debug_logs_every_event_once_and_no_secret(debug_log: Path, platform: Platform) -> None:
    # a device: connect, login accepted, a status, close; another: login refused (wrong key)
    login_frame = fixture_bytes("elink/login_vendor_example.hex")
    device_hmac = login_frame[-18:-2]
    terminal = await TerminalClient.connect(platform, "elink")
    await terminal.send(login_frame)
    await terminal.receive()
    await terminal.send(fixture_bytes("elink/status_vendor_example.hex"))
    await terminal.receive()
    await terminal.close()
    intruder = await TerminalClient.connect(platform, "elink")
    await intruder.send(wrong_key_login())
    await intruder.receive()
    assert await intruder.closed_by_platform()
    await intruder.close()

    # the web: a refused sign-in, a good one, pages and API calls with a token
    await add_user(platform, "zhang", "admin")
    token = await token_for(platform, "zhang")
    async with browser() as client:
        assert (await login(client, platform, "zhang", "not the password 1")).status == 401
        assert (await login(client, platform, "zhang")).status == 302
        cookie = next(c.value for c in client.cookie_jar if c.key == SESSION_COOKIE)
        csrf = session_csrf(client)
        async with client.get(base_url(platform) + "/") as page:
            assert page.status == 200
        async with client.get(base_url(platform) + "/api/v1/elevators",
                              headers={"Authorization": f"Bearer {token}"}) as answer:  # fmt: skip
            assert answer.status == 200
        async with client.get(base_url(platform) + "/metrics", headers={"Authorization": f"Bearer {token}"}) as m:
            assert m.status == 200

    await logged(debug_log, lambda e: "closed" in str(e["message"]) and e.get("device") == "8613000100020003")
    await logged(debug_log, lambda e: "closed" in str(e["message"]) and "device" not in e
                 and e.get("protocol") == "elink")  # fmt: skip
    lines = entries(debug_log)
    assert all({"time", "level", "message"} <= set(entry) for entry in lines)
    elink_lines = [e for e in lines if e.get("protocol") == "elink"]
    connects = [e for e in elink_lines if str(e["message"]).startswith("elink connection from") and "closed" not in str(e["message"])]
    accepted = [e for e in elink_lines if "accepted" in str(e["message"])]
    refused = [e for e in elink_lines if "refused" in str(e["message"])]
    closes = [e for e in elink_lines if "closed" in str(e["message"])]
    assert len(connects) == 2 and len(closes) == 2 and all(e["peer"].startswith("127.0.0.1:") for e in connects)
    assert [(e["level"], e["device"]) for e in accepted] == [("INFO", "8613000100020003")]
    assert [(e["level"], e["device"], e["reason"]) for e in refused] == [("WARNING", "8613000100020003", "auth_failed")]
    sign_ins = [e for e in lines if str(e["message"]).startswith("sign-in of")]
    assert [(e["level"], e["user"], e["peer"], e.get("reason")) for e in sign_ins] == [
        ("WARNING", "zhang", "127.0.0.1", "wrong password"),
        ("INFO", "zhang", "127.0.0.1", None),
    ]

    text = debug_log.read_text(encoding="utf-8")
    secrets = {
        "password": PASSWORD, "wrong password": "not the password 1", "API token": token, "session cookie": cookie,
        "CSRF token": csrf, "device key": ELINK_KEY, "HMAC": device_hmac.hex(), "HMAC spaced": device_hmac.hex(" "),
        "HMAC upper": device_hmac.hex().upper(),
    }  # fmt: skip
    assert logging.getLogger("wuhai_iot.web.auth").isEnabledFor(logging.DEBUG)
    for what, secret in secrets.items():
        assert secret not in text, f"the {what} is in the log"


def test_a_moved_log_file_is_reopened_at_its_path(tmp_path: Path) -> None:
    """What logrotate does (``create``, no ``copytruncate``): move the file away; the next line starts a new one."""
    file = tmp_path / "wuhai-iot.log"
    handler = logs.configure(LogConfig(level="INFO", format="text", file=file))
    try:
        logging.getLogger("wuhai_iot.test").info("before", extra=logs.fields(device="T1"))
        file.rename(tmp_path / "wuhai-iot.log.1")
        logging.getLogger("wuhai_iot.test").info("after")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
        logs._installed = None
    before = (tmp_path / "wuhai-iot.log.1").read_text(encoding="utf-8")
    after = file.read_text(encoding="utf-8")
    assert before.rstrip().endswith("INFO wuhai_iot.test: before device=T1") and "after" not in before
    assert after.rstrip().endswith("INFO wuhai_iot.test: after") and after.count("\n") == 1


def test_json_lines_carry_the_exception_and_refuse_unknown_fields() -> None:
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("wuhai_iot.x", logging.ERROR, __file__, 1, "failed %s", ("now",), sys.exc_info())
    record.__dict__.update(logs.fields(protocol="lmt", user="li"))
    entry = json.loads(formatter.format(record))
    assert (entry["level"], entry["message"], entry["protocol"], entry["user"]) == ("ERROR", "failed now", "lmt", "li")
    assert entry["time"].endswith("Z") and "ValueError: boom" in entry["exception"]
    with pytest.raises(ValueError, match="unknown log field"):
        logs.fields(password="x")
