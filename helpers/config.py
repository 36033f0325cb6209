"""Configuration: ``config.ini`` read with :mod:`configparser`, overridden by the environment.

Every key ``[section] key`` may be overridden by the environment variable
``PEP_<SECTION>_<KEY>`` (upper case), e.g. ``PEP_DB_DATABASE=ripple_test`` or
``PEP_SERVER_PORT=5011``. Values are validated and converted to the type of the
default below; a bad value raises :class:`ConfigError` with the key named, so the
server refuses to start rather than run with a half-understood setting.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import os
import re
from typing import Any, Mapping

FLAVOURS = ("kawata", "ripple", "realistikosu")
#: a cluster node id (``[cluster] node_id``): it starts every token string of the node
NODE_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = 5001
    gzip: bool = True
    gzip_level: int = 1  # bench/README.md: 6 cost 2.4x the CPU of 1 for ~7% smaller login replies
    ci_key: str = ""
    ip_header: str = "X-Real-IP"
    max_body: int = 1 << 20
    uvloop: bool = True
    shutdown_grace: float = 3.0
    reconnect_delay: float = 10.0
    # Hardening II (network and services): seconds a login may take before it is answered
    # with the "server error" reply
    login_timeout: float = 10.0
    # seconds a connection may stay idle (also allowed for a request's headers), and for a body
    idle_timeout: float = 60.0
    body_timeout: float = 10.0
    # bytes of request headers; open connections per client address (0 = no limit) and the
    # addresses exempt from that (the reverse proxy); bytes held by incomplete bodies in total
    max_header: int = 16384
    max_connections_per_ip: int = 64
    connection_limit_exempt: str = "127.0.0.1, ::1"
    max_pending_body: int = 64 << 20
    # connections the kernel may hold waiting to be accepted (listen backlog)
    backlog: int = 1024
    # the raw TCP listener of the b20121203-b20130815 clients (docs/operations.md, "The TCP
    # listener"): its port on ``host`` (0 = off) and its open connections in all
    tcp_port: int = 0
    tcp_max_connections: int = 5000


@dataclasses.dataclass(frozen=True)
class DbConfig:
    host: str = "127.0.0.1"
    port: int = 3306
    username: str = "root"
    password: str = ""
    database: str = "ripple"
    workers: int = 4
    # Hardening II (network and services): seconds to connect, and per read / write on a connection
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class RedisConfig:
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: str = ""
    key_prefix: str = ""
    # Hardening II (network and services): seconds per command (read/write) and to connect
    timeout: float = 3.0
    connect_timeout: float = 3.0


@dataclasses.dataclass(frozen=True)
class StackConfig:
    flavour: str = "kawata"
    bot_id: int = 999
    menu_icon_base: str = "https://i.ppy.sh"
    server_name: str = "pep.py"


@dataclasses.dataclass(frozen=True)
class SessionsConfig:
    timeout: float = 100.0
    timeout_check: float = 10.0
    logout_grace: float = 5.0
    # restarts that keep sessions (docs/operations.md "Deploys without disconnects")
    handover: bool = True
    handover_window: float = 120.0
    handover_file: str = ""


@dataclasses.dataclass(frozen=True)
class ChatConfig:
    max_message_length: int = 2048
    spam_limit: int = 10
    spam_window: float = 10.0
    spam_silence: int = 1800
    # private messages to offline users kept per recipient until their next login (0 = off)
    offline_messages: int = 20
    # publish every chat message on rosu:new_message_notify (docs/integration.md)
    publish_new_message: bool = False


@dataclasses.dataclass(frozen=True)
class MultiplayerConfig:
    """``[multiplayer]`` (docs/multiplayer.md), the one place of these defaults."""

    strict_start: bool = False  # Kawata's gates: >= 2 players and two teams in team modes
    cleanup_interval: float = 30.0  # s between empty-match sweeps
    empty_match_age: float = 120.0  # s a match may stay without players before the sweep disposes it
    load_timeout: float = 30.0  # s after start before ALL_PLAYERS_LOADED is forced
    complete_timeout: float = 30.0  # s after the first MATCH_COMPLETE before the round is finished
    # ---- Hardening II: in game (docs/security.md)
    round_timeout: float = 10800.0  # s after the start before a round nobody finished is aborted


@dataclasses.dataclass(frozen=True)
class LimitsConfig:
    login_failures_ip: int = 20
    login_failures_account: int = 10
    login_failure_window: float = 300.0
    max_queue: int = 4 << 20
    max_frames: int = 1024
    max_payload: int = 1 << 16
    max_matches_per_user: int = 5
    # ---- Hardening II: in game (docs/security.md); per session, counted in fixed windows
    friend_changes: int = 20
    friend_window: float = 60.0
    match_creates: int = 10
    match_create_window: float = 60.0
    round_starts: int = 10
    round_start_window: float = 60.0
    error_reports: int = 3
    error_report_window: float = 60.0
    error_report_length: int = 500
    tournament_sessions: int = 8
    # Hardening II (network and services): bcrypt checks queued or running at once
    bcrypt_queue: int = 16
    bcrypt_per_ip: int = 2


@dataclasses.dataclass(frozen=True)
class IrcConfig:
    """``[irc]``: the IRC gateway (docs/irc.md)."""

    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = 6667
    server_name: str = "pep.py"
    motd: str = "Welcome to the osu! chat over IRC. Join #osu and say hello."
    max_connections: int = 5000
    max_per_ip: int = 20
    lines_per_second: float = 5.0
    line_burst: int = 25
    send_queue: int = 262144
    ping_interval: float = 90.0
    ping_timeout: float = 60.0
    register_timeout: float = 30.0
    flush_interval: float = 0.02


@dataclasses.dataclass(frozen=True)
class LetsConfig:
    api_url: str = "http://127.0.0.1:5002/api"
    timeout: float = 10.0


@dataclasses.dataclass(frozen=True)
class BotConfig:
    # extra command modules (comma-separated .py paths or module names), see docs/commands.md
    command_modules: str = ""
    # texts of the !mp replies and match-event lines: "kawata" or "official" (docs/irc.md)
    mp_style: str = "kawata"
    # the website's base URL for user and beatmap links in the bot's messages ("" = osu.ppy.sh links)
    website: str = ""
    # Discord webhook URL called when !map changes a ranked status ("" = none)
    new_ranked_webhook: str = ""
    # open !request rows per player
    max_requests: int = 5
    # beatmap mirror download URLs for !chimu, !beatconnect and !mirror ({set} = beatmapset id)
    mirror_chimu: str = "https://chimu.moe/en/d/{set}"
    mirror_beatconnect: str = "https://beatconnect.io/b/{set}"
    # Kawata's joke commands !bless, !troll and !msg (off by default; docs/commands.md)
    joke_commands: bool = False
    # the page Ripple's static !help points to ("" = the website's documentation page)
    help_url: str = ""


@dataclasses.dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"


@dataclasses.dataclass(frozen=True)
class GeoConfig:
    database: str = ""


@dataclasses.dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    allow: str = "127.0.0.0/8, ::1"


@dataclasses.dataclass(frozen=True)
class SentryConfig:
    dsn: str = ""


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """Several nodes sharing one world through Redis (docs/cluster.md). ``node_id`` empty = the
    single-process server; else 1-32 characters of ``[A-Za-z0-9_-]``, unique per node.
    ``address`` is the ``host:port`` other nodes use to forward a poll that reached them (empty
    = ``127.0.0.1:<[server] port>``). ``heartbeat`` and ``node_timeout`` are seconds: a node
    silent for ``node_timeout`` is dead and its users leave the world."""

    node_id: str = ""
    address: str = ""
    heartbeat: float = 2.0
    node_timeout: float = 30.0


_SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "db": DbConfig,
    "redis": RedisConfig,
    "stack": StackConfig,
    "sessions": SessionsConfig,
    "chat": ChatConfig,
    "multiplayer": MultiplayerConfig,
    "limits": LimitsConfig,
    "lets": LetsConfig,
    "irc": IrcConfig,
    "log": LogConfig,
    "bot": BotConfig,
    "geo": GeoConfig,
    "metrics": MetricsConfig,
    "sentry": SentryConfig,
    "cluster": ClusterConfig,
}

# (section, key) -> (minimum, maximum) for numeric values
_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("server", "port"): (0, 65535),
    ("server", "gzip_level"): (1, 9),
    ("server", "max_body"): (1024, 1 << 30),
    ("server", "shutdown_grace"): (0, 600),
    ("server", "reconnect_delay"): (0, 3600),
    ("server", "login_timeout"): (1, 600),
    ("server", "idle_timeout"): (0.5, 86400),
    ("server", "body_timeout"): (0.5, 3600),
    ("server", "max_header"): (1024, 1 << 20),
    ("server", "max_connections_per_ip"): (0, 1_000_000),
    ("server", "max_pending_body"): (1 << 16, 1 << 40),
    ("server", "backlog"): (16, 65535),
    ("server", "tcp_port"): (0, 65535),
    ("server", "tcp_max_connections"): (1, 1_000_000),
    ("db", "port"): (1, 65535),
    ("db", "workers"): (1, 256),
    ("db", "connect_timeout"): (1, 600),
    ("db", "read_timeout"): (1, 3600),
    ("db", "write_timeout"): (1, 3600),
    ("redis", "port"): (1, 65535),
    ("redis", "db"): (0, 1023),
    ("redis", "timeout"): (0.1, 600),
    ("redis", "connect_timeout"): (0.1, 600),
    ("stack", "bot_id"): (1, 2**31 - 1),
    ("sessions", "timeout"): (0.1, 86400),
    ("sessions", "timeout_check"): (0.05, 86400),
    ("sessions", "logout_grace"): (0, 3600),
    ("sessions", "handover_window"): (1, 86400),
    ("chat", "max_message_length"): (16, 65536),
    ("chat", "spam_limit"): (1, 100000),
    ("chat", "spam_window"): (0.05, 86400),
    ("chat", "spam_silence"): (1, 2**31 - 1),
    ("chat", "offline_messages"): (0, 1000),
    ("lets", "timeout"): (0.1, 600),
    ("multiplayer", "cleanup_interval"): (0.05, 86400),
    ("multiplayer", "empty_match_age"): (0, 86400),
    ("multiplayer", "load_timeout"): (1, 3600),
    ("multiplayer", "complete_timeout"): (1, 3600),
    ("multiplayer", "round_timeout"): (1, 86400),
    ("limits", "login_failures_ip"): (1, 1_000_000),
    ("limits", "login_failures_account"): (1, 1_000_000),
    ("limits", "login_failure_window"): (1, 86400),
    ("limits", "max_queue"): (65536, 1 << 30),
    ("limits", "max_frames"): (16, 1 << 20),
    ("limits", "max_payload"): (1024, 1 << 24),
    ("limits", "max_matches_per_user"): (1, 65535),
    # ---- Hardening II: in game
    ("limits", "friend_changes"): (1, 100000),
    ("limits", "friend_window"): (0.05, 86400),
    ("limits", "match_creates"): (1, 100000),
    ("limits", "match_create_window"): (0.05, 86400),
    ("limits", "round_starts"): (1, 100000),
    ("limits", "round_start_window"): (0.05, 86400),
    ("limits", "error_reports"): (1, 100000),
    ("limits", "error_report_window"): (0.05, 86400),
    ("limits", "error_report_length"): (16, 65536),
    ("limits", "tournament_sessions"): (1, 1000),
    ("limits", "bcrypt_queue"): (1, 100_000),
    ("limits", "bcrypt_per_ip"): (1, 100_000),
    ("irc", "port"): (0, 65535),
    ("irc", "max_connections"): (1, 1_000_000),
    ("irc", "max_per_ip"): (1, 1_000_000),
    ("irc", "lines_per_second"): (0.1, 10000),
    ("irc", "line_burst"): (1, 100000),
    ("irc", "send_queue"): (4096, 1 << 30),
    ("irc", "ping_interval"): (1, 86400),
    ("irc", "ping_timeout"): (1, 86400),
    ("irc", "register_timeout"): (1, 3600),
    ("irc", "flush_interval"): (0.001, 1),
    ("cluster", "heartbeat"): (0.05, 60),
    ("cluster", "node_timeout"): (0.2, 3600),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole configuration, one frozen dataclass per ``config.ini`` section."""

    server: ServerConfig = ServerConfig()
    db: DbConfig = DbConfig()
    redis: RedisConfig = RedisConfig()
    stack: StackConfig = StackConfig()
    sessions: SessionsConfig = SessionsConfig()
    chat: ChatConfig = ChatConfig()
    multiplayer: MultiplayerConfig = MultiplayerConfig()
    limits: LimitsConfig = LimitsConfig()
    lets: LetsConfig = LetsConfig()
    irc: IrcConfig = IrcConfig()
    log: LogConfig = LogConfig()
    bot: BotConfig = BotConfig()
    geo: GeoConfig = GeoConfig()
    metrics: MetricsConfig = MetricsConfig()
    sentry: SentryConfig = SentryConfig()
    cluster: ClusterConfig = ClusterConfig()


