"""Restarts that keep every session (docs/operations.md "Deploys without disconnects").

Real servers, MySQL and Redis; chio clients keep polling while the server restarts:

* SIGUSR2: the world is handed to a new process over the inherited listening socket;
* SIGTERM and a new start within ``[sessions] handover_window``, with the listening socket
  held across the restart as systemd's ``pep.socket`` does (``LISTEN_FDS``/``LISTEN_PID``,
  fd 3), so not one connection is refused;
* an unreadable snapshot is logged and ignored (clients reconnect as before);
* ``pep.py stop --notify`` / SIGUSR1: a maintenance stop still tells clients to reconnect.

Each world: N users online, a match in progress (host, guest and a tournament-staff player)
with a referee, one spectator, one user with an undelivered private message in its queue.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest
import requests

from tests import client as C
from tests.conftest import PYTHON, REPO, START_TIMEOUT, ServerProcess, TestServer, _server_env, free_port
from tests.integration import test_multiplayer_common as M
from tests.integration.test_commands import ask, say, wait_bot
from tests.integration.test_commands_banchopy import make_pool, play_round
from tests.integration.test_commands_mp import invite_and_join, make_tourney, mp_ask
from tests.waiting import wait_until

TOURNAMENT_STAFF = 2097152
ENV = {"PEP_CHAT_SPAM_LIMIT": "1000", "PEP_SERVER_RECONNECT_DELAY": "1"}
USERS = int(os.environ.get("PEP_TEST_RESTART_USERS", "50"))


class World:
    """The clients of one scenario and what the checks need to know."""

    def __init__(self, server, srv, bot: str, users: int = USERS) -> None:
        self.srv = srv
        self.bot = bot
        new = [server.new_user() for _ in range(users - 1)]
        self.clients = [srv.login(u) for u in new]
        staff_user = server.new_user()
        server.set_privileges(staff_user.id, 3 | TOURNAMENT_STAFF)
        self.staff = srv.login(staff_user)
        self.host, self.guest, self.referee, self.spectator, self.watched, self.sender, self.receiver = self.clients[:7]
        self.quiet = self.receiver  # does not poll until after the restart
        # a match in progress: host, guest and staff seated; a referee added with !mp addref
        self.match_id, _ = M.create(self.host)
        M.join(self.guest, self.match_id)
        assert ask(self.staff, bot, f"!mp join {self.match_id}") == f"Attempting to join match #{self.match_id}!"
        C.wait_for(self.staff, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == self.match_id)
        self.staff.drain(rounds=1)
        say(self.staff, "#multiplayer", f"!mp addref {self.referee.user.name}")
        assert wait_bot(self.staff, bot, target="#multiplayer") == f"{self.referee.user.name} is now a referee of this match."
        for c in (self.host, self.guest, self.staff):
            c.send(C.match_ready())
        self.host.send(C.match_start())
        for c in (self.host, self.guest, self.staff):
            C.wait_for_id(c, C.MATCH_START)
        # spectating
        self.spectator.send(C.start_spectating(self.watched.user_id))
        C.wait_for_id(self.watched, C.SPECTATOR_JOINED)
        # an undelivered private message
        self.quiet.drain(rounds=1)
        self.pm = f"kept across the restart {os.urandom(4).hex()}"
        self.sender.send(C.private_message(self.quiet.user.name, self.pm))
        self.tokens = {c.user_id: c.token for c in self.clients + [self.staff]}
        for c in self.polling():
            c.drain(rounds=1)

    def polling(self):
        return [c for c in self.clients + [self.staff] if c is not self.quiet]


class Poller:
    """Polls every client of the world in a loop (as idle clients do) and records any failure,
    any restart/login packet, and the longest stall (time of one poll)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.failures: list[str] = []
        self.forbidden: list[str] = []
        self.polls = 0
        self.retried = 0  # polls sent again after a stale keep-alive connection (see _run)
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        clients = self.world.polling()
        while not self._stop.is_set():
            for c in clients:
                started = time.monotonic()
                try:
                    try:
                        packets = c.poll()
                    except requests.exceptions.ConnectionError as exc:
                        # a kept-alive connection that the old process closed just as this
                        # poll was sent: no answer was given, so, as HTTP clients do with a
                        # stale keep-alive connection, send it once more on a new connection
                        if "without response" not in str(exc) and "reset" not in str(exc).lower():
                            raise
                        self.retried += 1
                        packets = c.poll()
                except Exception as exc:  # a refused connection, a reset twice, a timeout
                    self.failures.append(f"{c.user_id}: {type(exc).__name__}: {exc}")
                    continue
                self.longest = max(self.longest, time.monotonic() - started)
                self.polls += 1
                for p in packets:
                    if p.id in (C.RESTART, C.LOGIN_REPLY):
                        self.forbidden.append(f"{c.user_id}: {C.packet_name(p.id)}")
            time.sleep(0.05)


