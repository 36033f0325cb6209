"""Randomized multiplayer/spectator test, in-process, plus deterministic tests of the referee API
and the background loop.

The randomized part builds a :class:`State` on the in-memory fakes of ``tests/fakes.py`` and
drives eight users through thousands of random client packets (valid and invalid, from hosts
and non-hosts, as game clients, tournament clients and a restricted user), random referee calls,
disconnects, reconnects and cleanup-loop passes. Bodies are built with chio through
``tests/client.py`` and go through the real dispatcher ``handlers.bancho.process_frames``. After
every step the invariants of docs/multiplayer.md are checked, every queued packet is decoded by
chio (so a match struct out of alignment fails the test), and no handler may have logged an
unexpected exception.
"""

from __future__ import annotations

import logging
import random
import time

import pytest

from services import match_cleanup, multiplayer as mpl, session, spectate
from handlers.bancho import process_frames
from helpers import config
from objects import bot as bot_module
from objects import match as m
from objects.channel import Channel, MULTIPLAYER_PREFIX, SPECTATOR_PREFIX
from objects.state import State
from tests.fakes import fake_state, pep_errors
from objects.token import Token
from tests import client as C

USERS = 8
BOT_ID = 999
TOURNAMENT_STAFF = 2097152
VALID_STATUSES = {m.OPEN, m.LOCKED, m.NOT_READY, m.READY, m.NO_MAP, m.PLAYING, m.COMPLETE}


# =============================================================================================
# world
# =============================================================================================
@pytest.fixture
def errors():
    """The ERROR records of the test (a handler that raised is logged with ``log.exception``)."""
    with pep_errors() as records:
        yield records


def make_state() -> State:
    state = fake_state()
    bot = bot_module.make_token(BOT_ID, "Bot", "bot", 3, 16)
    state.bot = bot
    state.tokens.add(bot)
    for name in ("#osu", "#lobby"):
        channel = Channel(name, name)
        state.channels.add(channel)
        channel.members.add(bot)
        bot.channels.add(channel.name)
    return state


def login(state: State, user_id: int, *, tournament: bool = False, restricted: bool = False,
          privileges: int = 3) -> Token:
    """A token as the login would build it (memory part only)."""
    if not tournament:
        for old in state.tokens.user_tokens(user_id):
            if not old.tournament:
                session.logout(state, old)
    token = Token(user_id, f"user{user_id}", f"user{user_id}", privileges, restricted=restricted,
                  tournament=tournament)
    state.tokens.add(token)
    return token


def run(state: State, token: Token, *frames: bytes) -> None:
    process_frames(state, token, b"".join(frames))


def decoded(token: Token) -> list[C.Packet]:
    """Everything queued for ``token``, decoded by chio. Spectator frames (15) are opaque relays
    of what a client sent (possibly garbage in this test), so only their framing is checked."""
    from chio import io as cio

    body = token.drain()
    stream = cio.MemoryStream(body)
    packets = []
    while stream.available() > 0:
        assert stream.available() >= 7, f"truncated frame header in {body[-16:].hex()}"
        packet_id = cio.read_u16(stream)
        assert cio.read_u8(stream) == 0
        length = cio.read_u32(stream)
        assert length <= stream.available(), f"frame {packet_id} longer than the body"
        payload = stream.read(length)
        value = payload if packet_id == C.SPECTATE_FRAMES else C.decode_payload(packet_id, payload)
        packets.append(C.Packet(packet_id, C.packet_name(packet_id), value, payload))
    return packets


