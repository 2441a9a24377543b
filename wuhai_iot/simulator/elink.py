"""A simulated ELink-200 terminal (../shared/protocols/elink.md), built on ``wuhai_iot.protocols.elink``."""

from __future__ import annotations

import struct
from typing import Any

from wuhai_iot.protocols import elink
from wuhai_iot.protocols.base import Discarded
from wuhai_iot.protocols.blocks import hmac_auth
from wuhai_iot.simulator.device import AckOutcome, Outgoing
from wuhai_iot.simulator.lift_terminal import LiftSample, LiftTerminal

FIRMWARE = "SIM-EL13"
MAX_BATCH = 60
FAULT_CODES = {kind: code for code, kind in elink.FAULT_KINDS.items()}
DIRECTION_CODES = {direction: code for code, direction in enumerate(elink.DIRECTIONS)}
DOOR_CODES = {door: code for code, door in enumerate(elink.DOORS)}
# §5 ACK results: 0 accepted; 1 bad content and 5 unsupported are final (delete); 2, 3 close; 4 log in again.
ACK_OUTCOMES = {0: AckOutcome.DONE, 1: AckOutcome.DONE, 5: AckOutcome.DONE,
                2: AckOutcome.REFUSED, 3: AckOutcome.REFUSED, 4: AckOutcome.RELOGIN}  # fmt: skip
SEQ_AND_TIME = struct.Struct(">HI")  # §1: sequence at offset 14, device time at 16
ACK_FIELDS = struct.Struct(">BHB")  # §5 ACK body: acknowledged type, sequence, result

_status_record = elink.StatusRecord.compile()


def status_record(sample: LiftSample) -> bytes:
    """The 12-byte status record of §3."""
    flags = (
        sample.running
        | sample.door_zone << 1
        | sample.occupied << 2
        | (sample.mode == "inspection") << 3
        | (sample.mode == "fire") << 4
        | sample.power << 5
        | sample.overload << 6
        | sample.safety_circuit << 7
        | sample.door_lock << 8
        | (sample.mode == "independent") << 9
    )
    return _status_record.build(  # type: ignore[no-any-return]
        {
            "floor": sample.floor,
            "direction": DIRECTION_CODES[sample.direction],
            "door": DOOR_CODES[sample.door],
            "flags": flags,
            "speed": round(sample.speed_mps * 1000),
            "load": sample.load_pct,
            "trips": sample.trip_count,
        }
    )


def login_frame(bcd: bytes, key: str | None, clock: int, seq: int, interval_s: int, firmware: str = FIRMWARE) -> bytes:
    """A LOGIN (§2) at device time ``clock``, signed with ``key`` (keyless: an all-zero signature)."""
    auth = hmac_auth(key, bcd + clock.to_bytes(4, "big")) if key else bytes(16)
    body = elink.Bodies[elink.LOGIN].build({"firmware": firmware, "interval": interval_s, "auth": auth})
    return elink.encode_frame(bcd, elink.LOGIN, seq, clock, body)


