"""Shared machinery of the benchmark suite (``bench/``): servers, users, HTTP, wrk, reporting.

Nothing here is imported by the server or the tests. Every benchmark

* starts its own ``pep.py`` subprocess (:class:`BenchWorld` + :class:`ServerProcess`) on a
  throw-away database ``pep_bench_<hex>`` (created, ``pep.py init-db``, dropped at the end) with
  a unique Redis key prefix ``pep_bench_<hex>:`` (every key under it deleted at the end), a free
  port on 127.0.0.1, ``PEP_LOG_LEVEL=WARNING`` and a session timeout of a day;
* pins the server to :data:`SERVER_CORE` and itself / ``wrk`` to :data:`LOAD_CORE`
  (``taskset``; override with ``PEP_BENCH_SERVER_CORE`` / ``PEP_BENCH_LOAD_CORE``);
* reports through a :class:`Report`: one line per figure and per target ratio, a JSON file in
  ``bench/results/`` and a non-zero exit code when a target ratio is missed.

Units: times in seconds unless a name says ``_ms`` / ``_us`` / ``_ns``; sizes in bytes unless
``_mib``; rates per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

BENCH = Path(__file__).resolve().parent
#: the server tree under test: this checkout, or another one (``PEP_BENCH_REPO=/path``, e.g. a
#: copy of an older commit, to compare before/after an optimisation with the same suite)
REPO = Path(os.environ.get("PEP_BENCH_REPO") or BENCH.parent).resolve()
DEPS = BENCH / ".deps"  # uvloop and py-spy, installed by run.sh with pip --target (not the server's venv)
RESULTS = BENCH / "results"
_VENV_PY = BENCH.parent / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PY) if _VENV_PY.exists() else sys.executable

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if DEPS.is_dir() and str(DEPS) not in sys.path:
    sys.path.append(str(DEPS))

SERVER_CORE = int(os.environ.get("PEP_BENCH_SERVER_CORE", "0"))
LOAD_CORE = int(os.environ.get("PEP_BENCH_LOAD_CORE", "1"))

MYSQL_HOST = os.environ.get("PEP_BENCH_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("PEP_BENCH_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("PEP_BENCH_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("PEP_BENCH_MYSQL_PASSWORD", "")
REDIS_HOST = os.environ.get("PEP_BENCH_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("PEP_BENCH_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("PEP_BENCH_REDIS_DB", "0"))

PASSWORD = "benchpass"
PASSWORD_MD5 = hashlib.md5(PASSWORD.encode()).hexdigest()
CLIENT_VERSION = "b20250306.2"
START_TIMEOUT = 30.0


# =============================================================================================
# pinning, machine
# =============================================================================================
def pin_self(core: int = LOAD_CORE) -> None:
    """Pin this process (the load generator) to ``core`` when the machine has it."""
    try:
        if core in os.sched_getaffinity(0) or core < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        pass


def pinned(cmd: Sequence[str], core: int | None) -> list[str]:
    """``cmd`` prefixed with ``taskset -c core`` (unchanged when taskset is missing or
    ``core`` is None: not pinned)."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core), *cmd] if taskset and core is not None else list(cmd)


