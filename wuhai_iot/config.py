"""Configuration: one TOML file, every key optional.

The file is named by ``--config``, else by ``WUHAI_IOT_CONFIG``; without either the defaults apply.
Relative paths in it are relative to the file's directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "WUHAI_IOT_CONFIG"


class ConfigError(ValueError):
    """The configuration file cannot be read or has a wrong key or value."""


@dataclass
class DatabaseConfig:
    path: Path = Path("data/wuhai-iot.sqlite3")


@dataclass
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: int = 8


@dataclass
class ProtocolConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int | None = None
    """None: the protocol's vendor default port."""


@dataclass
class RulesConfig:
    """Thresholds of ../shared/domain.md; the defaults are the document's."""

    trapped_after_s: float = 40
    trapped_clear_s: float = 10
    stopped_outside_zone_s: float = 45
    door_open_moving_records: int = 3
    door_open_moving_s: float = 5
    overspeed_factor: float = 1.2
    overspeed_records: int = 2
    offline_interval_factor: float = 3
    offline_min_s: float = 180
    power_lost_s: float = 10
    flapping_count: int = 5
    flapping_window_s: float = 600
    rescue_arrival_limit_min: float = 30
    maintenance_interval_days: int = 15
    maintenance_min_visit_min: float = 20
    maintenance_max_speed_kmh: float = 60
    maintenance_min_gap_min: float = 10
    maintenance_end_within_h: float = 4
    inspection_due_days: int = 30
    household_refill_min_h: float = 12
    household_fill_tolerance_kg: float = 0.5
    fill_tolerance_pct: float = 3
    fill_without_permit_kg: float = 0.2
    tamper_below_tare_kg: float = 0.3
    tick_interval_s: float = 1
    """How often duration and offline conditions are checked without a frame; 0 = never (tests drive time)."""


@dataclass
class RetentionConfig:
    raw_status_days: int = 7
    records_years: int = 4
    raw_frames_per_terminal: int = 50
    prune_step_rows: int = 2000


@dataclass
class NotifyConfig:
    webhook_url: str = ""
    """POST every alarm change as JSON here; empty = no webhook."""
    webhook_retries: int = 5
    webhook_timeout_s: float = 10


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    web: WebConfig = field(default_factory=WebConfig)
    protocols: dict[str, ProtocolConfig] = field(default_factory=dict)
    rules: RulesConfig = field(default_factory=RulesConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    source: Path | None = None
    """The file this was read from, if any."""

    def protocol(self, name: str) -> ProtocolConfig:
        return self.protocols.get(name) or ProtocolConfig()

    def to_toml(self) -> str:
        """The effective configuration, as TOML (``serve --print-config``)."""
        lines: list[str] = []
        for section in ("database", "web", "rules", "retention", "notify"):
            lines.append(f"[{section}]")
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        for name, proto in sorted(self.protocols.items()):
            lines.append(f"[protocols.{name}]")
            for key, value in dataclasses.asdict(proto).items():
                if value is not None:
                    lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _section(cls: type, data: Any, where: str, base: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{where}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"unknown key {key!r} in [{where}]; known: {', '.join(known)}")
        default = getattr(cls(), key)
        if isinstance(default, Path):
            value = Path(value)
            values[key] = value if value.is_absolute() else base / value
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"[{where}] {key} must be true or false")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"[{where}] {key} must be a number")
            if value < 0:
                raise ConfigError(f"[{where}] {key} must not be negative")
        values[key] = value
    return cls(**values)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration named by ``path`` or ``WUHAI_IOT_CONFIG``; defaults when neither is set."""
    if path is None:
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        config = Config()
        config.database.path = Path.cwd() / config.database.path
        return config
    file = Path(path).resolve()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {file}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration {file} is not valid TOML: {exc}") from None
    base = file.parent
    sections = {"database": DatabaseConfig, "web": WebConfig, "rules": RulesConfig, "retention": RetentionConfig,
                "notify": NotifyConfig}
    unknown = set(data) - set(sections) - {"protocols"}
    if unknown:
        raise ConfigError(f"unknown section(s) {', '.join(sorted(unknown))} in {file}")
    config = Config(source=file)
    config.database.path = base / config.database.path
    for name, cls in sections.items():
        if name in data:
            setattr(config, name, _section(cls, data[name], name, base))
    protocols = data.get("protocols", {})
    if not isinstance(protocols, dict):
        raise ConfigError("[protocols] must hold one table per protocol")
    for name, section in protocols.items():
        config.protocols[name] = _section(ProtocolConfig, section, f"protocols.{name}", base)
    return config