# =============================================================================================
# invariants
# =============================================================================================
def check_invariants(state: State) -> None:
    live = {t.token: t for t in state.tokens}
    seats: dict[str, int] = {}
    for match in state.matches:
        assert not match.disposed, f"{match!r} disposed but listed"
        assert state.channels.get(match.channel_name) is not None, f"{match!r} has no channel"
        occupied = 0
        for index, slot in enumerate(match.slots):
            assert slot.status in VALID_STATUSES, f"{match!r} slot {index} status {slot.status}"
            assert (slot.token is not None) == bool(slot.status & m.HAS_PLAYER), \
                f"{match!r} slot {index}: status {slot.status} vs token {slot.token!r}"
            if slot.token is None:
                assert not slot.playing and slot.mods == 0, f"{match!r} empty slot {index} keeps data"
                continue
            occupied += 1
            token = slot.token
            assert token.token in live and not token.logged_out, f"{match!r} seats departed {token!r}"
            assert token.match_id == match.id, f"{token!r} in {match!r} slot {index} points at {token.match_id}"
            assert token.token not in seats, f"{token!r} sits twice"
            assert not token.tournament, f"tourney client {token!r} seated"
            seats[token.token] = match.id
            if not match.freemod:
                assert slot.mods == 0, f"{match!r} slot mods without free-mod"
        if match.host is not None:
            assert match.slot_of(match.host) is not None, f"{match!r}: host {match.host!r} not in it"
        if not match.tourney:
            assert occupied > 0, f"empty normal match {match!r} not disposed"
            assert match.host is not None, f"{match!r} has players but no host"
        if match.freemod:
            assert match.mods & ~mpl.SPEED_MODS == 0, f"{match!r} free-mod keeps non-speed match mods"
            assert match.team_type not in m.TAG_MODES
        assert 0 <= match.mode <= 3
        # rounds: nobody who left is waited on, and no barrier is left unanswered
        playing = [slot for slot in match.slots if slot.playing]
        if match.in_progress:
            assert playing, f"{match!r} in progress without players"
            assert all(slot.token is not None and slot.status == m.PLAYING for slot in playing)
            assert not all(slot.completed for slot in playing), f"{match!r}: everyone completed, not finished"
            if all(slot.loaded for slot in playing):
                assert match.loaded_sent, f"{match!r}: all loaded but no ALL_PLAYERS_LOADED"
            if all(slot.skipped for slot in playing):
                assert match.skip_sent, f"{match!r}: all skipped but no MATCH_SKIP"
        else:
            assert not playing, f"{match!r} has playing slots between rounds"
            assert all(slot.status != m.PLAYING for slot in match.slots)
        for key, observer in match.observers.items():
            assert key in live and observer.tournament, f"{match!r} observer {observer!r}"
            assert match.channel_name in observer.channels
    for token in state.tokens:
        if token.match_id is not None:
            assert seats.get(token.token) == token.match_id, f"{token!r} points at {token.match_id} but is not seated"
        host = token.spectating
        if host is not None:
            assert host.token in live and not host.logged_out, f"{token!r} spectates departed {host!r}"
            assert host.spectators.get(token.token) is token, f"{token!r} missing from {host!r}'s spectators"
            assert host.user_id != token.user_id
            assert f"{SPECTATOR_PREFIX}{host.user_id}" in token.channels
        for key, spectator in token.spectators.items():
            assert spectator.spectating is token, f"{spectator!r} listed by {token!r} but spectates {spectator.spectating!r}"
            assert key in live
        if token.spectators:
            assert f"{SPECTATOR_PREFIX}{token.user_id}" in token.channels
        for name in token.channels:
            channel = state.channels.get(name)
            assert channel is not None and token in channel.members, f"{token!r} in missing channel {name}"
            if name.startswith(MULTIPLAYER_PREFIX) and not token.is_bot:
                match = state.matches.get(int(name[len(MULTIPLAYER_PREFIX):]))
                assert match is not None and (seats.get(token.token) == match.id or token.token in match.observers)
    for channel in state.channels:
        for member in channel.members:
            assert member.token in live, f"departed {member!r} still in {channel.name}"
        if channel.name.startswith(SPECTATOR_PREFIX):
            assert channel.humans() > 0, f"empty spectator channel {channel.name} left behind"
        if channel.name.startswith(MULTIPLAYER_PREFIX):
            assert int(channel.name[len(MULTIPLAYER_PREFIX):]) in state.matches, f"orphan {channel.name}"
    for token in state.lobby:
        assert token.token in live, f"departed {token!r} in the lobby"


