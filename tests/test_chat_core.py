"""The chat pipeline in-process (docs/integration.md §4 "chat rules"): public and private
messages through the client packets (1, 25) and through ``services.chat.send_message`` (the
entry point of the bot and the HTTP API), on a real :class:`State` with in-memory fakes.

Every check reads what each session would receive, decoded by chio. These tests are the ones
``scripts/mutation.sh`` runs against the mutants of ``services/chat.py`` (docs/testing.md).
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from services import chat
from services.chat import Result
from tests import client as C
from tests.fakes import NoOpHooks, BOT_NAME, World, messages, received, run_async, no_errors  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("no_errors")


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def heard(world):
    """Messages offered to the bot (its hook list is the documented plug-in point)."""
    seen: list[tuple[str, str | None, str]] = []

    def hook(state, sender, channel, text):
        assert state is world.state
        seen.append((sender.username, channel, text))

    world.state.bot_hooks.append(hook)
    yield seen


# ------------------------------------------------------------------------------ public
def test_public_message_reaches_members_not_sender(world, heard, caplog):
    a, b = world.user("Alice"), world.user("Bob")
    outsider = world.user("Carol", channels=())
    with caplog.at_level(logging.DEBUG, logger="pep.chat"):
        world.send(a, C.public_message("#osu", "hello all"))
    assert "chat Alice @ #osu: hello all" in [r.getMessage() for r in caplog.records]
    got = messages(b)
    assert [(m.sender, m.content, m.target, m.sender_id) for m in got] == [("Alice", "hello all", "#osu", a.user_id)]
    assert messages(a) == [] and messages(outsider) == []
    assert heard == [("Alice", "#osu", "hello all")]
    assert re.fullmatch(r"\d\d:\d\d - Alice@#osu: hello all", list(a.recent_messages)[-1])


def test_recent_messages_keep_fifty_characters(world):
    a = world.user("Alice")
    text = "x" * 60
    assert chat.send_message(world.state, a, "#osu", text) is Result.SENT
    assert list(a.recent_messages)[-1].endswith("Alice@#osu: " + "x" * 50)


def test_public_message_rules(world, heard):
    a, b = world.user("Alice"), world.user("Bob", channels=("#osu", "#announce"))
    admin = world.user("Admin", channels=("#osu", "#announce"), admin=True)
    state = world.state
    assert chat.send_message(state, a, "#nowhere", "x") is Result.NO_CHANNEL
    assert chat.send_message(state, a, "#announce", "not a member") is Result.NOT_ALLOWED
    assert chat.send_message(state, b, "#announce", "read only") is Result.NOT_ALLOWED
    assert chat.send_message(state, admin, "#announce", "staff line") is Result.SENT
    assert [m.content for m in messages(b)] == ["staff line"]
    # the bot may post where it is no member
    state.channels.get("#osu").members.remove(world.bot)
    world.bot.channels.discard("#osu")
    assert chat.bot_message(state, "#osu", "from the bot") is Result.SENT
    got = messages(a)
    assert [(m.sender, m.content, m.sender_id) for m in got] == [(BOT_NAME, "from the bot", world.bot.user_id)]
    assert [h for h in heard if h[0] == BOT_NAME] == []  # the bot does not hear itself


def test_moderated_channel_only_admins(world):
    a = world.user("Alice")
    admin = world.user("Admin", admin=True)
    world.state.channels.get("#osu").moderated = True
    assert chat.send_message(world.state, a, "#osu", "quiet?") is Result.NOT_ALLOWED
    assert chat.send_message(world.state, admin, "#osu", "quiet!") is Result.SENT
    assert [m.content for m in messages(a)] == ["quiet!"]


def test_empty_and_blank_messages_dropped(world):
    a, b = world.user("Alice"), world.user("Bob")
    for text in ("", "   ", "\t"):
        assert chat.send_message(world.state, a, "#osu", text) is Result.EMPTY
        assert chat.send_message(world.state, a, "Bob", text) is Result.EMPTY
    assert messages(b) == []


def test_truncation_at_the_limit():
    world = World({"PEP_CHAT_MAX_MESSAGE_LENGTH": "20"})
    a, b = world.user("Alice"), world.user("Bob")
    world.send(a, C.public_message("#osu", "a" * 20), C.public_message("#osu", "b" * 21),
               C.private_message("Bob", "c" * 25))
    assert [m.content for m in messages(b)] == ["a" * 20, "b" * 17 + "...", "c" * 17 + "..."]


def test_report_goes_to_the_bot_only(world, heard):
    a, b = world.user("Alice"), world.user("Bob")
    assert chat.send_message(world.state, a, "#osu", "!report Bob spam") is Result.SENT
    assert messages(b) == []
    assert heard[0] == ("Alice", None, "!report Bob spam")


def test_bot_lines_starting_with_report_reach_their_target(world, heard):
    """The bot's own "!report ..." line (its help entry) goes to the user it was sent to."""
    a = world.user("Alice")
    assert chat.bot_message(world.state, "Alice", "!report <user> (<reason>)") is Result.SENT
    assert chat.bot_message(world.state, "#osu", "!report in a channel") is Result.SENT
    assert [m.content for m in messages(a)] == ["!report <user> (<reason>)", "!report in a channel"]
    assert heard == []


