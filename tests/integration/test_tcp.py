"""The raw TCP listener of the 2012-2013 builds (handlers/tcp.py; docs/operations.md "The TCP
listener", docs/protocol.md §1.9), against a real server over real sockets.

The TCP clients are :class:`tests.tcp_client.TcpClient` with chio's classes of b20121203 (the
oldest TCP build) and b20130801 (the newest chio knows); the HTTP players are the modern
:class:`tests.client.BanchoClient`. Both live in the same world.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from typing import Iterator

import pytest

from tests import client as hc
from tests.integration import test_builds_matrix as matrix
from tests.client import wait_for
from chio.constants import ReplayAction
from chio.types import ReplayFrame, ReplayFrameBundle

from tests.tcp_client import NEWEST, OLDEST, TcpClient, UserStatus, tcp_server_factory  # noqa: F401 (fixture)
from tests.waiting import wait_until

BUILDS = [OLDEST, NEWEST]
#: every chio breakpoint of the TCP era (chio/clients: b20121203 ... b20130801)
BREAKPOINTS = [20121203, 20121207, 20121211, 20121212, 20121221, 20121224, 20121225, 20130118, 20130131,
               20130209, 20130303, 20130418, 20130509, 20130604, 20130801]
#: the breakpoints where a match or spectator layout changes (helpers/layout.py)
MATCH_BUILDS = [20121203, 20121225, 20130118, 20130303, 20130418, 20130801]


@pytest.fixture(scope="module")
def tcp_server(tcp_server_factory):
    """One server with the TCP listener on a free port."""
    return tcp_server_factory({"PEP_SERVER_MAX_CONNECTIONS_PER_IP": "0"})


def tcp(srv, build: int) -> TcpClient:
    """A TCP client of ``build`` connected to the server's listener, not logged in."""
    return TcpClient("127.0.0.1", srv.tcp_port, build)


def tcp_login(srv, build: int):
    user = srv.new_user()
    c = tcp(srv, build)
    assert c.login(user.name, user.password) == user.id, c.received
    c.user = user
    return c


def http_login(srv):
    user = srv.new_user()
    return srv.login(user)


@contextlib.contextmanager
def with_modern(srv, build: int, tcp_first: bool = False) -> Iterator[tuple[TcpClient, hc.BanchoClient]]:
    """(a TCP client of ``build``, a modern HTTP client), both logged in (the HTTP one first
    unless ``tcp_first``); both closed at the end."""
    c = modern = None
    try:
        if tcp_first:
            c = tcp_login(srv, build)
        modern = http_login(srv)
        if c is None:
            c = tcp_login(srv, build)
        yield c, modern
    finally:
        for client in (c, modern):
            if client is not None:
                client.close()


# ---------------------------------------------------------------------------------------------
# login, presence, stats
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", BUILDS)
def test_login_sequence_and_presence(tcp_server, build):
    with with_modern(tcp_server, build) as (c, modern):
        c.wait_for(lambda p: p.id == hc.CHANNEL_INFO_END, description="89 channel info complete")
        ids = [p.id for p in c.received]
        assert ids[0] == hc.PROTOCOL_VERSION and hc.LOGIN_REPLY in ids[:2]
        assert hc.PRIVILEGES in ids and hc.CHANNEL_JOIN_SUCCESS in ids
        own = [p.value for p in c.received if p.id == hc.USER_PRESENCE and p.value.user_id == c.user_id]
        assert own and own[0].username == c.user.name
        # the modern player is in the TCP client's list, and the TCP user appears to the modern one
        c.wait_for(lambda p: p.id == hc.USER_PRESENCE and p.value.user_id == modern.user_id,
                   description="the HTTP player's presence")
        wait_for(modern, lambda p: p.id == hc.USER_PRESENCE and p.value.user_id == c.user_id,
                 description="the TCP player's presence")
        # stats on request, both ways
        modern.send(hc.stats_request([c.user_id]))
        stats = wait_for(modern, lambda p: p.id == hc.USER_STATS and p.value.user_id == c.user_id)
        assert stats.value.mode == 0
        c.send(hc.stats_request([modern.user_id]))
        c.wait_for(lambda p: p.id == hc.USER_STATS and p.value.user_id == modern.user_id,
                   description="the HTTP player's stats")
        # both count as online
        wait_until(lambda: tcp_server.online_users() >= 2, what="online users")