# =============================================================================================
# random input
# =============================================================================================
NAMES = ["m", "  spaced  ", "", "x" * 50, "y" * 51, "日本語の部屋", " "]
PASSWORDS = ["", "pw", "two words", None]
MODS = [0, 8, 16, 64, 72, 256, 512, 576, 584, 1 << 31, 0xFFFFFFFF, 128]


def random_match(rng: random.Random, host_id: int) -> C.Match:
    if rng.random() < 0.3:
        statuses = [rng.choice([0, 1, 2, 4, 8, 16, 32, 64, 128, 3]) for _ in range(16)]
    else:
        statuses = None
    return C.make_match(
        name=rng.choice(NAMES), password=rng.choice(PASSWORDS) or "", beatmap_id=rng.choice([100, 200, -1, 0]),
        beatmap_md5=rng.choice(["aaa", "bbb", ""]), mode=rng.choice([0, 1, 2, 3]), host_id=rng.choice([host_id, 1, -1]),
        mods=rng.choice(MODS), freemod=rng.random() < 0.4, team_type=rng.choice([0, 1, 2, 3]),
        scoring_type=rng.choice([0, 1, 2, 3]), in_progress=rng.random() < 0.2, open_slots=rng.randint(1, 15),
        slot_statuses=statuses, seed=rng.randint(0, 1000),
    )


def raw_match_payload(rng: random.Random, host_id: int) -> bytes:
    payload = C.match_payload(random_match(rng, host_id))
    if rng.random() < 0.15:  # out-of-range mode / team type / scoring written raw
        data = bytearray(payload)
        data[-8 if data[-5] == 0 else -72] = rng.choice([4, 7, 9, 255])
        payload = bytes(data)
    return payload


