"""Fixtures that start the real platform on loopback with a real SQLite file."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite
import pytest
from hypothesis import settings

from wuhai_iot.config import Config, ProtocolConfig
from wuhai_iot.plugins import protocols
from wuhai_iot.protocols.base import Discarded, Protocol
from wuhai_iot.registry import users
from wuhai_iot.runner import loop_factory
from wuhai_iot.server import Platform
from wuhai_iot.storage import db

users.PASSWORD_COST = users.ScryptCost(n=2**10)
"""New password hashes in this process are cheap (a web test logs in up to seven users); production's cost
is the default of ScryptCost (test_web_auth checks both, and that a login rehashes at a new cost)."""

settings.register_profile("shared-machine", deadline=None)
settings.load_profile("shared-machine")
"""No per-example deadline for property tests: on a loaded machine (CI, or the suite beside a benchmark) one
example of a fast test took 275 ms against Hypothesis's 200-ms default, a failure that says nothing."""

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "device_fixtures"
EXAMPLE = ROOT / "examples" / "acme-lift"
"""The example vendor plugin, a package of its own."""
CENSUS = Path(__file__).resolve().parent / "data" / "census"


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """Every async test runs on the event loop the platform runs on (uvloop where installed)."""
    factory = loop_factory()
    return {"platform-loop": factory or asyncio.new_event_loop}


def fixture_bytes(name: str) -> bytes:
    """A binary frame from ``device_fixtures/``: hex text, with ``#`` comment lines."""
    path = FIXTURES / name
    text = "".join(line for line in path.read_text(encoding="utf-8").splitlines(True)
                   if not line.lstrip().startswith("#"))  # fmt: skip
    return bytes.fromhex("".join(text.split()))


def platform_config(directory: Path) -> Config:
    """Defaults, but the database in ``directory`` and every port chosen by the OS."""
    settings = Config()
    settings.database.path = directory / "wuhai-iot.sqlite3"
    settings.web.port = 0
    settings.protocols = {name: ProtocolConfig(port=0) for name in protocols()}
    return settings


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return platform_config(tmp_path)


_census_template: Path | None = None
"""The examples of tests/data/census imported once into a new database (migrations included), copied for
every test that starts from them: importing costs 0.1-0.2 s, copying the file a millisecond."""


async def import_census(path: Path, files: list[Path] | None = None) -> None:
    """Import census files (default: the examples in tests/data/census) into the database at ``path``."""
    global _census_template
    from wuhai_iot.registry.census import import_files

    if files is None and not path.exists():
        if _census_template is None:
            template = Path(tempfile.mkdtemp(prefix="wuhai-census-")) / "census.sqlite3"
            atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
            await import_census(template, sorted(CENSUS.glob("*.csv")))
            assert not Path(f"{template}-wal").exists(), "closed: the whole database is in its one file"
            _census_template = template
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_census_template, path)
        return
    conn = await db.connect(path)
    try:
        await import_files(conn, files or sorted(CENSUS.glob("*.csv")))
    finally:
        await conn.close()


_cli_lock = threading.Lock()


def cli_in_process(*args: str) -> tuple[int, str, str]:
    """``wuhai-iot ARGS`` run in this process: exit status, standard output and standard error. Starting a
    Python process per command costs a second or more; a command's own process and the entry point are run
    for real by test_serve.py and test_census_import.py."""
    from wuhai_iot.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _cli_lock, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # (one sys.stdout)
        status = main(list(args))
    return status, out.getvalue(), err.getvalue()


async def run_cli(*args: str) -> tuple[int, str, str]:
    """``cli_in_process`` in a thread, beside a running platform (a command runs its own event loop)."""
    return await asyncio.to_thread(cli_in_process, *args)


@pytest.fixture
async def platform(config: Config) -> AsyncIterator[Platform]:
    """The running platform with the census examples imported."""
    await import_census(config.database.path)
    async with Platform(config) as running:
        yield running


@pytest.fixture
async def database(platform: Platform) -> AsyncIterator[aiosqlite.Connection]:
    """A separate connection to the running platform's database, for assertions."""
    conn = await db.connect(platform.config.database.path, migrate=False)
    yield conn
    await conn.close()


class TerminalClient:
    """A test terminal on a real TCP socket; answers are cut with the protocol's own framer."""

    def __init__(self, protocol: Protocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.protocol = protocol
        self.reader = reader
        self.writer = writer
        self._framer = protocol.new_framer()
        self._frames: list[bytes] = []

    @classmethod
    async def connect(cls, platform: Platform, protocol: str) -> TerminalClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", platform.ports[protocol])
        return cls(platform.protocols[protocol], reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, timeout: float = 5.0) -> bytes:
        """The next whole frame from the platform."""
        async with asyncio.timeout(timeout):
            while not self._frames:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("the platform closed the connection")
                self._frames += [f for f in self._framer.feed(data) if not isinstance(f, Discarded)]
        return self._frames.pop(0)

    async def closed_by_platform(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            return await self.reader.read(65536) == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass


@pytest.fixture
def census_copy(tmp_path: Path) -> Path:
    """A writable copy of the census examples."""
    target = tmp_path / "census"
    shutil.copytree(CENSUS, target)
    return target


@pytest.fixture(scope="session")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/acme-lift installed by pip from its folder, once a session, into a folder of its own
    (``--target``: the package and its entry point, without dependencies: wuhai-iot is here)."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (target / "acme_lift").is_dir() and list(target.glob("acme_lift-1.0.0.dist-info"))
    return target


@pytest.fixture
def example_on_path(installed_example: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The installed example importable and its entry point visible, as after ``pip install``."""
    from wuhai_iot.plugins import get_plugin_manager

    monkeypatch.syspath_prepend(str(installed_example))
    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()
    sys.modules.pop("acme_lift", None)
