"""Small in-memory stand-ins for MySQL and Redis, for unit tests and benchmarks that build a
:class:`objects.state.State` but do not test the integration with the real services.

* :class:`FakeDatabase` has the query interface of :class:`common.db.Database`; it answers
  every read with "no row" and every write with "nothing changed", and records each statement
  (``statements``: list of ``(sql, args)``).
* :class:`FakeRedis` has the interface of :class:`common.redis.Redis` that the server uses;
  it keeps ``online_users``, ``sessions`` (user id -> set of IPs), ``pending_renames`` and the
  ``published`` messages in memory.

* :class:`World` builds a :class:`objects.state.State` with the bot and three channels for the
  in-process behavioural tests (``tests/test_*_core.py``, the ones ``scripts/mutation.sh`` runs;
  docs/testing.md), with :class:`FakeRepo` / :class:`LoginRepo` for the repository queries those
  tests reach and :class:`RecordingRedis` where the Redis calls are checked.

Integration tests use the real MySQL and Redis (tests/conftest.py), never these.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import bcrypt
import pytest  # for the no_errors fixture; bench/ imports this module too, with the test requirements

from common.db import DatabaseError, ExecResult
from common.ripple import Settings, Stats
from constants import privileges as privs
from constants.flavours import FLAVOURS
from handlers.bancho import process_frames
from helpers import config
from objects import bot as bot_module
from objects.channel import Channel
from objects.state import State
from objects.token import Token
from tests import client as C


class FakeDatabase:
    """:class:`common.db.Database` without a server: no rows, no changes, statements recorded."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.closed = False

    async def fetch_one(self, sql: str, args: Any = ()) -> dict[str, Any] | None:
        self.statements.append((sql, args))
        return None

    async def fetch_all(self, sql: str, args: Any = ()) -> list[dict[str, Any]]:
        self.statements.append((sql, args))
        return []

    async def fetch_value(self, sql: str, args: Any = (), default: Any = None) -> Any:
        self.statements.append((sql, args))
        return default

    async def execute(self, sql: str, args: Any = ()) -> ExecResult:
        self.statements.append((sql, args))
        return ExecResult(0, 0)

    async def execute_many(self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> int:
        self.statements.append((sql, list(rows)))
        return 0

    async def transaction(self, fn: Callable[[Any], Any]) -> Any:
        raise NotImplementedError("FakeDatabase has no transactions")

    async def ping(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class FakeRedis:
    """:class:`common.redis.Redis` without a server: the stack's keys as plain attributes."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.online_users: int | None = None
        self.sessions: dict[int, set[str]] = {}
        self.pending_renames: dict[int, str] = {}
        self.published: list[tuple[str, str]] = []
        self.closed = False

    def key(self, name: str) -> str:
        return self.prefix + name

    async def close(self) -> None:
        self.closed = True

    async def startup(self) -> None:
        self.online_users = 0
        self.sessions.clear()

    async def set_online_users(self, count: int) -> None:
        self.online_users = count

    async def add_session_ip(self, user_id: int, ip: str) -> None:
        if ip:
            self.sessions.setdefault(user_id, set()).add(ip)

    async def remove_session_ip(self, user_id: int, ip: str) -> None:
        self.sessions.get(user_id, set()).discard(ip)

    async def rank(self, leaderboard: str, user_id: int) -> int:
        return 0

    async def publish(self, channel: str, message: str) -> int:
        self.published.append((channel, message))
        return 0

    async def resync(self, online: int, sessions: Iterable[tuple[int, str]]) -> None:
        self.online_users = online
        for user_id, ip in sessions:
            await self.add_session_ip(user_id, ip)

    async def remove_from_sorted_sets(self, names: Iterable[str], member: str) -> None:
        return None

    async def set_pending_rename(self, user_id: int, new_name: str) -> None:
        self.pending_renames[user_id] = new_name

    async def forget_username(self, user_id: int, *safe_names: str) -> None:
        self.pending_renames.pop(user_id, None)

    async def republish_pending_rename(self, user_id: int) -> bool:
        return False


def fake_state(cfg: Any = None) -> Any:
    """A :class:`objects.state.State` on :class:`FakeDatabase` and :class:`FakeRedis`, with the
    default configuration unless ``cfg`` is given."""
    from helpers import config
    from objects.state import State

    return State(cfg if cfg is not None else config.load(None, environ={}), FakeDatabase(), FakeRedis())


BOT_ID = 999
ADMIN = 65536  # the privilege bit FakeRepo.is_admin treats as admin (ADMIN_MANAGE_PRIVILEGES)
BOT_NAME = "FokaBot"


class FakeRepo:
    """The parts of :class:`common.ripple.Repository` the in-process tests reach: ``set_silence``
    and ``stats``.

    ``silences`` records ``(user_id, seconds, reason)`` of every successful write; with
    ``fail`` set, a write raises :class:`common.db.DatabaseError` like a MySQL outage.
    """

    def __init__(self) -> None:
        self.silences: list[tuple[int, int, str]] = []
        self.fail = False
        self.users: dict[int, dict[str, Any]] = {}  # user id -> users row (username, privileges, silence_end)
        self.icons: dict[int, str] = {}  # main menu icon id -> "image|url"
        self.icon_bases: list[str] = []  # the base URL of every icon lookup
        self.admin_logs: list[tuple[int, str, str]] = []
        self.channel_rows: list[Any] = []  # bancho_channels rows: name, description, public_read, public_write
        self.menu_icon_value = ""  # the current main menu icon

    async def user_by_id(self, user_id: int) -> dict[str, Any] | None:
        """A copy of the ``users`` row, or None."""
        await asyncio.sleep(0)
        row = self.users.get(user_id)
        return dict(row) if row is not None else None

    async def is_admin(self, privileges: int) -> bool:
        """Admin when the privileges have :data:`ADMIN` (``ADMIN_MANAGE_PRIVILEGES``)."""
        return bool(privileges & ADMIN)

    def presence_rank(self, privileges: int, admin: bool, tournament: bool) -> int:
        return 16 if admin else 1

    async def rename_user(self, user_id: int, new_name: str) -> tuple[str, str] | None:
        """Rename the row; returns (old name, old safe name) or None for an unknown user."""
        row = self.users.get(user_id)
        if row is None:
            return None
        old = row["username"]
        row["username"] = new_name
        return old, old.lower().replace(" ", "_")

    async def admin_log(self, author: int, text: str, through: str = "FokaBot") -> None:
        if self.fail:
            raise DatabaseError("2003: cannot connect (fake)")
        self.admin_logs.append((author, text, through))

    async def menu_icon_by_id(self, icon_id: int, base: str) -> str | None:
        self.icon_bases.append(base)
        return self.icons.get(icon_id)

    async def load_admin_groups(self) -> None:
        return None

    async def settings(self) -> Settings:
        return Settings()

    async def menu_icon(self, base: str) -> str:
        self.icon_bases.append(base)
        return self.menu_icon_value

    async def channels(self) -> list[Any]:
        return list(self.channel_rows)

    async def stats(self, user_id: int, mode: int, relax: bool = False, autopilot: bool = False) -> Stats:
        """Stats derived from the arguments, so a test can tell which were asked for."""
        await asyncio.sleep(0)
        return Stats(ranked_score=user_id, accuracy=0.5, playcount=mode, total_score=int(relax) * 10 + int(autopilot),
                     rank=7, pp=123)

    async def set_silence(self, user_id: int, seconds: int, reason: str) -> int:
        """Same contract as the repository: returns the absolute end (unix seconds)."""
        await asyncio.sleep(0)
        if self.fail:
            raise DatabaseError("2003: cannot connect (fake)")
        self.silences.append((user_id, seconds, reason))
        return int(time.time()) + max(0, int(seconds))


PASSWORD = "secret"  # the password of every LoginRepo user
MD5 = hashlib.md5(PASSWORD.encode()).hexdigest()
HASH = bcrypt.hashpw(MD5.encode(), bcrypt.gensalt(4)).decode()  # low cost: tests only
NORMAL = privs.USER_PUBLIC | privs.USER_NORMAL


class LoginRepo(FakeRepo):
    """The login's queries (``services.login``) over ``users`` rows kept in memory
    (``self.users`` by id; ``add`` creates one with the password :data:`PASSWORD`)."""

    def __init__(self, flavour: str = "ripple") -> None:
        super().__init__()
        self.flavour = FLAVOURS[flavour]
        self.logins: list[tuple] = []
        self.totp: set[int] = set()
        self.known_ips: set[tuple[int, str]] = set()
        self.hardware: dict[int, list[int]] = {}
        self.privilege_writes: list[tuple[int, int]] = []
        self.notes: list[tuple[int, str]] = []
        self.hardware_logs: list[tuple] = []
        self.fail_login_log = False

    def add(self, user_id: int, name: str, privileges: int = NORMAL, **row) -> None:
        self.users[user_id] = {"id": user_id, "username": name, "username_safe": name.lower().replace(" ", "_"),
                               "password_md5": HASH, "privileges": privileges, "silence_end": 0,
                               "password_version": 2, "donor_expire": 0, **row}

    async def user_by_safe_name(self, safe_name):
        await asyncio.sleep(0)
        for row in self.users.values():
            if row["username_safe"] == safe_name:
                return dict(row)
        return None

    async def totp_enabled(self, user_id):
        return user_id in self.totp

    async def ip_known(self, user_id, ip):
        return (user_id, ip) in self.known_ips

    async def login_records(self, user_id, row, ip, hardware, version):
        """The login's writes and reads in one call (common.ripple.Repository.login_records)."""
        if self.fail_login_log:
            raise DatabaseError("2003: cannot connect (fake)")
        self.logins.append((user_id, ip, hardware, version))
        return (Stats(ranked_score=5, accuracy=0.9, playcount=3, total_score=8, rank=2, pp=300), "CH", [7, 3],
                list(getattr(self, "blocks", [])), bool(getattr(self, "offline_waiting", True)))

    async def take_offline_messages(self, *args):
        return []

    async def save_first_country(self, user_id, country):
        return True

    async def hardware_matches(self, user_id, mac, unique_id, disk_id, wine):
        return self.hardware.get(user_id, [])

    async def set_privileges(self, user_id, privileges):
        self.privilege_writes.append((user_id, privileges))
        if user_id in self.users:
            self.users[user_id]["privileges"] = privileges

    async def append_notes(self, user_id, text):
        self.notes.append((user_id, text))

    async def log_hardware(self, user_id, mac, unique_id, disk_id, activated):
        self.hardware_logs.append((user_id, activated))



class RecordingRedis:
    """A Redis stand-in that records every coroutine call made on ``state.redis`` (``calls``:
    ``(name, args)``), for tests that check which calls were made; every
    method of :class:`common.redis.Redis` the tests reach returns None, or raises
    ConnectionError while ``fail`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail = False  # every call raises ConnectionError, like Redis being down

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("calls", "fail"):
            raise AttributeError(name)

        async def call(*args: Any) -> None:
            if self.fail:
                raise ConnectionError("redis is down (fake)")
            self.calls.append((name, args))

        return call


class World:
    """A :class:`State` with the bot, ``#osu`` (public), ``#announce`` (read-only for
    non-admins) and ``#admin`` (staff only), and helpers to add users and read their queues.

    ``env`` are ``PEP_*`` overrides of the configuration (e.g. ``{"PEP_CHAT_SPAM_LIMIT": "3"}``).
    With ``repo`` the state gets a :class:`FakeRepo` (``self.repo``), as a server with MySQL;
    with ``redis`` a :class:`RecordingRedis` (``self.redis``), else :class:`FakeRedis`.
    """

    def __init__(self, env: dict[str, str] | None = None, repo: bool = False, redis: bool = False) -> None:
        self.redis = RecordingRedis() if redis else None
        self.state = State(config.load(None, environ=env or {}), FakeDatabase(),
                           self.redis if self.redis is not None else FakeRedis())  # type: ignore[arg-type]
        self.repo = FakeRepo() if repo else None
        if self.repo is not None:
            self.state.repo = self.repo  # type: ignore[assignment]
        bot = bot_module.make_token(BOT_ID, BOT_NAME, BOT_NAME.lower(), 3, 16)
        self.state.bot = bot
        self.state.tokens.add(bot)
        self.bot = bot
        for name, write, read in (("#osu", True, True), ("#announce", False, True), ("#admin", False, False)):
            channel = Channel(name, "topic", read, write)
            self.state.channels.add(channel)
            channel.members.add(bot)
            bot.channels.add(name)
        self._next_id = 1000

    def user(self, name: str | None = None, *, channels: tuple[str, ...] = ("#osu",), privileges: int = 3,
             **kwargs: Any) -> Token:
        """A logged-in user (memory part of a login) in ``channels``; kwargs go to :class:`Token`."""
        self._next_id += 1
        name = name or f"user{self._next_id}"
        token = Token(self._next_id, name, name.lower().replace(" ", "_"), privileges, **kwargs)
        token.login_time -= 60
        self.state.tokens.add(token)
        for channel_name in channels:
            channel = self.state.channels.get(channel_name)
            assert channel is not None, channel_name
            channel.members.add(token)
            token.channels.add(channel.name)
        return token

    def send(self, token: Token, *frames: bytes) -> None:
        """Process client frames (``tests/client.py`` builders) as one poll body of ``token``."""
        process_frames(self.state, token, b"".join(frames))


class NoOpHooks:
    """Base of a test double for an object with many hooks (a cluster, a chat listener): every
    public attribute the subclass does not define is a function that takes anything and does
    nothing (returns None); a private name raises AttributeError as usual."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def received(token: Token) -> list[C.Packet]:
    """Drain ``token``'s queue and decode it with chio."""
    return C.decode_packets(token.drain())


def messages(token: Token) -> list[Any]:
    """The chat messages (7) queued for ``token`` (drains the queue)."""
    return C.values(received(token), C.SEND_MESSAGE)


def run_async(coro: Any) -> Any:
    """Run ``coro`` on a fresh event loop (``State.spawn`` needs a running loop)."""
    return asyncio.run(coro)


@contextlib.contextmanager
def pep_errors() -> Iterator[list[logging.LogRecord]]:
    """The records logged at ERROR or above under the ``pep`` loggers while the block runs (a
    list that grows as they come; the recording stops when the block ends)."""
    records: list[logging.LogRecord] = []

    class Recorder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    recorder = Recorder(logging.ERROR)
    root = logging.getLogger("pep")
    root.addHandler(recorder)
    try:
        yield records
    finally:
        root.removeHandler(recorder)


@pytest.fixture
def no_errors() -> Iterator[list[logging.LogRecord]]:
    """Fail the test when anything logged at ERROR under ``pep``: the dispatcher logs (never
    raises) a handler's exception, so a broken handler would otherwise pass unnoticed. A test that
    expects an error checks the returned records and then empties the list."""
    with pep_errors() as records:
        yield records
    assert not records, [r.getMessage() for r in records]