# ------------------------------------------------------------------------------ #spectator / #multiplayer
def test_spectator_channel_names(world):
    host, viewer = world.user("Host", channels=()), world.user("Viewer", channels=())
    world.send(viewer, C.start_spectating(host.user_id))
    received(host), received(viewer)
    world.send(viewer, C.public_message("#spectator", "gg"))
    got = messages(host)
    assert [(m.content, m.target) for m in got] == [("gg", "#spectator")]
    world.send(host, C.public_message("#spectator", "thanks"))
    assert [(m.content, m.target) for m in messages(viewer)] == [("thanks", "#spectator")]
    # a user who spectates nobody and has no audience has no #spectator channel
    lonely = world.user("Lonely", channels=())
    assert chat.send_message(world.state, lonely, "#spectator", "hello?") is Result.NO_CHANNEL


def test_multiplayer_channel_names(world):
    host, guest = world.user("Host", channels=()), world.user("Guest", channels=())
    world.send(host, C.match_create(C.make_match(name="room", host_id=host.user_id)))
    match_id = host.match_id
    assert match_id is not None
    world.send(guest, C.match_join(match_id))
    received(host), received(guest)
    world.send(guest, C.public_message("#multiplayer", "hi room"))
    assert [(m.content, m.target) for m in messages(host)] == [("hi room", "#multiplayer")]
    # a tournament client that joined the match channel with packet 108 is no player but hears it
    tourney = world.user("Ref", channels=(), tournament=True, privileges=3 | 2097152)
    world.send(tourney, C.tournament_join_match_channel(match_id))
    received(tourney)
    assert tourney.match_id is None and tourney.tourney_match_id == match_id
    assert chat.send_message(world.state, tourney, "#multiplayer", "from the booth") is Result.SENT
    assert [m.content for m in messages(guest)] == ["from the booth"]
    # outside any match, #multiplayer is no channel
    out = world.user("Out", channels=())
    assert chat.send_message(world.state, out, "#multiplayer", "anyone?") is Result.NO_CHANNEL


# ------------------------------------------------------------------------------ restricted users
def test_restricted_sender_is_mute(world, heard):
    a = world.user("Alice")
    r = world.user("Rex", restricted=True)
    assert chat.send_message(world.state, r, "#osu", "public") is Result.RESTRICTED
    assert chat.send_message(world.state, r, "Alice", "private") is Result.RESTRICTED
    assert chat.send_message(world.state, r, BOT_NAME, "to the bot") is Result.RESTRICTED
    world.send(r, C.public_message("#osu", "packet public"), C.private_message("Alice", "packet private"))
    assert messages(a) == []
    assert heard == []
    assert [p.id for p in received(r)] == []  # no silence notice or anything else


def test_private_message_to_restricted_user_dropped(world):
    a = world.user("Alice")
    r = world.user("Rex", restricted=True, channels=())
    r.block_nonfriend_dms = True
    r.silence_end = int(time.time()) + 600
    assert chat.send_message(world.state, a, "Rex", "hello rex") is Result.TARGET_RESTRICTED
    world.send(a, C.private_message("Rex", "again"))
    assert messages(r) == []
    assert [p.id for p in received(a)] == []  # neither 100 nor 101: dropped silently
    # the bot still reaches a restricted user (e.g. to tell them why)
    assert chat.bot_message(world.state, "Rex", "you are restricted") is Result.SENT
    assert [(m.sender, m.content, m.target) for m in messages(r)] == [(BOT_NAME, "you are restricted", "Rex")]