def check_world_after(world: World, poller: Poller) -> None:
    """Everything of :class:`World` survived: tokens, the queued PM (once), the match (slots,
    host, round, referee), chat and spectating."""
    assert not poller.failures, poller.failures[:5]
    assert not poller.forbidden, poller.forbidden[:5]
    first = world.quiet.received[:]  # the quiet client did not poll since the message was sent
    for c in world.clients + [world.staff]:
        packets = c.poll()
        assert not C.of(packets, C.RESTART) and not C.of(packets, C.LOGIN_REPLY), (c.user_id, packets)
        assert c.token == world.tokens[c.user_id]
    # the queued private message is delivered exactly once
    world.quiet.drain(rounds=2)
    got = [p for p in world.quiet.received if C.is_message(p, content=world.pm)]
    assert len(got) == 1, f"the queued message arrived {len(got)} times"
    assert not [p for p in first if C.is_message(p, content=world.pm)], "delivered before the restart"
    # the round goes on: everyone loads, then completes; the host stays
    seated = (world.host, world.guest, world.staff)
    for c in seated:
        c.send(C.match_load_complete())
    for c in seated:
        C.wait_for_id(c, C.MATCH_ALL_PLAYERS_LOADED)
    for c in seated:
        c.send(C.match_complete())
    for c in seated:
        C.wait_for_id(c, C.MATCH_COMPLETE)
    world.host.poll()
    state = M.current(world.host, world.match_id)
    assert state.host_id == world.host.user_id
    seated_ids = sorted(s.user_id for s in state.slots if s.has_player)
    assert seated_ids == sorted(c.user_id for c in seated)
    # the referee list survived
    world.staff.drain(rounds=1)
    say(world.staff, "#multiplayer", "!mp listref")
    assert wait_bot(world.staff, world.bot, target="#multiplayer") == f"Referees: {world.referee.user.name}"
    # spectating relays frames
    world.spectator.drain(rounds=1)
    world.watched.send(C.spectate_frames(C.replay_bundle()))
    C.wait_for_id(world.spectator, C.SPECTATE_FRAMES)
    # chat
    text = f"after the restart {os.urandom(3).hex()}"
    world.sender.send(C.private_message(world.quiet.user.name, text))
    C.wait_for(world.quiet, lambda p: C.is_message(p, content=text))


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def _new_pid(log_text: str) -> int:
    found = re.findall(r"hand-over: new process pid=(\d+) started", log_text)
    assert found, "no hand-over in the log"
    return int(found[-1])


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------------------------
# SIGUSR2: hand-over to a new process
# ---------------------------------------------------------------------------------------------
def test_sigusr2_hands_every_session_to_the_new_process(server, start_server, bot):
    srv = start_server(ENV)
    world = World(server, srv, bot)
    old_pid = srv.proc.proc.pid
    new_pid = None
    try:
        with Poller(world) as poller:
            wait_until(lambda: poller.polls >= 3, what="polls before the signal")
            os.kill(old_pid, signal.SIGUSR2)
            wait_until(lambda: srv.proc.proc.poll() is not None, timeout=60, what="the old process to exit")
            assert srv.proc.proc.returncode == 0
            new_pid = _new_pid(srv.log_text())
            polls_before = poller.polls
            wait_until(lambda: poller.polls > polls_before + 2 * len(world.polling()), timeout=20,
                       what="polls answered by the new process")
        log = srv.log_text()
        assert "stopped after the hand-over" in log
        assert re.search(rf"snapshot \(version \d+, .*from the old process: {USERS} sessions, 1 matches", log), log[-3000:]
        assert "Traceback" not in log
        check_world_after(world, poller)
        print(f"longest poll during the hand-over: {poller.longest * 1000:.0f} ms")
        # logins work on the new process, and the online count is right
        extra = srv.login(server.new_user())
        assert extra.user_id
        assert srv.wait_online_users(USERS + 2) == USERS + 2
        assert srv.redis.sismember(f"peppy:sessions:{world.host.user_id}", "127.0.0.1")
    finally:
        if new_pid is not None:
            _kill(new_pid)


