"""Shared pytest fixtures: a real pep.py server on a throw-away MySQL database and Redis prefix.

Fixtures
--------
``server`` (session)
    One running ``pep.py`` for the whole test session. It owns the database
    ``pep_test_<hex>`` (created here, initialised with ``pep.py init-db``, dropped at the end) and
    the Redis key prefix ``pep_test_<hex>:`` (all prefixed keys are deleted at the end). Attributes:

    * ``url``            base URL (``http://127.0.0.1:<port>/``)
    * ``db``             :class:`Database`: ``query``/``one``/``scalar``/``execute`` on the test DB
    * ``redis``          :class:`PrefixedRedis`: helpers that add the prefix (``.raw`` = the client)
    * ``prefix``         the Redis prefix
    * ``log_path``       the server's combined stdout/stderr
    * ``add_user(name=None, password="password", privileges=3) -> id``  (``pep.py adduser``)
    * ``new_user(...) -> TestUser``  same, returns id + name + password
    * ``client() -> BanchoClient``
    * ``connect(privileges=3, ...) -> BanchoClient``  new user, logged in, login asserted, drained

``start_server`` (function)
    Factory for an extra server on the same database with environment overrides, e.g.
    ``start_server({"PEP_SESSIONS_TIMEOUT": "2"})``. Every extra server gets its own Redis prefix
    (below the session prefix) so that its start-up wipe of ``peppy:*`` never touches the session
    server's keys. Stopped at the end of the test.

``clients`` (function)
    ``clients()`` = ``server.client()`` but closed at the end of the test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.services import free_port
from tests.waiting import LOGOUT_GRACE

REPO = Path(__file__).resolve().parent.parent
_VENV_PY = REPO / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PY) if _VENV_PY.exists() else sys.executable

# The MySQL and Redis the tests use are the server's: config.ini [db] / [redis] with the
# PEP_DB_HOST/PORT/USERNAME/PASSWORD and PEP_REDIS_HOST/PORT/DB overrides (helpers.config, the
# same rules as pep.py and scripts/setup.sh). PEP_TEST_MYSQL_HOST/PORT/USER/PASSWORD and
# PEP_TEST_REDIS_HOST/PORT/DB, when set, win over both (to test against other servers than the
# one configured). The database name is never used: every run makes its own pep_test_<hex>.
def _server_settings():
    sys.path.insert(0, str(REPO))
    from helpers import config as _config

    return _config.load(str(REPO / "config.ini"))


_CFG = _server_settings()
MYSQL_HOST = os.environ.get("PEP_TEST_MYSQL_HOST", _CFG.db.host)
MYSQL_PORT = int(os.environ.get("PEP_TEST_MYSQL_PORT", _CFG.db.port))
MYSQL_USER = os.environ.get("PEP_TEST_MYSQL_USER", _CFG.db.username)
MYSQL_PASSWORD = os.environ.get("PEP_TEST_MYSQL_PASSWORD", _CFG.db.password)
REDIS_HOST = os.environ.get("PEP_TEST_REDIS_HOST", _CFG.redis.host)
REDIS_PORT = int(os.environ.get("PEP_TEST_REDIS_PORT", _CFG.redis.port))
REDIS_DB = int(os.environ.get("PEP_TEST_REDIS_DB", _CFG.redis.db))
REDIS_PASSWORD = _CFG.redis.password or None

START_TIMEOUT = 20.0

# Environment of every test server (on top of os.environ); PEP_* keys per config.ini.
BASE_SERVER_ENV = {
    "PEP_SERVER_HOST": "127.0.0.1",
    "PEP_DB_HOST": MYSQL_HOST,
    "PEP_DB_PORT": str(MYSQL_PORT),
    "PEP_DB_USERNAME": MYSQL_USER,
    "PEP_DB_PASSWORD": MYSQL_PASSWORD,
    "PEP_REDIS_HOST": REDIS_HOST,
    "PEP_REDIS_PORT": str(REDIS_PORT),
    "PEP_REDIS_DB": str(REDIS_DB),
    "PEP_SESSIONS_LOGOUT_GRACE": str(LOGOUT_GRACE),
    # the session server lives for the whole run (longer than 10 minutes): never let idle test
    # clients time out midway
    "PEP_SESSIONS_TIMEOUT": "3600",
    "PEP_LOG_LEVEL": "DEBUG",
    # on SIGTERM the server serves polls until every client fetched its restart packet, at most
    # this long: test clients that stopped polling would otherwise hold each stop for 3 s
    "PEP_SERVER_SHUTDOWN_GRACE": "0.5",
    "PYTHONUNBUFFERED": "1",
}


# ---------------------------------------------------------------------------------------------
# MySQL
# ---------------------------------------------------------------------------------------------
def _mysql_connect(database: str | None = None):
    import MySQLdb
    import MySQLdb.cursors

    kw: dict[str, Any] = dict(
        host=MYSQL_HOST,
        port=MYSQL_PORT,
        user=MYSQL_USER,
        passwd=MYSQL_PASSWORD,
        charset="utf8mb4",
        autocommit=True,
        cursorclass=MySQLdb.cursors.DictCursor,
    )
    if database:
        kw["db"] = database
    return MySQLdb.connect(**kw)


class Database:
    """Tiny synchronous helper on the test database (autocommit, dict rows)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._conn = None
        self._lock = threading.Lock()

    def _cursor(self):
        if self._conn is None:
            self._conn = _mysql_connect(self.name)
        return self._conn.cursor()

    def _run(self, sql: str, args: Any = None):
        import MySQLdb

        with self._lock:
            for attempt in (0, 1):
                try:
                    cur = self._cursor()
                    cur.execute(sql, args)
                    rows = cur.fetchall() if cur.description else None
                    count = cur.rowcount
                    cur.close()
                    return rows, count
                except MySQLdb.OperationalError:
                    if attempt:
                        raise
                    self.close()
        raise AssertionError("unreachable")

    def query(self, sql: str, args: Any = None) -> list[dict]:
        rows, _ = self._run(sql, args)
        return list(rows or [])

    def one(self, sql: str, args: Any = None) -> dict | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def scalar(self, sql: str, args: Any = None) -> Any:
        row = self.one(sql, args)
        if row is None:
            return None
        return next(iter(row.values()))

    def execute(self, sql: str, args: Any = None) -> int:
        _, count = self._run(sql, args)
        return count

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