class ElinkTerminal(LiftTerminal):
    protocol_name = "elink"
    buffer_limits = {"status": 3600, "other": 256}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._bcd = bytes.fromhex(self.terminal_id)
        self._framer = elink.ElinkFramer()
        self._heartbeat_seqs: set[int] = set()
        self._records: dict[LiftSample, bytes] = {}
        # A STATUS frame with seq and time 0, restamped for each sample (the hot path of load tests).
        self._status_template = elink.encode_frame(self._bcd, elink.STATUS, 0, 0, bytes(12))

    def _reset_parser(self) -> None:
        self._framer = elink.ElinkFramer()

    def _frame(self, type_code: int, body: bytes, seq: int | None = None, at: float | None = None) -> bytes:
        seq = self.next_seq() if seq is None else seq
        return elink.encode_frame(self._bcd, type_code, seq, int(self.device_time() if at is None else at), body)

    def login_frame(self, seq: int) -> bytes:
        return login_frame(self._bcd, self.key, self.login_clock(), seq, self.report_interval_s)

    def heartbeat_frame(self, seq: int) -> bytes:
        if len(self._heartbeat_seqs) > 16:  # answers that never came
            self._heartbeat_seqs.clear()
        self._heartbeat_seqs.add(seq)
        return self._frame(elink.HEARTBEAT, bytes([20]), seq)

    # --- messages ---------------------------------------------------------------------------------

    def enqueue_status(self, sample: LiftSample, seq: int, at: float) -> None:
        record = self._records.get(sample)
        if record is None:
            if len(self._records) > 64:
                self._records.clear()
            record = self._records[sample] = status_record(sample)
        frame = bytearray(self._status_template)
        SEQ_AND_TIME.pack_into(frame, 14, seq, int(at))
        frame[elink.HEADER_SIZE : elink.HEADER_SIZE + 12] = record
        frame[-2:] = elink.crc16(memoryview(frame)[2:-2]).to_bytes(2, "big")
        self.enqueue((elink.STATUS, seq), bytes(frame), "status", material=(int(at), record))

    def _enqueue_other(self, type_code: int, body: bytes) -> None:
        seq = self.next_seq()
        self.enqueue((type_code, seq), self._frame(type_code, body, seq), "other")

    def send_fault(self, kind: str, active: bool, floor: int | None = None) -> None:
        code = FAULT_CODES[kind] if kind in FAULT_CODES else int(kind)
        sample = self.last_sample or LiftSample()
        flags = int.from_bytes(status_record(sample)[3:5], "big")
        body = elink.Bodies[elink.FAULT].build(
            {"code": code, "state": int(active), "floor": -128 if floor is None else floor, "flags": flags}
        )
        self._enqueue_other(elink.FAULT, body)

    def send_maintenance_start(self, card: int) -> None:
        self._enqueue_other(elink.MAINT_START, elink.Bodies[elink.MAINT_START].build({"card": card}))

    def send_maintenance_end(self, card: int, items: int) -> None:
        self._enqueue_other(elink.MAINT_END, elink.Bodies[elink.MAINT_END].build({"card": card, "items": items}))

    def pack_buffered(self, items: list[Outgoing]) -> list[Outgoing]:
        """Samples kept offline go out as STATUS_BATCH (up to 60 each), with their original times;
        a batch carries the sequence and time of its first sample."""
        packed: list[Outgoing] = []
        run: list[Outgoing] = []

        def close_run() -> None:
            for start in range(0, len(run), MAX_BATCH):
                chunk = run[start : start + MAX_BATCH]
                body = bytes([len(chunk)]) + b"".join(
                    at.to_bytes(4, "big") + record for at, record in (item.material for item in chunk)  # type: ignore[misc]
                )
                seq = chunk[0].key[1]  # type: ignore[index]
                first_time = chunk[0].material[0]  # type: ignore[index]
                frame = self._frame(elink.STATUS_BATCH, body, seq, first_time)
                packed.append(Outgoing((elink.STATUS_BATCH, seq), frame, "status", weight=len(chunk),
                                       created=chunk[0].created))  # fmt: skip
            run.clear()

        for item in items:
            if item.category == "status" and item.sent_at is None and item.material is not None:
                run.append(item)
                continue
            close_run()
            packed.append(item)
        close_run()
        return packed

    # --- the platform's frames ----------------------------------------------------------------------

    def answers_received(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            if isinstance(frame, Discarded):
                self.stats.decode_errors += 1
                continue
            type_code = frame[13]
            if type_code == elink.ACK:
                self._on_ack(frame)
            elif type_code == elink.COMMAND:
                self._on_command(frame)
            else:
                self.stats.decode_errors += 1

    def _on_ack(self, frame: bytes) -> None:
        acked_type, acked_seq, result = ACK_FIELDS.unpack_from(frame, elink.HEADER_SIZE)
        outcome = ACK_OUTCOMES.get(result, AckOutcome.DONE)
        if acked_type == elink.LOGIN:
            platform_time = int.from_bytes(frame[24:28], "big") if len(frame) >= 30 else None
            self._login_answered(outcome if result in (0, 2, 3) else AckOutcome.RELOGIN, platform_time)
        elif acked_type == elink.HEARTBEAT:
            if acked_seq in self._heartbeat_seqs:
                self._heartbeat_seqs.discard(acked_seq)
                self._heartbeat_answered(outcome)
        else:
            self._acknowledged((acked_type, acked_seq), outcome, result == 0)

    def _on_command(self, frame: bytes) -> None:
        command_seq = int.from_bytes(frame[14:16], "big")
        code, arguments = frame[elink.HEADER_SIZE], frame[elink.HEADER_SIZE + 1 : -2]
        known = code in (1, 2, 3, 4)
        reply = elink.Bodies[elink.COMMAND_REPLY].build(
            {"command_seq": command_seq, "result": 0 if known else 2, "data": b""}
        )
        self._enqueue_other(elink.COMMAND_REPLY, reply)
        if code == 1:
            self.report_status_now()
        elif code == 2 and len(arguments) >= 2:
            self.report_interval_s = int.from_bytes(arguments[:2], "big")
        elif code == 3:
            self.disconnect()
        elif code == 4 and len(arguments) >= 4:
            self.set_clock(int.from_bytes(arguments[:4], "big"))
