"""ACME AL-1: the wuhai-iot protocol contract, and what is particular to this protocol."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from acme_lift import AcmeProtocol, encode_line, login_auth

from wuhai_iot import events as ev
from wuhai_iot.protocols.base import DecodeError
from wuhai_iot.testing import ProtocolContract, fixture_bytes

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
acme = AcmeProtocol()


class TestAcmeContract(ProtocolContract, protocol=acme, fixtures=FIXTURES):
    """Everything every wuhai-iot protocol promises (decoding, splits, garbage, resends, encoders, login)."""


def test_readme_examples_are_byte_exact() -> None:
    assert encode_line("AC00012345", 2, "1764400030", "HB") == b"AL1,AC00012345,2,1764400030,HB*04\r\n"
    assert login_auth("acme-secret-0001", "AC00012345", "1764400000") == "29268cd52979c628"
    ack = acme.encode_reply(acme.decode(fixture_bytes(FIXTURES / "status_running.line"), NOW),
                            ev.Ack(ev.AckResult.ACCEPTED, NOW), 0, datetime.fromtimestamp(1764400041, UTC))  # fmt: skip
    assert ack == fixture_bytes(FIXTURES / "platform_ack.line")


def test_unset_clock_is_recognised_within_the_utc_day() -> None:
    line = fixture_bytes(FIXTURES / "status_clock_unset.line")
    message = acme.decode(line, NOW)
    assert message.device_time is None and message.dedup_key == "0@2026-12-01:ST:5"
    assert acme.decode(line, datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)).dedup_key != message.dedup_key


@pytest.mark.parametrize(
    ("body", "reason"),
    [("fl=1;door=C", "run required"), ("fl=1;run=2;door=C", "run=2"), ("fl=1;run=1;run=0;door=C", "given twice")],
)
def test_bad_status_bodies_are_answered_bad_content(body: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as error:
        acme.decode(encode_line("AC00012345", 9, "1764400000", "ST", body), NOW)
    assert acme.encode_error(error.value, 0, NOW) == encode_line("AC00012345", 9, str(int(NOW.timestamp())), "ACK", "r=1")


def test_no_commands() -> None:
    assert not acme.commands
    with pytest.raises(ValueError, match="no platform commands"):
        acme.encode_command("AC00012345", ev.TerminalCommand(ev.CommandCode.RESTART), 1, NOW)


def test_terminal_ids() -> None:
    assert acme.canonical_terminal_id("AC00012345") == "AC00012345"
    for bad in ("abc", "AC0001234", "ac00012345", "AC000123456"):
        with pytest.raises(ValueError, match="AC and 8 digits"):
            acme.canonical_terminal_id(bad)