def random_frames(rng: random.Random, state: State, token: Token, match_ids: list[int], user_ids: list[int]) -> bytes:
    slot = rng.choice([-1, 0, 1, 2, 3, 5, 7, 8, 15, 16, 99])
    mid = rng.choice(match_ids + [0, 60000, -5])
    uid = rng.choice(user_ids + [BOT_ID, token.user_id, -1, 123456])
    kind = rng.randrange(36)
    match = state.matches.get(token.match_id)
    if match is not None and match.in_progress and rng.random() < 0.5:
        kind = rng.choice((14, 15, 18, 19, 21, 22))  # players mostly play while a round runs
    elif match is not None and not match.in_progress and rng.random() < 0.2:
        kind = rng.choice((7, 12, 12, 20))  # ready up and start
    if kind == 0:
        return C.lobby_join()
    if kind == 1:
        return C.lobby_part()
    if kind == 2:
        return C.frame(C.C_CREATE_MATCH, raw_match_payload(rng, token.user_id))
    if kind in (3, 4):
        return C.match_join(mid, rng.choice(["", "pw", "two words", "wrong"]))
    if kind == 5:
        return C.match_part()
    if kind == 6:
        return C.match_change_slot(slot)
    if kind in (7, 8):
        return C.match_ready() if kind == 7 else C.match_not_ready()
    if kind == 9:
        return C.match_lock(slot)
    if kind == 10:
        return C.frame(C.C_MATCH_CHANGE_SETTINGS, raw_match_payload(rng, token.user_id))
    if kind == 11:
        return C.frame(C.C_MATCH_CHANGE_PASSWORD, raw_match_payload(rng, token.user_id))
    if kind in (12, 13):
        return C.match_start()
    if kind == 14:
        if rng.random() < 0.2:
            return C.frame(C.C_MATCH_SCORE_UPDATE, rng.randbytes(rng.randint(0, 8)))
        return C.match_score_update(C.score_frame(score=rng.randint(0, 10**6), hp=rng.choice([200, 254]),
                                                  scorev2=rng.random() < 0.3))
    if kind in (15, 16):
        return C.match_complete()
    if kind == 17:
        mods = rng.choice(MODS)
        return C.match_change_mods(mods - (1 << 32) if mods >= 1 << 31 else mods)
    if kind in (18, 19):
        return C.match_load_complete()
    if kind == 20:
        return C.match_no_beatmap() if rng.random() < 0.5 else C.match_has_beatmap()
    if kind == 21:
        return C.match_failed()
    if kind == 22:
        return C.match_skip_request()
    if kind == 23:
        return C.match_transfer_host(slot)
    if kind == 24:
        return C.match_change_team()
    if kind == 25:
        return C.match_invite(uid)
    if kind == 26:
        return C.tournament_match_info(mid)
    if kind == 27:
        return C.tournament_join_match_channel(mid)
    if kind == 28:
        return C.tournament_leave_match_channel(mid)
    if kind in (29, 30):
        return C.start_spectating(uid)
    if kind == 31:
        return C.stop_spectating()
    if kind == 32:
        if rng.random() < 0.2:
            return C.frame(C.C_SPECTATE_FRAMES, rng.randbytes(rng.randint(0, 40)))
        return C.spectate_frames(C.replay_bundle(seed=rng.randint(1, 50), frames=rng.randint(0, 4)))
    if kind == 33:
        return C.cant_spectate()
    if kind == 34:
        return C.public_message(rng.choice(["#multiplayer", "#spectator", "#lobby"]), "hello")
    # garbage: a random match/spectator packet id with a random (often truncated) payload
    packet_id = rng.choice([16, 31, 32, 38, 40, 41, 47, 51, 70, 87, 90, 93, 108, 109])
    return C.frame(packet_id, rng.randbytes(rng.randint(0, 6)))


def referee_call(rng: random.Random, state: State, tokens: list[Token]) -> None:
    """A random referee-API call, as the future !mp commands would make it."""
    matches = list(state.matches)
    if not matches or rng.random() < 0.08:
        try:
            mpl.create_match(state, None, rng.choice(NAMES), rng.choice(PASSWORDS), beatmap_id=0,
                             beatmap_name="Tournament", mode=rng.randint(0, 9))
        except mpl.MatchError:
            pass
        return
    match = rng.choice(matches)
    token = rng.choice(tokens)
    op = rng.randrange(16)
    try:
        if op == 0:
            mpl.join(state, token, match, None)
        elif op == 1:
            mpl.kick(state, match, token)
        elif op == 2:
            mpl.set_size(state, match, rng.randint(0, 17))
        elif op == 3:
            mpl.move(state, match, token, rng.randint(-1, 16), referee=True)
        elif op == 4:
            mpl.start(state, match)
        elif op == 5:
            mpl.abort(state, match)
        elif op == 6:
            mpl.set_map(state, match, rng.choice([1, 2, 3]), rng.choice(["a", "b"]), "map", rng.choice([None, 0, 3, 7]))
        elif op == 7:
            mpl.set_mods(state, match, rng.choice(MODS), rng.choice([None, True, False]))
        elif op == 8:
            mpl.set_teams(state, match, rng.choice([None, 0, 1, 2, 3, 4]), rng.choice([None, 0, 3, 5]))
        elif op == 9:
            mpl.set_team(state, match, token, rng.choice([0, 1, 2]))
        elif op == 10:
            mpl.set_host(state, match, rng.choice([None, token]))
        elif op == 11:
            mpl.lock_slot(state, match, rng.randint(-1, 16)) if rng.random() < 0.5 else \
                mpl.unlock_slot(state, match, rng.randint(-1, 16))
        elif op == 12:
            mpl.set_password(state, match, rng.choice(PASSWORDS))
        elif op == 13:
            mpl.set_referee_lock(match, rng.random() < 0.5)
        elif op == 14:
            if state.bot is not None:
                mpl.invite(state, match, state.bot, token)
        else:
            mpl.dispose(state, match)
    except mpl.MatchError:
        pass


