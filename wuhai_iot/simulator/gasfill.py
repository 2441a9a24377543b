"""A simulated GF-3 filling-scale controller (../shared/protocols/gasfill.md), built on
``wuhai_iot.protocols.gasfill``.

The controller asks before every fill and waits 3 s for the decision; without one (or without a
connection) it does not open the valve. FILL_RESULTs go through the outbox (kept up to 500 offline).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import date
from typing import Any

from wuhai_iot import events as ev
from wuhai_iot.protocols import gasfill
from wuhai_iot.protocols.base import Discarded
from wuhai_iot.protocols.blocks import hmac_auth
from wuhai_iot.simulator.device import AckOutcome, SimulatedDevice

FIRMWARE = "SIM-GF32"
DECISION_WAIT_S = 3.0
READY_STATUS = 0b101  # scale ready, valve closed, reader ok
# §3 ACK results: 0 accepted, 1 bad content (final), 2 and 3 close, 4 log in first.
ACK_OUTCOMES = {0: AckOutcome.DONE, 1: AckOutcome.DONE, 2: AckOutcome.REFUSED, 3: AckOutcome.REFUSED,
                4: AckOutcome.RELOGIN}  # fmt: skip
_decision_body = gasfill.FillDecisionBody.compile()
_tag_info_body = gasfill.TagInfoBody.compile()


def _tag(tag_hex: str) -> bytes:
    return bytes.fromhex(tag_hex)


class GasfillController(SimulatedDevice):
    protocol_name = "gasfill"
    seq_modulus = 256
    default_heartbeat_s = float(gasfill.HEARTBEAT_INTERVAL_S)
    buffer_limits = {"fill_result": 500}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        station, _, scale = self.terminal_id.partition("-")
        self.station, self.scale = int(station), int(scale)
        self._framer = gasfill.GasfillFramer()
        self._login_seq: int | None = None
        self._heartbeat_seqs: set[int] = set()
        self._decisions: dict[int, tuple[asyncio.Future[ev.FillDecision | None], float]] = {}
        self._tag_queries: deque[tuple[asyncio.Future[ev.TagInfo | None], float]] = deque()

    def _reset_parser(self) -> None:
        self._framer = gasfill.GasfillFramer()

    def _frame(self, cmd: int, seq: int, body: bytes) -> bytes:
        return gasfill.encode_frame(self.station, self.scale, cmd, seq, body)

    def login_frame(self, seq: int) -> bytes:
        clock = self.login_clock()
        auth = bytes(16)
        if self.key:
            material = self.station.to_bytes(4, "little") + bytes([self.scale]) + clock.to_bytes(4, "little")
            auth = hmac_auth(self.key, material)
        self._login_seq = seq
        body = gasfill.Bodies[gasfill.LOGIN].build({"firmware": FIRMWARE, "clock": clock, "auth": auth})
        return self._frame(gasfill.LOGIN, seq, body)

    def heartbeat_frame(self, seq: int) -> bytes:
        self._heartbeat_seqs = {seq}
        return self._frame(gasfill.HEARTBEAT, seq, bytes([READY_STATUS]))

    # --- requests and results ---------------------------------------------------------------------

    async def request_fill(
        self, tag: str, gross_before_g: int, operator_card: int, medium: str
    ) -> tuple[int, ev.FillDecision | None]:
        """Ask to fill; (the request's SEQ, the decision — None when none came within 3 s: fail closed)."""
        seq = self.next_seq()
        if not self.online:
            return seq, None
        future: asyncio.Future[ev.FillDecision | None] = asyncio.get_running_loop().create_future()
        self._decisions[seq] = (future, time.monotonic())
        body = gasfill.Bodies[gasfill.FILL_REQUEST].build(
            {"tag": _tag(tag), "gross_before": gross_before_g, "operator_card": operator_card,
             "medium": gasfill.MEDIUM_CODES[medium]}
        )  # fmt: skip
        self.stats.requests += 1
        self._write(self._frame(gasfill.FILL_REQUEST, seq, body))
        try:
            return seq, await asyncio.wait_for(future, DECISION_WAIT_S)
        except TimeoutError:
            self.stats.request_timeouts += 1
            return seq, None
        finally:
            self._decisions.pop(seq, None)

    async def query_tag(self, tag: str) -> ev.TagInfo | None:
        """Scan a tag at intake; None when no answer came within 3 s."""
        if not self.online:
            return None
        future: asyncio.Future[ev.TagInfo | None] = asyncio.get_running_loop().create_future()
        self._tag_queries.append((future, time.monotonic()))
        self.stats.requests += 1
        self._write(self._frame(gasfill.TAG_QUERY, self.next_seq(), gasfill.Bodies[gasfill.TAG_QUERY].build(
            {"tag": _tag(tag)})))  # fmt: skip
        try:
            return await asyncio.wait_for(future, DECISION_WAIT_S)
        except TimeoutError:
            self.stats.request_timeouts += 1
            return None

    def send_fill_result(
        self,
        request_seq: int,
        tag: str,
        gross_before_g: int,
        gross_after_g: int,
        duration_s: int,
        outcome: int,
        ended_at: float | None = None,
    ) -> None:
        seq = self.next_seq()
        body = gasfill.Bodies[gasfill.FILL_RESULT].build(
            {"request_seq": request_seq, "tag": _tag(tag), "gross_before": gross_before_g,
             "gross_after": gross_after_g, "duration": duration_s, "outcome": outcome,
             "end_time": int(self.device_time() if ended_at is None else ended_at)}
        )  # fmt: skip
        self.enqueue((gasfill.FILL_RESULT, seq), self._frame(gasfill.FILL_RESULT, seq, body), "fill_result")

    def connection_closed(self) -> None:
        for future, _ in list(self._decisions.values()):
            if not future.done():
                future.set_result(None)
        while self._tag_queries:
            future, _ = self._tag_queries.popleft()
            if not future.done():
                future.set_result(None)

    # --- the platform's frames ----------------------------------------------------------------------

    def answers_received(self, data: bytes) -> None:
        for frame in self._framer.feed(data):
            if isinstance(frame, Discarded):
                self.stats.decode_errors += 1
                continue
            cmd, body = frame[3], frame[gasfill.HEADER_SIZE : -3]
            if cmd == gasfill.ACK:
                self._on_ack(body[0], body[1], body[2])
            elif cmd == gasfill.FILL_DECISION:
                fields = _decision_body.parse(body)
                decision = ev.FillDecision(
                    permit=fields.decision == 0,
                    reason=fields.reason,
                    net_limit_g=fields.net_limit,
                    cylinder_code=fields.cylinder_code,
                    message=fields.message.decode("utf-8", "replace"),
                )
                self._answer(self._decisions.get(fields.request_seq), decision)
            elif cmd == gasfill.TAG_INFO:
                fields = _tag_info_body.parse(body)
                day = fields.next_inspection
                info = ev.TagInfo(
                    found=bool(fields.found),
                    cylinder_code=fields.cylinder_code,
                    medium=ev.MEDIA.get(fields.medium, "OTHER"),
                    next_inspection=date(day // 10000, day // 100 % 100, day % 100) if day else None,
                    status=fields.status,
                    owner_station=fields.owner_station,
                )
                self._answer(self._tag_queries.popleft() if self._tag_queries else None, info)
            else:
                self.stats.decode_errors += 1

    def _answer(self, waiting: tuple[asyncio.Future, float] | None, answer: object) -> None:  # type: ignore[type-arg]
        if waiting is None or waiting[0].done():
            return
        self.stats.answers += 1
        if self.stats.keep_latencies:
            self.stats.latencies.append(time.monotonic() - waiting[1])
        waiting[0].set_result(answer)

    def _on_ack(self, acked_cmd: int, acked_seq: int, result: int) -> None:
        outcome = ACK_OUTCOMES.get(result, AckOutcome.DONE)
        if acked_cmd == gasfill.LOGIN and acked_seq == self._login_seq:
            self._login_answered(outcome if result in (0, 2, 3) else AckOutcome.RELOGIN)
        elif acked_cmd == gasfill.HEARTBEAT and acked_seq in self._heartbeat_seqs:
            self._heartbeat_seqs.clear()
            self._heartbeat_answered(outcome)
        elif acked_cmd in (gasfill.FILL_REQUEST, gasfill.TAG_QUERY):
            # "Log in first" (or bad content): no decision will come; the controller stays closed.
            waiting = self._decisions.get(acked_seq) if acked_cmd == gasfill.FILL_REQUEST else (
                self._tag_queries.popleft() if self._tag_queries else None)  # fmt: skip
            if waiting is not None and not waiting[0].done():
                waiting[0].set_result(None)
            if outcome is AckOutcome.RELOGIN:
                self._relogin()
        else:
            self._acknowledged((acked_cmd, acked_seq), outcome, result == 0)
