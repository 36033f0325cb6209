"""Safe start-up: a server that cannot start changes nothing that a running server owns.

A start-up binds its listening socket and reads everything it needs (Redis reachable, settings,
channels, the bot user) before it resets the stack's Redis keys (docs/operations.md
"Start-up"). A second ``pep.py`` on a busy port, or one whose bot user is missing, must exit
with an error and leave the running server's ``ripple:online_users``, ``peppy:sessions:*`` and
``peppy:version`` as they were.
"""

from __future__ import annotations

import subprocess

from tests import client as C
from tests.conftest import PYTHON, REPO, free_port


def _redis_snapshot(srv) -> dict[str, object]:
    """Every key of the server's prefix with its value (strings) or members (sets)."""
    out: dict[str, object] = {}
    for name in srv.redis.keys("*"):
        key = srv.redis.key(name)
        kind = srv.redis.raw.type(key)
        if kind == "string":
            out[name] = srv.redis.raw.get(key)
        elif kind == "set":
            out[name] = frozenset(srv.redis.raw.smembers(key))
        else:
            out[name] = kind
    return out


def _run_second(env: dict[str, str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "pep.py"], cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=timeout)


def _assert_untouched(first, before: dict[str, object], a, b) -> None:
    assert _redis_snapshot(first) == before
    # the first server still serves its sessions: a message goes from one to the other
    a.send(C.private_message(b.username, "hello after the failed start"))
    C.wait_for(b, lambda p: p.id == C.SEND_MESSAGE and p.value.content == "hello after the failed start")


def test_second_server_on_a_busy_port_leaves_the_running_server_alone(start_server):
    first = start_server()
    a = first.connect()
    b = first.connect()
    assert first.wait_online_users(3) == 3  # bot + 2
    before = _redis_snapshot(first)
    assert before["ripple:online_users"] == "3"
    assert f"peppy:sessions:{a.user_id}" in before and f"peppy:sessions:{b.user_id}" in before
    res = _run_second(first.env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot listen" in res.stdout + res.stderr
    _assert_untouched(first, before, a, b)
    a.close()
    b.close()


def test_a_missing_prerequisite_fails_before_redis_is_reset(start_server):
    first = start_server()
    a = first.connect()
    b = first.connect()
    assert first.wait_online_users(3) == 3
    before = _redis_snapshot(first)
    env = dict(first.env)
    env["PEP_SERVER_PORT"] = str(free_port())
    env["PEP_STACK_BOT_ID"] = "2147483000"  # no such user: the start-up must stop before any write
    res = _run_second(env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "bot user 2147483000 does not exist" in res.stdout + res.stderr
    _assert_untouched(first, before, a, b)
    a.close()
    b.close()