# ---------------------------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------------------------
class PrefixedRedis:
    """A redis.Redis plus helpers that put the server's key prefix in front of names."""

    def __init__(self, prefix: str) -> None:
        import redis

        self.prefix = prefix
        self.raw = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB,
                               password=REDIS_PASSWORD, decode_responses=True)

    def key(self, name: str) -> str:
        return self.prefix + name

    def get(self, name: str) -> str | None:
        return self.raw.get(self.key(name))

    def set(self, name: str, value: Any, **kw) -> Any:
        return self.raw.set(self.key(name), value, **kw)

    def exists(self, name: str) -> bool:
        return bool(self.raw.exists(self.key(name)))

    def delete(self, *names: str) -> int:
        return self.raw.delete(*(self.key(n) for n in names)) if names else 0

    def smembers(self, name: str) -> set[str]:
        return set(self.raw.smembers(self.key(name)))

    def sismember(self, name: str, value: str) -> bool:
        return bool(self.raw.sismember(self.key(name), value))

    def zadd(self, name: str, mapping: dict) -> int:
        return self.raw.zadd(self.key(name), mapping)

    def publish(self, channel: str, message: Any) -> int:
        """Publish on the *prefixed* channel (the server prefixes pub/sub channels too)."""
        return self.raw.publish(self.key(channel), message)

    def keys(self, pattern: str = "*") -> list[str]:
        """Prefixed keys matching ``pattern``, returned without the prefix."""
        n = len(self.prefix)
        return sorted(k[n:] for k in self.raw.scan_iter(match=self.prefix + pattern, count=500))

    def delete_all(self) -> int:
        """Delete every key under the prefix."""
        deleted = 0
        batch: list[str] = []
        for k in self.raw.scan_iter(match=self.prefix + "*", count=500):
            batch.append(k)
            if len(batch) >= 500:
                deleted += self.raw.delete(*batch)
                batch = []
        if batch:
            deleted += self.raw.delete(*batch)
        return deleted

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------------------------
def _tail(path: Path, limit: int = 12000) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return data[-limit:].decode("utf-8", "replace")