def machine() -> dict[str, Any]:
    """nproc, CPU model (/proc/cpuinfo), Python version and kernel, for the README table."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "server_core": SERVER_CORE,
        "load_core": LOAD_CORE,
    }


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# =============================================================================================
# reporting
# =============================================================================================
class Report:
    """Figures and target ratios of one benchmark script.

    ``figure(name, value, unit)`` prints ``name  value unit``; ``check(name, ratio, target)``
    prints the ratio with PASS/FAIL (``ratio >= target``) and remembers failures;
    ``finish()`` writes ``bench/results/<bench>.json`` and returns the exit code (1 when a
    check failed). ``note(text)`` records a remark (skips, caveats) that is printed and saved.
    """

    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: list[dict[str, Any]] = []
        self.checks: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.started = time.time()
        print(f"== {bench}: {machine()['cpu']}, nproc {os.cpu_count()}, Python {platform.python_version()}, "
              f"server core {SERVER_CORE}, load core {LOAD_CORE}, loadavg {load_average()}", flush=True)

    def figure(self, name: str, value: float, unit: str, fmt: str = "{:.4g}") -> None:
        self.figures.append({"name": name, "value": value, "unit": unit})
        print(f"{self.bench}.{name:<46} {fmt.format(value):>12} {unit}", flush=True)

    def check(self, name: str, ratio: float, target: float, detail: str = "",
              higher_is_better: bool = True, unit: str = "x") -> bool:
        ok = ratio >= target if higher_is_better else ratio <= target
        self.checks.append({"name": name, "ratio": ratio, "target": target, "ok": ok, "detail": detail,
                            "higher_is_better": higher_is_better, "unit": unit})
        op = ">=" if higher_is_better else "<="
        print(f"{self.bench}.{name:<46} {ratio:>12.3f} {unit:<4} target {op} {target:g}{unit}  "
              f"{'PASS' if ok else 'FAIL'}{'  (' + detail + ')' if detail else ''}", flush=True)
        return ok

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"{self.bench}: NOTE {text}", flush=True)

    def finish(self) -> int:
        RESULTS.mkdir(exist_ok=True)
        data = {
            "bench": self.bench,
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": round(time.time() - self.started, 1),
            "machine": machine(),
            "figures": self.figures,
            "checks": self.checks,
            "notes": self.notes,
        }
        (RESULTS / f"{self.bench}.json").write_text(json.dumps(data, indent=1))
        failed = [c["name"] for c in self.checks if not c["ok"]]
        print(f"== {self.bench}: {len(self.checks) - len(failed)}/{len(self.checks)} targets met"
              f"{' (missed: ' + ', '.join(failed) + ')' if failed else ''} in {data['seconds']} s", flush=True)
        return 1 if failed else 0


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) by nearest rank; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


# =============================================================================================
# MySQL and Redis
# =============================================================================================
def mysql_connect(database: str | None = None):
    import MySQLdb

    kw: dict[str, Any] = dict(host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_USER, passwd=MYSQL_PASSWORD,
                              charset="utf8mb4", autocommit=True)
    if database:
        kw["db"] = database
    return MySQLdb.connect(**kw)


def redis_delete_prefix(prefix: str) -> int:
    """Delete every Redis key under ``prefix`` (the bench server's key prefix)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += client.delete(*batch)
                batch = []
        if batch:
            deleted += client.delete(*batch)
    finally:
        client.close()
    return deleted


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bcrypt_hash(cost: int) -> str:
    """One bcrypt hash (``cost``) of md5(:data:`PASSWORD`), shared by every bench account."""
    import bcrypt

    return bcrypt.hashpw(PASSWORD_MD5.encode(), bcrypt.gensalt(cost)).decode()


class BenchWorld:
    """A throw-away database + Redis prefix + log directory; use as a context manager.

    ``flavour`` is the ``[stack] flavour`` of every server started in it (default kawata).
    On exit every server is stopped, the database dropped and the Redis keys deleted.
    """

    def __init__(self, flavour: str = "kawata") -> None:
        self.hex = secrets.token_hex(4)
        self.db_name = f"pep_bench_{self.hex}"
        self.prefix = f"pep_bench_{self.hex}:"
        self.flavour = flavour
        self.dir = Path(tempfile.mkdtemp(prefix=f"pep_bench_{self.hex}_"))
        self.servers: list[ServerProcess] = []
        self._conn = None
        self._created = False
        self._server_seq = 0

    # --- lifecycle ---
    def __enter__(self) -> "BenchWorld":
        conn = mysql_connect()
        try:
            conn.cursor().execute(f"CREATE DATABASE `{self.db_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        self._created = True
        res = subprocess.run([PYTHON, "pep.py", "init-db"], cwd=str(REPO), env=self.env(free_port()),
                             capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            self.__exit__(None, None, None)
            raise RuntimeError(f"pep.py init-db failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return self

    def __exit__(self, *exc: Any) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._created:
            try:
                conn = mysql_connect()
                conn.cursor().execute(f"DROP DATABASE IF EXISTS `{self.db_name}`")
                conn.close()
            except Exception as e:  # pragma: no cover - best effort
                print(f"bench: could not drop {self.db_name}: {e}", file=sys.stderr)
        with contextlib.suppress(Exception):
            redis_delete_prefix(self.prefix)
        if os.environ.get("PEP_BENCH_KEEP_LOGS"):
            print(f"bench: server logs kept in {self.dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- servers ---
    def env(self, port: int, prefix: str | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PEP_SERVER_HOST": "127.0.0.1",
            "PEP_SERVER_PORT": str(port),
            "PEP_DB_HOST": MYSQL_HOST,
            "PEP_DB_PORT": str(MYSQL_PORT),
            "PEP_DB_USERNAME": MYSQL_USER,
            "PEP_DB_PASSWORD": MYSQL_PASSWORD,
            "PEP_DB_DATABASE": self.db_name,
            "PEP_REDIS_HOST": REDIS_HOST,
            "PEP_REDIS_PORT": str(REDIS_PORT),
            "PEP_REDIS_DB": str(REDIS_DB),
            "PEP_REDIS_KEY_PREFIX": prefix if prefix is not None else self.prefix,
            "PEP_STACK_FLAVOUR": self.flavour,
            "PEP_SESSIONS_TIMEOUT": "86400",
            "PEP_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        })
        if extra:
            env.update({k: str(v) for k, v in extra.items()})
        return env

    def start_server(self, extra_env: dict[str, str] | None = None, uvloop: bool = False,
                     core: int | None = SERVER_CORE, name: str = "pep", gc_stats: Path | None = None,
                     gc_threshold: str | None = None, cprofile: Path | None = None,
                     trace: Path | None = None, repo: Path | None = None) -> "ServerProcess":
        """Start ``python pep.py`` pinned to ``core`` (None: not pinned); waits for GET / 200.
        ``repo``: the server tree to run (default :data:`REPO`; ``bench/ab.py`` runs two).

        ``uvloop``: through ``bench/uvloop_pep.py``; ``gc_stats`` (a JSON path) or
        ``gc_threshold`` ("a,b,c"): through ``bench/gc_pep.py``; ``cprofile`` (a pstats path):
        through ``bench/cprofile_pep.py`` (:meth:`ServerProcess.toggle_cprofile`); ``trace`` (a
        path prefix): through ``bench/trace_pep.py`` (hop timestamps of bench/cluster.py's
        latency samples). pep.py itself is unchanged.
        Each server after the first gets its own Redis prefix below the world's prefix, so that
        start-up wipes and session keys never collide.
        """
        self._server_seq += 1
        prefix = self.prefix if self._server_seq == 1 else f"{self.prefix}s{self._server_seq}:"
        port = free_port()
        env = self.env(port, prefix, extra_env)
        # pep.py runs on uvloop by default ([server] uvloop); the targets are measured on the
        # plain asyncio loop (the conservative case) and the uvloop leg is the comparison
        env.setdefault("PEP_SERVER_UVLOOP", "1" if uvloop else "0")
        if uvloop:
            script = [str(BENCH / "uvloop_pep.py")]
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DEPS), env.get("PYTHONPATH", "")]))
        elif trace is not None:
            script = [str(BENCH / "trace_pep.py")]
            env["PEP_BENCH_TRACE"] = str(trace)
        elif cprofile is not None:
            script = [str(BENCH / "cprofile_pep.py")]
            env["PEP_BENCH_CPROFILE"] = str(cprofile)
        elif gc_stats is not None or gc_threshold:
            script = [str(BENCH / "gc_pep.py")]
            env["PEP_BENCH_GC_STATS"] = str(gc_stats or "")
            env["PEP_BENCH_GC_THRESHOLD"] = gc_threshold or ""
        else:
            script = ["pep.py"]
        proc = ServerProcess(pinned([PYTHON, *script], core), env, port,
                             self.dir / f"{name}{self._server_seq}.log", cwd=repo or REPO)
        self.servers.append(proc)
        proc.start()
        return proc

    def start_baseline(self, uvloop: bool = False, core: int = SERVER_CORE, options: Sequence[str] = ()) -> "ServerProcess":
        """The bare Tornado handler of ``bench/baseline_server.py`` pinned to ``core``.

        ``options``: attribution flags of baseline_server.py (``gzip``, ``header``, ``async``, ``lookup``).
        """
        port = free_port()
        cmd = [PYTHON, str(BENCH / "baseline_server.py"), "--port", str(port)] + (["--uvloop"] if uvloop else [])
        cmd += [f"--{o}" for o in options]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DEPS), env.get("PYTHONPATH", "")]))
        label = "-".join(["baseline", *(["uvloop"] if uvloop else []), *options])
        proc = ServerProcess(pinned(cmd, core), env, port, self.dir / f"{label}.log", cwd=BENCH.parent)
        self.servers.append(proc)
        proc.start()
        return proc

    # --- database ---
    def sql(self):
        """A cursor on the bench database (one autocommit connection, kept open)."""
        if self._conn is None:
            self._conn = mysql_connect(self.db_name)
        return self._conn.cursor()

    def create_users(self, count: int, password_hash: str, privileges: int = 3, stem: str = "bench") -> list[tuple[int, str]]:
        """Bulk-insert ``count`` accounts sharing ``password_hash`` (see :func:`bcrypt_hash`).

        Rows as ``pep.py adduser`` makes them: ``users`` plus one row in every stats table of
        the flavour. Names are ``<stem><n>_<hex>``. Returns ``[(user_id, username)]``.
        """
        from common.schema import safe_username, stats_tables

        cur = self.sql()
        tag = secrets.token_hex(2)
        now = int(time.time())
        names = [f"{stem}{i}_{tag}" for i in range(count)]
        for start in range(0, count, 2000):
            chunk = names[start:start + 2000]
            cur.executemany(
                "INSERT INTO users (username, username_safe, password_md5, salt, password_version, privileges, "
                "register_datetime, email, notes) VALUES (%s, %s, %s, '', 2, %s, %s, '', '')",
                [(n, safe_username(n), password_hash, privileges, now) for n in chunk],
            )
        cur.execute("SELECT id, username FROM users WHERE username LIKE %s ORDER BY id", (f"{stem}%\\_{tag}",))
        rows = [(int(r[0]), str(r[1])) for r in cur.fetchall()]
        if len(rows) != count:
            raise RuntimeError(f"created {count} users but found {len(rows)}")
        for table in stats_tables(self.flavour):
            for start in range(0, count, 2000):
                cur.executemany(f"INSERT INTO `{table}` (id, username, country) VALUES (%s, %s, 'XX')",
                                rows[start:start + 2000])
        return rows