def _convert(section: str, key: str, raw: str, default: Any) -> Any:
    raw = raw.strip()
    where = f"[{section}] {key} = {raw!r}"
    if isinstance(default, bool):
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{where}: expected a boolean (1/0, true/false)")
    if isinstance(default, (int, float)):
        try:
            value: int | float = int(raw) if isinstance(default, int) else float(raw)
        except ValueError:
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ConfigError(f"{where}: expected {kind}") from None
        low, high = _RANGES.get((section, key), (float("-inf"), float("inf")))
        if not low <= value <= high:
            raise ConfigError(f"{where}: must be between {low:g} and {high:g}")
        return value
    return raw


def load(path: str | None = "config.ini", environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (missing file = all defaults) and apply ``PEP_*`` overrides.

    Unknown sections and keys in the file are rejected so that a typo does not go
    unnoticed. Raises :class:`ConfigError` for a bad value or an unreadable file.
    """
    environ = os.environ if environ is None else environ
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    if path is not None and os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, configparser.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
    elif path is not None and path != "config.ini":
        raise ConfigError(f"configuration file {path} does not exist")

    for section in parser.sections():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown section [{section}] in {path}")
        known = {f.name for f in dataclasses.fields(_SECTIONS[section])}
        for key in parser[section]:
            if key not in known:
                raise ConfigError(f"unknown key [{section}] {key} in {path}")

    values: dict[str, Any] = {}
    for section, cls in _SECTIONS.items():
        kwargs = {}
        for field in dataclasses.fields(cls):
            default = field.default
            raw = None
            if parser.has_option(section, field.name):
                raw = parser.get(section, field.name)
            env_name = f"PEP_{section.upper()}_{field.name.upper()}"
            if env_name in environ:
                raw = environ[env_name]
            kwargs[field.name] = default if raw is None else _convert(section, field.name, raw, default)
        values[section] = cls(**kwargs)
    config = Config(**values)
    if config.stack.flavour not in FLAVOURS:
        raise ConfigError(f"[stack] flavour = {config.stack.flavour!r}: expected one of {', '.join(FLAVOURS)}")
    if config.bot.mp_style not in ("kawata", "official"):
        raise ConfigError(f"[bot] mp_style = {config.bot.mp_style!r}: expected kawata or official")
    if config.log.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"[log] level = {config.log.level!r}: expected DEBUG, INFO, WARNING or ERROR")
    if config.cluster.node_id and not NODE_ID_RE.fullmatch(config.cluster.node_id):
        raise ConfigError(f"[cluster] node_id = {config.cluster.node_id!r}: expected 1-32 of A-Z a-z 0-9 _ -")
    if config.cluster.node_id and config.cluster.heartbeat * 2 > config.cluster.node_timeout:
        raise ConfigError("[cluster] node_timeout must be at least twice [cluster] heartbeat")
    for where, text in (("[server] connection_limit_exempt", config.server.connection_limit_exempt),
                        ("[metrics] allow", config.metrics.allow)):
        for part in text.split(","):
            try:
                if part.strip():
                    ipaddress.ip_network(part.strip(), strict=False)
            except ValueError:
                raise ConfigError(f"{where}: {part.strip()!r} is not an address or network") from None
    return config
