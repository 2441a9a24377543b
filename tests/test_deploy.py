"""deploy/: the systemd unit, the logrotate snippet, the nginx reverse proxy, HTTPS from [web] certificate and
key, and the container image. Each runs for real where its tool is installed, and says why it skips otherwise."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from conftest import CENSUS, ROOT, TerminalClient, fixture_bytes, import_census
from load_support import any_free_ports, start_serve
from test_pages import read_events
from web_support import add_user, base_url, login

from wuhai_iot.config import Config
from wuhai_iot.protocols import elink
from wuhai_iot.server import Platform, forwarded_by_local_proxy
from wuhai_iot.simulator.elink import ACK_FIELDS

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "wuhai-iot.service"
WUHAI_IOT = Path(sys.executable).with_name("wuhai-iot")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def replaced(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each ``old`` replaced by ``new``; every ``old`` must be there (the test follows the file)."""
    for old, new in pairs:
        assert old in text, f"{old!r} is no longer in the shipped file"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: no certificate to test TLS with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    return cert, key


def client_trusting(cert: Path, **connector: object) -> aiohttp.ClientSession:
    context = ssl.create_default_context(cafile=str(cert))
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                 connector=aiohttp.TCPConnector(ssl=context, **connector))  # fmt: skip


# --- the systemd unit ----------------------------------------------------------------------------------


def test_the_unit_has_what_running_for_years_needs() -> None:
    unit = UNIT.read_text(encoding="utf-8")
    settings = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    assert settings["User"] == ["wuhai-iot"] and settings["Restart"] == ["on-failure"]
    assert int(settings["LimitNOFILE"][0]) >= 65536
    assert settings["NoNewPrivileges"] == ["yes"] and settings["ProtectSystem"] == ["strict"]
    assert settings["PrivateTmp"] == ["yes"]
    assert set(settings["ReadWritePaths"][0].split()) == {"/var/lib/wuhai-iot", "/var/log/wuhai-iot"}
    assert int(settings["TimeoutStopSec"][0]) >= 10, "tests/test_clean_stop.py stops within it under load"
    assert settings["ExecStart"] == ["/opt/wuhai-iot/venv/bin/wuhai-iot serve --config /etc/wuhai-iot/config.toml"]


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit cannot be verified here")
    copy = tmp_path / "wuhai-iot.service"
    copy.write_text(replaced(UNIT.read_text(encoding="utf-8"), ("/opt/wuhai-iot/venv/bin/wuhai-iot", str(WUHAI_IOT))))
    result = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_the_service_starts_restarts_after_a_crash_and_stops(tmp_path: Path) -> None:
    """Installed as docs/operations.md says (with this checkout's venv), under the real systemd."""
    if not Path("/run/systemd/system").is_dir():
        pytest.skip("systemd is not running on this machine (no /run/systemd/system): the unit cannot be started")
    if os.geteuid() != 0:
        pytest.skip("installing a system unit needs root")
    try:
        pwd.getpwnam("wuhai-iot")
    except KeyError:
        pytest.skip("no wuhai-iot user (docs/operations.md step 1 creates it)")
    name = f"wuhai-iot-test-{os.getpid()}"
    port = free_port()
    config = Path(f"/etc/{name}.toml")
    config.write_text(f'[database]\npath = "/var/lib/{name}/db.sqlite3"\n[web]\nport = {port}\n' + any_free_ports())
    unit = Path(f"/etc/systemd/system/{name}.service")
    unit.write_text(replaced(
        UNIT.read_text(encoding="utf-8"),
        ("/opt/wuhai-iot/venv/bin/wuhai-iot", str(WUHAI_IOT)), ("/etc/wuhai-iot/config.toml", str(config)),
        ("StateDirectory=wuhai-iot", f"StateDirectory={name}"), ("/var/lib/wuhai-iot", f"/var/lib/{name}"),
        ("ProtectHome=yes", "ProtectHome=read-only"),  # (this checkout's venv may live under /home)
    ))  # fmt: skip

    def healthy(timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                import urllib.request

                if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("no healthy /healthz")

    def main_pid() -> int:
        return int(subprocess.run(["systemctl", "show", "-P", "MainPID", name], capture_output=True, text=True).stdout)

    try:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "start", name], check=True)
        healthy()
        first = main_pid()
        os.kill(first, signal.SIGKILL)  # a crash
        time.sleep(6)  # RestartSec=5
        healthy()
        assert main_pid() not in (0, first), "restarted after the crash"
        subprocess.run(["systemctl", "stop", name], check=True, timeout=60)
        result = subprocess.run(["systemctl", "show", "-P", "Result", name], capture_output=True, text=True)
        assert result.stdout.strip() == "success", "a clean stop: exit 0 within TimeoutStopSec"
    finally:
        subprocess.run(["systemctl", "stop", name], capture_output=True)
        unit.unlink(missing_ok=True)
        config.unlink(missing_ok=True)
        subprocess.run(["systemctl", "daemon-reload"], capture_output=True)