class ServerProcess:
    """One server subprocess (pep.py, its uvloop wrapper, or the baseline), logging to a file."""

    def __init__(self, cmd: list[str], env: dict[str, str], port: int, log_path: Path, cwd: Path = REPO) -> None:
        self.cmd = cmd
        self.env = env
        self.port = port
        self.log_path = log_path
        self.cwd = cwd
        self.url = f"http://127.0.0.1:{port}/"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = START_TIMEOUT) -> None:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=str(self.cwd), env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                    head = s.recv(64)
                if head.startswith(b"HTTP/1.1 200") or head.startswith(b"HTTP/1.0 200"):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        code = self.proc.poll()
        self.stop()
        raise RuntimeError(f"{' '.join(self.cmd)} did not answer GET / within {timeout} s (exit {code}):\n"
                           f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
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
        if self._log is not None:
            self._log.close()
            self._log = None
        return proc.returncode if proc is not None else None

    def rss(self) -> int:
        """Resident set size in bytes (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (all threads), seconds."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def toggle_cprofile(self) -> None:
        """Start or stop (and write) the cProfile of a server started with ``cprofile=``."""
        os.kill(self.pid, signal.SIGRTMIN + 2)  # bench/cprofile_pep.py SIGNAL

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        except OSError as e:
            return f"<no log: {e}>"

    def log_problems(self) -> list[str]:
        """ERROR/Traceback lines of the server log (a benchmark must not make the server fail)."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return []
        return [ln for ln in text.splitlines() if " ERROR " in ln or "Traceback" in ln or " CRITICAL " in ln]


# =============================================================================================
# packets (client -> server frames, server response splitting): plain struct, no server code
# =============================================================================================
def frame(packet_id: int, payload: bytes = b"") -> bytes:
    """``u16 id, u8 0, u32 len, payload`` (docs/protocol.md §2.1)."""
    return struct.pack("<HBI", packet_id, 0, len(payload)) + payload


def osu_string(text: str) -> bytes:
    """osu! string: ``00`` for "", else ``0b`` ULEB128(len) UTF-8 (docs/protocol.md §2.3)."""
    if not text:
        return b"\x00"
    data = text.encode()
    n, out = len(data), bytearray(b"\x0b")
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def ping() -> bytes:
    return frame(4)


def change_action(action: int = 2, text: str = "Camellia - Exit This Earth's Atomosphere [Evolved]",
                  md5: str = "0123456789abcdef0123456789abcdef", mods: int = 72, mode: int = 0,
                  beatmap_id: int = 1337) -> bytes:
    """Packet 0 (status): u8 action, str text, str md5, u32 mods, u8 mode, i32 beatmap id."""
    return frame(0, struct.pack("<B", action) + osu_string(text) + osu_string(md5)
                 + struct.pack("<IBi", mods, mode, beatmap_id))


def public_message(target: str, text: str) -> bytes:
    """Packet 1: str sender (ignored), str text, str target, i32 sender id (ignored)."""
    return frame(1, osu_string("") + osu_string(text) + osu_string(target) + struct.pack("<i", 0))


def stats_request(ids: Iterable[int]) -> bytes:
    ids = list(ids)
    return frame(85, struct.pack(f"<H{len(ids)}i", len(ids), *ids))


def split_frames(body: bytes) -> list[tuple[int, bytes]]:
    """Split a server response into ``(packet_id, payload)``; ValueError when malformed."""
    out, pos, n = [], 0, len(body)
    while pos < n:
        if n - pos < 7:
            raise ValueError(f"{n - pos} trailing bytes")
        packet_id, _, length = struct.unpack_from("<HBI", body, pos)
        pos += 7
        if length > n - pos:
            raise ValueError(f"frame {packet_id} truncated")
        out.append((packet_id, body[pos:pos + length]))
        pos += length
    return out


def login_body(username: str, password_md5: str = PASSWORD_MD5) -> bytes:
    """A login body like osu! stable's (docs/protocol.md §1.2) with per-user hardware hashes."""
    seed = hashlib.md5(username.encode()).hexdigest()
    adapters = f"{seed[:2]}-{seed[2:4]}-{seed[4:6]}-{seed[6:8]}-{seed[8:10]}-{seed[10:12]}."
    hashes = ":".join([hashlib.md5(b"osu!.exe").hexdigest(), adapters, hashlib.md5(adapters.encode()).hexdigest(),
                       hashlib.md5(b"u" + seed.encode()).hexdigest(), hashlib.md5(b"d" + seed.encode()).hexdigest()])
    return f"{username}\n{password_md5}\n{CLIENT_VERSION}|1|1|{hashes}:|0\n".encode()


# =============================================================================================
# a small keep-alive HTTP/1.1 client on asyncio (the load generator of the Python-driven phases)
# =============================================================================================
class HttpError(Exception):
    pass


class HttpConn:
    """One keep-alive connection to 127.0.0.1:port; ``post()`` is not re-entrant (one at a time)."""

    def __init__(self, port: int, gzip: bool = False) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: osu!\r\n"
                      + ("Accept-Encoding: gzip\r\n" if gzip else ""))

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)

    async def post(self, body: bytes, token: str | None = None, extra: str = "") -> tuple[int, dict[str, str], bytes]:
        """POST / with ``body`` (and ``osu-token``, and ``extra`` header lines ending in CRLF);
        returns (status, lower-case headers, body)."""
        for attempt in (0, 1):
            if self.writer is None:
                await self._connect()
            head = self._head + (f"osu-token: {token}\r\n" if token is not None else "") + extra
            try:
                self.writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError) as e:
                self.close()
                if attempt:
                    raise HttpError(f"connection failed: {e!r}") from e
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, dict[str, str], bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            body = b""
        if headers.get("content-encoding") == "gzip":
            import gzip

            body = gzip.decompress(body)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
        self.reader = self.writer = None


