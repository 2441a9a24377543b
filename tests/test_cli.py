"""The command line's own conventions: configuration files, the environment variable, decode."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES

from wuhai_iot.cli import main
from wuhai_iot.config import ENV_VAR, ConfigError, load_config


def test_every_key_is_optional_and_relative_paths_follow_the_file(tmp_path: Path) -> None:
    file = tmp_path / "etc" / "wuhai.toml"
    file.parent.mkdir()
    file.write_text('[database]\npath = "db/x.sqlite3"\n[protocols.lmt]\nport = 6000\n', encoding="utf-8")
    config = load_config(file)
    assert config.database.path == tmp_path / "etc" / "db" / "x.sqlite3"
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)
    assert config.protocol("lmt").port == 6000 and config.protocol("elink").port is None
    assert config.rules.trapped_after_s == 40


def test_environment_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[web]\nport = 9090\n", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(file))
    assert load_config(None).web.port == 9090


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[web]\nprot = 1\n", "web.prot: unknown key"),
        ("[rules]\ntrapped_after_s = 'soon'\n", "rules.trapped_after_s: must be a number"),
        ("[webb]\n", "webb: unknown section"),
        ("[web\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_config(file)
    assert main(["serve", "--print-config", "--config", str(file)]) == 2
    assert message in capsys.readouterr().err


def test_missing_configuration_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read configuration" in capsys.readouterr().err


def test_decode_prints_events_of_a_vendor_example(capsys: pytest.CaptureFixture[str]) -> None:
    hex_text = "".join(
        line for line in (FIXTURES / "elink" / "status_vendor_example.hex").read_text().splitlines()
        if not line.startswith("#")
    )  # fmt: skip
    assert main(["decode", "elink", hex_text]) == 0
    out = capsys.readouterr().out
    assert "elink STATUS terminal 8613000100020003 seq 2 device time 2025-11-29T07:06:45Z" in out
    assert '"floor":7' in out.replace(" ", "")


def test_decode_explains_an_invalid_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "elink", "45 4c 01 00 1b 86 13"]) == 1
    assert "incomplete frame" in capsys.readouterr().out
    assert main(["decode", "elink", "00 11 22"]) == 1
    assert "discarded 3 bytes (no frame start)" in capsys.readouterr().out
    assert main(["decode", "nosuch", "00"]) == 2
    assert main(["decode", "elink", "zz"]) == 2


def test_decode_reads_a_frames_file_of_hex_or_text_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A binary protocol's fixture file is a frames file as it is ('#' lines are comments).
    assert main(["decode", "elink", "--file", str(FIXTURES / "elink" / "status_batch_3.hex")]) == 0
    assert "elink STATUS_BATCH terminal" in capsys.readouterr().out
    # A text protocol takes its frames as text, one a line; ';' starts a comment, '<' an answer (skipped).
    spec_login = (FIXTURES / "lmt" / "spec_login.line").read_bytes().decode().strip()
    spec_status = (FIXTURES / "lmt" / "spec_status.line").read_bytes().decode().strip()
    frames = tmp_path / "lmt.frames"
    frames.write_text(f"; a terminal's start\n{spec_login}\n< #LMT,whatever\n+0.5 {spec_status}\n", encoding="utf-8")
    assert main(["decode", "lmt", "--file", str(frames)]) == 0
    out = capsys.readouterr().out
    assert "lmt LOGIN terminal" in out and "lmt ST terminal" in out and "whatever" not in out
    # Text given on the command line is taken as text for a text protocol only.
    assert main(["decode", "lmt", spec_status]) == 0
    assert main(["decode", "elink", spec_status]) == 2
    assert main(["decode", "elink"]) == 2  # neither frames nor --file


def test_decode_says_what_is_wrong_with_the_hex(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "elink", "45 4c 0"]) == 2
    assert "5 hex digits: a byte is two digits" in capsys.readouterr().err
    assert main(["decode", "elink", "45 4g"]) == 2
    assert "'g' (digit 4) is not a hex digit" in capsys.readouterr().err


def test_import_of_a_missing_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "wuhai-iot.toml"
    config.write_text('[database]\npath = "wuhai-iot.sqlite3"\n', encoding="utf-8")
    assert main(["import", str(tmp_path / "nonexist.csv"), "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert "nonexist.csv: no such file" in error and "cannot tell the kind" not in error


def test_log_times_are_china_time_and_marked() -> None:
    import logging

    from wuhai_iot.logs import TextFormatter

    record = logging.LogRecord("wuhai_iot.server", logging.INFO, __file__, 1, "web on %s", ("x",), None)
    record.created = 1764400005.25  # 2025-11-29 07:06:45.250 UTC
    line = TextFormatter().format(record)
    assert line == "2025-11-29 15:06:45.250+08:00 INFO wuhai_iot.server: web on x"