def test_sigusr2_with_broken_new_code_keeps_serving(server, start_server, bot):
    """A new process that dies before it has loaded the world costs a log line: the old process
    serves on with every session (here the new process is killed as soon as it appears)."""
    srv = start_server(ENV)
    c = srv.login(server.new_user())
    os.kill(srv.proc.proc.pid, signal.SIGUSR2)
    pid = wait_until(lambda: re.findall(r"hand-over: new process pid=(\d+) started", srv.log_text()), timeout=10,
                     what="the new process")
    _kill(int(pid[-1]))
    wait_until(lambda: "serving on" in srv.log_text(), timeout=20, what="the old process to serve on")
    assert srv.proc.alive()
    packets = c.poll()
    assert not C.of(packets, C.RESTART)
    other = srv.login(server.new_user())
    other.send(C.private_message(c.user.name, "still here"))
    C.wait_for(c, lambda p: C.is_message(p, content="still here"))


def test_sigusr2_tells_systemd_the_new_main_pid(server, start_server, tmp_path):
    """Under systemd (``Type=notify``, ``NotifyAccess=main``) the old process announces the new
    one with ``MAINPID=`` and ``READY=1``; the new one pings the watchdog (``WATCHDOG_PID`` is
    rewritten for it)."""
    from tests.integration.test_operations import NotifyListener

    listener = NotifyListener(str(tmp_path / "notify.sock"))
    new_pid = None
    try:
        srv = start_server(dict(ENV, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC="1000000"))
        old_pid = srv.proc.proc.pid
        listener.wait(lambda m: m.get("READY") == "1", what="READY=1")
        c = srv.login(server.new_user())
        os.kill(old_pid, signal.SIGUSR2)
        listener.wait(lambda m: m.get("RELOADING") == "1", what="RELOADING=1")
        message = listener.wait(lambda m: "MAINPID" in m, timeout=60, what="MAINPID=")
        new_pid = int(message["MAINPID"])
        assert new_pid != old_pid and message.get("READY") == "1"
        assert new_pid == _new_pid(srv.log_text())
        assert srv.proc.proc.wait(timeout=20) == 0
        assert not C.of(c.poll(), C.RESTART)
        # exactly one READY=1 from the old process at its start, one with MAINPID
        assert sum(1 for m in listener.snapshot() if m.get("READY") == "1") == 2
    finally:
        listener.close()
        if new_pid is not None:
            _kill(new_pid)