def play(seed: int, steps: int, errors: list[logging.LogRecord]) -> dict:
    rng = random.Random(seed)
    state = make_state()
    # users 1..6 game clients (user 6 restricted); users 7, 8 tournament staff with tourney clients
    kinds = {uid: {} for uid in range(1, USERS + 1)}
    kinds[6] = {"restricted": True, "privileges": 2}
    kinds[7] = kinds[8] = {"tournament": True, "privileges": 3 | TOURNAMENT_STAFF}
    tokens: dict[int, list[Token]] = {uid: [login(state, uid, **kinds[uid])] for uid in kinds}
    user_ids = list(kinds)
    last_sweep = [time.monotonic()]
    stats = {"creates": 0, "rounds": 0, "finished": 0, "spectating": 0, "disposed": 0, "packets": 0}
    for step in range(steps):
        roll = rng.random()
        uid = rng.choice(user_ids)
        alive = [t for t in tokens[uid] if not t.logged_out]
        if roll < 0.03 and alive:  # disconnect / timeout / kick
            victim = rng.choice(alive)
            session.kick(state, victim) if rng.random() < 0.3 else session.logout(state, victim)
        elif roll < 0.06 or not alive:  # (re)connect
            tokens[uid] = [t for t in tokens[uid] if not t.logged_out] + [login(state, uid, **kinds[uid])]
        elif roll < 0.10:
            referee_call(rng, state, [t for ts in tokens.values() for t in ts if not t.logged_out])
        elif roll < 0.12:
            offset = rng.choice([0, 31, 200])
            match_cleanup.tick(state, last_sweep, time.monotonic() + offset)
        else:
            token = rng.choice(alive)
            count = 1 if rng.random() < 0.8 else rng.randint(2, 5)
            body = b"".join(random_frames(rng, state, token, [mt.id for mt in state.matches], user_ids)
                            for _ in range(count))
            run(state, token, body)
        for ts in tokens.values():
            for t in ts:
                packets = decoded(t)  # chio must read every packet we queued
                stats["packets"] += len(packets)
                stats["finished"] += sum(1 for p in packets if p.id == C.MATCH_COMPLETE)
                stats["rounds"] += sum(1 for p in packets if p.id == C.MATCH_START)
                stats["creates"] += sum(1 for p in packets if p.id == C.MATCH_JOIN_SUCCESS)
                stats["disposed"] += sum(1 for p in packets if p.id == C.MATCH_DISPOSE)
        stats["spectating"] += sum(1 for t in state.tokens if t.spectating is not None)
        try:
            check_invariants(state)
        except AssertionError as exc:
            raise AssertionError(f"seed {seed} step {step}: {exc}") from exc
        assert not errors, f"seed {seed} step {step}: a handler raised: {errors[0].getMessage()}"
    return stats


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_multiplayer_and_spectating(seed, errors):
    start = time.monotonic()
    stats = play(seed, 5000, errors)
    # the walk must actually reach the interesting states, or it proves nothing
    assert stats["creates"] > 40 and stats["rounds"] > 20 and stats["finished"] > 5, stats
    assert stats["spectating"] > 1000, stats
    assert time.monotonic() - start < 20


# =============================================================================================
# deterministic in-process tests: referee API, dispose, cleanup loop, round timeouts
# =============================================================================================
def seated_match(players: int = 2, **kw):
    state = make_state()
    tokens = [login(state, uid) for uid in range(1, players + 1)]
    match = mpl.create_match(state, tokens[0], "m", kw.get("password", ""), beatmap_id=100, beatmap_md5="aaa")
    for token in tokens[1:]:
        mpl.join(state, token, match, kw.get("password", ""))
    for token in tokens:
        token.drain()
    return state, match, tokens