# --- logrotate -----------------------------------------------------------------------------------------


async def test_logrotate_moves_the_log_and_the_platform_writes_a_new_one_without_a_restart(tmp_path: Path) -> None:
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed: the snippet cannot be run here")
    logs = tmp_path / "log"
    log = logs / "wuhai-iot.log"
    process, ports, _ = await start_serve(tmp_path, f'[log]\nfile = "{log}"\n', log_file=log)
    user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    snippet = tmp_path / "logrotate.conf"
    snippet.write_text(replaced(
        (DEPLOY / "logrotate-wuhai-iot").read_text(encoding="utf-8"),
        ("/var/log/wuhai-iot/", f"{logs}/"), ("create 0640 wuhai-iot wuhai-iot", f"create 0640 {user} {group}"),
        ("su wuhai-iot wuhai-iot", f"su {user} {group}"),
    ))  # fmt: skip
    try:
        assert "listening on" in log.read_text(encoding="utf-8")
        rotated = await asyncio.to_thread(subprocess.run, ["logrotate", "-f", "-s", str(tmp_path / "state"), str(snippet)],
                                          capture_output=True, text=True)  # fmt: skip
        assert rotated.returncode == 0, rotated.stderr
        assert "listening on" in (logs / "wuhai-iot.log.1").read_text(encoding="utf-8")
        reader, writer = await asyncio.open_connection("127.0.0.1", ports["elink"])
        async with asyncio.timeout(10):
            while "elink connection from" not in (log.read_text(encoding="utf-8") if log.exists() else ""):
                await asyncio.sleep(0.05)
        writer.close()
        assert "listening on" not in log.read_text(encoding="utf-8"), "a new file at the same path"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


# --- TLS: the nginx reverse proxy, or HTTPS of its own -------------------------------------------------


@pytest.fixture
def proxied_config(config: Config) -> Config:
    config.web.behind_proxy = True
    return config