@pytest.mark.parametrize("build", BUILDS)
def test_wrong_password_is_refused_and_closed(tcp_server, build):
    user = tcp_server.new_user()
    with tcp(tcp_server, build) as c:
        assert c.login(user.name, "not the password") == -1
        assert c.wait_closed(), "the connection stays open after a refused login"


def test_http_build_over_tcp_is_refused(tcp_server):
    user = tcp_server.new_user()
    with tcp(tcp_server, 20250306) as c:
        assert c.login(user.name, user.password) == -2
        assert c.wait_closed()


# ---------------------------------------------------------------------------------------------
# chat and status
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", BREAKPOINTS)
def test_chat_both_ways_with_an_http_player(tcp_server, build):
    with with_modern(tcp_server, build) as (c, modern):
        c.drain()
        # TCP -> HTTP, public and private
        c.send(c.message_frame(hc.C_PUBLIC_MESSAGE, "#osu", f"hello from b{build}"))
        m = wait_for(modern, lambda p: hc.is_message(p, content=f"hello from b{build}"), timeout=10)
        assert m.value.sender == c.user.name and m.value.target == "#osu"
        c.send(c.message_frame(hc.C_PRIVATE_MESSAGE, modern.user.name, "psst"))
        m = wait_for(modern, lambda p: hc.is_message(p, content="psst"), timeout=10)
        assert m.value.sender == c.user.name and m.value.target == modern.user.name
        # HTTP -> TCP, public and private
        modern.send(hc.public_message("#osu", "hello old client"))
        m = c.wait_for(lambda p: p.id == hc.SEND_MESSAGE and p.value.content == "hello old client")
        assert m.value.sender == modern.user.name and m.value.target == "#osu"
        modern.send(hc.private_message(c.user.name, "hi back"))
        m = c.wait_for(lambda p: p.id == hc.SEND_MESSAGE and p.value.content == "hi back")
        assert m.value.sender == modern.user.name


@pytest.mark.parametrize("build", BUILDS)
def test_status_change_reaches_an_http_player(tcp_server, build):
    with with_modern(tcp_server, build) as (c, modern):
        c.drain()
        status = UserStatus(action=2, text="some map [hard]", beatmap_checksum="a" * 32, mods=8, mode=0,
                            beatmap_id=4242)
        c.send(c.status_frame(status))
        own = c.wait_for(lambda p: p.id == hc.USER_STATS and p.value.user_id == c.user_id
                         and p.value.beatmap_id == 4242, description="own stats after the status change")
        assert own.value.action == 2 and own.value.text.endswith("some map [hard]") and own.value.mods == 8

        def seen():
            modern.send(hc.stats_request([c.user_id]))
            return any(p.id == hc.USER_STATS and p.value.user_id == c.user_id and p.value.beatmap_id == 4242
                       for p in modern.received)

        wait_until(seen, timeout=10, what="the HTTP player sees the new status")


# ---------------------------------------------------------------------------------------------
# spectating
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", BUILDS)
def test_spectating_a_modern_player(tcp_server, build):
    with with_modern(tcp_server, build) as (c, host):
        c.drain()
        c.send(hc.start_spectating(host.user_id))
        joined = wait_for(host, lambda p: p.id == hc.SPECTATOR_JOINED, timeout=10)
        assert joined.value == c.user_id
        bundle = ReplayFrameBundle(action=ReplayAction.Standard, extra=0, sequence=1, frame=None,
                                   frames=[ReplayFrame(mouse_x=256.0, mouse_y=192.0, time=12300)])
        host.send(hc.spectate_frames(bundle))
        c.wait_for(lambda p: p.id == hc.SPECTATE_FRAMES, description="the host's frames")
        c.send(hc.stop_spectating())
        left = wait_for(host, lambda p: p.id == hc.SPECTATOR_LEFT, timeout=10)
        assert left.value == c.user_id