def test_referee_match_has_no_host_and_survives_empty():
    state = make_state()
    match = mpl.create_match(state, None, "Tourney: A vs B", "secret")
    assert match.tourney and match.host is None and match.host_id == -1 and match.occupied_count() == 0
    a = login(state, 1)
    with pytest.raises(mpl.MatchError):
        mpl.join(state, a, match, "wrong")
    mpl.join(state, a, match, None)  # !mp join bypasses the password
    assert match.slot_of(a) == 0 and match.host is None
    packets = decoded(a)
    assert C.of(packets, C.MATCH_JOIN_SUCCESS) and C.of(packets, C.NOTIFICATION)
    mpl.leave(state, a)
    assert match.id in state.matches, "tourney matches survive being empty"
    check_invariants(state)


def test_cleanup_sweep_disposes_after_empty_age():
    state = make_state()
    match = mpl.create_match(state, None, "stale")
    lobby = login(state, 5)
    mpl.join_lobby(state, lobby)
    lobby.drain()
    now = time.monotonic()
    assert match_cleanup.sweep(state, now + 60) == 0
    assert match_cleanup.sweep(state, now + 121) == 1
    assert match.id not in state.matches and state.channels.get(match.channel_name) is None
    assert C.values(decoded(lobby), C.MATCH_DISPOSE) == [match.id]
    check_invariants(state)


def test_dispose_removes_remaining_players_cleanly():
    state, match, (a, b) = seated_match(2)
    t = login(state, 7, tournament=True, privileges=3 | TOURNAMENT_STAFF)
    assert mpl.observe(state, t, match.id)
    t.drain()
    mpl.dispose(state, match)
    for token in (a, b, t):
        packets = decoded(token)
        assert C.values(packets, C.MATCH_DISPOSE) == [match.id]
        assert "#multiplayer" in C.values(packets, C.CHANNEL_KICKED)
        assert token.match_id is None and match.channel_name not in token.channels
    assert not decoded(a), "nothing more after the dispose"
    check_invariants(state)
    mpl.dispose(state, match)  # twice is harmless


def test_abort_resets_round_and_tells_players_only():
    state, match, (a, b, c) = seated_match(3)
    mpl.set_has_map(state, c, False)
    assert mpl.request_start(state, a)
    for token in (a, b, c):
        token.drain()
    assert mpl.abort(state, match)
    pa, pb, pc = decoded(a), decoded(b), decoded(c)
    assert C.of(pa, C.MATCH_ABORT) and C.of(pb, C.MATCH_ABORT) and not C.of(pc, C.MATCH_ABORT)
    u = [p.value for p in pc if p.id == C.MATCH_UPDATE][-1]
    assert not u.in_progress and C.slot_statuses(u)[:3] == [m.NOT_READY, m.NOT_READY, m.NO_MAP]
    assert not mpl.abort(state, match), "nothing to abort between rounds"
    check_invariants(state)


def test_round_timeouts():
    state, match, (a, b) = seated_match(2)
    mpl.request_start(state, a)
    mpl.player_loaded(state, a)
    a.drain()
    b.drain()
    now = time.monotonic()
    match_cleanup.check_rounds(state, now + 5)
    assert not C.of(decoded(a), C.MATCH_ALL_PLAYERS_LOADED)
    match_cleanup.check_rounds(state, now + 31)
    assert C.of(decoded(a), C.MATCH_ALL_PLAYERS_LOADED) and C.of(decoded(b), C.MATCH_ALL_PLAYERS_LOADED)
    mpl.player_completed(state, a)
    assert match.in_progress
    match_cleanup.check_rounds(state, time.monotonic() + 31)
    assert not match.in_progress
    assert C.of(decoded(b), C.MATCH_COMPLETE)
    check_invariants(state)