# ------------------------------------------------------------------------------ private messages
def test_private_message_delivered(world):
    a, b = world.user("Alice"), world.user("Bob Two")
    world.send(a, C.private_message("bob two", "psst"))
    got = messages(b)
    assert [(m.sender, m.content, m.target, m.sender_id) for m in got] == [("Alice", "psst", "Bob Two", a.user_id)]
    assert messages(a) == []


def test_private_message_to_offline_or_unknown(world):
    a = world.user("Alice")
    assert chat.send_message(world.state, a, "Nobody", "hello") in (Result.OFFLINE, Result.STORED)
    assert chat.bot_message(world.state, "Nobody", "hello") in (Result.OFFLINE, Result.STORED)
    assert received(a) == []


def test_private_message_to_the_bot_is_offered_to_it(world, heard):
    a = world.user("Alice")
    assert chat.send_message(world.state, a, BOT_NAME, "hello bot") is Result.SENT
    assert heard == [("Alice", None, "hello bot")]


def test_blocked_dms(world):
    a, b = world.user("Alice"), world.user("Bob")
    b.block_nonfriend_dms = True
    assert chat.send_message(world.state, a, "Bob", "hi") is Result.BLOCKED
    assert C.values(received(a), C.USER_DM_BLOCKED)[0].target == "Bob"
    assert messages(b) == []
    b.add_friend(a.user_id)
    assert chat.send_message(world.state, a, "Bob", "friend now") is Result.SENT
    assert [m.content for m in messages(b)] == ["friend now"]
    b.remove_friend(a.user_id)
    assert chat.bot_message(world.state, "Bob", "bot bypasses") is Result.SENT
    assert [m.content for m in messages(b)] == ["bot bypasses"]


def test_silenced_target(world):
    a, b = world.user("Alice"), world.user("Bob")
    b.silence_end = int(time.time()) + 600
    assert chat.send_message(world.state, a, "Bob", "hi") is Result.TARGET_SILENCED
    assert C.values(received(a), C.TARGET_IS_SILENCED)[0].target == "Bob"
    assert messages(b) == []
    assert chat.bot_message(world.state, "Bob", "bot bypasses") is Result.SENT
    assert [m.content for m in messages(b)] == ["bot bypasses"]


def test_away_message_once_per_sender(world):
    a, b, c = world.user("Alice"), world.user("Bob"), world.user("Carol")
    world.send(b, C.set_away_message("gone fishing"))
    received(b)
    for sender in (a, a, c):
        assert chat.send_message(world.state, sender, "Bob", "hello") is Result.SENT
    away = "\x01ACTION is away: gone fishing\x01"
    got_a = messages(a)
    assert [(m.sender, m.content, m.target, m.sender_id) for m in got_a] == [("Bob", away, "Alice", b.user_id)]
    assert [m.content for m in messages(c)] == [away]
    assert [m.content for m in messages(b)] == ["hello"] * 3
    assert chat.bot_message(world.state, "Bob", "bot") is Result.SENT
    assert b.away_told == {a.user_id, c.user_id}


# ------------------------------------------------------------------------------ silence
def test_silenced_sender_told_how_long(world):
    a, b = world.user("Alice"), world.user("Bob")
    a.silence_end = int(time.time()) + 300
    assert chat.send_message(world.state, a, "#osu", "muted") is Result.SILENCED
    world.send(a, C.private_message("Bob", "muted pm"))
    left = C.values(received(a), C.SILENCE_END)
    assert len(left) == 2 and all(290 <= v <= 300 for v in left), left
    assert messages(b) == []
    # an expired silence is none
    a.silence_end = int(time.time()) - 1
    assert chat.send_message(world.state, a, "#osu", "free") is Result.SENT
    # while an automatic silence is being written, the sender is already refused
    a.silence_end = 0
    a.silencing = True
    assert chat.send_message(world.state, a, "#osu", "not yet") is Result.SILENCED
    assert C.values(received(a), C.SILENCE_END) == [0]
    assert [m.content for m in messages(b)] == ["free"]


# ------------------------------------------------------------------------------ spam protection
SPAM_ENV = {"PEP_CHAT_SPAM_LIMIT": "3", "PEP_CHAT_SPAM_WINDOW": "60", "PEP_CHAT_SPAM_SILENCE": "1"}


