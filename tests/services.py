"""Private MariaDB and Redis servers for outage tests: started in a temp dir on a free port,
stoppable and restartable by the test (tests never stop the machine's own services)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


#: ports handed out by :func:`free_port` in this process (never twice, even once free again)
_given: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux
    ``ip_local_port_range``; the Linux default where it cannot be read)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
            low, high = (int(x) for x in fh.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now, for a server a test starts.

    Chosen at random *below* the ephemeral range when there is room (10000 up to it): port 0
    would give a port of that range, which every outgoing connection of the machine (MySQL and
    Redis clients, HTTP clients of other tests) also draws from, so it could be taken before
    the server binds it. Another process may still take the port in between: the harness
    retries a server start that failed on a busy port (tests/conftest.py ``ServerProcess``).
    """
    low, _ = _ephemeral_range()
    if low - 10000 >= 1000:
        for _ in range(200):
            port = random.randrange(10000, low)
            if port in _given:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _given.add(port)
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _given.add(port)
    return port


def wait_port(port: int, up: bool, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                if up:
                    return True
        except OSError:
            if not up:
                return True
        time.sleep(0.1)
    return False


def _binary(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
        if path:
            return path
    return None


class PrivateMariaDB:
    """A throw-away ``mariadbd`` with root and no password on 127.0.0.1:``port``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.datadir = root / "data"
        self.proc: subprocess.Popen | None = None
        self.started = False  # once started, the port is known to others and stays
        self.mysqld = _binary("mariadbd", "mysqld")
        self.install = _binary("mariadb-install-db", "mysql_install_db")

    @property
    def available(self) -> bool:
        return bool(self.mysqld and self.install)

    def init(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run([self.install, "--no-defaults", f"--datadir={self.datadir}", *user,
                        "--auth-root-authentication-method=normal", "--skip-test-db"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers on its own socket. On
        the first start a port taken meanwhile by another process is replaced by a new one
        (nobody knows the port yet); a restart keeps its port."""
        for _ in range(3):
            user = ["--user=root"] if os.geteuid() == 0 else []
            self.proc = subprocess.Popen(
                [self.mysqld, "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.root / 'sock'}",
                 f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.root / 'pid'}",
                 f"--log-error={self.root / 'err.log'}", "--skip-name-resolve", "--character-set-server=utf8mb4", *user],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            # ours is up when its unix socket exists (it binds the TCP port before) and the port answers
            deadline = time.monotonic() + 60
            while self.proc.poll() is None and time.monotonic() < deadline:
                if (self.root / "sock").exists() and wait_port(self.port, True, 1):
                    break
                time.sleep(0.1)
            if self.proc.poll() is None and (self.root / "sock").exists():
                self.started = True
                self._allow_root_tcp()
                return
            self.stop()
            if self.started:
                break
            self.port = free_port()
        raise RuntimeError("private MariaDB did not start: " + (self.root / "err.log").read_text()[-2000:])

    def _allow_root_tcp(self) -> None:
        import MySQLdb

        deadline = time.monotonic() + 20
        while True:
            try:
                conn = MySQLdb.connect(unix_socket=str(self.root / "sock"), user="root")
                break
            except MySQLdb.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        cur = conn.cursor()
        cur.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''")
        cur.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        conn.close()

    def stop(self, kill: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        wait_port(self.port, False, 10)


class PrivateRedis:
    """A throw-away ``redis-server`` without persistence on 127.0.0.1:``port``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = False  # once started, the port is known to others and stays
        self.binary = _binary("redis-server")

    @property
    def available(self) -> bool:
        return bool(self.binary)

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers. On the first start a
        port taken meanwhile by another process is replaced by a new one (nobody knows the port
        yet); a restart keeps its port."""
        for _ in range(3):
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.root)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )
            if wait_port(self.port, True, 20) and self._ours():
                self.started = True
                return
            self.stop()
            if self.started:
                break
            self.port = free_port()
        raise RuntimeError("private Redis did not start")

    def _ours(self) -> bool:
        """Whether the Redis on ``port`` is the one started here (its working directory)."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)
        try:
            for _ in range(20):
                if self.proc is None or self.proc.poll() is not None:
                    return False
                try:
                    return os.path.realpath(client.config_get("dir").get("dir", "")) == os.path.realpath(self.root)
                except redis.exceptions.BusyLoadingError:
                    time.sleep(0.1)
            return False
        except redis.exceptions.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        wait_port(self.port, False, 10)