class ConnPool:
    """``size`` keep-alive connections handed out to concurrent tasks (an asyncio.Queue)."""

    def __init__(self, port: int, size: int, gzip: bool = False) -> None:
        self.queue: asyncio.Queue[HttpConn] = asyncio.Queue()
        for _ in range(size):
            self.queue.put_nowait(HttpConn(port, gzip))
        self.size = size

    async def post(self, body: bytes, token: str | None = None, extra: str = "") -> tuple[int, dict[str, str], bytes]:
        conn = await self.queue.get()
        try:
            return await conn.post(body, token, extra)
        finally:
            self.queue.put_nowait(conn)

    def close(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait().close()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop for the load generator when it is installed (bench/.deps), else asyncio's."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def run(coro):
    """Run ``coro`` on a fresh (uvloop if available) event loop."""
    loop = new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class LoginFailed(Exception):
    pass


def client_ip(username: str) -> str:
    """A stable address in 10.0.0.0/8 for ``username`` (the bench's simulated client address)."""
    digest = hashlib.md5(username.encode()).digest()
    return f"10.{digest[0]}.{digest[1]}.{digest[2] or 1}"


async def login_one(pool: ConnPool, username: str, password_md5: str = PASSWORD_MD5) -> tuple[str, int, int]:
    """Log ``username`` in; returns (token, user id, response bytes). LoginFailed on any refusal.

    Each user claims its own client address in ``X-Real-IP`` (:func:`client_ip`), as behind the
    reverse proxy: the server's login limits count attempts per client address
    (docs/security.md), and thousands of logins from one address would be refused as busy."""
    status, headers, body = await pool.post(login_body(username, password_md5),
                                            extra=f"X-Real-IP: {client_ip(username)}\r\n")
    token = headers.get("cho-token", "")
    if status != 200 or not token or token == "login-failed":
        raise LoginFailed(f"{username}: HTTP {status}, cho-token {token!r}, body {body[:120]!r}")
    pos = 0
    while pos + 7 <= len(body):  # walk the frames only up to the login reply (5)
        packet_id, _, length = struct.unpack_from("<HBI", body, pos)
        if packet_id == 5 and length >= 4:
            user_id = struct.unpack_from("<i", body, pos + 7)[0]
            if user_id <= 0:
                raise LoginFailed(f"{username}: login reply {user_id}")
            return token, user_id, len(body)
        pos += 7 + length
    raise LoginFailed(f"{username}: no login reply in {len(body)} bytes")


async def login_many(port: int, names: Sequence[str], concurrency: int = 16,
                     drain: list[str] | None = None, drain_every: int = 0,
                     password_md5: str = PASSWORD_MD5, gzip: bool = False) -> tuple[list[str], float, int]:
    """Log every name in at ``concurrency``; returns (tokens in ``names`` order, seconds, bytes).

    ``gzip``: send ``Accept-Encoding: gzip`` as the osu! client does (the server then compresses
    the login replies, which at thousands online are tens of kilobytes).

    Every ``drain_every`` logins (0 = never) all tokens logged in so far (plus ``drain``) are
    polled once, so that the presence broadcasts of the storm do not pile up in the queues of
    clients that, unlike real ones, are not polling.
    """
    if not names:
        return [], 0.0, 0
    pool = ConnPool(port, concurrency, gzip)
    tokens: list[str] = [""] * len(names)
    received = 0
    started = time.perf_counter()
    try:
        step = drain_every if drain_every > 0 else len(names)
        for start in range(0, len(names), step):
            idx = iter(range(start, min(len(names), start + step)))

            async def worker() -> None:
                nonlocal received
                for i in idx:
                    token, _, size = await login_one(pool, names[i], password_md5)
                    tokens[i] = token
                    received += size

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            if drain_every > 0:
                received += await poll_all(pool, (drain or []) + tokens[:start + step])
    finally:
        pool.close()
    return tokens, time.perf_counter() - started, received


async def poll_all(pool: ConnPool, tokens: Sequence[str], body: bytes | None = None,
                   expect_known: bool = True) -> int:
    """Poll every token once (``body`` default: a ping) at the pool's concurrency; returns bytes
    received. With ``expect_known`` a token the server does not know (reply 86) raises."""
    body = ping() if body is None else body
    it = iter([t for t in tokens if t])
    total = 0

    async def worker() -> None:
        nonlocal total
        for token in it:
            status, _, data = await pool.post(body, token)
            if status != 200:
                raise HttpError(f"poll answered HTTP {status}")
            if expect_known and data and len(data) < 1024 and any(p == 86 for p, _ in split_frames(data)):
                raise HttpError(f"token {token} is unknown to the server (restart packet)")
            total += len(data)

    await asyncio.gather(*(worker() for _ in range(pool.size)))
    return total


# =============================================================================================
# wrk
# =============================================================================================
WRK_LUA = BENCH / "poll.lua"


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed (bench/run.sh installs it with apt-get)")
    return path


def run_wrk(port: int, tokens: Sequence[str], body: bytes, duration: float, connections: int = 64,
            alt_body: bytes | None = None, alt_every: int = 0, gzip: bool = True, workdir: Path | None = None,
            core: int = LOAD_CORE) -> dict[str, Any]:
    """Run ``wrk -t1 -c<connections>`` pinned to ``core`` for ``duration`` seconds.

    Every request is ``POST /`` with ``body`` and the next token of ``tokens`` as ``osu-token``
    (rotating); with ``alt_every`` = k > 0 every k-th request carries ``alt_body`` instead, its
    token taken from a second rotation (so that each user sends rarely). Returns wrk's figures:
    ``rps``, ``requests``, ``p50_ms``, ``p90_ms``, ``p99_ms``, ``p999_ms``, ``max_ms``,
    ``errors`` (connect+read+write+timeout+non-2xx) and ``bytes``.
    """
    wrk = ensure_wrk()
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="pep_bench_wrk_") as tmp:
            return run_wrk(port, tokens, body, duration, connections, alt_body, alt_every, gzip, Path(tmp), core)
    workdir = Path(workdir)
    tokens_path = workdir / "tokens.txt"
    tokens_path.write_text("\n".join(t for t in tokens if t) + "\n")
    body_path = workdir / "body.bin"
    body_path.write_bytes(body)
    alt_path = "-"
    if alt_body is not None and alt_every > 0:
        (workdir / "alt.bin").write_bytes(alt_body)
        alt_path = str(workdir / "alt.bin")
    cmd = pinned([wrk, "-t1", f"-c{connections}", f"-d{max(1, int(round(duration)))}s", "--timeout", "10s",
                  "-s", str(WRK_LUA), f"http://127.0.0.1:{port}/", "--",
                  str(tokens_path), str(body_path), alt_path, str(alt_every), "1" if gzip else "0"], core)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    match = re.search(r"^WRKJSON (\{.*\})$", res.stdout, re.M)
    if res.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    data = json.loads(match.group(1))
    seconds = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("errors_connect", "errors_read", "errors_write", "errors_status", "errors_timeout"))
    return {
        "rps": data["requests"] / seconds if seconds else 0.0,
        "requests": data["requests"],
        "seconds": seconds,
        "bytes": data["bytes"],
        "errors": errors,
        "p50_ms": data["p50_us"] / 1000,
        "p90_ms": data["p90_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "p999_ms": data["p999_us"] / 1000,
        "max_ms": data["max_us"] / 1000,
        "mean_ms": data["mean_us"] / 1000,
        "raw": data,
    }


# =============================================================================================
# profiling
# =============================================================================================
def py_spy() -> str | None:
    """Path of py-spy (bench/.deps/bin or PATH), or None."""
    local = DEPS / "bin" / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def profile_start(pid: int, duration: float, out: Path, rate: int = 250, gil: bool = True,
                  native: bool = False) -> subprocess.Popen | None:
    """Start ``py-spy record`` on ``pid`` for ``duration`` s writing collapsed stacks to ``out``.

    With ``gil`` only the thread holding the GIL is sampled: on a server pinned to one core
    that is the CPU the event loop and the pools compete for (threads blocked in MySQL or
    bcrypt without the GIL are left out). py-spy runs on the load core, non-blocking (it reads
    the server's memory without stopping it). Returns the process (wait for it) or None when
    py-spy is unavailable. ``native`` adds C frames (e.g. the garbage collector); py-spy then
    has to stop the process for each sample, which slows it down (proportions stay usable).
    """
    spy = py_spy()
    if spy is None:
        return None
    mode = ["--native"] if native else ["--nonblocking"]
    cmd = pinned([spy, "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", str(rate),
                  "--format", "raw", "--output", str(out), *mode, *(["--gil"] if gil else [])], LOAD_CORE)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def profile_summary(collapsed: Path, top: int = 15) -> list[tuple[str, float, float]]:
    """Top functions of a py-spy collapsed-stack file: [(function, self %, inclusive %)]."""
    if not collapsed.exists():
        return []
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text("utf-8", "replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        leaf = _short_frame(frames[-1])
        self_counts[leaf] = self_counts.get(leaf, 0) + count
        for name in {_short_frame(f) for f in frames}:
            incl_counts[name] = incl_counts.get(name, 0) + count
    if not total:
        return []
    ranked = sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]
    return [(name, 100.0 * c / total, 100.0 * incl_counts.get(name, 0) / total) for name, c in ranked]


def _short_frame(f: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    m = re.match(r"(.*?) \((.*?)(?::(\d+))?\)$", f)
    if not m:
        return f
    func, path = m.group(1), m.group(2)
    try:
        path = str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path)
    return f"{func} ({path})"


# =============================================================================================
# multiplayer and spectating frames (client -> server), plain struct (docs/protocol.md §4.6, §6.1)
# =============================================================================================
def match_struct(name: str, host_id: int, password: str = "", beatmap_name: str = "xi - FREEDOM DiVE [FOUR DIMENSIONS]",
                 beatmap_id: int = 129891, beatmap_md5: str = "da8aae79c8f3306b5d65ec951874a7fb") -> bytes:
    """A match struct as the client sends it in 31 (create): 16 open slots, no players."""
    out = struct.pack("<HBBI", 0, 0, 0, 0) + osu_string(name) + osu_string(password) + osu_string(beatmap_name)
    out += struct.pack("<i", beatmap_id) + osu_string(beatmap_md5)
    out += bytes([1] * 16) + bytes(16)  # status Open, team Neutral
    out += struct.pack("<iBBBBI", host_id, 0, 0, 0, 0, 1234)
    return out


def create_match(name: str, host_id: int) -> bytes:
    return frame(31, match_struct(name, host_id))


def join_match(match_id: int, password: str = "") -> bytes:
    return frame(32, struct.pack("<i", match_id) + osu_string(password))


def join_lobby() -> bytes:
    return frame(30)


def start_spectating(host_id: int) -> bytes:
    return frame(16, struct.pack("<i", host_id))