def test_spam_limit_boundary_and_silence(caplog):
    world = World(SPAM_ENV, repo=True)
    a, b = world.user("Alice"), world.user("Bob")

    async def scenario():
        for i in range(3):
            assert chat.send_message(world.state, a, "#osu", f"m{i}") is Result.SENT
        await world.state.drain_tasks()
        assert world.repo.silences == [] and not a.silencing  # the limit itself is allowed
        assert chat.send_message(world.state, a, "#osu", "m3") is Result.SENT  # over the limit: sent, then silenced
        assert a.silencing
        await world.state.drain_tasks()

    with caplog.at_level(logging.INFO, logger="pep.chat"):
        run_async(scenario())
    assert f"spam auto-silence user={a.user_id} name=Alice" in [r.getMessage() for r in caplog.records]
    assert world.repo.silences == [(a.user_id, 1, chat.SPAM_REASON)]
    assert a.silencing is False and a.silence_end > 0
    assert [m.content for m in messages(b)] == ["m0", "m1", "m2", "m3"]
    assert C.values(received(a), C.SILENCE_END)[-1] in (0, 1)
    assert chat.send_message(world.state, a, "#osu", "silenced now") is Result.SILENCED
    assert messages(b) == []
    # once the silence ends the user can chat again
    deadline = time.monotonic() + 5
    while a.is_silenced() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert chat.send_message(world.state, a, "#osu", "back again") is Result.SENT
    assert [m.content for m in messages(b)] == ["back again"]


def test_spam_silence_broadcast_to_everyone():
    world = World(SPAM_ENV, repo=True)
    a, b = world.user("Alice"), world.user("Bob", channels=())

    async def scenario():
        for i in range(4):
            chat.send_message(world.state, a, "#osu", f"m{i}")
        await world.state.drain_tasks()

    run_async(scenario())
    assert C.values(received(b), C.USER_SILENCED) == [a.user_id]


def test_spam_silence_write_failure_lets_the_user_chat(caplog, no_errors):
    world = World(SPAM_ENV, repo=True)
    world.repo.fail = True
    a, b = world.user("Alice"), world.user("Bob")

    async def scenario():
        for i in range(4):
            assert chat.send_message(world.state, a, "#osu", f"m{i}") is Result.SENT
        await world.state.drain_tasks()

    with caplog.at_level(logging.ERROR, logger="pep.state"):
        run_async(scenario())
    assert any(r.getMessage().startswith(f"auto-silence of {a.user_id} failed") for r in caplog.records)
    no_errors.clear()  # the failed write is logged at ERROR, as it should be
    assert a.silencing is False and not a.is_silenced()
    assert world.repo.silences == []
    assert C.values(received(b), C.USER_SILENCED) == []
    received(a)
    assert chat.send_message(world.state, a, "#osu", "still here") is Result.SENT
    assert [m.content for m in messages(b)][-1] == "still here"


def test_spam_window_restarts_count():
    world = World(SPAM_ENV, repo=True)
    a = world.user("Alice")

    async def scenario():
        for i in range(3):
            chat.send_message(world.state, a, "#osu", f"m{i}")
        a.spam_window_start -= 60  # the window of those three is over
        for i in range(3):
            chat.send_message(world.state, a, "#osu", f"n{i}")
        await world.state.drain_tasks()

    run_async(scenario())
    assert world.repo.silences == [] and a.spam_count == 3


def test_refused_messages_do_not_count_as_spam():
    world = World(SPAM_ENV, repo=True)
    a = world.user("Alice")

    async def scenario():
        for i in range(6):
            assert chat.send_message(world.state, a, "#announce", f"m{i}") is Result.NOT_ALLOWED
        await world.state.drain_tasks()

    run_async(scenario())
    assert world.repo.silences == [] and a.spam_count == 0


def test_bot_is_exempt_from_spam_limit():
    world = World(SPAM_ENV, repo=True)
    b = world.user("Bob")

    async def scenario():
        for i in range(10):
            assert chat.bot_message(world.state, "#osu", f"bot {i}") is Result.SENT
            assert chat.bot_message(world.state, "Bob", f"pm {i}") is Result.SENT
        await world.state.drain_tasks()

    run_async(scenario())
    assert world.repo.silences == [] and not world.bot.silencing
    assert len(messages(b)) == 20
    assert chat.bot_message(world.state, "#osu", "still talking") is Result.SENT