# ---------------------------------------------------------------------------------------------
# SIGTERM and a new start, with the listening socket held as systemd's pep.socket does
# ---------------------------------------------------------------------------------------------
class ActivatedServer(ServerProcess):
    """``pep.py`` started the way systemd starts a socket-activated service: the listening
    socket at fd 3, ``LISTEN_FDS=1``, ``LISTEN_PID`` = the service's pid."""

    def __init__(self, env, log_path, listener: socket.socket) -> None:
        super().__init__(env, log_path)
        self.listener = listener

    def start(self, timeout: float = START_TIMEOUT) -> "ActivatedServer":
        self._log_file = open(self.log_path, "ab")
        fd = self.listener.fileno()
        env = dict(self.env, LISTEN_FDS="1")
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', PYTHON, "pep.py"],
            cwd=str(REPO), env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=False, preexec_fn=lambda: os.dup2(fd, 3),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pep.py exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            if "listening on" in self.log_text().split("SIGTERM")[-1] and self.log_text().count("listening on") > \
                    getattr(self, "_seen", 0):
                self._seen = self.log_text().count("listening on")
                return self
            time.sleep(0.05)
        raise RuntimeError(f"pep.py did not start:\n{self.log_text()[-3000:]}")


@pytest.fixture
def activated(_test_world, server):
    """Factory of socket-activated servers on one listening socket (like pep.socket)."""
    w = _test_world
    made = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    prefix = f"{w['prefix']}sa{os.urandom(2).hex()}:"
    log_path = w["log_dir"] / f"server_activated_{port}.log"

    def factory(extra: dict | None = None) -> TestServer:
        env = _server_env(w["db_name"], prefix, port, dict(ENV, **(extra or {})))
        proc = ActivatedServer(env, log_path, listener)
        made.append(proc)
        proc.start()
        from tests.conftest import PrefixedRedis

        return TestServer(proc, w["db"], PrefixedRedis(prefix), w["db_name"], w["names"])

    yield factory
    for proc in made:
        proc.stop()
    listener.close()
    from tests.conftest import PrefixedRedis

    PrefixedRedis(prefix).delete_all()


def test_sigterm_and_start_within_the_window_keep_every_session(server, activated, bot):
    srv = activated()
    world = World(server, srv, bot)
    with Poller(world) as poller:
        wait_until(lambda: poller.polls >= 3, what="polls before the signal")
        os.kill(srv.proc.proc.pid, signal.SIGTERM)
        assert srv.proc.proc.wait(timeout=20) == 0
        log = srv.log_text()
        assert re.search(rf"snapshot of {USERS} sessions \(\d+ bytes\) written to Redis pep:handover; valid for 120 s", log)
        ttl = srv.redis.raw.ttl(srv.redis.key("pep:handover"))
        assert 0 < ttl <= 120, ttl
        # polls meanwhile wait in the listen backlog; the new process answers them
        again = activated()
        assert again.proc is not srv.proc
        polls_before = poller.polls
        wait_until(lambda: poller.polls > polls_before + 2 * len(world.polling()), timeout=20,
                   what="polls answered by the new process")
    log = again.log_text()
    assert re.search(rf"from Redis pep:handover: {USERS} sessions, 1 matches restored", log), log[-3000:]
    assert "inherited socket" in log
    assert "Traceback" not in log
    check_world_after(world, poller)
    assert not again.redis.exists("pep:handover"), "a snapshot is used once"


