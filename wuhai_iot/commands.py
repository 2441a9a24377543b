"""Core sub-commands: ``serve``, ``plugins``, ``terminals allow-login`` and the debugging tools ``decode``,
``replay`` and ``capture``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import json
import logging
import sqlite3
import string
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot import logs
import aiosqlite

from wuhai_iot.captures import CAPTURE_POLL_S, CapturedFrame, frame_bytes, frame_text, read_frames
from wuhai_iot.config import Config, check_config
from wuhai_iot.plugins import get_plugin_manager, protocols
from wuhai_iot.plugins.manager import BUILTIN_PLUGINS
from wuhai_iot.plugins.hookspecs import hookimpl
from wuhai_iot.protocols.base import DecodeError, Discarded, Protocol, whole_message
from wuhai_iot.storage import audit, db

EXIT_INVALID_FRAME = 1
EXIT_CAPTURE_REFUSED = 1
"""``capture``: the terminal is being captured already, the capture is over, or the platform cannot write it."""
EXIT_BAD_CONFIG = 2
EXIT_CANNOT_START = 3
"""``serve``: a port cannot be bound, the database cannot be opened or is from a newer release."""
MAX_CAPTURE_MINUTES = 24 * 60
CAPTURE_LIST_ROWS = 20


@hookimpl
def register_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    serve = subparsers.add_parser("serve", help="run the platform: web pages, API and every protocol listener")
    serve.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    serve.add_argument("--check-config", action="store_true",
                       help="check every key of the configuration, print one line per problem, exit 0 or 2")  # fmt: skip
    serve.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                       help="overrides [log] level")  # fmt: skip
    serve.set_defaults(handler=serve_command)

    decode = subparsers.add_parser(
        "decode",
        help="decode frames and print their normalised events, or why they are invalid",
        description="Decode frames given as hex (spaces allowed) or, for a text protocol, as their text; "
        "or a frames file (--file: one frame a line, see wuhai_iot/captures.py). "
        "Exit status 1 when a frame is invalid or incomplete.",
    )
    decode.add_argument("protocol", help="protocol name: " + ", ".join(sorted(protocols())))
    decode.add_argument("hex", nargs="*", help="the bytes as hex; a text protocol's frame may be given as its text")
    decode.add_argument("--file", type=Path, help="a frames file: hex lines, or text lines for a text protocol")
    decode.set_defaults(handler=decode_command)

    replay = subparsers.add_parser(
        "replay",
        help="send a frames file to a platform as a terminal would, and print its answers decoded",
        description="Send the frames of FILE (hex lines, or text lines for a text protocol; +SECONDS delays; "
        "'<' answer lines are skipped) over one TCP connection, print every answer, and wait --wait seconds "
        "after the last frame. Exit status 1 when the platform closed the connection early.",
    )
    replay.add_argument("file", type=Path)
    replay.add_argument("--to", required=True, metavar="HOST:PORT", help="the platform's protocol (or auto) port")
    replay.add_argument("--protocol", required=True, help="protocol name: " + ", ".join(sorted(protocols())))
    replay.add_argument("--wait", type=float, default=2.0, help="seconds to wait for answers after the last frame")
    replay.set_defaults(handler=replay_command)

    plugins = subparsers.add_parser(
        "plugins",
        help="list loaded plugins (package version, hooks, protocols and ports) and those that failed to load",
        description="Exit status 1 when some plugin failed to load (the others run).",
    )
    plugins.set_defaults(handler=plugins_command)

    capture = subparsers.add_parser(
        "capture",
        help="record a terminal's raw frames on the running platform to a frames file (start, list, stop)",
        description="The running platform (wuhai-iot serve with the same configuration) picks a capture up "
        f"within {CAPTURE_POLL_S:g} s and records the terminal's frames in, with their delays, and its "
        "answers, from its next LOGIN on (at once, beginning with its LOGIN, when it is connected), until "
        "the end or 'capture stop'. 'wuhai-iot replay FILE' sends the file again; 'decode --file' decodes it.",
    )
    actions = capture.add_subparsers(dest="capture_action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="ask the running platform to capture a terminal")
    start.add_argument("protocol", help="protocol name: " + ", ".join(sorted(protocols())))
    start.add_argument("terminal", help="the terminal id, as in terminals.csv")
    start.add_argument("--minutes", type=float, default=10.0,
                       help=f"how long to record (default 10, at most {MAX_CAPTURE_MINUTES})")  # fmt: skip
    start.add_argument("--out", type=Path, metavar="FILE",
                       help="the frames file (default: captures/PROTOCOL-TERMINAL-TIME.frames beside the database); "
                       "the platform's user must be able to write it")  # fmt: skip
    start.add_argument("--wait", type=float, default=5.0,
                       help="seconds to wait for the platform to start recording (0: do not wait)")  # fmt: skip
    start.set_defaults(handler=capture_start_command)
    listing = actions.add_parser("list", help=f"the last {CAPTURE_LIST_ROWS} captures: state, frames, file")
    listing.set_defaults(handler=capture_list_command)
    stop = actions.add_parser("stop", help="end a capture now")
    stop.add_argument("id", type=int)
    stop.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the platform to close the file")
    stop.set_defaults(handler=capture_stop_command)

    terminals = subparsers.add_parser("terminals", help="terminal sessions: let a refused login in")
    actions = terminals.add_subparsers(dest="action", metavar="ACTION", required=True)
    allow = actions.add_parser(
        "allow-login",
        help="let the terminal's next LOGIN in whatever its device time (after its clock was unset or reset)",
        description="A terminal with a key must log in with a device time later than its last accepted LOGIN "
        "(replay protection). When its clock was reset to an earlier time and it cannot set it from the "
        "platform's answer, this lets its next LOGIN in; the rule applies again from that LOGIN's time on.",
    )
    allow.add_argument("protocol")
    allow.add_argument("terminal_id")
    allow.set_defaults(handler=allow_login_command)


def serve_command(args: argparse.Namespace) -> int:
    """Check the configuration (and bind nothing when it is wrong), then serve until SIGINT/SIGTERM."""
    from wuhai_iot.runner import run
    from wuhai_iot.server import Platform, StartError
    from wuhai_iot.storage.backup import BackupError

    config = args.settings
    if args.print_config:
        print(effective_config(config).to_toml())
        return 0
    problems = check_config(config)
    where = f"{config.source}: " if config.source else ""
    for problem in problems:
        print(f"wuhai-iot: {where}{problem}", file=sys.stderr)
    if problems:
        return EXIT_BAD_CONFIG
    if args.check_config:
        print(f"wuhai-iot: {where or 'built-in defaults: '}configuration OK")
        return 0
    logs.configure(config.log, args.log_level)
    try:
        run(Platform(config).run_forever())
    except (StartError, db.SchemaError, BackupError) as exc:
        logging.getLogger("wuhai_iot.server").error("%s", exc)
        return EXIT_CANNOT_START
    except sqlite3.DatabaseError as exc:  # not a database, corrupt, locked by another program
        logging.getLogger("wuhai_iot.server").error("cannot use the database %s: %s", config.database.path, exc)
        return EXIT_CANNOT_START
    return 0


def effective_config(config: Config) -> Config:
    """The configuration with a ``[protocols.NAME]`` section for every installed protocol, its port filled in."""
    sections = dict(config.protocols)
    for name, protocol in protocols().items():
        settings = config.protocol(name)
        port = protocol.default_port if settings.port is None else settings.port
        sections[name] = dataclasses.replace(settings, port=port)
    return dataclasses.replace(config, protocols=sections)


def plugins_command(args: argparse.Namespace) -> int:
    pm = get_plugin_manager()
    by_plugin: dict[str, list[Protocol]] = {}
    for protocol in pm.protocols().values():
        by_plugin.setdefault(pm.protocol_plugins[protocol.name], []).append(protocol)
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: (item[0] in BUILTIN_PLUGINS, item[0])):
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        print(f"{name} ({pm.distribution_of(plugin)}): {', '.join(hooks) or 'no hooks'}")
        for protocol in by_plugin.get(name, ()):
            settings = args.settings.protocol(protocol.name)
            port = protocol.default_port if settings.port is None else settings.port
            state = f"port {port}" if settings.enabled else "disabled"
            kind = "text" if protocol.text_frames else "binary"
            binding = protocol.binds_to.value.replace("_", " ")
            print(f"  protocol {protocol.name}: {protocol.title}, {state}, {kind} frames, "
                  f"terminals on a {binding}, ids {protocol.terminal_id_format.description}")  # fmt: skip
    for failed in pm.failed:
        print(f"FAILED {failed.name} ({failed.distribution}): {failed.reason}")
    return 1 if pm.failed else 0


def describe(protocol: Protocol, frame: bytes) -> str:
    """A frame in words: its decoded events, or its bytes with the terminal and seq it names. The platform's
    own answers are usually of a type the decoder does not take (``unsupported``): that is no error and is
    not said; any other reason is."""
    try:
        message = protocol.decode(frame, datetime.now(UTC))
    except DecodeError as exc:
        shown = frame_text(frame, protocol)
        where = f"terminal {exc.terminal_id} seq {exc.seq}: " if exc.terminal_id else ""
        return f"{where}{shown}" + ("" if exc.unsupported else f"  ({exc.reason})")
    events = "; ".join(json.dumps(_short_record(event), ensure_ascii=False) for event in message.events)
    return f"{message.type} terminal {message.terminal_id} seq {message.seq}: {events}"


def _short_record(event: ev.Event) -> dict[str, object]:
    record = ev.event_record(event)
    for key in ("protocol", "terminal_id", "seq", "received_at"):
        record.pop(key)
    return record


def replay_command(args: argparse.Namespace) -> int:
    protocol = protocols().get(args.protocol)
    if protocol is None:
        print(f"wuhai-iot replay: unknown protocol {args.protocol!r}", file=sys.stderr)
        return 2
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit():
        print(f"wuhai-iot replay: --to {args.to!r} is not HOST:PORT", file=sys.stderr)
        return 2
    try:
        frames = [frame for frame in read_frames(args.file, protocol) if not frame.answer]
    except (OSError, ValueError) as exc:
        print(f"wuhai-iot replay: {args.file}: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_replay(protocol, host, int(port), frames, args.wait))


async def _replay(protocol: Protocol, host: str, port: int, frames: list[CapturedFrame], wait_s: float) -> int:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as exc:
        print(f"wuhai-iot replay: cannot connect to {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 2
    closed = asyncio.Event()

    async def print_answers() -> None:
        framer = protocol.new_framer()
        while data := await reader.read(65536):
            for item in framer.feed(data):
                if isinstance(item, bytes):
                    print(f"<  {describe(protocol, whole_message(item))}", flush=True)
        closed.set()

    answers = asyncio.create_task(print_answers())
    try:
        for frame in frames:
            if frame.delay_s:
                await asyncio.sleep(frame.delay_s)
            if closed.is_set():
                break
            print(f">  {frame_text(frame.data, protocol)}", flush=True)
            writer.write(frame.data)
            await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closed.wait(), wait_s)
    except ConnectionError as exc:
        print(f"wuhai-iot replay: connection lost: {exc}", file=sys.stderr)
    finally:
        writer.close()
        answers.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await answers
    if closed.is_set():
        print("the platform closed the connection")
        return 1
    return 0


def _input_bytes(parts: list[str], protocol: Protocol) -> bytes:
    text = " ".join(parts).strip()
    digits = "".join(text.split())
    try:
        return bytes.fromhex(digits)
    except ValueError:
        if protocol.text_frames:
            return frame_bytes(text, protocol)
        raise ValueError(_hex_problem(digits)) from None


def _hex_problem(digits: str) -> str:
    """What is wrong with text that is not hex bytes, in words (not Python's own message)."""
    for position, char in enumerate(digits):
        if char not in string.hexdigits:
            return f"{char!r} (digit {position + 1}) is not a hex digit 0-9 or a-f"
    return f"{len(digits)} hex digits: a byte is two digits, so one is missing or extra"


def decode_command(args: argparse.Namespace) -> int:
    known = protocols()
    protocol = known.get(args.protocol)
    if protocol is None:
        print(f"wuhai-iot decode: unknown protocol {args.protocol!r}; known: {', '.join(sorted(known))}",
              file=sys.stderr)  # fmt: skip
        return 2
    if bool(args.hex) == bool(args.file):
        print("wuhai-iot decode: give the frame on the command line or --file FILE, not both", file=sys.stderr)
        return 2
    try:
        if args.file:
            data = b"".join(frame.data for frame in read_frames(args.file, protocol) if not frame.answer)
        else:
            data = _input_bytes(args.hex, protocol)
    except OSError as exc:
        print(f"wuhai-iot decode: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"wuhai-iot decode: not hex: {exc}", file=sys.stderr)
        return 2
    status = 0
    items = protocol.new_framer().feed(data)
    frames = [item for item in items if isinstance(item, bytes)]
    for item in items:
        if isinstance(item, Discarded):
            print(f"discarded {len(item.data)} bytes ({item.reason}): {item.data.hex(' ')}")
            status = EXIT_INVALID_FRAME
            continue
        item = whole_message(item)
        for line in protocol.describe(item):
            print(line)
        try:
            message = protocol.decode(item, datetime.now(UTC))
        except DecodeError as exc:
            where = f" (terminal {exc.terminal_id}, seq {exc.seq})" if exc.terminal_id else ""
            print(f"invalid frame{where}: {exc.reason}")
            status = EXIT_INVALID_FRAME
            continue
        device_time = message.device_time.isoformat().replace("+00:00", "Z") if message.device_time else "unset"
        print(f"{protocol.name} {message.type} terminal {message.terminal_id} seq {message.seq} "
              f"device time {device_time}")  # fmt: skip
        for event in message.events:
            record = ev.event_record(event)
            for key in ("protocol", "terminal_id", "seq", "received_at"):
                record.pop(key)
            print("  " + json.dumps(record, ensure_ascii=False))
    if not frames and not any(isinstance(item, Discarded) for item in items):
        print(f"incomplete frame: {len(data)} bytes given, more are needed for a whole {protocol.name} frame")
        status = EXIT_INVALID_FRAME
    return status


# --- capture -----------------------------------------------------------------------------------------


def _utc_text(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def capture_start_command(args: argparse.Namespace) -> int:
    protocol = protocols().get(args.protocol)
    if protocol is None:
        print(f"wuhai-iot capture start: unknown protocol {args.protocol!r}; known: {', '.join(sorted(protocols()))}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        terminal = protocol.canonical_terminal_id(args.terminal)
    except ValueError as exc:
        print(f"wuhai-iot capture start: {exc}", file=sys.stderr)
        return 2
    if not 0 < args.minutes <= MAX_CAPTURE_MINUTES:
        print(f"wuhai-iot capture start: --minutes must be more than 0 and at most {MAX_CAPTURE_MINUTES}",
              file=sys.stderr)  # fmt: skip
        return 2
    now = time.time()
    database = args.settings.database.path
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    path = (args.out or database.parent / "captures" / f"{protocol.name}-{terminal}-{stamp}.frames").absolute()
    return asyncio.run(_capture_start(args, protocol, terminal, path, now))


async def _capture_start(args: argparse.Namespace, protocol: Protocol, terminal: str, path: Path, now: float) -> int:
    conn = await db.connect(args.settings.database.path)
    try:
        async with db.immediate(conn):
            busy = await conn.execute_fetchall(
                "SELECT id FROM captures WHERE protocol = ? AND terminal_id = ? AND stopped_at IS NULL AND until > ?",
                (protocol.name, terminal, now),
            )
            if busy:
                print(f"wuhai-iot capture start: {protocol.name} terminal {terminal} is being captured already "
                      f"(capture {busy[0][0]}; 'wuhai-iot capture stop {busy[0][0]}' ends it)", file=sys.stderr)  # fmt: skip
                return EXIT_CAPTURE_REFUSED
            registered = await conn.execute_fetchall(
                "SELECT 1 FROM terminals WHERE protocol = ? AND terminal_id = ?", (protocol.name, terminal)
            )
            until = now + args.minutes * 60
            cursor = await conn.execute(
                "INSERT INTO captures (protocol, terminal_id, path, requested_by, requested_at, until)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (protocol.name, terminal, str(path), f"cli:{getpass.getuser()}", now, until),
            )
            capture_id = cursor.lastrowid
            await conn.execute(*audit.entry(f"cli:{getpass.getuser()}", "capture.start", "terminal",
                                            f"{protocol.name}:{terminal}", at=now,
                                            details={"capture": capture_id, "minutes": args.minutes,
                                                     "path": str(path)}))  # fmt: skip
        print(f"capture {capture_id}: {protocol.name} terminal {terminal} until {_utc_text(until)} to {path}")
        if not registered:
            print(f"note: {protocol.name} terminal {terminal} is not in the census: its LOGIN is refused, "
                  "but what it sends is recorded")  # fmt: skip
        row = await _wait_for(conn, capture_id, "started_at", args.wait)
    finally:
        await conn.close()
    if row is not None and row["problem"]:
        print(f"wuhai-iot capture start: the platform cannot record it: {row['problem']}", file=sys.stderr)
        return EXIT_CAPTURE_REFUSED
    if row is not None:
        print("recording: its frames are written as they arrive (wuhai-iot capture stop ends it early)")
    elif args.wait > 0:
        print(f"no running platform picked it up within {args.wait:g} s (is 'wuhai-iot serve' running with this "
              "configuration?); one that starts before its end will")  # fmt: skip
    return 0


async def _wait_for(conn: aiosqlite.Connection, capture_id: int, column: str, wait_s: float) -> aiosqlite.Row | None:
    """The capture's row once the platform has set ``column`` (or recorded a problem), None after ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        rows = await conn.execute_fetchall(
            "SELECT started_at, stopped_at, frames, problem, path FROM captures WHERE id = ?", (capture_id,)
        )
        if rows and (rows[0][column] is not None or rows[0]["problem"]):
            return rows[0]
        if time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.2)


def capture_list_command(args: argparse.Namespace) -> int:
    async def newest() -> list[aiosqlite.Row]:
        conn = await db.connect(args.settings.database.path)
        try:
            return await conn.execute_fetchall("SELECT * FROM captures ORDER BY id DESC LIMIT ?", (CAPTURE_LIST_ROWS,))
        finally:
            await conn.close()

    for row in asyncio.run(newest()):
        if row["problem"] and not row["frames"]:
            state = f"not recorded: {row['problem']}"
        elif row["stopped_at"] is not None:
            state = f"ended {_utc_text(row['stopped_at'])}" + (f" ({row['problem']})" if row["problem"] else "")
        elif row["started_at"] is not None:
            state = f"recording until {_utc_text(row['until'])}"
        else:
            state = f"waiting for a running platform, until {_utc_text(row['until'])}"
        frames = f"{row['frames']} frames\t" if row["stopped_at"] is not None else ""
        print(f"{row['id']}\t{row['protocol']} {row['terminal_id']}\t{state}\t{frames}{row['path']}")
    return 0


def capture_stop_command(args: argparse.Namespace) -> int:
    async def stop() -> int:
        conn = await db.connect(args.settings.database.path)
        try:
            now = time.time()
            async with db.immediate(conn):
                cursor = await conn.execute(
                    "UPDATE captures SET until = ? WHERE id = ? AND stopped_at IS NULL AND until > ?",
                    (now, args.id, now),
                )
                stopped = await conn.execute_fetchall(
                    "SELECT protocol, terminal_id FROM captures WHERE id = ?", (args.id,)
                ) if cursor.rowcount else []  # fmt: skip
                for protocol, terminal in stopped:
                    await conn.execute(*audit.entry(f"cli:{getpass.getuser()}", "capture.stop", "terminal",
                                                    f"{protocol}:{terminal}", at=now, details={"capture": args.id}))  # fmt: skip
            if not cursor.rowcount:
                print(f"wuhai-iot capture stop: capture {args.id} is not running", file=sys.stderr)
                return EXIT_CAPTURE_REFUSED
            row = await _wait_for(conn, args.id, "stopped_at", args.wait)
        finally:
            await conn.close()
        if row is None:
            print(f"capture {args.id} ends: the running platform closes its file within {CAPTURE_POLL_S:g} s")
        else:
            print(f"capture {args.id} ended: {row['frames']} frames in {row['path']}")
        return 0

    return asyncio.run(stop())


def allow_login_command(args: argparse.Namespace) -> int:
    from wuhai_iot.runner import run

    return run(_allow_login(args.settings.database.path, args.protocol, args.terminal_id))


async def _allow_login(path: Any, protocol: str, terminal_id: str) -> int:
    from wuhai_iot.storage import audit
    from wuhai_iot.storage.db import connect, immediate

    conn = await connect(path)
    try:
        async with immediate(conn):
            cursor = await conn.execute(
                "UPDATE terminal_sessions SET login_device_time = NULL WHERE protocol = ? AND terminal_id = ?",
                (protocol, terminal_id),
            )
            changed = cursor.rowcount
            if changed:
                await conn.execute(*audit.entry(None, "terminal.allow_login", "terminal", f"{protocol}:{terminal_id}"))
    finally:
        await conn.close()
    if not changed:
        print(f"wuhai-iot terminals: {protocol} terminal {terminal_id} has never logged in", file=sys.stderr)
        return 1
    print(f"the next LOGIN of {protocol} terminal {terminal_id} is accepted whatever its device time")
    return 0