class ServerProcess:
    """One ``pep.py`` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["PEP_SERVER_PORT"])
        self.irc_port = int(env.get("PEP_IRC_PORT", "0"))
        self.url = f"http://127.0.0.1:{self.port}/"
        self.prefix = env.get("PEP_REDIS_KEY_PREFIX", "")
        self.proc: subprocess.Popen | None = None
        self._log_file = None
        # soft and hard RLIMIT_NOFILE of the server process when set (descriptor exhaustion tests)
        self.nofile: int | None = None

    def _preexec(self) -> None:
        if self.nofile is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    #: a start that failed because a port was taken meanwhile is retried this many times
    PORT_RETRIES = 3

    def start(self, timeout: float = START_TIMEOUT) -> "ServerProcess":
        """Start ``pep.py`` and wait until it answers ``GET /``. A port chosen by
        :func:`tests.services.free_port` can be taken by another process before the server
        binds it: when the server reports a busy port (its own, the IRC gateway's or the TCP
        listener's), new
        ports are chosen and the start is retried (``PORT_RETRIES``), so a test never fails for
        it. Raises RuntimeError (with the log's tail) for any other failure."""
        for attempt in range(self.PORT_RETRIES + 1):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._start_once(timeout)
            except RuntimeError:
                if attempt < self.PORT_RETRIES and "start-up failed: cannot listen on" in self._log_since(offset):
                    self._new_port("PEP_SERVER_PORT")
                    continue
                raise
            if (attempt < self.PORT_RETRIES and self.irc_port
                    and "IRC gateway: cannot listen on" in self._log_since(offset)):
                self.stop()
                self._new_port("PEP_IRC_PORT")
                continue
            if (attempt < self.PORT_RETRIES and self.env.get("PEP_SERVER_TCP_PORT", "0") != "0"
                    and "TCP listener: cannot listen on" in self._log_since(offset)):
                self.stop()
                self._new_port("PEP_SERVER_TCP_PORT")  # the TCP listener (handlers/tcp.py)
                continue
            return self
        return self

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _new_port(self, key: str) -> None:
        port = free_port()
        print(f"port {self.env[key]} ({key}) was taken meanwhile; retrying on {port}", file=sys.stderr)
        self.env = dict(self.env, **{key: str(port)})
        self.port = int(self.env["PEP_SERVER_PORT"])
        self.irc_port = int(self.env.get("PEP_IRC_PORT", "0"))
        self.url = f"http://127.0.0.1:{self.port}/"

    def _start_once(self, timeout: float) -> None:
        import requests

        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "pep.py"],
            cwd=str(REPO),
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=self._preexec if self.nofile is not None else None,
        )
        deadline = time.monotonic() + timeout
        last_error: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                r = requests.get(self.url, timeout=1)
                if r.status_code == 200:
                    return
                last_error = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last_error = exc
            time.sleep(0.1)
        code = self.proc.poll()
        self.stop()
        msg = (
            f"pep.py did not answer GET / with 200 within {timeout}s "
            f"(exit code {code}, last error {last_error!r}); server log {self.log_path}:\n{_tail(self.log_path)}"
        )
        print(msg, file=sys.stderr)
        raise RuntimeError(msg)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return proc.returncode if proc is not None else None

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class TestUser:
    __test__ = False  # not a test class

    id: int
    name: str
    password: str = "password"