def test_bot_private_reaches_restricted_and_no_bot():
    world = World()
    r = world.user("Rex", restricted=True)
    chat.bot_private(world.state, r, "direct")
    assert [(m.sender, m.content, m.target, m.sender_id) for m in messages(r)] == [
        (BOT_NAME, "direct", "Rex", world.bot.user_id)]
    world.state.bot = None
    chat.bot_private(world.state, r, "nobody")
    assert chat.bot_message(world.state, "#osu", "nobody") is Result.OFFLINE
    assert messages(r) == []


# ------------------------------------------------------------------ offline messages in-process
import asyncio as _asyncio  # noqa: E402
import types as _types  # noqa: E402

from common.db import DatabaseError as _DatabaseError  # noqa: E402
from common.ripple import NO_SUCH_TABLE as _NO_SUCH_TABLE, StoreResult as _StoreResult  # noqa: E402


class OfflineRepo:
    """The offline-message queries: ``store`` says what each store does (a StoreResult or an
    exception); ``kept`` lists the stored messages; ``taken``/``restored`` what delivery did."""

    def __init__(self):
        self.store = _StoreResult.STORED
        self.stored = []
        self.waiting = []
        self.restored = []
        self.take_error = None

    async def store_offline_message(self, sender_id, safe_name, text, limit, bypass=False):
        await _asyncio.sleep(0)
        if isinstance(self.store, Exception):
            raise self.store
        self.stored.append((sender_id, safe_name, text, limit, bypass))
        return self.store, 4242, "Offline Guy"

    async def take_offline_messages(self, user_id, limit):
        if self.take_error is not None:
            raise self.take_error
        taken, self.waiting = self.waiting[:limit], self.waiting[limit:]
        return taken

    async def restore_offline_messages(self, user_id, messages):
        self.restored.append((user_id, list(messages)))


def offline_world():
    world = World({"PEP_CHAT_OFFLINE_MESSAGES": "5"})
    world.state.repo = repo = OfflineRepo()
    return world, repo


def test_messages_to_offline_users_are_kept_and_the_sender_told(no_errors, caplog):
    world, repo = offline_world()
    a = world.user("Alice")

    async def send(*texts):
        results = [chat.send_message(world.state, a, "Offline Guy", text) for text in texts]
        await world.state.drain_tasks()
        return results

    assert _asyncio.run(send("one", "two")) == [chat.Result.STORED, chat.Result.STORED]
    assert repo.stored == [(a.user_id, "offline_guy", "one", 5, False), (a.user_id, "offline_guy", "two", 5, False)]
    got = messages(a)
    assert [(m.sender, m.content, m.sender_id) for m in got] == [("Offline Guy", chat.OFFLINE_NOTICE, 4242)] * 2
    assert a.offline_store is None
    repo.store = _StoreResult.FULL
    _asyncio.run(send("three"))
    assert [m.content for m in messages(a)] == [chat.OFFLINE_FULL]
    for silent in (_StoreResult.UNKNOWN, _StoreResult.UNREACHABLE):
        repo.store = silent
        _asyncio.run(send("four"))
        assert messages(a) == []
    repo.store = _DatabaseError("2003: cannot connect (fake)")
    with caplog.at_level(logging.WARNING, logger="pep.chat"):
        _asyncio.run(send("five"))
    assert [(m.sender, m.content) for m in messages(a)] == [("Offline Guy", chat.OFFLINE_UNAVAILABLE)]
    assert f"offline message from user={a.user_id} not kept: 2003: cannot connect (fake)" in [
        r.getMessage() for r in caplog.records]
    missing = _DatabaseError("1146: no such table (fake)")
    missing.code = _NO_SUCH_TABLE
    repo.store = missing
    _asyncio.run(send("six"))
    assert [m.content for m in messages(a)] == [chat.OFFLINE_UNAVAILABLE]
    assert [r.getMessage() for r in no_errors] == [
        f"offline message from user={a.user_id} not kept: the offline_messages table is missing; "
        "run `python pep.py init-db` to create it"]
    no_errors.clear()
    repo.store = _StoreResult.STORED
    _asyncio.run((lambda: _bot_send(world))())
    assert repo.stored[-1][4] is True  # the bot's messages bypass the recipient's limits


async def _bot_send(world):
    chat.bot_message(world.state, "Offline Guy", "from the bot")
    await world.state.drain_tasks()


