"""Configuration: one TOML file, every key optional.

The file is named by ``--config``, else by ``WUHAI_IOT_CONFIG``; without either the defaults apply.
Relative paths in it are relative to the file's directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

ENV_VAR = "WUHAI_IOT_CONFIG"


class ConfigError(ValueError):
    """The configuration file cannot be read or has wrong keys or values."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]
        """One ``section.key: what is wrong`` a problem."""


@dataclass
class DatabaseConfig:
    path: Path = Path("data/wuhai-iot.sqlite3")


@dataclass
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: int = 8
    certificate: Path | None = None
    """With ``key``: the web port serves HTTPS from this PEM certificate (chain) file."""
    key: Path | None = None
    behind_proxy: bool = False
    """True when a reverse proxy on this machine serves the web port: for requests from loopback, the client's
    address is the proxy's ``X-Forwarded-For`` and the scheme its ``X-Forwarded-Proto`` (https: Secure cookies)."""
    secure_cookies: bool = False
    """Mark session cookies Secure even when the request did not say HTTPS (TLS in front)."""


@dataclass
class ProtocolConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int | None = None
    """None: the protocol's vendor default port."""
    capture_dir: Path | None = None
    """Record every connection's frames to a frames file in this folder (``wuhai-iot replay`` sends one)."""


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
    gas_leak_single_pct: float = 20
    """Vehicle gas detector: one record at or above this % LEL raises gas_leak ..."""
    gas_leak_double_pct: float = 10
    """... or two records in a row at or above this one; it clears below gas_leak_clear_pct for gas_leak_clear_s."""
    gas_leak_clear_pct: float = 5
    gas_leak_clear_s: float = 60
    working_pressure_cng_mpa: float = 20
    working_pressure_lng_mpa: float = 1.6
    overpressure_factor: float = 1.1
    fill_rise_cng_mpa: float = 2
    """A vehicle's cylinder pressure rising this much while it stands still is a fill (CNG) ..."""
    fill_rise_lng_mpa: float = 0.3
    """... (LNG)."""
    fill_window_min: float = 30
    """The rise counts between records at most this far apart; the station's FILL_RESULT must come within it."""
    fill_max_speed_kmh: float = 5
    station_radius_m: float = 300
    """A fill within this distance of a station licensed for the medium is at that station."""
    cylinder_unseen_days: float = 7
    on_road_speed_kmh: float = 10
    vehicle_offline_h: float = 24
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
class LimitsConfig:
    """What devices and web clients can make the platform hold, whatever they send (SECURITY.md).
    A count of 0 means no limit."""

    login_deadline_s: float = 30
    """A device connection that has not logged in this long after it opened is closed."""
    pre_login_bytes: int = 16_384
    """Bytes (frames and garbage) a device connection may send before it logs in; then it is closed."""
    idle_intervals: float = 3
    """A logged-in device connection silent for this many of its report intervals is closed ..."""
    idle_min_s: float = 180
    """... but never sooner than this."""
    connections_per_address: int = 500
    """Device connections from one address, per listener (4G carriers put many terminals behind one)."""
    loopback_unlimited: bool = True
    """Loopback addresses (a local proxy, the simulator) are not limited per address."""
    connections_per_listener: int = 30_000
    frame_log_mb: float = 64
    """Memory for the raw frames kept for the lift pages (``retention.raw_frames_per_terminal`` each)."""
    web_header_timeout_s: float = 15
    """A web connection must send a request's headers within this time (and is closed after this long idle)."""
    web_body_idle_s: float = 30
    """A request body that stops arriving for this long is cut off."""


@dataclass
class LogConfig:
    level: str = "INFO"
    format: str = "text"
    """``text`` (one readable line) or ``json`` (one object a line)."""
    file: Path | None = None
    """None: standard error (which the journal and ``docker logs`` collect)."""


@dataclass
class PublicConfig:
    """The public page of progress and effect (``/public``, ``/public.json``), open to anyone."""

    enabled: bool = True
    cache_s: float = 60
    """How long one set of figures is served (at most 60 s: a longer setting is cut to 60)."""
    min_objects: int = 5
    """A figure over fewer objects than this is shown as a range, never as the number."""
    requests_per_minute: int = 60
    """Per client address; more are answered 429."""


@dataclass
class AcceptanceConfig:
    """When an installed terminal counts as accepted (``/reports/installations``)."""

    valid_days: int = 7
    """Consecutive CST days with valid data, on or after the installation date."""
    lapse_days: int = 30
    """An accepted terminal silent this many days is listed again, as lapsed."""