def test_changes_made_while_stopped_are_applied_after_the_start(server, activated, bot):
    """Bans, restrictions, silences and renames written while no process listened (their Redis
    messages went nowhere) are applied to the restored sessions by the re-check."""
    srv = activated()
    banned, restricted, silenced, renamed, witness = (srv.login(server.new_user()) for _ in range(5))
    os.kill(srv.proc.proc.pid, signal.SIGTERM)
    assert srv.proc.proc.wait(timeout=20) == 0
    db = server.db
    db.execute("UPDATE users SET privileges = 0 WHERE id = %s", (banned.user_id,))
    db.execute("UPDATE users SET privileges = 2 WHERE id = %s", (restricted.user_id,))
    db.execute("UPDATE users SET silence_end = %s WHERE id = %s", (int(time.time()) + 300, silenced.user_id))
    new_name = f"rn{os.urandom(3).hex()}"
    db.execute("UPDATE users SET username = %s, username_safe = %s WHERE id = %s",
               (new_name, new_name, renamed.user_id))
    again = activated()
    wait_until(lambda: "re-check after the restart" in again.log_text(), timeout=20, what="the re-check")
    assert C.LOGIN_REPLY in C.ids(banned.drain(rounds=1)) and -3 in C.values(banned.received, C.LOGIN_REPLY)
    assert C.of(restricted.drain(rounds=1), C.ACCOUNT_RESTRICTED)
    left = C.values(silenced.drain(rounds=1), C.SILENCE_END)
    assert left and 200 < left[-1] <= 300
    assert any(new_name in n for n in C.values(renamed.drain(rounds=1), C.NOTIFICATION))
    # the others are untouched
    packets = witness.poll()
    assert not C.of(packets, C.RESTART) and not C.of(packets, C.LOGIN_REPLY)
    assert re.search(r"re-check after the restart: 5 users read, 4 changes applied", again.log_text())