def test_offline_messages_are_delivered_with_their_time(no_errors, caplog):
    world, repo = offline_world()
    a = world.user("Alice")
    repo.waiting = [_types.SimpleNamespace(sender_name="Bob", sender_id=7, content=f"m{i}", sent_at=86400 + 60 * i)
                    for i in range(7)]
    with caplog.at_level(logging.INFO, logger="pep.chat"):
        assert _asyncio.run(chat.deliver_offline_messages(world.state, a)) == 5
    got = messages(a)
    assert [(m.sender, m.sender_id, m.content) for m in got] == [
        ("Bob", 7, f"[1970-01-02 00:0{i} UTC] m{i}") for i in range(5)]
    assert f"delivered 5 offline message(s) to user={a.user_id}" in [r.getMessage() for r in caplog.records]
    assert _asyncio.run(chat.deliver_offline_messages(world.state, a)) == 2
    assert _asyncio.run(chat.deliver_offline_messages(world.state, a)) == 0  # nothing left
    r = world.user("Rex", restricted=True)
    repo.waiting = [_types.SimpleNamespace(sender_name="Bob", sender_id=7, content="x", sent_at=0)]
    assert _asyncio.run(chat.deliver_offline_messages(world.state, r)) == 0 and len(repo.waiting) == 1
    gone = world.user("Gone")
    world.state.tokens.remove(gone)  # logged out while MySQL answered: kept for the next login
    assert _asyncio.run(chat.deliver_offline_messages(world.state, gone)) == 0
    assert repo.restored == [(gone.user_id, [_types.SimpleNamespace(sender_name="Bob", sender_id=7, content="x", sent_at=0)])]
    missing = _DatabaseError("1146: no such table (fake)")
    missing.code = _NO_SUCH_TABLE
    repo.take_error = missing
    assert _asyncio.run(chat.deliver_offline_messages(world.state, a)) == 0
    assert [r.getMessage() for r in no_errors] == [
        f"offline messages of user={a.user_id} not read: the offline_messages table is missing; "
        "run `python pep.py init-db` to create it"]
    no_errors.clear()
    repo.take_error = _DatabaseError("2003: cannot connect (fake)")
    with pytest.raises(_DatabaseError):
        _asyncio.run(chat.deliver_offline_messages(world.state, a))
    off = World({"PEP_CHAT_OFFLINE_MESSAGES": "0"})
    off.state.repo = repo
    repo.take_error = None
    repo.waiting = [_types.SimpleNamespace(sender_name="Bob", sender_id=7, content="x", sent_at=0)]
    assert _asyncio.run(chat.deliver_offline_messages(off.state, off.user("Alice"))) == 0 and len(repo.waiting) == 1


class ChatRelay(NoOpHooks):
    """A chat listener (the IRC gateway's interface) and a cluster's chat relays, recorded."""

    def __init__(self, remote_ok=True):
        self.calls = []
        self.remote_ok = remote_ok

    def channel_message(self, *args):
        self.calls.append(("channel_message",) + args)

    def private_message(self, *args):
        self.calls.append(("private_message",) + args)

    def remote_channel(self, sender, name, text):
        self.calls.append(("remote_channel", sender, name, text))
        return self.remote_ok


def test_chat_reaches_listeners_and_other_nodes():
    from helpers import codec

    world = World()
    a, b, r = world.user("Alice"), world.user("Bob"), world.user("Remote")
    r.node = "node-2"
    listener, cluster = ChatRelay(), ChatRelay()
    world.state.chat_listeners.append(listener)
    world.state.cluster = cluster
    osu = world.state.channels.get("#osu")
    assert chat.send_message(world.state, a, "#osu", "hello all") is chat.Result.SENT
    assert ("channel_message", osu, a, "hello all") in listener.calls
    assert ("channel_message", a, osu, "hello all", codec.message("Alice", "hello all", "#osu", a.user_id)) in cluster.calls
    assert [m.content for m in messages(b)] == ["hello all"]
    messages(r)
    assert chat.send_message(world.state, a, "Remote", "psst") is chat.Result.SENT
    assert ("private_message", a, r, "psst") in cluster.calls and messages(r) == []
    assert ("private_message", a, r, "psst") in listener.calls
    assert chat.send_message(world.state, a, "Bob", "hi bob") is chat.Result.SENT
    assert ("private_message", a, b, "hi bob") in listener.calls and ("private_message", a, b, "hi bob") not in cluster.calls
    assert [m.content for m in messages(b)] == ["hi bob"]
    # a channel this node does not have: another node's #spectator, or nothing
    assert chat.send_message(world.state, a, "#spect_77", "there") is chat.Result.SENT
    assert cluster.calls[-1] == ("remote_channel", a, "#spect_77", "there")
    cluster.remote_ok = False
    assert chat.send_message(world.state, a, "#nowhere", "x") is chat.Result.NO_CHANNEL