# ---------------------------------------------------------------------------------------------
# the session ends with the connection, and the connection with the session
# ---------------------------------------------------------------------------------------------
def test_closing_the_socket_logs_out(tcp_server):
    modern = http_login(tcp_server)
    c = tcp_login(tcp_server, OLDEST)
    user_id = c.user_id
    wait_for(modern, lambda p: p.id == hc.USER_PRESENCE and p.value.user_id == user_id)
    c.close()
    wait_for(modern, lambda p: p.id == hc.USER_LOGOUT and p.value.user_id == user_id, timeout=10)
    modern.close()


def test_a_newer_login_closes_the_older_connection(tcp_server):
    user = tcp_server.new_user()
    with tcp(tcp_server, OLDEST) as first, tcp(tcp_server, NEWEST) as second:
        assert first.login(user.name, user.password) == user.id
        assert second.login(user.name, user.password) == user.id
        assert first.wait_closed(), "the replaced session's connection stays open"
        second.send(hc.ping())
        second.read(0.3)
        assert not second.eof


# ---------------------------------------------------------------------------------------------
# restarts
# ---------------------------------------------------------------------------------------------
def test_hand_over_closes_tcp_sessions_and_keeps_http_ones(tcp_server_factory):
    """SIGUSR2 (docs/decisions.md "The TCP listener"): a TCP session cannot follow its socket to
    the new process, so it is told to reconnect (86 with [server] reconnect_delay), logged out
    and closed; the HTTP sessions are handed over; the new process listens on the TCP port and
    the client logs in again there."""
    srv = tcp_server_factory({"PEP_SERVER_RECONNECT_DELAY": "1"})
    modern = http_login(srv)
    c = tcp_login(srv, NEWEST)
    wait_for(modern, lambda p: p.id == hc.USER_PRESENCE and p.value.user_id == c.user_id, timeout=10)
    old_pid = srv.proc.proc.pid
    new_pid = None
    os.kill(old_pid, signal.SIGUSR2)
    try:
        restart = c.wait_for(lambda p: p.id == hc.RESTART, timeout=60, description="the restart packet")
        assert restart.value == 1000
        assert c.wait_closed(30), "the TCP connection outlives the hand-over"
        wait_until(lambda: srv.proc.proc.poll() is not None, timeout=60, what="the old process to exit")
        found = re.findall(r"hand-over: new process pid=(\d+) started", srv.log_text())
        assert found, "no hand-over in the log"
        new_pid = int(found[-1])
        # the HTTP session was handed over: it hears that the TCP user left, and is not restarted
        wait_for(modern, lambda p: p.id == hc.USER_LOGOUT and p.value.user_id == c.user_id, timeout=20)
        assert not [p for p in modern.received if p.id == hc.RESTART]
        # the client reconnects to the new process
        again: list[TcpClient] = []

        def relogin() -> bool:
            try:
                client = tcp(srv, NEWEST)
            except OSError:
                return False
            again.append(client)
            return client.login(c.user.name, c.user.password) == c.user_id

        wait_until(relogin, timeout=30, interval=0.5, what="a TCP login on the new process")
        wait_for(modern, lambda p: p.id == hc.USER_PRESENCE and p.value.user_id == c.user_id, timeout=10)
        for client in again:
            client.close()
    finally:
        c.close()
        modern.close()
        if new_pid is not None:
            try:
                os.kill(new_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------------------------
# a match round and spectating both ways with a modern player, over the real socket: the build
# matrix's scenarios (tests/integration/test_builds_matrix.py) with the TCP client in place of an
# HTTP client of the same build
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("build", MATCH_BUILDS)
def test_match_round_with_a_modern_player(tcp_server, build):
    with with_modern(tcp_server, build, tcp_first=True) as (old, new):
        matrix._round(old, new)
        matrix._round(new, old)


@pytest.mark.parametrize("build", MATCH_BUILDS)
def test_spectating_both_ways_with_a_modern_player(tcp_server, build):
    with with_modern(tcp_server, build, tcp_first=True) as (old, new):
        matrix._watch(old, new, seed=3)
        matrix._watch(new, old, seed=5)
