"""Restarts that keep sessions: the world snapshot, its store, and the hand-over to a new process.

docs/operations.md "Deploys without disconnects" describes the behaviour; the choices are in
docs/decisions.md "Restarts that keep sessions".

The snapshot is zlib-compressed JSON behind the magic line :data:`MAGIC`, a JSON object with
``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`), ``written`` (unix seconds), the
stack (``flavour``, ``bot_id``) and the records of the owning objects (``Token.to_snapshot``,
``Channel.to_snapshot``, ``match_to_snapshot``) plus the server-wide tables. Reading goes
:func:`decode` (bounded decompression, JSON, version check, :data:`MIGRATIONS` one step at a
time) → :func:`build` (every record checked and every cross reference resolved into new
objects; :class:`objects.snapshot.SnapshotError` on the first problem) → :meth:`Plan.apply`
(the only step that touches the :class:`objects.state.State`; no checks left that could fail).
So a snapshot is applied whole or not at all; :func:`restore` logs and ignores one it cannot
read.

Where the snapshot travels:

* stop and start (SIGTERM): :func:`store` puts it in Redis under ``pep:handover`` with a TTL of
  ``[sessions] handover_window`` seconds (or in the file ``[sessions] handover_file``);
  :func:`take_stored` reads and deletes it at the next start;
* in-place restart (SIGUSR2): :func:`hand_over` starts the new code with the listening
  sockets as systemd passes them (``LISTEN_FDS``/``LISTEN_PID``, fds 3...) and a socket pair
  (``PEP_HANDOVER_FD``); the snapshot goes through that pair (:func:`receive` on the new side).

The poll path never touches any of this: the snapshot is taken only at a stop or hand-over.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import struct
import sys
import time
import zlib
from typing import TYPE_CHECKING, Any, Callable, Sequence

from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX, Channel
from objects.match import Match, match_from_snapshot, match_to_snapshot
from objects.snapshot import Record, SnapshotError, records
from objects.token import Token
from services import moderation, pubsub_handlers, session, shutdown
from services.commands import banchopy
from services.commands import mp as mp_commands
from services.commands import np as np_commands

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.handover")

MAGIC = b"pep.py snapshot\n"
FORMAT = "pep.py-snapshot"
#: the version this code writes; older versions are read through MIGRATIONS.
#: 1: first version; 2: running ``!mp start`` countdowns are kept (``countdowns``); 3: each
#: match keeps bancho.py's scrim, its loaded mappool and banned picks (``scrim``, ``pool``, ``bans``)
VERSION = 3
#: largest stored (compressed) snapshot accepted, bytes
MAX_STORED = 64 << 20
#: largest decompressed snapshot accepted, bytes
MAX_JSON = 512 << 20
#: most sessions / matches / channels in one snapshot
MAX_TOKENS = 200_000
MAX_CHANNELS = 100_000
#: Redis key (with the stack's key prefix) of a snapshot written by a stop
REDIS_KEY = "pep:handover"
#: environment variable naming the hand-over socket of a new process
HANDOVER_FD_ENV = "PEP_HANDOVER_FD"
#: seconds the old process waits for the new one to load the world / to serve
SPAWN_TIMEOUT = 60.0
SERVE_TIMEOUT = 30.0
#: seconds a stop or hand-over waits for logins under way
LOGIN_WAIT = 5.0


def _migrate_0_to_1(snap: dict) -> dict:  # pragma: no cover - placeholder, version 0 never existed
    raise SnapshotError("version 0 is not a pep.py snapshot")


def _migrate_1_to_2(snap: dict) -> dict:
    """Version 1 had no countdowns (they were cancelled by a restart): none are running."""
    snap["countdowns"] = []
    return snap


def _migrate_2_to_3(snap: dict) -> dict:
    """Version 2 kept no scrims or mappools (a restart lost them): none in any match. A match
    record that is no object is left as it is, for :func:`build` to refuse."""
    matches = snap.get("matches")
    for record in matches if isinstance(matches, list) else ():
        if isinstance(record, dict):
            record.setdefault("scrim", None)
            record.setdefault("pool", None)
            record.setdefault("bans", [])
    return snap


#: version n -> function turning a version-n snapshot dict into a version n+1 dict
MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _migrate_0_to_1, 1: _migrate_1_to_2, 2: _migrate_2_to_3}


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def capture(state: State, now: float | None = None) -> dict:
    """The whole world as a JSON-ready dict (the current :data:`VERSION`).

    Sessions (``state.tokens`` without the bot, and the kicked sessions waiting for their last
    poll), channels, the lobby, matches, the password and verified caches, and what the bot
    commands keep per match/session (:func:`_capture_extras`). Monotonic times are ages
    relative to ``now`` (:func:`time.monotonic`). Pure memory; the caller makes sure nothing
    changes the state meanwhile (it runs without an ``await``).
    """
    now = time.monotonic() if now is None else now
    tokens = [t for t in state.tokens if not t.is_bot and t.node is None]  # not a cluster's remote presences
    kicked = [(t, at) for t, at in state.kicked.values() if not t.is_bot and t.token not in state.tokens.by_token]
    snap: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "written": time.time(),
        "flavour": state.cfg.stack.flavour,
        "bot_id": state.cfg.stack.bot_id,
        "tokens": [t.to_snapshot(now) for t in tokens] + [t.to_snapshot(now) for t, _ in kicked],
        "kicked": [{"token": t.token, "age": max(0.0, now - at)} for t, at in kicked],
        "channels": [c.to_snapshot() for c in state.channels],
        "lobby": [t.token for t in state.lobby.members.values() if not t.is_bot],
        "matches": [match_to_snapshot(m, now) for m in state.matches if not m.disposed],
        "next_match_id": state.matches.next_id,
        "password_cache": [[uid, md5, hashed] for uid, (md5, hashed) in state.password_cache.items()],
        "verified": dict(state.verified),
    }
    snap.update(_capture_extras(state))
    return snap


def encode(snap: dict) -> bytes:
    """:data:`MAGIC` + zlib(JSON) of ``snap``."""
    return MAGIC + zlib.compress(json.dumps(snap, separators=(",", ":"), allow_nan=False).encode(), 6)


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------
def decode(data: bytes, max_json: int = MAX_JSON, info: dict | None = None) -> dict:
    """Bytes → the snapshot dict migrated to :data:`VERSION` (not yet checked record by record);
    ``info["version"]``, when ``info`` is given, is set to the version that was stored.

    Raises :class:`SnapshotError` for: a wrong magic line, a stored size over
    :data:`MAX_STORED`, a truncated or corrupt zlib stream, more than ``max_json`` bytes once
    decompressed, invalid JSON, another ``format``, a version newer than this code or without
    a migration path.
    """
    if not isinstance(data, (bytes, bytearray)) or not data.startswith(MAGIC):
        raise SnapshotError("not a pep.py snapshot (magic line missing)")
    if len(data) > MAX_STORED:
        raise SnapshotError(f"snapshot of {len(data)} bytes is over the {MAX_STORED} byte limit")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(bytes(data[len(MAGIC):]), max_json + 1)
    except zlib.error as exc:
        raise SnapshotError(f"corrupt snapshot: {exc}") from None
    if len(raw) > max_json or inflater.unconsumed_tail:
        raise SnapshotError(f"snapshot is over {max_json} bytes once decompressed")
    if not inflater.eof:
        raise SnapshotError("truncated snapshot (the compressed stream does not end)")
    try:
        snap = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"snapshot is not valid JSON: {exc}") from None
    if not isinstance(snap, dict) or snap.get("format") != FORMAT:
        raise SnapshotError("not a pep.py snapshot (format)")
    version = snap.get("version")
    if type(version) is not int or version < 1:
        raise SnapshotError(f"snapshot version {version!r} is not valid")
    if version > VERSION:
        raise SnapshotError(f"snapshot version {version} is newer than this code ({VERSION})")
    if info is not None:
        info["version"] = version
    while version < VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise SnapshotError(f"no migration from snapshot version {version}")
        snap = step(snap)
        version += 1
        snap["version"] = version
    return snap


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


class Plan:
    """A snapshot fully read into new objects, ready to be put into a state in one step.

    ``tokens`` (live sessions), ``kicked`` (token, age) pairs, ``channels`` (channel, member
    tokens), ``lobby`` tokens, ``matches``, ``next_match_id``, ``password_cache``, ``verified``,
    ``referees`` (match id -> user ids), ``now_playing`` (token string -> (beatmap id, mods,
    accuracy or None)), ``countdowns`` (match id -> (seconds left, force, referee token)),
    ``written`` (unix seconds).
    """

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self.kicked: list[tuple[Token, float]] = []
        self.channels: list[tuple[Channel, list[Token]]] = []
        self.lobby: list[Token] = []
        self.matches: list[Match] = []
        self.next_match_id = 1
        self.password_cache: dict[int, tuple[str, str]] = {}
        self.verified: dict[str, int] = {}
        self.referees: dict[int, set[int]] = {}
        self.now_playing: dict[str, tuple[int, int, float | None]] = {}
        self.countdowns: dict[int, tuple[float, bool, Token]] = {}
        self.written = 0.0

    def apply(self, state: State, now: float | None = None) -> None:
        """Put everything into ``state`` (which holds the freshly loaded world: the bot and the
        channels of ``bancho_channels``). Cannot fail on a plan made by :func:`build`.

        Channels: a listed channel that still exists gets its members and moderation back; a
        runtime channel (``#spect_``, ``#multi_``, temporary) is recreated with the bot; a permanent channel no
        longer in ``bancho_channels`` is left out, and so are its names in the sessions.
        """
        now = time.monotonic() if now is None else now
        for token in self.tokens:
            state.tokens.add(token)
        for token, age in self.kicked:
            state.kicked[token.token] = (token, now - age)
        for channel, members in self.channels:
            existing = state.channels.get(channel.name)
            if existing is None:
                if not (channel.temp or channel.name.startswith((SPECTATOR_PREFIX, MULTIPLAYER_PREFIX))):
                    continue
                state.channels.add(channel)
                existing = channel
                if state.bot is not None:
                    existing.members.add(state.bot)
                    state.bot.channels.add(existing.name)
            existing.moderated = channel.moderated
            for member in members:
                existing.members.add(member)
        for token in self.tokens + [t for t, _ in self.kicked]:
            token.channels = {name for name in token.channels if state.channels.get(name) is not None}
        for token in self.lobby:
            state.lobby.add(token)
        for match in self.matches:
            state.matches.add(match)
        state.matches.next_id = self.next_match_id
        state.password_cache.update(self.password_cache)
        state.verified.update(self.verified)
        _apply_extras(state, self)


def build(snap: dict, cfg: Any, now: float | None = None) -> Plan:
    """Check every record of a decoded snapshot and resolve its references into a :class:`Plan`.

    ``cfg`` is the server's :class:`helpers.config.Config`: a snapshot of another stack
    (flavour, bot id) is refused. Raises :class:`SnapshotError` on the first problem; nothing
    outside the plan is touched.
    """
    now = time.monotonic() if now is None else now
    root = Record(snap, "snapshot")
    plan = Plan()
    plan.written = root.float("written", 0, 1e11)
    if root.str("flavour", 32) != cfg.stack.flavour or root.int("bot_id", 1, 2**31 - 1) != cfg.stack.bot_id:
        raise SnapshotError("snapshot of another stack (flavour or bot id differ)")
    by_token: dict[str, Token] = {}
    links: dict[str, tuple[str | None, list[str]]] = {}
    for rec in records(root.list("tokens", MAX_TOKENS), "snapshot.tokens"):
        token, spectating, spectators = Token.from_snapshot(rec, now, cfg.limits.max_queue)
        if token.user_id == cfg.stack.bot_id:
            raise rec.fail("user_id", "the bot is not part of a snapshot")
        if token.token in by_token:
            raise rec.fail("token", "duplicate session token")
        by_token[token.token] = token
        links[token.token] = (spectating, spectators)
    kicked_refs: set[str] = set()
    for rec in records(root.list("kicked", MAX_TOKENS), "snapshot.kicked"):
        ref = rec.token_ref("token")
        if ref is None or ref not in by_token or ref in kicked_refs:
            raise rec.fail("token", "unknown or repeated session")
        kicked_refs.add(ref)
        plan.kicked.append((by_token[ref], rec.age("age")))
    plan.tokens = [t for ref, t in by_token.items() if ref not in kicked_refs]
    live = {t.token: t for t in plan.tokens}
    # spectating: both directions must agree (services/spectate.py)
    for ref, (spectating, spectators) in links.items():
        token = by_token[ref]
        if spectating is not None:
            host = live.get(spectating)
            if host is None or host is token or ref not in links[spectating][1] or ref not in live:
                raise SnapshotError(f"snapshot: session {ref} spectates an unknown host or is not among its spectators")
            token.spectating = host
        for other in spectators:
            if other not in live or links[other][0] != ref:
                raise SnapshotError(f"snapshot: spectator {other} of {ref} does not spectate it")
            token.spectators[other] = live[other]
    names: set[str] = set()
    for rec in records(root.list("channels", MAX_CHANNELS), "snapshot.channels"):
        channel, member_refs = Channel.from_snapshot(rec)
        if channel.name.lower() in names:
            raise rec.fail("name", "duplicate channel")
        names.add(channel.name.lower())
        members = []
        for member in member_refs:
            token = live.get(member)
            if token is None:
                raise rec.fail("members", "unknown session")
            members.append(token)
        plan.channels.append((channel, members))
    for ref in root.token_refs("lobby", MAX_TOKENS):
        if ref not in live:
            raise root.fail("lobby", "unknown session")
        plan.lobby.append(live[ref])
    match_ids: set[int] = set()
    for rec in records(root.list("matches", 65535), "snapshot.matches"):
        match = match_from_snapshot(rec, now, live)
        if match.id in match_ids:
            raise rec.fail("id", "duplicate match id")
        match_ids.add(match.id)
        plan.matches.append(match)
    seated = {id(s.token) for m in plan.matches for s in m.slots if s.token is not None}
    for token in plan.tokens:
        if token.match_id is not None and id(token) not in seated:
            raise SnapshotError(f"snapshot: session {token.token} points at match {token.match_id} without a seat")
    plan.next_match_id = root.int("next_match_id", 1, 65536)
    for index, item in enumerate(root.list("password_cache", MAX_TOKENS)):
        if (type(item) is not list or len(item) != 3 or type(item[0]) is not int or not 0 < item[0] < 2**31
                or type(item[1]) is not str or len(item[1]) > 64 or type(item[2]) is not str or len(item[2]) > 128):
            raise SnapshotError(f"snapshot.password_cache[{index}]: expected [user id, md5, hash]")
        plan.password_cache[item[0]] = (item[1], item[2])
    verified = root.record("verified")
    if len(verified.data) > MAX_TOKENS:
        raise root.fail("verified", "too many entries")
    for key in verified.data:
        if not key.isdigit() or len(key) > 10:
            raise verified.fail(key, "expected a user id")
        plan.verified[key] = verified.int(key, 0, 1)
    _build_extras(root, plan, live, match_ids)
    return plan


def restore(state: State, data: bytes | None, source: str) -> int | None:
    """Decode, check and apply ``data``; returns the number of sessions restored, or None when
    there was nothing to restore or the snapshot could not be read (logged; the clients then
    reconnect as after any restart). Never raises."""
    if data is None:
        return None
    started = time.monotonic()
    try:
        info: dict = {}
        snap = decode(data, info=info)
        version = info["version"] if info["version"] == VERSION else f"{info['version']}, migrated to {VERSION}"
        plan = build(snap, state.cfg)
    except SnapshotError as exc:
        log.error("snapshot from %s ignored: %s; clients will log in again", source, exc)
        return None
    except Exception:
        log.exception("snapshot from %s ignored: reading it failed; clients will log in again", source)
        return None
    plan.apply(state)
    log.info("snapshot (version %s, written %.1f s ago) from %s: %d sessions, %d matches restored in %.1f ms",
             version, time.time() - plan.written, source, len(plan.tokens), len(plan.matches),
             (time.monotonic() - started) * 1000)
    return len(plan.tokens)


# ---------------------------------------------------------------------------------------------
# what the bot commands keep: one small adapter (docs/operations.md)
# ---------------------------------------------------------------------------------------------
def _capture_extras(state: State) -> dict:
    """``referees`` (match id -> referee user ids: ``Match.referees``), ``now_playing`` (the
    last /np of each session: ``Token.now_playing``) and ``countdowns`` (running ``!mp start``
    countdowns: match, seconds left, force, the referee's session)."""
    refs = {str(m.id): sorted(m.referees) for m in state.matches if not m.disposed and m.referees}
    now_playing = []
    for token in state.tokens:
        np = np_commands.get_np(token)
        if np is not None:
            now_playing.append([token.token, np.beatmap_id, np.mods, np.accuracy])
    countdowns = []
    for match in state.matches:
        running = mp_commands.countdown_of(match)
        if running is not None and not running[2].is_bot and running[2].token in state.tokens.by_token:
            countdowns.append({"match": match.id, "left": running[0], "force": running[1], "by": running[2].token})
    return {"referees": refs, "now_playing": now_playing, "countdowns": countdowns}


def _build_extras(root: Record, plan: Plan, live: dict[str, Token], match_ids: set[int]) -> None:
    refs = root.record("referees")
    for key in refs.data:
        if not key.isdigit() or int(key) not in match_ids:
            raise refs.fail(key, "not a match of the snapshot")
        plan.referees[int(key)] = set(refs.ints(key, 4096, 1, 2**31 - 1))
    for index, item in enumerate(root.list("now_playing", MAX_TOKENS)):
        if (type(item) is not list or len(item) != 4 or type(item[0]) is not str or item[0] not in live
                or type(item[1]) is not int or not 0 <= item[1] < 2**31 or type(item[2]) is not int
                or not 0 <= item[2] < 2**31 or not (item[3] is None or type(item[3]) in (int, float))):
            raise SnapshotError(f"snapshot.now_playing[{index}]: expected [session, beatmap id, mods, accuracy]")
        plan.now_playing[item[0]] = (item[1], item[2], None if item[3] is None else float(item[3]))
    for rec in records(root.list("countdowns", 65535), "snapshot.countdowns"):
        match_id = rec.int("match", 1, 65535)
        by = rec.token_ref("by")
        if match_id not in match_ids or match_id in plan.countdowns:
            raise rec.fail("match", "not a match of the snapshot, or counted down twice")
        if by is None or by not in live:
            raise rec.fail("by", "unknown session")
        plan.countdowns[match_id] = (rec.float("left", 0, 3600), rec.bool("force"), live[by])


def _apply_extras(state: State, plan: Plan) -> None:
    for match_id, ids in plan.referees.items():
        match = state.matches.get(match_id)
        if match is not None:
            match.referees.update(ids)
    for ref, (beatmap_id, mods, accuracy) in plan.now_playing.items():
        token = state.tokens.get(ref)
        if token is not None:
            np_commands.set_np(state, token, np_commands.NowPlaying(beatmap_id, mods, accuracy))
    for match_id, (left, force, sender) in plan.countdowns.items():
        match = state.matches.get(match_id)
        if match is not None and not match.in_progress:
            mp_commands.resume_countdown(state, match, left, force, sender)
    if any(match.scrim is not None and match.scrim.active for match in plan.matches):
        banchopy.watch_scrims(state)  # the bot keeps the points of the restored scrims


# ---------------------------------------------------------------------------------------------
# stop and start: Redis (TTL) or a file
# ---------------------------------------------------------------------------------------------
async def store(state: State, data: bytes) -> str:
    """Keep ``data`` for the next start: the file ``[sessions] handover_file`` (mode 0600,
    written to a temporary name and renamed) or Redis ``pep:handover`` with a TTL of
    ``[sessions] handover_window`` seconds. Returns where it went; raises ``OSError`` or a
    Redis error."""
    cfg = state.cfg.sessions
    if cfg.handover_file:
        tmp = f"{cfg.handover_file}.tmp{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, cfg.handover_file)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return f"file {cfg.handover_file}"
    assert state.redis is not None
    client = state.redis.pubsub_client("pep-handover")  # a bytes client
    try:
        await client.set(state.redis.key(REDIS_KEY), data, ex=max(1, int(cfg.handover_window)))
    finally:
        await client.aclose()
    return f"Redis {REDIS_KEY}"


async def take_stored(state: State) -> tuple[bytes | None, str]:
    """Read and delete the snapshot a stop left (``(None, source)`` when there is none, or when
    it is older than ``[sessions] handover_window``). Errors are logged, never raised."""
    cfg = state.cfg.sessions
    data: bytes | None = None
    if cfg.handover_file:
        source = f"file {cfg.handover_file}"
        try:
            with open(cfg.handover_file, "rb") as fh:
                age = time.time() - os.fstat(fh.fileno()).st_mtime
                data = fh.read(MAX_STORED + 1)
            os.unlink(cfg.handover_file)
        except FileNotFoundError:
            return None, source
        except OSError as exc:
            log.error("cannot read the snapshot %s: %s", cfg.handover_file, exc)
            return None, source
        if age > cfg.handover_window:
            log.warning("snapshot %s is %.0f s old, older than [sessions] handover_window: ignored",
                        cfg.handover_file, age)
            return None, source
        return data, source
    source = f"Redis {REDIS_KEY}"
    if state.redis is None:
        return None, source
    client = state.redis.pubsub_client("pep-handover")
    try:
        data = await client.getdel(state.redis.key(REDIS_KEY))
    except Exception as exc:
        log.error("cannot read the snapshot from Redis: %s", exc)
        return None, source
    finally:
        await client.aclose()
    if data is not None and time.time() - _written(data) > cfg.handover_window + 5:
        log.warning("snapshot in Redis is older than [sessions] handover_window: ignored")
        return None, source
    return data, source


def _written(data: bytes) -> float:
    try:
        return float(decode(data).get("written", 0))
    except Exception:
        return time.time()  # let restore() report what is wrong with it


# ---------------------------------------------------------------------------------------------
# freezing the world: shared by the stop and the hand-over
# ---------------------------------------------------------------------------------------------
async def quiesce(state: State, server: Any) -> list[socket.socket]:
    """Stop taking requests without refusing any: keep duplicates of the listening sockets open
    (new connections wait in the backlog), stop accepting, answer what is under way with
    ``Connection: close``, wait (bounded) for logins under way, close the kept-alive
    connections, stop the background services and wait (bounded) for background writes.
    Returns the kept listening sockets (for :func:`resume`)."""
    kept: list[socket.socket] = []
    if server is not None:
        server.conn_params.no_keep_alive = True
        # Tornado keeps its listening sockets in ``_sockets`` (fd -> socket) from add_sockets
        for sock in list(getattr(server, "_sockets", {}).values()):
            kept.append(sock.dup())
        server.stop()
        deadline = time.monotonic() + LOGIN_WAIT
        while state.logins_in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(server.close_all_connections(), 2)
        except asyncio.TimeoutError:
            log.warning("some HTTP connections did not close within 2 s")
    for service in reversed(state.services):
        try:
            await asyncio.wait_for(service.stop(), 5)
        except Exception:
            log.exception("stopping %s failed", type(service).__name__)
    await state.drain_tasks(2.0)
    return kept


async def resume(state: State, server: Any, kept: list[socket.socket]) -> None:
    """Undo :func:`quiesce` after a failed hand-over: services again, accept again."""
    for service in state.services:
        await service.start()
    if server is not None:
        server.conn_params.no_keep_alive = False
        server._stopped = False
        server.add_sockets(kept)


# ---------------------------------------------------------------------------------------------
# in-place restart: the old process
# ---------------------------------------------------------------------------------------------
def _child_argv() -> list[str]:
    args = list(getattr(sys, "orig_argv", ())[1:]) or list(sys.argv)
    return [sys.executable] + args


def spawn_successor(listen: Sequence[socket.socket]) -> tuple[int, socket.socket]:
    """Start the new code as a child: listening sockets at fds 3.. with ``LISTEN_FDS`` and
    ``LISTEN_PID`` (set after the fork, as systemd does), the hand-over socket right after
    them (``PEP_HANDOVER_FD``). Returns ``(pid, our end of the hand-over socket)``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = _child_argv()
    env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
    sources = [s.fileno() for s in listen] + [theirs.fileno()]
    watchdog = "WATCHDOG_PID" in env
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only rearranges fds and executes
        try:
            high = [os.dup(fd) for fd in sources]  # out of the way of fds 3..
            for index, fd in enumerate(high):
                os.dup2(fd, 3 + index)  # dup2 targets are inheritable
            me = str(os.getpid())
            env["LISTEN_FDS"] = str(len(listen))
            env["LISTEN_PID"] = me
            env[HANDOVER_FD_ENV] = str(3 + len(listen))
            if watchdog:
                env["WATCHDOG_PID"] = me
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    theirs.close()
    ours.setblocking(False)
    return pid, ours


async def _recv_exact(sock: socket.socket, size: int, timeout: float) -> bytes:
    loop = asyncio.get_running_loop()
    out = bytearray()
    deadline = time.monotonic() + timeout
    while len(out) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            raise asyncio.TimeoutError
        chunk = await asyncio.wait_for(loop.sock_recv(sock, min(size - len(out), 1 << 20)), left)
        if not chunk:
            raise ConnectionError("the other process closed the hand-over socket")
        out += chunk
    return bytes(out)


def _give_up(channel: socket.socket, pid: int, what: str, exc: BaseException) -> None:
    """Log why the hand-over stops, close the hand-over socket, kill and reap the child."""
    log.error("hand-over: the new process %s (%s); serving on", what, exc or type(exc).__name__)
    channel.close()
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


async def hand_over(state: State, server: Any, listen: Sequence[socket.socket], notifier: Any) -> bool:
    """SIGUSR2 with ``[sessions] handover`` on: give the world to a new process.

    1. start the new code (:func:`spawn_successor`) while this one keeps serving, and wait until
       it has loaded the world (``R``);
    2. :func:`quiesce` (new connections wait in the backlog), :func:`capture`, send the snapshot
       (8-byte big-endian length + bytes);
    3. wait until it serves (``S``); tell systemd ``MAINPID=<new pid>`` and ``READY=1``.

    Returns True when the new process serves (this one should now exit without logging
    anyone out). On any failure the child is killed, this process accepts again and serves on
    (False), so a broken deploy costs a log line, not an outage.
    """
    try:
        pid, channel = spawn_successor(listen)
    except OSError as exc:
        log.error("hand-over: cannot start the new process: %s", exc)
        return False
    log.info("hand-over: new process pid=%d started; waiting for it to load the world", pid)
    try:
        if await _recv_exact(channel, 1, SPAWN_TIMEOUT) != b"R":
            raise ConnectionError("unexpected reply")
    except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
        _give_up(channel, pid, "did not get ready", exc)
        return False
    started = time.monotonic()
    kept = await quiesce(state, server)
    try:
        data = encode(capture(state))
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_sendall(channel, struct.pack(">Q", len(data)) + data), SERVE_TIMEOUT)
        if await _recv_exact(channel, 1, SERVE_TIMEOUT) != b"S":
            raise ConnectionError("unexpected reply")
    except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
        _give_up(channel, pid, "failed after the snapshot", exc)
        await resume(state, server, kept)
        return False
    channel.close()
    for sock in kept:
        sock.close()
    notifier.send(f"MAINPID={pid}", "READY=1")
    log.info("hand-over: %d sessions (%d bytes) handed to pid=%d; swap took %.0f ms",
             sum(1 for t in state.tokens if not t.is_bot), len(data), pid, (time.monotonic() - started) * 1000)
    return True


# ---------------------------------------------------------------------------------------------
# the stop that keeps every session (chosen by pep.py when the stop request does not notify)
# ---------------------------------------------------------------------------------------------
async def stop_keeping_sessions(state: State, server: Any, hard_exit: bool = True) -> int | None:
    """End a stop request whose ``state.lifecycle.notify`` is False (docs/operations.md
    "Deploys without disconnects"); returns the exit code, or None when this process serves on.

    Restart (SIGUSR2): :func:`hand_over` to a new process; on failure this process serves on
    (None; the stop request is cleared). Stop (SIGTERM): :func:`quiesce`, write the snapshot
    (:func:`store`), close the pools without logging anyone out (0). If the snapshot cannot be
    written, the sessions are logged out as in a maintenance stop (their clients log in again
    at the next start). The hard-exit timer (:func:`services.shutdown.arm_hard_exit`) is armed only
    for the parts after a successful hand-over and for the stop: the old process must outlive a
    slow start of the new one, which it serves through (bounded by this module's timeouts).
    """
    lc = state.lifecycle
    for handle in lc.scheduled:
        handle.cancel()
    if lc.restart:
        lc.notifier.reloading("handing over")
        listen = list(getattr(server, "_sockets", {}).values()) if server is not None else []
        if not await hand_over(state, server, listen, lc.notifier):
            lc.stop_requested.clear()
            lc.force = False
            lc.restart = False
            state.restarting = False
            return None
        if hard_exit:
            shutdown.arm_hard_exit(lc, shutdown.CLEANUP_TIMEOUT + 5)
        return await _close_keeping_sessions(state, "stopped after the hand-over")
    lc.notifier.stopping("stopping (sessions kept)")
    if hard_exit:
        shutdown.arm_hard_exit(lc, LOGIN_WAIT + shutdown.CLEANUP_TIMEOUT + 20)
    await quiesce(state, server)
    state.restarting = True
    if lc.ticker is not None:
        lc.ticker.stop()
        lc.ticker = None
    try:
        data = encode(capture(state))
        where = await asyncio.wait_for(store(state, data), 5)
    except Exception as exc:
        log.error("the snapshot could not be written (%s): sessions are logged out; clients will log in "
                  "again at the next start", exc)
        await asyncio.wait_for(shutdown.logout_and_close(state), shutdown.CLEANUP_TIMEOUT)
        lc.close()
        log.info("stopped (sessions logged out)")
        return 0
    log.info("snapshot of %d sessions (%d bytes) written to %s; valid for %g s",
             sum(1 for t in state.tokens if not t.is_bot), len(data), where, state.cfg.sessions.handover_window)
    return await _close_keeping_sessions(state, "stopped (sessions kept)")


async def _close_keeping_sessions(state: State, done: str) -> int:
    """Stop the systemd ticker, wait (bounded) for background writes, close the pools without
    logging anyone out or resetting the online count; log ``done``; returns 0."""
    lc = state.lifecycle
    if lc.ticker is not None:
        lc.ticker.stop()
        lc.ticker = None
    await state.drain_tasks(2.0)
    await shutdown.close_pools(state)
    lc.reexec = False
    lc.close()
    log.info("%s", done)
    return 0


# ---------------------------------------------------------------------------------------------
# in-place restart: the new process
# ---------------------------------------------------------------------------------------------
def successor_channel() -> socket.socket | None:
    """The hand-over socket when this process was started by :func:`hand_over` (and the
    variable is removed from the environment), else None."""
    raw = os.environ.pop(HANDOVER_FD_ENV, "")
    if not raw:
        return None
    try:
        fd = int(raw)
        sock = socket.socket(fileno=fd)
    except (ValueError, OSError) as exc:
        log.error("%s=%r is not a usable socket (%s): starting without a hand-over", HANDOVER_FD_ENV, raw, exc)
        return None
    sock.setblocking(False)
    return sock


async def receive(channel: socket.socket) -> bytes | None:
    """Tell the old process the world is loaded (``R``) and read its snapshot (bounded in size
    and time); None when it sends nothing usable."""
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(channel, b"R")
        size = struct.unpack(">Q", await _recv_exact(channel, 8, SERVE_TIMEOUT))[0]
        if size > MAX_STORED:
            log.error("hand-over: snapshot of %d bytes refused (limit %d)", size, MAX_STORED)
            return None
        return await _recv_exact(channel, size, SERVE_TIMEOUT)
    except (OSError, asyncio.TimeoutError, ConnectionError, struct.error) as exc:
        log.error("hand-over: no snapshot from the old process (%s)", exc or type(exc).__name__)
        return None


async def serving(channel: socket.socket) -> None:
    """Tell the old process this one serves (``S``) and close the hand-over socket."""
    try:
        await asyncio.get_running_loop().sock_sendall(channel, b"S")
    except OSError as exc:
        log.warning("hand-over: could not tell the old process: %s", exc)
    channel.close()


# ---------------------------------------------------------------------------------------------
# after a restore: what changed in the world meanwhile
# ---------------------------------------------------------------------------------------------
async def recheck(state: State, user_ids: Sequence[int]) -> None:
    """Re-read what Redis messages may have changed while no process listened (docs/operations.md):
    privileges (bans, restrictions: :func:`services.moderation.refresh_privileges`), silences
    (:func:`services.pubsub_handlers.silence`) and names (a renamed user is kicked with the rename
    notice, as ``peppy:change_username`` does) of the restored users. Bounded: one query per
    user, one at a time, in the background."""
    changed = 0
    for user_id in user_ids:
        tokens = moderation.online_tokens(state, user_id)
        if not tokens:
            continue
        try:
            row = await state.repo.user_by_id(user_id)
            if row is None:
                continue
            if int(row["privileges"] or 0) != tokens[0].privileges:
                await moderation.refresh_privileges(state, user_id)
                changed += 1
            if int(row.get("silence_end") or 0) != tokens[0].silence_end:
                await pubsub_handlers.silence(state, user_id)
                changed += 1
            name = str(row["username"])
            if name != tokens[0].username:
                for token in moderation.online_tokens(state, user_id):
                    session.kick(state, token, moderation.NOTICE_RENAMED.format(name=name))
                changed += 1
        except Exception as exc:
            log.warning("re-check of user=%d after the restart failed: %s", user_id, exc)
    log.info("re-check after the restart: %d users read, %d changes applied", len(user_ids), changed)