@dataclass
class SubsidyConfig:
    """Yuan paid per accepted terminal of each kind; 0 (the default): no subsidy for that kind."""

    elevator: float = 0
    """A lift's terminal (ELink, LMT)."""
    filling_scale: float = 0
    """A filling scale's controller (GF-3)."""
    vehicle: float = 0
    """A vehicle's terminal (JT/T 808)."""


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    web: WebConfig = field(default_factory=WebConfig)
    protocols: dict[str, ProtocolConfig] = field(default_factory=dict)
    rules: RulesConfig = field(default_factory=RulesConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    log: LogConfig = field(default_factory=LogConfig)
    public: PublicConfig = field(default_factory=PublicConfig)
    acceptance: AcceptanceConfig = field(default_factory=AcceptanceConfig)
    subsidy: SubsidyConfig = field(default_factory=SubsidyConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    source: Path | None = None
    """The file this was read from, if any."""

    def protocol(self, name: str) -> ProtocolConfig:
        return self.protocols.get(name) or ProtocolConfig()

    def to_toml(self) -> str:
        """The effective configuration, as TOML (``serve --print-config``), written by tomli-w."""
        document: dict[str, Any] = {section: _toml_table(getattr(self, section)) for section in SECTIONS}
        document["protocols"] = {name: _toml_table(proto) for name, proto in sorted(self.protocols.items())}
        return tomli_w.dumps(document)


SECTIONS: dict[str, type] = {"database": DatabaseConfig, "web": WebConfig, "rules": RulesConfig,
                             "retention": RetentionConfig, "notify": NotifyConfig, "log": LogConfig,
                             "public": PublicConfig, "acceptance": AcceptanceConfig, "subsidy": SubsidyConfig,
                             "limits": LimitsConfig}  # fmt: skip
"""The sections beside ``[protocols.NAME]``, each a dataclass whose fields are its keys."""


def _toml_table(section: Any) -> dict[str, Any]:
    """A section's keys as TOML values (paths as text; a key left unset is left out)."""
    return {key: str(value) if isinstance(value, Path) else value
            for key, value in dataclasses.asdict(section).items() if value is not None}  # fmt: skip


AUTO = "auto"
"""``[protocols.auto]``: not a protocol, the port that recognises every protocol (pipeline/sniffing.py)."""
AUTO_DEFAULT_PORT = 5700

PORT_KEYS = {"port"}
"""Keys holding a TCP port: 1-65535, or 0 for one the operating system picks (tests do)."""
AT_LEAST_ONE = {"web.session_hours", "retention.raw_frames_per_terminal", "retention.prune_step_rows",
                "retention.raw_status_days", "retention.records_years", "notify.webhook_timeout_s"}  # fmt: skip
"""Keys that must be at least 1 (every other number must not be negative)."""
CHOICES = {"log.level": ("DEBUG", "INFO", "WARNING", "ERROR"), "log.format": ("text", "json")}


def _check_value(name: str, kind: Any, value: Any) -> tuple[Any, str | None]:
    """``value`` for key ``name`` (``section.key``) of type ``kind``: (the value, or what is wrong with it)."""
    optional = isinstance(kind, types.UnionType) and type(None) in kind.__args__
    if optional:
        kind = next(k for k in kind.__args__ if k is not type(None))
    key = name.rsplit(".", 1)[-1]
    if kind is Path:
        if not isinstance(value, str) or not value.strip():
            return None, f"must be a path (a string), not {value!r}"
        return Path(value), None
    if kind is bool:
        return value, None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if kind is str:
        if not isinstance(value, str):
            return None, f"must be a string, not {value!r}"
        choices = CHOICES.get(name)
        if choices and value not in choices:
            return None, f"must be one of {', '.join(choices)}, not {value!r}"
        return value, None
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"must be a number, not {value!r}"
        if kind is int and not isinstance(value, int):
            return None, f"must be a whole number, not {value!r}"
        if key in PORT_KEYS and not 0 <= value <= 65535:
            return None, f"must be a port from 1 to 65535 (0: any free port), not {value!r}"
        if name in AT_LEAST_ONE and value < 1:
            return None, f"must be at least 1, not {value!r}"
        if value < 0:
            return None, f"must not be negative, not {value!r}"
        return value, None
    raise TypeError(f"no check for {kind!r}")  # pragma: no cover - a new field type needs one here


def _section(cls: type, data: Any, where: str, base: Path, problems: list[str]) -> Any:
    """The section ``[where]`` read into ``cls``; what is wrong is added to ``problems`` (defaults kept)."""
    if not isinstance(data, dict):
        problems.append(f"{where}: must be a table ([{where}])")
        return cls()
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in hints:
            problems.append(f"{where}.{key}: unknown key; known in [{where}]: {', '.join(hints)}")
            continue
        checked, problem = _check_value(f"{where}.{key}", hints[key], value)
        if problem:
            problems.append(f"{where}.{key}: {problem}")
            continue
        if isinstance(checked, Path) and not checked.is_absolute():
            checked = base / checked
        values[key] = checked
    return cls(**values)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration named by ``path`` or ``WUHAI_IOT_CONFIG``; defaults when neither is set.

    Every key is checked; ConfigError lists every problem found, one a line."""
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
    except UnicodeDecodeError:
        raise ConfigError(f"configuration {file} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration {file} is not valid TOML: {exc}") from None
    base = file.parent
    config = Config(source=file)
    config.database.path = base / config.database.path
    problems: list[str] = []
    for name, section in data.items():  # (in the file's order, so that problems are too)
        if name in SECTIONS:
            setattr(config, name, _section(SECTIONS[name], section, name, base, problems))
        elif name == "protocols" and isinstance(section, dict):
            for protocol, settings in section.items():
                config.protocols[protocol] = _section(ProtocolConfig, settings, f"protocols.{protocol}", base, problems)
        elif name == "protocols":
            problems.append("protocols: must hold one table per protocol ([protocols.NAME])")
        else:
            problems.append(f"{name}: unknown section; known: {', '.join([*SECTIONS, 'protocols'])}")
    if problems:
        raise ConfigError("\n".join(f"{file}: {problem}" for problem in problems), problems)
    return config


def check_config(config: Config) -> list[str]:
    """What keeps ``serve`` from running with this configuration, beyond the values' types and ranges
    (``load_config`` checks those): folders that must be writable, files that must be readable, ports
    that must differ. One ``section.key: what is wrong`` a problem; empty when all is well."""
    problems: list[str] = []
    problems += _writable_folder("database.path", config.database.path.parent)
    if config.database.path.is_dir():
        problems.append(f"database.path: {config.database.path} is a folder; name the database file in it")
    if config.log.file is not None:
        problems += _writable_folder("log.file", config.log.file.parent)
        if config.log.file.is_dir():
            problems.append(f"log.file: {config.log.file} is a folder; name the log file in it")
    url = config.notify.webhook_url
    if url and not (url.startswith(("http://", "https://")) and len(url) > len("https://")):
        problems.append(f"notify.webhook_url: must be an http:// or https:// address, not {url!r}")
    if (config.web.certificate is None) != (config.web.key is None):
        problems.append("web.certificate: HTTPS needs both web.certificate and web.key")
    for key in ("certificate", "key"):
        file = getattr(config.web, key)
        if file is not None and not os.access(file, os.R_OK):
            problems.append(f"web.{key}: cannot read {file}")
    if config.web.certificate is not None and config.web.key is not None and not problems:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(config.web.certificate, config.web.key)
        except (ssl.SSLError, OSError) as exc:
            problems.append(f"web.certificate: not a certificate and key pair that match ({exc})")
    from wuhai_iot.plugins import protocols

    used: dict[tuple[str, int], str] = {}
    if config.web.port:
        used[(config.web.host, config.web.port)] = "web.port"
    for name, protocol in sorted(protocols().items()):
        settings = config.protocol(name)
        port = protocol.default_port if settings.port is None else settings.port
        if settings.enabled and port:
            other = used.setdefault((settings.host, port), f"protocols.{name}.port")
            if other != f"protocols.{name}.port":
                problems.append(f"protocols.{name}.port: {port} is also {other}")
    auto = config.protocols.get(AUTO)  # the port that recognises the protocol
    if auto is not None and auto.enabled:
        port = AUTO_DEFAULT_PORT if auto.port is None else auto.port
        if port:
            other = used.setdefault((auto.host, port), "protocols.auto.port")
            if other != "protocols.auto.port":
                problems.append(f"protocols.auto.port: {port} is also {other}")
    for name in sorted(set(config.protocols) - set(protocols()) - {AUTO}):
        problems.append(f"protocols.{name}: no such protocol; installed: {', '.join(sorted(protocols()))}")
    return problems


def _writable_folder(key: str, folder: Path) -> list[str]:
    """The folder exists and can be written, or can be created below a writable one."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return [f"{key}: {existing} is not a folder"]
    if not os.access(existing, os.W_OK | os.X_OK):
        missing = "" if existing == folder else f" (to create {folder})"
        return [f"{key}: the folder {existing} is not writable by this user{missing}"]
    return []