class _NameSource:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._tag = secrets.token_hex(2)
        self._lock = threading.Lock()

    def next(self, stem: str = "u") -> str:
        with self._lock:
            n = next(self._counter)
        # usernames are varchar(30); keep it short and unique within the run
        return f"{stem[:14]}{n}_{self._tag}"


class _UserPool:
    """Users with the default password and privileges 3, made ahead of time by background
    ``pep.py adduser`` runs so that tests do not wait for a subprocess each time."""

    def __init__(self, make, names: "_NameSource", size: int = 6, workers: int = 3) -> None:
        import queue
        from concurrent.futures import ThreadPoolExecutor

        self._make = make
        self._names = names
        self._size = size
        self._queue: "queue.Queue" = queue.Queue()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adduser")
        self._lock = threading.Lock()
        self._pending = 0
        self._closed = False

    def _make_one(self) -> None:
        try:
            name = self._names.next("p")
            self._queue.put(TestUser(self._make(name), name))
        except BaseException as exc:  # surfaced to the test that takes it
            self._queue.put(exc)
        finally:
            with self._lock:
                self._pending -= 1

    def refill(self) -> None:
        with self._lock:
            if self._closed:
                return
            need = self._size - self._queue.qsize() - self._pending
            self._pending += max(0, need)
        for _ in range(max(0, need)):
            self._executor.submit(self._make_one)

    def take(self, timeout: float = 60.0) -> TestUser:
        self.refill()
        item = self._queue.get(timeout=timeout)
        self.refill()
        if isinstance(item, BaseException):
            raise AssertionError(f"pep.py adduser failed: {item}") from item
        return item

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)


