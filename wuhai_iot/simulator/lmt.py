"""A simulated LMT-4 lift monitor (../shared/protocols/lmt.md), built on ``wuhai_iot.protocols.lmt``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wuhai_iot.events import Door
from wuhai_iot.protocols import lmt
from wuhai_iot.protocols.base import Discarded
from wuhai_iot.protocols.blocks import hmac_auth
from wuhai_iot.simulator.device import AckOutcome
from wuhai_iot.simulator.lift_terminal import LiftSample, LiftTerminal

FIRMWARE = "SIM-LMT4"
EVENT_CODES = {kind: word for word, kind in lmt.FAULT_KINDS.items()}
DIRECTION_WORDS = {direction: word for word, direction in lmt.DIRECTIONS.items()}
DOOR_WORDS = {door: word for word, door in lmt.DOORS.items()}
MODE_WORDS = {mode: word for word, mode in lmt.MODES.items()}
ACK_OUTCOMES = {"OK": AckOutcome.DONE, "ERR": AckOutcome.DONE, "UNKNOWN": AckOutcome.REFUSED,
                "AUTH": AckOutcome.REFUSED, "LOGIN": AckOutcome.RELOGIN}  # fmt: skip


def floor_text(floor: int) -> str:
    return f"B{-floor}" if floor < 0 else str(floor)


def status_payload(sample: LiftSample) -> str:
    """The ``ST`` payload (status keys of the document)."""
    pairs = [f"fl={floor_text(sample.floor)}", f"dir={DIRECTION_WORDS[sample.direction]}"]
    if sample.door is not Door.UNKNOWN:
        pairs.append(f"door={DOOR_WORDS[sample.door]}")
    pairs += [
        f"run={int(sample.running)}",
        f"dz={int(sample.door_zone)}",
        f"occ={int(sample.occupied)}",
        f"spd={sample.speed_mps:.2f}",
        f"mode={MODE_WORDS.get(sample.mode, 'N')}",
        f"pwr={int(sample.power)}",
        f"ld={sample.load_pct}",
        f"sc={int(sample.safety_circuit)}",
    ]
    return ";".join(pairs)


class LmtTerminal(LiftTerminal):
    protocol_name = "lmt"
    buffer_limits = {"line": 2000}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._framer = lmt.LmtFramer()
        self._login_seq: int | None = None
        self._heartbeat_seqs: set[int] = set()

    def _reset_parser(self) -> None:
        self._framer = lmt.LmtFramer()

    def _time_text(self, at: float | None = None) -> str:
        return lmt.cst_text(datetime.fromtimestamp(self.device_time() if at is None else at, UTC))

    def login_frame(self, seq: int) -> bytes:
        time_text = self._time_text(self.login_clock())
        auth = "0"
        if self.key:
            material = (self.terminal_id + time_text).encode("ascii")
            auth = hmac_auth(self.key, material, 32, hex_digest=True)
        self._login_seq = seq
        payload = f"fw={FIRMWARE};iv={self.report_interval_s};key={auth}"
        return lmt.encode_line(self.terminal_id, seq, time_text, lmt.LOGIN, payload)

    def heartbeat_frame(self, seq: int) -> bytes:
        if len(self._heartbeat_seqs) > 16:  # answers that never came
            self._heartbeat_seqs.clear()
        self._heartbeat_seqs.add(seq)
        return lmt.encode_line(self.terminal_id, seq, self._time_text(), lmt.HEARTBEAT, "csq=20")

    # --- messages ---------------------------------------------------------------------------------

    def _enqueue_line(self, type_: str, payload: str, seq: int | None = None, at: float | None = None) -> None:
        seq = self.next_seq() if seq is None else seq
        self.enqueue(seq, lmt.encode_line(self.terminal_id, seq, self._time_text(at), type_, payload), "line")

    def enqueue_status(self, sample: LiftSample, seq: int, at: float) -> None:
        self._enqueue_line(lmt.STATUS, status_payload(sample), seq, at)

    def send_fault(self, kind: str, active: bool, floor: int | None = None) -> None:
        payload = f"code={EVENT_CODES.get(kind, kind)};st={int(active)}"
        if floor is not None:
            payload += f";fl={floor_text(floor)}"
        self._enqueue_line(lmt.EVENT, payload)

    def send_maintenance_start(self, card: int) -> None:
        self._enqueue_line(lmt.MAINT_START, f"card={card:08d}")

    def send_maintenance_end(self, card: int, items: int) -> None:
        self._enqueue_line(lmt.MAINT_END, f"card={card:08d};items={items}")

    # --- the platform's lines -----------------------------------------------------------------------

    def answers_received(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            if isinstance(frame, Discarded):
                continue
            line = frame.rstrip(b"\r\n")
            if len(line) < 4 or line[:1] != b"#" or line[-3:-2] != b"*" or (
                lmt.checksum(line[1:-3]) != int(line[-2:], 16)
            ):
                self.stats.decode_errors += 1
                continue
            fields = line[1:-3].decode("ascii").split(",", 5)
            if len(fields) < 6:
                self.stats.decode_errors += 1
                continue
            _, _, seq_text, _, type_, payload = fields
            if type_ == lmt.ACK:
                self._on_ack(int(seq_text), payload)
            elif type_ == lmt.COMMAND:
                self._on_command(int(seq_text), payload)
            else:
                self.stats.decode_errors += 1

    def _on_ack(self, seq: int, payload: str) -> None:
        word, _, rest = payload.partition(";")
        outcome = ACK_OUTCOMES.get(word, AckOutcome.DONE)
        if seq == self._login_seq:
            self._login_seq = None
            platform_time = None
            if rest.startswith("t="):
                platform_time = datetime.strptime(rest[2:], lmt.TIME_FORMAT).replace(tzinfo=lmt.CST).timestamp()
            self._login_answered(outcome if word in ("OK", "UNKNOWN", "AUTH") else AckOutcome.RELOGIN, platform_time)
        elif seq in self._heartbeat_seqs:
            self._heartbeat_seqs.discard(seq)
            self._heartbeat_answered(outcome)
        else:
            self._acknowledged(seq, outcome, word == "OK")

    def _on_command(self, seq: int, payload: str) -> None:
        key, _, value = payload.partition("=")
        self._enqueue_line(lmt.COMMAND_REPLY, f"cmd={seq};res={'OK' if key in ('q', 'iv', 'reboot') else 'NO'}")
        if key == "q" and value == "ST":
            self.report_status_now()
        elif key == "iv" and value.isdigit():
            self.report_interval_s = int(value)
        elif key == "reboot":
            self.disconnect()