def test_leaving_player_releases_every_barrier():
    state, match, (a, b, c) = seated_match(3)
    mpl.request_start(state, a)
    for token in (a, b):
        mpl.player_loaded(state, token)
        mpl.player_skipped(state, token)
    a.drain()
    mpl.leave(state, c)  # the only one who had not loaded or skipped
    pa = decoded(a)
    assert C.of(pa, C.MATCH_ALL_PLAYERS_LOADED) and C.of(pa, C.MATCH_SKIP)
    mpl.player_completed(state, a)
    b.drain()
    session.logout(state, b)  # the last one who had not completed drops
    assert C.of(decoded(a), C.MATCH_COMPLETE) and not match.in_progress
    check_invariants(state)


def test_set_size_kick_move_and_referee_lock():
    state, match, (a, b, c) = seated_match(3)
    mpl.set_referee_lock(match, True)
    assert not mpl.move(state, match, b, 5), "players cannot move while referee-locked"
    assert mpl.move(state, match, b, 5, referee=True) and match.slot_of(b) == 5
    assert not mpl.change_team(state, b)
    mpl.set_size(state, match, 4)
    assert match.slot_of(b) is None and b.match_id is None
    assert [s.status for s in match.slots[4:]] == [m.LOCKED] * 12
    packets = decoded(b)
    assert "#multiplayer" in C.values(packets, C.CHANNEL_KICKED)
    last = [p.value for p in packets if p.id == C.MATCH_UPDATE][-1]
    assert C.slot_of(last, b.user_id) is None, "the kicked player sees itself unseated"
    assert mpl.kick(state, match, c) and match.slots[2].status == m.OPEN
    assert not mpl.kick(state, match, c)
    check_invariants(state)


def test_set_mods_teams_map_and_password():
    state, match, (a, b) = seated_match(2)
    mpl.set_ready(state, b, True)
    mpl.set_mods(state, match, 72, freemod=True)
    assert match.freemod and match.mods == 64 and all(s.mods == 0 for s in match.slots)
    assert match.slots[1].status == m.NOT_READY
    mpl.set_teams(state, match, team_type=3, scoring_type=3)
    assert match.team_type == 3 and not match.freemod and match.scoring_type == 3
    assert [s.team for s in match.slots[:2]] == [m.RED, m.BLUE]
    with pytest.raises(mpl.MatchError):
        mpl.set_teams(state, match, team_type=4)
    assert mpl.set_team(state, match, b, m.RED) and match.slots[1].team == m.RED
    mpl.set_map(state, match, 300, "ccc", "New map", mode=5)
    assert (match.beatmap_id, match.beatmap_md5, match.mode) == (300, "ccc", 1)
    a.drain()
    mpl.set_password(state, match, "new pw")
    assert C.values(decoded(a), C.MATCH_CHANGE_PASSWORD) == ["new pw"]
    assert mpl.invite_text(match).endswith(f"osump://{match.id}/new_pw m]")
    assert not mpl.set_host(state, match, login(state, 5))
    with pytest.raises(mpl.MatchError):
        mpl.set_host(state, match, None)  # a player-made match always has a host
    assert match.host is a
    ref = mpl.create_match(state, None, "ref")
    mpl.join(state, b, ref, None)
    assert mpl.set_host(state, ref, b) and ref.host is b
    assert mpl.set_host(state, ref, None) and ref.host is None
    check_invariants(state)


def test_ids_increase_wrap_and_skip_used():
    lst = m.MatchList()
    first = lst.allocate_id()
    assert first == 1
    lst.add(m.Match(first, "a"))
    lst._next = m.MAX_ID
    assert lst.allocate_id() == m.MAX_ID
    lst.add(m.Match(m.MAX_ID, "b"))
    assert lst.allocate_id() == 2, "wraps to 1, skips the id in use"