class TestServer:
    """What the ``server`` fixture yields (also the base for extra servers)."""

    __test__ = False

    def __init__(self, proc: ServerProcess, db: Database, redis: PrefixedRedis, db_name: str, names: _NameSource):
        self.proc = proc
        self.url = proc.url
        self.port = proc.port
        self.irc_port = proc.irc_port
        self.log_path = proc.log_path
        self.prefix = redis.prefix
        self.db = db
        self.redis = redis
        self.db_name = db_name
        self.env = proc.env
        self._names = names
        self._pool: _UserPool | None = None

    def start_user_pool(self, size: int = 6, workers: int = 3) -> None:
        self._pool = _UserPool(lambda name: self.add_user(name), self._names, size, workers)
        self._pool.refill()

    def stop_user_pool(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # --- users ---
    def unique_name(self, stem: str = "u") -> str:
        return self._names.next(stem)

    def add_user(self, name: str | None = None, password: str = "password", privileges: int = 3) -> int:
        """Create a user with ``pep.py adduser`` and return its id."""
        name = name or self.unique_name()
        res = subprocess.run(
            [PYTHON, "pep.py", "adduser", name, password, "--privileges", str(privileges)],
            cwd=str(REPO),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 0, f"pep.py adduser {name!r} failed ({res.returncode}): {res.stdout}\n{res.stderr}"
        lines = [ln.strip() for ln in res.stdout.strip().splitlines() if ln.strip()]
        assert lines and lines[-1].lstrip("-").isdigit(), f"adduser printed no id: {res.stdout!r} {res.stderr!r}"
        user_id = int(lines[-1])
        assert user_id > 0
        return user_id

    def new_user(self, privileges: int = 3, name: str | None = None, password: str = "password",
                 stem: str = "u") -> TestUser:
        """A new user (``pep.py adduser``). Plain users (privileges 3, default password, no name
        asked for) come from a pool made ahead of time."""
        if self._pool is not None and privileges == 3 and name is None and password == "password" and stem == "u":
            return self._pool.take()
        name = name or self.unique_name(stem)
        return TestUser(self.add_user(name, password, privileges), name, password)

    def set_privileges(self, user_id: int, privileges: int) -> None:
        self.db.execute("UPDATE users SET privileges=%s WHERE id=%s", (privileges, user_id))

    # --- clients ---
    def client(self, build: int | None = None):
        """A new test client; ``build`` (a date like 20130816) plays that osu! build (its
        version string and chio codec; tests/client.py), the newest build by default."""
        from tests.client import MODERN_BUILD, BanchoClient

        return BanchoClient(self.url, build=build or MODERN_BUILD)

    def login(self, user: TestUser, drain: bool = True, build: int | None = None, **login_kw):
        """Log ``user`` in on a fresh client (of ``build``); asserts success. The login result
        is ``c.login_result``."""
        c = self.client(build)
        res = c.login(user.name, user.password, **login_kw)
        assert res.user_id == user.id, (
            f"login of {user.name!r} (id {user.id}) failed: reply {res.user_id}, packets {res.packets!r}"
        )
        assert res.token, "no cho-token on a successful login"
        c.login_result = res
        c.user = user
        if drain:
            c.drain(rounds=1)
        return c

    def connect(self, privileges: int = 3, name: str | None = None, stem: str = "u", drain: bool = True,
                build: int | None = None, **login_kw):
        """Create a user and log it in (on a client of ``build``); returns the client
        (``.user``, ``.user_id``, ``.username``)."""
        return self.login(self.new_user(privileges, name=name, stem=stem), drain=drain, build=build, **login_kw)

    def log_text(self) -> str:
        return self.proc.log_text()

    def irc_token(self, name: str) -> str:
        """A new IRC token for user ``name`` (``pep.py irc-token``), in clear."""
        res = subprocess.run([PYTHON, "pep.py", "irc-token", name], cwd=str(REPO), env=self.env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"pep.py irc-token {name!r} failed ({res.returncode}): {res.stdout}\n{res.stderr}"
        token = res.stdout.strip().splitlines()[-1].strip()
        assert len(token) == 32, f"irc-token printed {res.stdout!r}"
        return token

    def bot_name(self) -> str:
        """users.username of the bot (id 999)."""
        name = self.db.scalar("SELECT username FROM users WHERE id = 999")
        assert name, "no bot user (id 999) in the database"
        return name

    def online_users(self) -> int:
        """Redis ``<prefix>ripple:online_users`` as an int."""
        value = self.redis.get("ripple:online_users")
        assert value is not None, f"{self.prefix}ripple:online_users is not set"
        return int(value)

    def settled_online_users(self, quiet: float = 0.3, timeout: float = 5.0) -> int:
        """``ripple:online_users`` once it has not changed for ``quiet`` seconds."""
        deadline = time.monotonic() + timeout
        value = self.online_users()
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.online_users()
            if now != value:
                value, stable_since = now, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                break
        return value

    def wait_online_users(self, expected: int, timeout: float = 3.0) -> int:
        """Wait until ``ripple:online_users`` equals ``expected`` (it may be updated in the
        background); return the last value seen."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.online_users()
            if value == expected or time.monotonic() >= deadline:
                return value
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------
def _run_init_db(env: dict[str, str]) -> None:
    res = subprocess.run(
        [PYTHON, "pep.py", "init-db"], cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:
        raise RuntimeError(f"pep.py init-db failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")


def _server_env(db_name: str, prefix: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(BASE_SERVER_ENV)
    env.update(
        {
            "PEP_DB_DATABASE": db_name,
            "PEP_SERVER_PORT": str(port),
            "PEP_REDIS_KEY_PREFIX": prefix,
            # every test server gets its own IRC port (docs/irc.md), so parallel servers never clash
            "PEP_IRC_PORT": str(free_port()),
        }
    )
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="session")
def _test_world(tmp_path_factory) -> Iterator[dict]:
    """Database + Redis prefix + log directory shared by every server of the run."""
    run_hex = secrets.token_hex(4)
    db_name = f"pep_test_{run_hex}"
    prefix = f"pep_test_{run_hex}:"
    log_dir = tmp_path_factory.mktemp("pep_server")
    conn = _mysql_connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()
    redis = PrefixedRedis(prefix)
    db = Database(db_name)
    world = {
        "db_name": db_name,
        "prefix": prefix,
        "log_dir": log_dir,
        "db": db,
        "redis": redis,
        "names": _NameSource(),
        "servers": [],
    }
    try:
        _run_init_db(_server_env(db_name, prefix, free_port()))
        yield world
    finally:
        for proc in world["servers"]:
            proc.stop()
        db.close()
        try:
            conn = _mysql_connect()
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{db_name}`")
            conn.close()
        except Exception as exc:  # pragma: no cover - best effort
            print(f"could not drop {db_name}: {exc}", file=sys.stderr)
        try:
            redis.delete_all()
        finally:
            redis.close()
        if os.environ.get("PEP_TEST_KEEP_LOGS"):
            print(f"server logs kept in {log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server(_test_world) -> Iterator[TestServer]:
    w = _test_world
    env = _server_env(w["db_name"], w["prefix"], free_port())
    proc = ServerProcess(env, w["log_dir"] / "server.log")
    w["servers"].append(proc)
    proc.start()
    srv = TestServer(proc, w["db"], w["redis"], w["db_name"], w["names"])
    srv.start_user_pool()
    try:
        yield srv
    finally:
        srv.stop_user_pool()
        proc.stop()


@contextlib.contextmanager
def extra_servers(w: dict[str, Any], kind: str) -> Iterator[Callable[[dict[str, Any] | None], TestServer]]:
    """``factory(env_overrides=None) -> TestServer``: more server processes on the run's database
    ``w`` (:func:`_test_world`), each on a Redis key prefix of its own (``<run prefix><kind><4 hex
    digits><n>:``) with its log ``server_<kind>_<4 hex digits><n>.log``; all stopped and their
    keys deleted when the block ends. Used by ``start_server`` and ``tests/tcp_client.py``."""
    started: list[tuple[ServerProcess, PrefixedRedis]] = []
    counter = itertools.count(1)

    def factory(env_overrides: dict[str, Any] | None = None) -> TestServer:
        tag = f"{secrets.token_hex(2)}{next(counter)}"
        prefix = f"{w['prefix']}{kind}{tag}:"
        env = _server_env(w["db_name"], prefix, free_port(), env_overrides)
        proc = ServerProcess(env, w["log_dir"] / f"server_{kind}_{tag}.log")
        redis = PrefixedRedis(prefix)
        started.append((proc, redis))
        w["servers"].append(proc)
        proc.start()
        return TestServer(proc, w["db"], redis, w["db_name"], w["names"])

    yield factory
    for proc, redis in started:
        proc.stop()
        try:
            redis.delete_all()
        finally:
            redis.close()


@pytest.fixture
def start_server(_test_world, server) -> Iterator:
    """Factory: ``start_server(env_overrides=None) -> TestServer``, another server process on the
    same DB (:func:`extra_servers`), stopped at the end of the test."""
    with extra_servers(_test_world, "extra") as factory:
        yield factory


@pytest.fixture
def clients(server) -> Iterator:
    made = []

    def factory():
        c = server.client()
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()


# ---------------------------------------------------------------------------------------------
# On failure, show what the server logged during the test
# ---------------------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(autouse=True)
def _server_log_on_failure(request):
    if "server" not in request.fixturenames:
        yield
        return
    srv = request.getfixturevalue("server")
    try:
        start = srv.log_path.stat().st_size
    except OSError:
        start = 0
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        try:
            with open(srv.log_path, "rb") as f:
                f.seek(start)
                chunk = f.read()
        except OSError:
            return
        text = chunk[-16000:].decode("utf-8", "replace")
        print(f"----- server log during {request.node.name} ({srv.log_path}) -----\n{text}")