# ------------------------------------------------------------------ old client builds (issue 15)
# Receivers of builds before b20121225 read the message struct without the sender id, and
# builds before b20121212 write chat links ``(text)[url]``. Each receiver's packets are
# compared, byte for byte, with what chio's class of its own build writes for the same message
# (trailing bytes would be tolerated by a decoder, so decoding alone cannot tell the layouts
# apart).
import chio as _chio  # noqa: E402
from chio.types import Message as _Message  # noqa: E402

OLDEST = 20121203  # legacy links, no sender id
NO_ID = 20121221  # no sender id
LINKED = "see [https://osu.ppy.sh/b/1 a map] now"


def chio_struct(build, sender, content, target, sender_id):
    """The message struct as chio's class of ``build`` writes it (packet 7's payload)."""
    io = type(_chio.select_client(build))
    [(packet_id, data)] = list(io.write_message(_Message(sender=sender, content=content, target=target,
                                                         sender_id=sender_id)))
    assert int(packet_id) == C.SEND_MESSAGE
    return data


def payloads(token, packet_id=C.SEND_MESSAGE):
    """The raw payloads of ``packet_id`` queued for ``token``, framed as its build reads them."""
    io = C.client_io(token.version) if token.version else C.IO
    return [p.raw for p in C.decode_packets(token.drain(), io) if p.id == packet_id]


def test_public_message_in_each_receivers_layout(world):
    a = world.user("Alice")
    oldest, no_id = world.user("Oldest", version=OLDEST), world.user("NoId", version=NO_ID)
    modern = world.user("Modern")
    assert oldest.layout.legacy_links and not no_id.layout.message_sender_id and modern.layout.modern
    for text in ("plain words", LINKED):
        assert chat.send_message(world.state, a, "#osu", text) is Result.SENT
    assert payloads(oldest) == [chio_struct(OLDEST, "Alice", t, "#osu", a.user_id) for t in ("plain words", LINKED)]
    got = payloads(no_id)
    assert got[0] == chio_struct(NO_ID, "Alice", "plain words", "#osu", a.user_id)
    # links as sent, no id: helpers/layout.py keeps ``(text)[url]`` for builds before b20121212,
    # as chio's b20121212 class says ("changes the chat link format"), although chio's own
    # message writer still rewrites links for b20121212 to b20121224 (only b20121225 stops)
    assert got[1] == chio_struct(20121225, "Alice", LINKED, "#osu", a.user_id)[:-4]
    assert payloads(modern) == [chio_struct(20250306, "Alice", t, "#osu", a.user_id) for t in ("plain words", LINKED)]


def test_private_messages_in_the_receivers_layout(world):
    a = world.user("Alice")
    oldest, no_id = world.user("Oldest", version=OLDEST), world.user("NoId", version=NO_ID)
    assert chat.send_message(world.state, a, "Oldest", LINKED) is Result.SENT
    assert chat.send_message(world.state, a, "NoId", "psst") is Result.SENT
    assert payloads(oldest) == [chio_struct(OLDEST, "Alice", LINKED, "Oldest", a.user_id)]
    assert payloads(no_id) == [chio_struct(NO_ID, "Alice", "psst", "NoId", a.user_id)]
    # an old sender writing to a modern user: the modern receiver's layout, not the sender's
    b = world.user("Bob")
    assert chat.send_message(world.state, oldest, "Bob", LINKED) is Result.SENT
    assert payloads(b) == [chio_struct(20250306, "Oldest", LINKED, "Bob", oldest.user_id)]
    chat.bot_private(world.state, oldest, LINKED)
    assert payloads(oldest) == [chio_struct(OLDEST, BOT_NAME, LINKED, "Oldest", world.bot.user_id)]


