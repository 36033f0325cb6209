"""Fuzzing the frame reader and every event handler in-process (h11 style: bytes in, state out).

Random and mutated bodies go through :func:`handlers.bancho.process_frames` for several sessions
(normal, admin, restricted) of a :class:`State` on the in-memory fakes of ``tests/fakes.py``. No exception may escape a
handler (a handler failure is logged at ERROR by the main handler: the test fails on any such
record), and the state invariants must hold after every body. The long run is
``PEP_FUZZ_EXAMPLES=200000 python -m pytest tests/test_fuzz.py`` (docs/security.md).
"""

from __future__ import annotations

import os
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from events import HANDLERS
from handlers.bancho import process_frames
from helpers import config
from objects import bot as bot_module
from objects.channel import Channel
from objects.state import State
from tests.fakes import fake_state, pep_errors
from objects.token import Token

EXAMPLES = int(os.environ.get("PEP_FUZZ_EXAMPLES", "300"))


def make_state() -> tuple[State, list[Token]]:
    state = fake_state()
    for name, write in (("#osu", True), ("#announce", False), ("#lobby", True)):
        state.channels.add(Channel(name, "topic", True, write))
    state.channels.add(Channel("#admin", "staff", False, False))
    bot = bot_module.make_token(999, "FokaBot", "fokabot", 978427, 16)
    state.bot = bot
    for channel in state.channels:
        channel.members.add(bot)
        bot.channels.add(channel.name)
    state.tokens.add(bot)
    tokens = []
    for i, (restricted, admin) in enumerate(((False, False), (False, False), (False, True), (True, False))):
        token = Token(1000 + i, f"user{i}", f"user{i}", 3, restricted=restricted, admin=admin)
        token.login_time -= 60  # old enough for a logout to count
        state.tokens.add(token)
        osu = state.channels.get("#osu")
        osu.members.add(token)
        token.channels.add(osu.name)
        tokens.append(token)
    return state, tokens


def check_invariants(state: State) -> None:
    for channel in state.channels:
        for member in channel.members:
            assert channel.name in member.channels, (channel, member)
    for token in state.tokens:
        assert state.tokens.get(token.token) is token
        for name in token.channels:
            channel = state.channels.get(name)
            assert channel is not None and token in channel.members, (token, name)
        queue = token.queue  # first: copies the unread broadcast log entries (objects/stream.py)
        assert token.queued <= token.max_queue and token.queued == sum(map(len, queue))
        if token.match_id is not None:
            matches = getattr(state, "matches", None)
            if matches is not None:
                assert token.match_id in matches
        if token.spectating is not None:
            assert token.token in token.spectating.spectators
        for spectator in token.spectators.values():
            assert spectator.spectating is token
    for token in state.tokens:
        assert not token.logged_out


def frame(packet_id: int, payload: bytes) -> bytes:
    return struct.pack("<HBI", packet_id, 0, len(payload)) + payload


def osu_string(text: str) -> bytes:
    data = text.encode()
    out = bytearray(b"\x0b")
    n = len(data)
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + data


def plausible_payload(rng: random.Random, packet_id: int) -> bytes:
    """A payload that is often well-formed, so handlers get past their readers."""
    kind = rng.randrange(6)
    ids = [rng.choice((1000, 1001, 1002, 1003, 999, 0, -1, 2**31 - 1)) for _ in range(rng.randrange(4))]
    if kind == 0:
        return struct.pack("<i", rng.choice((0, 1, -1, 2, 5, 1000, 1001, 2**31 - 1, -(2**31))))
    if kind == 1:
        return struct.pack("<H", len(ids)) + b"".join(struct.pack("<i", i) for i in ids)
    if kind == 2:
        target = rng.choice(("#osu", "#announce", "#admin", "#nope", "user1", "FokaBot", "#multiplayer", "#spectator", ""))
        text = rng.choice(("hi", "", " ", "!help", "!report x", "é" * 3000, "\x01ACTION is away\x01"))
        return b"\x00" + osu_string(text) + osu_string(target) + struct.pack("<i", 0)
    if kind == 3:
        return (bytes([rng.randrange(16)]) + osu_string("text") + osu_string("a" * 32)
                + struct.pack("<IBi", rng.getrandbits(32), rng.randrange(6), rng.randrange(-2, 100)))
    if kind == 4:
        return osu_string(rng.choice(("#osu", "#lobby", "#admin", "#highlight", "#spectator", "#x" * 40)))
    return rng.randbytes(rng.randrange(0, 64))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), garbage=st.binary(max_size=256))
def test_random_bodies_never_escape_a_handler(seed: int, garbage: bytes) -> None:
    rng = random.Random(seed)
    state, tokens = make_state()
    with pep_errors() as errors:
        known = sorted(HANDLERS)
        for _ in range(8):
            token = rng.choice([t for t in tokens if not t.logged_out] or [None])
            if token is None:
                break
            body = b"".join(
                frame(rng.choice(known) if rng.random() < 0.85 else rng.randrange(0, 65536),
                      plausible_payload(rng, 0))
                for _ in range(rng.randrange(1, 6))
            )
            cut = rng.random()
            if cut < 0.15:
                body = body[: rng.randrange(len(body) + 1)]  # truncated frame
            elif cut < 0.25:
                body = garbage
            elif cut < 0.3:  # a huge declared length
                body += struct.pack("<HBI", 1, 0, 0xFFFFFFFF) + b"x"
            process_frames(state, token, body)
            check_invariants(state)
    assert not errors, [r.getMessage() for r in errors]


@pytest.mark.parametrize("packet_id", sorted(HANDLERS))
def test_every_handler_survives_empty_and_short_payloads(packet_id: int) -> None:
    state, tokens = make_state()
    with pep_errors() as errors:
        for payload in (b"", b"\x0b", b"\x0b\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", b"\xff" * 3, b"\x00" * 200):
            process_frames(state, tokens[0], frame(packet_id, payload))
            check_invariants(state)
    assert not errors, [r.getMessage() for r in errors]