def test_unreadable_snapshot_is_ignored_and_clients_reconnect(server, activated, bot):
    srv = activated()
    c = srv.login(server.new_user())
    os.kill(srv.proc.proc.pid, signal.SIGTERM)
    assert srv.proc.proc.wait(timeout=20) == 0
    import redis as redis_module

    from tests.conftest import REDIS_DB, REDIS_HOST, REDIS_PORT

    raw = redis_module.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    key = srv.redis.key("pep:handover")
    data = raw.get(key)
    assert data
    raw.set(key, data[: len(data) // 2], ex=60)  # truncated
    raw.close()
    again = activated()
    log = again.log_text()
    assert "snapshot from Redis pep:handover ignored: truncated snapshot" in log
    packets = c.send_raw(C.ping())
    assert C.values(packets, C.RESTART) == [0], "an unknown token is told to log in again"
    assert again.login(server.new_user()).user_id


def test_maintenance_stop_tells_clients(server, activated, bot):
    """``pep.py stop --notify`` (SIGUSR1): the restart packet as before, no snapshot."""
    srv = activated()
    c = srv.login(server.new_user())
    res = subprocess.run([PYTHON, "pep.py", "stop", "--notify", "--pid", str(srv.proc.proc.pid)], cwd=str(REPO),
                         env=srv.proc.env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert C.wait_for_id(c, C.RESTART, timeout=5).value == 1000
    assert srv.proc.proc.wait(timeout=20) == 0
    assert "written to Redis" not in srv.log_text()
    assert not srv.redis.exists("pep:handover")


def test_scrim_pool_and_bans_survive_a_restart(server, activated, bot):
    """bancho.py's scrim (its points), the loaded mappool and its banned picks are part of the
    match's snapshot: after SIGTERM and a new start the next round's point adds to the kept
    one, the pool is still selected and the ban still refuses the pick."""
    srv = activated()
    ref, match_id, _ = make_tourney(server, srv, bot)
    player = srv.login(server.new_user())
    invite_and_join(ref, bot, player, match_id)
    name, _, _ = make_pool(server, ref, bot)
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} selected."
    assert mp_ask(ref, bot, "!mp ban NM2") == "NM2 banned."
    assert mp_ask(ref, bot, "!mp scrim bo3").startswith("A scrimmage has been started")
    play_round(ref, bot, [(ref, 1000), (player, 5000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="Total Score") == f"Total Score: {player.user.name} - 1"
    os.kill(srv.proc.proc.pid, signal.SIGTERM)
    assert srv.proc.proc.wait(timeout=20) == 0
    again = activated()
    wait_until(lambda: re.search(r"restored", again.log_text()), timeout=20, what="the snapshot restored")
    assert re.search(r"snapshot \(version \d+, .*from Redis pep:handover: 2 sessions, 1 matches restored",
                     again.log_text()), again.log_text()[-2000:]
    for c in (ref, player):
        packets = c.poll()
        assert not C.of(packets, C.RESTART) and not C.of(packets, C.LOGIN_REPLY)
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} already selected!"
    assert mp_ask(ref, bot, "!mp ban NM2") == "That pick is already banned!"
    assert mp_ask(ref, bot, "!mp pick NM2") == "NM2 has been banned from being picked."
    assert mp_ask(ref, bot, "!mp scrim bo3") == "Already scrimming!"
    # the kept point and this one make two: the match is won
    play_round(ref, bot, [(ref, 100), (player, 900)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the point!") == \
        f"{player.user.name} takes the point! (900 [Match avg. 500])"
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the match") == \
        f"{player.user.name} takes the match! Congratulations!"
    assert "Traceback" not in again.log_text()


# ---------------------------------------------------------------------------------------------
# a snapshot written by the previous version's code, loaded by a real server
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", [1, 2])
def test_real_server_loads_an_older_snapshot(server, start_server, tmp_path, version):
    """tests/fixtures/snapshot_v<N>.bin was written by the version-N code (tests/snapshot_fixture.py);
    a server of this version reads it from ``[sessions] handover_file`` through the migrations
    and serves its sessions: their tokens are valid and their queued packets are delivered."""
    import json
    import shutil
    import zlib

    from services import handover

    fixture = REPO / "tests" / "fixtures" / f"snapshot_v{version}.bin"
    raw = json.loads(zlib.decompress(fixture.read_bytes()[len(handover.MAGIC):]))
    assert raw["version"] == version
    host = next(t for t in raw["tokens"] if t["user_id"] == 100)
    path = tmp_path / "handover.snapshot"
    shutil.copy(fixture, path)
    srv = start_server(dict(ENV, PEP_SESSIONS_HANDOVER_FILE=str(path)))
    log = srv.log_text()
    assert re.search(rf"snapshot \(version {version}, .*from file .*: 5 sessions, 1 matches restored", log), log[-2000:]
    assert not path.exists(), "a snapshot file is used once"
    c = srv.client()
    packets = c.send_raw(C.ping(), token=host["token"])
    assert not C.of(packets, C.RESTART)
    assert "undelivered private message" in C.values(packets, C.NOTIFICATION)
    assert srv.wait_online_users(6) == 6  # the bot and the five restored sessions


# ---------------------------------------------------------------------------------------------
# systemd's own socket activation tool
# ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(not __import__("shutil").which("systemd-socket-activate"), reason="systemd-socket-activate missing")
def test_started_by_systemd_socket_activate(server, _test_world, tmp_path):
    """``systemd-socket-activate`` (Debian's systemd package) binds the socket and starts
    pep.py with ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``, exactly as pep.socket would."""
    w = _test_world
    port = free_port()
    env = _server_env(w["db_name"], f"{w['prefix']}ssa{os.urandom(2).hex()}:", 1, ENV)  # port 1: never bound
    log_path = tmp_path / "activated.log"
    with open(log_path, "wb") as log_file:
        # the tool gives the service only the variables named with -E, as a unit's Environment=
        passed = [arg for k, v in env.items() if k.startswith(("PEP_", "PYTHON")) for arg in ("-E", f"{k}={v}")]
        proc = subprocess.Popen(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", *passed, PYTHON, "pep.py"],
                                cwd=str(REPO), env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: "Listening on" in log_path.read_text(errors="replace"), timeout=10,
                   what="systemd-socket-activate to bind")
        # the tool starts pep.py on the first connection, which waits in the backlog meanwhile
        c = C.BanchoClient(f"http://127.0.0.1:{port}/", timeout=60)
        user = server.new_user()
        assert c.login(user.name, user.password).user_id == user.id
        assert proc.poll() is None, log_path.read_text()
        assert "inherited socket" in log_path.read_text()
        assert not C.of(c.poll(), C.RESTART)
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