@pytest.fixture
def nginx(tmp_path: Path, certificate: tuple[Path, Path]) -> Path:
    """A folder for the shipped nginx configuration to run in (``start_nginx``)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed: the reverse-proxy configuration cannot be run here")
    return tmp_path


def start_nginx(folder: Path, upstream: int, certificate: tuple[Path, Path]) -> tuple[subprocess.Popen[bytes], int]:
    """nginx with the shipped configuration in front of the platform's web port: its process and HTTPS port.

    nginx cannot be given port 0, so its ports are picked free just before it starts, and another process may
    take one in between (other tests and benchmarks on the machine open thousands of connections): nginx then
    exits on its bind error and is started again on new ports. It is ready once its pid file is there (nginx
    writes it after binding), not when the port answers, which another process's listener could do."""
    log, pid = folder / "error.log", folder / "nginx.pid"
    for _ in range(5):
        listen = free_port()
        server = replaced(
            (DEPLOY / "nginx-wuhai-iot.conf").read_text(encoding="utf-8"),
            ("listen 443 ssl;", f"listen 127.0.0.1:{listen} ssl;"), ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
            ("/etc/ssl/wuhai-iot/fullchain.pem", str(certificate[0])), ("/etc/ssl/wuhai-iot/privkey.pem", str(certificate[1])),
            ("proxy_pass http://127.0.0.1:8080;", f"proxy_pass http://127.0.0.1:{upstream};"),
        )  # fmt: skip
        temp = "".join(f"{kind}_temp_path {folder}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf = folder / "nginx.conf"
        conf.write_text(("user root;\n" if os.geteuid() == 0 else "") + f"pid {pid};\nerror_log {log};\n"
                        f"events {{}}\nhttp {{\naccess_log off;\n{temp}{server}\n}}\n")  # fmt: skip
        log.write_text("")
        pid.unlink(missing_ok=True)
        process = subprocess.Popen(["nginx", "-p", str(folder), "-c", str(conf), "-g", "daemon off;"])
        deadline = time.monotonic() + 15  # (a port in use: nginx tries for 2.5 s before it gives up)
        while process.poll() is None and not pid.exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        if process.poll() is None:
            return process, listen
        assert "Address already in use" in log.read_text(), log.read_text()
    raise AssertionError(f"nginx found no free port in 5 tries: {log.read_text()}")


async def test_behind_the_shipped_nginx_live_updates_flow_and_the_client_address_passes(
    nginx: Path, certificate: tuple[Path, Path], proxied_config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    await import_census(proxied_config.database.path)
    async with Platform(proxied_config) as platform:
        proxy, port = start_nginx(nginx, platform.ports["web"], certificate)
        try:
            await add_user(platform, "zhang", "admin")
            url = f"https://127.0.0.1:{port}"
            # The browser comes from another loopback address than nginx's own, as a remote client would.
            async with client_trusting(certificate[0], local_addr=("127.0.0.7", 0)) as browser:
                with caplog.at_level("INFO", logger="wuhai_iot.web.auth"):
                    answer = await login(browser, platform, "zhang", base=url)
                assert answer.status == 302
                cookie = answer.cookies["wuhai_session"]
                assert cookie["secure"] and cookie["httponly"], "X-Forwarded-Proto https: the cookie is Secure"
                signed_in = [r.getMessage() for r in caplog.records if r.name == "wuhai_iot.web.auth"]
                assert signed_in == ["sign-in of zhang from 127.0.0.7"]
                async with browser.get(url + "/live/alarms?page=/") as stream:
                    assert stream.headers["Content-Type"].startswith("text/event-stream")
                    events = read_events(stream)
                    first = await anext(events)
                    assert first["counts"]["trapped"] == 0
                    terminal = await TerminalClient.connect(platform, "elink")
                    await terminal.send(fixture_bytes("elink/login_vendor_example.hex"))
                    await terminal.receive()
                    await terminal.send(fixture_bytes("elink/fault_trapped_raised.hex"))
                    async with asyncio.timeout(10):  # through nginx, as soon as the platform writes it
                        update = await anext(events)
                        while update["counts"]["trapped"] == 0:
                            update = await anext(events)
                    await terminal.close()
        finally:
            proxy.terminate()
            proxy.wait(10)


class PeerOnly:
    """A transport that only knows its peer's address (a non-loopback peer cannot be made on loopback)."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self.peer if name == "peername" else default


async def test_a_forwarded_address_from_anywhere_but_loopback_is_not_believed() -> None:
    seen: list[tuple[str | None, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.remote, request.scheme))
        return web.Response()

    headers = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}
    for peer, expected in ((("127.0.0.1", 5000), ("10.1.2.3", "https")), (("192.0.2.9", 5000), ("192.0.2.9", "http"))):
        await forwarded_by_local_proxy(make_mocked_request("GET", "/", headers=headers, transport=PeerOnly(peer)), handler)
        assert seen[-1] == expected


async def test_the_web_port_serves_https_from_its_own_certificate(config: Config, certificate: tuple[Path, Path]) -> None:
    config.web.certificate, config.web.key = certificate
    await import_census(config.database.path)
    async with Platform(config) as platform:
        await add_user(platform, "zhang", "admin")
        url = f"https://127.0.0.1:{platform.ports['web']}"
        async with client_trusting(certificate[0]) as browser:
            async with browser.get(url + "/healthz") as health:
                assert health.status == 200
            answer = await login(browser, platform, "zhang", base=url)
            assert answer.status == 302 and answer.cookies["wuhai_session"]["secure"]
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.get(base_url(platform) + "/healthz")  # http:// to an HTTPS port


# --- the container image -------------------------------------------------------------------------------


def container_engine() -> str:
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        info = subprocess.run([engine, "info"], capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            return engine
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        pytest.skip(f"{engine} is installed but no container engine answers ({reason}): the image cannot be built here")
    pytest.skip("no container engine (docker or podman) is installed: the image cannot be built here")


async def test_the_image_builds_runs_logs_a_device_in_and_is_healthy(tmp_path: Path) -> None:
    engine = container_engine()
    tag = f"wuhai-iot-test:{os.getpid()}"
    name = f"wuhai-iot-test-{os.getpid()}"

    def run(*args: str, timeout: float = 900) -> str:
        result = subprocess.run([engine, *args], capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    run("build", "-t", tag, str(ROOT))
    try:
        run("run", "-d", "--name", name, "-p", "127.0.0.1::8080", "-p", "127.0.0.1::5701", tag)
        run("cp", str(CENSUS), f"{name}:/tmp/census")
        run("exec", name, "sh", "-c", "wuhai-iot import /tmp/census/*.csv")
        web_port = int(run("port", name, "8080/tcp").rsplit(":", 1)[1])
        elink_port = int(run("port", name, "5701/tcp").rsplit(":", 1)[1])
        async with asyncio.timeout(120):
            while run("inspect", "-f", "{{.State.Health.Status}}", name) != "healthy":
                await asyncio.sleep(1)
        async with aiohttp.ClientSession() as client:
            async with client.get(f"http://127.0.0.1:{web_port}/healthz") as health:
                assert health.status == 200 and (await health.json())["status"] == "ok"
        reader, writer = await asyncio.open_connection("127.0.0.1", elink_port)
        writer.write(fixture_bytes("elink/login_vendor_example.hex"))
        async with asyncio.timeout(10):
            answer = await reader.read(64)
        assert ACK_FIELDS.unpack_from(answer, elink.HEADER_SIZE) == (elink.LOGIN, 1, 0), "login accepted"
        writer.close()
        assert run("exec", name, "id", "-u") != "0", "runs as a non-root user"
        run("stop", "-t", "30", name)
        assert run("inspect", "-f", "{{.State.ExitCode}}", name) == "0"
        assert "accepted" in subprocess.run([engine, "logs", name], capture_output=True, text=True).stderr
    finally:
        subprocess.run([engine, "rm", "-f", name], capture_output=True)
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True)


# --- what can be checked of the image without a container engine -----------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    return [(match[1].upper(), match[2].strip()) for line in text.splitlines()
            if not line.lstrip().startswith("#") and (match := re.match(r"\s*([A-Za-z]+)\s+(.*)", line))]  # fmt: skip


CONTAINER_CONFIG = DEPLOY / "container-config.toml"
COMPOSE = DEPLOY / "compose.yaml"


def test_the_image_the_compose_file_and_the_unit_agree() -> None:
    """What a container engine would build from, read as text: the ports the image exposes are the container
    configuration's web port and the protocols' ports, which compose publishes (the web on loopback only);
    the volume holds the database; the health check asks the configured web port; the stop grace period, the
    open-file limit and the non-root user are the unit's."""
    from wuhai_iot.config import load_config
    from wuhai_iot.plugins import protocols

    steps = dockerfile()
    settings = load_config(CONTAINER_CONFIG)
    web_port = settings.web.port
    exposed = {int(port) for kind, arguments in steps if kind == "EXPOSE" for port in arguments.split()}
    assert exposed == {web_port} | {protocol.default_port for protocol in protocols().values()}
    [volume] = [arguments for kind, arguments in steps if kind == "VOLUME"]
    assert Path(volume) == settings.database.path.parent
    [user] = [arguments for kind, arguments in steps if kind == "USER"]
    assert user not in ("root", "0")
    [health] = [arguments for kind, arguments in steps if kind == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{web_port}/healthz" in health
    for kind, arguments in steps:
        if kind == "COPY":
            *sources, _ = arguments.split()
            assert all((ROOT / source).exists() for source in sources), arguments

    compose = COMPOSE.read_text(encoding="utf-8")
    ports = re.findall(r'^\s*- "(?:([\d.]+):)?\d+:(\d+)"', compose, re.M)
    published = {int(port): address for address, port in ports}  # container port → the host's address
    assert set(published) == exposed and published[web_port] == "127.0.0.1"
    assert f"wuhai-data:{volume}" in compose and "context: .." in compose and (ROOT / "Dockerfile").exists()
    unit = UNIT.read_text(encoding="utf-8")
    stop = re.search(r"^TimeoutStopSec=(\d+)$", unit, re.M)
    files = re.search(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert stop and f"stop_grace_period: {stop[1]}s" in compose
    assert files and f"nofile: {{ soft: {files[1]}, hard: {files[1]} }}" in compose


async def test_what_the_image_copies_installs_and_serves_without_a_container_engine(tmp_path: Path) -> None:
    """The image's own steps without an engine: the package is built from exactly the files the Dockerfile
    copies (a wheel, as its ``pip install .`` does) and must hold every file of the source package; run from
    that wheel alone with the container's configuration (on loopback and free ports), it checks its
    configuration, imports the census, passes the image's own HEALTHCHECK command, logs a device in, writes
    JSON lines, and stops cleanly on SIGTERM within compose's grace period."""
    steps = dockerfile()
    install = next(i for i, (kind, arguments) in enumerate(steps) if kind == "RUN" and "pip install ." in arguments)
    build = tmp_path / "build"
    build.mkdir()
    for kind, arguments in steps[:install]:
        if kind == "COPY":
            *sources, target = arguments.split()
            for source in sources:
                destination = build / target if target not in ("./", ".") else build / Path(source).name
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    shutil.copy(ROOT / source, destination)
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(build)],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob("wuhai_iot-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        packed = {name for name in archive.namelist() if name.startswith("wuhai_iot/")}
        archive.extractall(site)
    source_files = {path.relative_to(ROOT).as_posix() for path in (ROOT / "wuhai_iot").rglob("*")
                    if path.is_file() and "__pycache__" not in path.parts}  # fmt: skip
    assert source_files - packed == set(), "the image would lack these files"

    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("WUHAI_IOT_CONFIG", None)
    where = subprocess.run([sys.executable, "-c", "import wuhai_iot; print(wuhai_iot.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True)  # fmt: skip
    assert where.stdout.strip() == str(site / "wuhai_iot" / "__init__.py"), "runs the wheel, not this checkout"
    web_port = free_port()
    config = tmp_path / "config.toml"
    text = replaced(CONTAINER_CONFIG.read_text(encoding="utf-8"),
                    ('"/var/lib/wuhai-iot/', f'"{tmp_path / "data"}/'), ("port = 8080", f"port = {web_port}"),
                    ('host = "0.0.0.0"', 'host = "127.0.0.1"'))  # fmt: skip
    config.write_text(re.sub(r"^(\[protocols\.\w+\]\n)", r"\1port = 0\n", text, flags=re.M), encoding="utf-8")
    (tmp_path / "data").mkdir()

    def wuhai_iot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wuhai_iot", *args, "--config", str(config)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip

    checked = wuhai_iot("serve", "--check-config")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    imported = wuhai_iot("import", *map(str, sorted(CENSUS.glob("*.csv"))))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    [health] = [arguments for kind, arguments in dockerfile() if kind == "HEALTHCHECK"]
    health_command = [part.replace(":8080/", f":{web_port}/") for part in json.loads(health.split("CMD", 1)[1])]
    assert health_command[0] == "python"
    health_command[0] = sys.executable
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wuhai_iot", "serve", "--config", str(config), env=env, cwd=tmp_path,
            stdout=output, stderr=output,
        )
    try:
        async with asyncio.timeout(60):
            while True:  # the image's HEALTHCHECK, as the engine runs it
                checker = await asyncio.create_subprocess_exec(*health_command, env=env, cwd=tmp_path,
                                                               stderr=asyncio.subprocess.DEVNULL)  # fmt: skip
                if await checker.wait() == 0:
                    break
                assert process.returncode is None, log.read_text(encoding="utf-8")
                await asyncio.sleep(0.2)
        listening = re.search(r"ELink-200.* listening on 127\.0\.0\.1:(\d+)", log.read_text(encoding="utf-8"))
        assert listening, log.read_text(encoding="utf-8")
        reader, writer = await asyncio.open_connection("127.0.0.1", int(listening[1]))
        writer.write(fixture_bytes("elink/login_vendor_example.hex"))
        async with asyncio.timeout(10):
            answer = await reader.read(64)
        assert ACK_FIELDS.unpack_from(answer, elink.HEADER_SIZE) == (elink.LOGIN, 1, 0), "login accepted"
        writer.close()
        process.send_signal(signal.SIGTERM)
        grace_period = re.search(r"stop_grace_period: (\d+)s", COMPOSE.read_text(encoding="utf-8"))
        assert grace_period is not None
        async with asyncio.timeout(int(grace_period[1])):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert entries and all({"time", "level", "message"} <= entry.keys() for entry in entries)
    assert any("accepted" in entry["message"] for entry in entries)


def test_the_unit_is_hardened_by_systemds_own_measure(tmp_path: Path) -> None:
    """``systemd-analyze security`` reads the unit file offline (no running systemd needed): its exposure
    level must stay "OK" (at most 2.0 of 10)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit's hardening cannot be measured here")
    copy = tmp_path / "wuhai-iot.service"
    copy.write_text(replaced(UNIT.read_text(encoding="utf-8"), ("/opt/wuhai-iot/venv/bin/wuhai-iot", str(WUHAI_IOT))))
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(copy)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    if "offline" in result.stderr and result.returncode != 0:
        pytest.skip(f"this systemd-analyze cannot measure a unit offline: {result.stderr.strip()}")
    level = re.search(r"Overall exposure level for wuhai-iot\.service: ([\d.]+) (\w+)", result.stdout)
    assert level, result.stdout + result.stderr
    assert float(level[1]) <= 2.0 and level[2] == "OK", level[0]