def test_replies_to_an_old_sender_in_its_layout(world):
    old, bob = world.user("Old", version=OLDEST), world.user("Bob")
    world.send(bob, C.set_away_message("at [https://osu.ppy.sh home]"))
    received(bob)
    assert chat.send_message(world.state, old, "Bob", "hi") is Result.SENT
    away = "\x01ACTION is away: at [https://osu.ppy.sh home]\x01"
    assert payloads(old) == [chio_struct(OLDEST, "Bob", away, "Old", bob.user_id)]
    # 100 and 101 carry the same struct: without the sender id for this build
    bob.away_message = ""
    bob.block_nonfriend_dms = True
    assert chat.send_message(world.state, old, "Bob", "hi") is Result.BLOCKED
    assert payloads(old, C.USER_DM_BLOCKED) == [chio_struct(OLDEST, "", "", "Bob", -1)]
    bob.block_nonfriend_dms = False
    bob.silence_end = int(time.time()) + 600
    assert chat.send_message(world.state, old, "Bob", "hi") is Result.TARGET_SILENCED
    assert payloads(old, C.TARGET_IS_SILENCED) == [chio_struct(OLDEST, "", "", "Bob", -1)]


def test_offline_notices_and_delivery_in_the_layout_of_the_build(no_errors, caplog):
    world, repo = offline_world()
    old = world.user("Old", version=OLDEST)

    async def send(text):
        result = chat.send_message(world.state, old, "Offline Guy", text)
        await world.state.drain_tasks()
        return result

    assert _asyncio.run(send("one")) is Result.STORED
    assert payloads(old) == [chio_struct(OLDEST, "Offline Guy", chat.OFFLINE_NOTICE, "Old", 4242)]
    repo.store = _DatabaseError("2003: cannot connect (fake)")
    with caplog.at_level(logging.WARNING, logger="pep.chat"):
        _asyncio.run(send("two"))
    assert payloads(old) == [chio_struct(OLDEST, "Offline Guy", chat.OFFLINE_UNAVAILABLE, "Old", 0)]
    repo.waiting = [_types.SimpleNamespace(sender_name="Bob", sender_id=7, content=LINKED, sent_at=86400)]
    assert _asyncio.run(chat.deliver_offline_messages(world.state, old)) == 1
    assert payloads(old) == [chio_struct(OLDEST, "Bob", f"[1970-01-02 00:00 UTC] {LINKED}", "Old", 7)]


def test_new_messages_published_when_configured(no_errors):
    import json

    world = World({"PEP_CHAT_PUBLISH_NEW_MESSAGE": "1"}, redis=True)
    a, b = world.user("Alice"), world.user("Bob")

    async def send():
        assert chat.send_message(world.state, a, "#osu", "to all") is Result.SENT
        assert chat.send_message(world.state, a, "Bob", "to you") is Result.SENT
        assert chat.send_message(world.state, a, "#nowhere", "lost") is Result.NO_CHANNEL
        await world.state.drain_tasks()

    _asyncio.run(send())
    published = [args for name, args in world.redis.calls if name == "publish"]
    assert [(ch, json.loads(text)) for ch, text in published] == [
        (chat.NEW_MESSAGE_CHANNEL, {"user_id": a.user_id, "target": "#osu", "content": "to all"}),
        (chat.NEW_MESSAGE_CHANNEL, {"user_id": a.user_id, "target": "Bob", "content": "to you"})]
    world.redis.fail = True  # a failed publish is logged under its name, the message still sent
    _asyncio.run(send())
    assert [r.getMessage().split(":")[0] for r in no_errors] == ["new message notify failed"] * 2
    no_errors.clear()
    assert [m.content for m in messages(b)] == ["to all", "to you", "to all", "to you"]


def test_message_like_gate(world):
    a, r, s = world.user("Alice"), world.user("Rex", restricted=True), world.user("Sil")
    s.silence_end = int(time.time()) + 300
    assert chat.message_like_allowed(world.state, world.bot) is True
    assert chat.message_like_allowed(world.state, a) is True
    assert chat.message_like_allowed(world.state, r) is False and received(r) == []
    assert chat.message_like_allowed(world.state, s) is False
    assert C.values(received(s), C.SILENCE_END) in ([300], [299])
    a.silencing = True  # an automatic silence being written
    assert chat.message_like_allowed(world.state, a) is False
    a.silencing = False
    assert received(a) and chat.message_like_allowed(world.state, a) is True
    before = a.spam_count
    chat.count_message_like(world.state, a)
    chat.count_message_like(world.state, world.bot)
    assert a.spam_count == before + 1 and world.bot.spam_count == 0
