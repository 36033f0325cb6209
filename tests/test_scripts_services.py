"""scripts/services.sh stops and resets only the private servers of the configured ports.

A real redis-server is started the way scripts/setup.sh starts a private one (its own directory
.data/redis-<port>/ with the pid file inside); ``services.sh stop`` must stop it and leave its
data, ``reset`` must delete the directory, and a server of another port must be left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "services.sh")
REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

pytestmark = pytest.mark.skipif(not os.access(REDIS, os.X_OK),
                                reason="redis-server is not installed (scripts/setup.sh installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_private_redis(port: int) -> tuple[str, int]:
    directory = os.path.join(REPO, ".data", f"redis-{port}")
    os.makedirs(directory, exist_ok=True)
    subprocess.run([REDIS, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
                    "--dir", directory, "--pidfile", os.path.join(directory, "redis.pid"),
                    "--logfile", os.path.join(directory, "redis.log")], check=True)
    pid_file = os.path.join(directory, "redis.pid")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(pid_file) and open(pid_file).read().strip():
            return directory, int(open(pid_file).read().strip())
        time.sleep(0.05)
    raise AssertionError("redis-server did not write its pid file")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours would still answer kill 0; redis daemonizes, so it is not our child
    return True


def services(action: str, redis_port: int, db_port: int) -> str:
    env = dict(os.environ, PEP_REDIS_PORT=str(redis_port), PEP_DB_PORT=str(db_port))
    env.pop("PEP_TEST_REDIS_PORT", None)
    env.pop("PEP_TEST_MYSQL_PORT", None)
    out = subprocess.run(["bash", SCRIPT, action], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stop_and_reset_act_on_the_configured_port_only():
    port, other_port = free_port(), free_port()
    directory, pid = start_private_redis(port)
    other_directory, other_pid = start_private_redis(other_port)
    unused_db_port = free_port()
    try:
        assert "running" in services("status", port, unused_db_port)
        out = services("stop", port, unused_db_port)
        assert "stopped" in out
        assert wait_gone(pid)
        assert os.path.isdir(directory)  # stop keeps the data
        assert alive(other_pid)  # another port's server is not touched

        services("reset", port, unused_db_port)
        assert not os.path.exists(directory)
        assert os.path.isdir(other_directory)
    finally:
        for p in (pid, other_pid):
            if alive(p):
                os.kill(p, 15)
        for p in (pid, other_pid):
            wait_gone(p)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(other_directory, ignore_errors=True)
