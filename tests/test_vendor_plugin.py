"""A vendor's protocol comes as its own package: examples/acme-lift, installed by pip from its folder.

It is installed once per session (conftest's ``installed_example``: ``pip install --target``, which is
what a vendor's ``pip install`` puts on the path, entry point included).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE, TerminalClient, cli_in_process, import_census

from web_support import add_user, base_url, browser, login, session_csrf

from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import get_plugin_manager, protocols
from wuhai_iot.server import Platform
from wuhai_iot.storage import db
from wuhai_iot.testing import check_protocol

TERMINAL, SECRET, LIFT = "AC00012345", "acme-secret-0001", "31101503022012000101"


def test_builtin_protocols_register_through_the_hook() -> None:
    # register_protocols: ELink, LMT and GF-3 are contributed exactly as a vendor's would be.
    assert {"elink", "lmt", "gasfill"} <= set(protocols())
    implementers = {impl.plugin_name for impl in get_plugin_manager().hook.register_protocols.get_hookimpls()}
    assert "wuhai_iot.protocols.elink" in implementers


def _env(*paths: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def test_the_platform_lists_the_installed_package(installed_example: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "wuhai_iot", "plugins"], capture_output=True, text=True,
                            env=_env(installed_example), timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "acme (acme-lift 1.0.0): register_protocols" in result.stdout
    assert "protocol acme: ACME AL-1 v1, port 5799, text frames, terminals on a lift" in result.stdout
    assert "wuhai_iot.protocols.elink (wuhai-iot " in result.stdout


def test_the_cli_decodes_its_text_frames(example_on_path: None) -> None:
    status, out, err = cli_in_process("decode", "acme", "AL1,AC00012345,6,1764400060,EV,ev=TRAP;on=1;fl=3*00")
    assert status == 0, err
    assert "acme EV terminal AC00012345 seq 6" in out and '"kind": "trapped"' in out


def test_the_examples_own_tests_pass(installed_example: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, env=_env(installed_example), cwd=EXAMPLE, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:]
    assert "passed" in result.stdout


def test_the_installed_protocol_passes_the_contract(example_on_path: None) -> None:
    check_protocol(protocols()["acme"], EXAMPLE / "tests" / "fixtures")


async def test_served_end_to_end(example_on_path: None, tmp_path: Path) -> None:
    config = Config()
    config.database.path = tmp_path / "db.sqlite3"
    config.web.port = 0
    config.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
    terminals = tmp_path / "terminals-acme.csv"
    terminals.write_text(
        "protocol,terminal_id,device_code,key\n"
        f"acme,{TERMINAL},{LIFT},{SECRET}\n"
        f"acme,abc,{LIFT},\n",  # the protocol's id format, from the protocol: refused
        encoding="utf-8",
    )
    await import_census(config.database.path)
    from wuhai_iot.registry.census import import_files

    conn = await db.connect(config.database.path)
    reports = await import_files(conn, [terminals])
    rejected = [str(rejection) for report in reports for rejection in report.rejected]
    assert len(rejected) == 1 and "'abc' is not AC and 8 digits (an ACME AL-1 terminal id)" in rejected[0]
    fixtures = EXAMPLE / "tests" / "fixtures"
    async with Platform(config) as platform:
        assert platform.ports["acme"]
        client = await TerminalClient.connect(platform, "acme")
        await client.send((fixtures / "login.line").read_bytes())
        assert (await client.receive()).startswith(f"AL1,{TERMINAL},1,".encode())
        for name in ("status_running", "event_trap_on", "event_trap_on"):  # the last one a resend
            await client.send((fixtures / f"{name}.line").read_bytes())
            answer = await client.receive()
            assert b",ACK,r=0*" in answer, answer
        await client.close()
        rows = await conn.execute_fetchall("SELECT kind, device_code, condition FROM alarms")
        assert [tuple(row) for row in rows] == [("trapped", LIFT, "active")]
        rows = await conn.execute_fetchall("SELECT count(*) FROM messages WHERE protocol = 'acme'")
        assert rows[0][0] == 2  # the status and the event, the resend stored once
        # The lift carries an ELink terminal too: the page offers commands for that one only, as AL-1 has none.
        await add_user(platform, "boss", "admin")
        async with browser() as web:
            assert (await login(web, platform, "boss")).status == 302
            async with web.get(f"{base_url(platform)}/lifts/{LIFT}") as page:
                html = await page.text()
            assert TERMINAL in html and '<option value="elink:8613000100020003">' in html
            assert f'<option value="acme:{TERMINAL}">' not in html
            form = {"csrf_token": session_csrf(web), "terminal": f"acme:{TERMINAL}", "code": "restart"}
            async with web.post(f"{base_url(platform)}/lifts/{LIFT}/command", data=form, allow_redirects=False) as sent:
                assert sent.headers["Location"].endswith("done=bad_command")
    await conn.close()


def test_a_package_that_cannot_be_imported_is_reported_and_the_rest_run(
    tmp_path: Path, example_on_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken_plugin-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n", encoding="utf-8")
    (broken / "entry_points.txt").write_text("[wuhai_iot]\nbroken = broken_plugin_module\n", encoding="utf-8")
    (tmp_path / "broken_plugin_module.py").write_text("import no_such_dependency\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))  # installed beside the example
    get_plugin_manager.cache_clear()
    status, out, _ = cli_in_process("plugins")
    assert status == 1
    assert "FAILED broken (broken-plugin 0.1): ModuleNotFoundError: No module named 'no_such_dependency'" in out
    assert "protocol acme: ACME AL-1 v1" in out and "protocol elink:" in out


def test_print_config_shows_every_protocol_with_its_port(example_on_path: None) -> None:
    status, out, err = cli_in_process("serve", "--print-config")
    assert status == 0, err
    assert '[protocols.acme]\nenabled = true\nhost = "127.0.0.1"\nport = 5799\n' in out
    assert "[protocols.elink]\nenabled = true\nhost = \"127.0.0.1\"\nport = 5701\n" in out
