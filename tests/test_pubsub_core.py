"""The pub/sub handlers in-process (services/pubsub_handlers.py; docs/integration.md §1):
each handler called as the listener calls it, with an already validated payload, on a real
:class:`State` with in-memory fakes of MySQL and Redis; what the sessions receive is decoded by
chio.

These are the tests ``scripts/mutation.sh`` runs against the mutants of
``services/pubsub_handlers.py`` (docs/testing.md). The listener itself (channel subscription,
payload validation) is tested against a real Redis in ``tests/integration/test_pubsub.py``.
"""

from __future__ import annotations

import pytest

import logging
import time

from constants import game
from services import moderation, pubsub_handlers as h
from tests import client as C
from tests.fakes import (ADMIN, BOT_NAME, NoOpHooks, World, messages, received, run_async,  # noqa: F401 (fixture)
                         no_errors)

pytestmark = pytest.mark.usefixtures("no_errors")


def world_with(*names, env=None):
    world = World(env, repo=True, redis=True)
    tokens = [world.user(n) for n in names]
    for t in tokens:
        world.repo.users[t.user_id] = {"username": t.username, "privileges": 3, "silence_end": 0}
    return world, tokens


def second_session(world, token):
    other = world.user(token.username, channels=())
    world.state.tokens.remove(other)
    other.user_id = token.user_id
    world.state.tokens.add(other)
    return other


def test_subscription_table():
    table = {s.channel: (s.kind, s.handler, s.fields or None) for s in h.SUBSCRIPTIONS}
    assert table == {
        "peppy:disconnect": ("json", h.disconnect, {"userID": "id", "reason": "str"}),
        "peppy:change_username": ("json", h.change_username, {"userID": "id", "newUsername": "str"}),
        "peppy:reload_settings": ("literal", h.reload_settings, None),
        "peppy:reload_chat_channels": ("literal", h.reload_chat_channels, None),
        "peppy:update_cached_stats": ("int", h.update_cached_stats, None),
        "peppy:silence": ("int", h.silence, None),
        "peppy:ban": ("int", h.ban, None),
        "peppy:notification": ("json", h.notification, {"userID": "id", "message": "str"}),
        "peppy:set_main_menu_icon": ("json", h.set_main_menu_icon, {"userID": "id", "mainMenuIconID": "int"}),
        "peppy:refresh_privs": ("json", h.refresh_privs, {"user_id": "id"}),
        "peppy:change_pass": ("json", h.change_pass, {"user_id": "id"}),
        "peppy:bot_msg": ("json", h.bot_msg, {"to": "str", "message": "str"}),
    }


def test_disconnect_kicks_every_session():
    world, (a, b) = world_with("Alice", "Bob")
    a2 = second_session(world, a)
    run_async(h.disconnect(world.state, {"userID": a.user_id, "reason": "maintenance"}))
    for t in (a, a2):
        packets = received(t)
        assert C.values(packets, C.NOTIFICATION) == ["maintenance"] and C.values(packets, C.LOGIN_REPLY) == [-1]
        assert t.kicked
    assert not b.kicked
    assert C.values(received(b), C.USER_LOGOUT)[0].user_id == a.user_id
    run_async(h.disconnect(world.state, {"userID": b.user_id, "reason": ""}))
    assert [p.id for p in received(b)] == [C.LOGIN_REPLY]


def test_notification_to_every_session():
    world, (a, b) = world_with("Alice", "Bob")
    a2 = second_session(world, a)
    run_async(h.notification(world.state, {"userID": a.user_id, "message": "hello"}))
    assert C.values(received(a), C.NOTIFICATION) == ["hello"] and C.values(received(a2), C.NOTIFICATION) == ["hello"]
    assert received(b) == []
    run_async(h.notification(world.state, {"userID": a.user_id, "message": ""}))
    assert received(a) == []


def test_update_cached_stats_pushes_to_user_and_spectators():
    world, (a, viewer, other) = world_with("Alice", "Viewer", "Other")
    world.send(viewer, C.start_spectating(a.user_id))
    for t in (a, viewer, other):
        received(t)
    a.mode = 1
    run_async(h.update_cached_stats(world.state, a.user_id))
    for t in (a, viewer):
        stats = C.values(received(t), C.USER_STATS)
        assert len(stats) == 1 and stats[0].user_id == a.user_id and stats[0].rank == 7 and stats[0].pp == 123
    assert received(other) == []
    assert a.playcount == 1


def test_silence_from_the_website():
    world, (a, b) = world_with("Alice", "Bob")
    end = int(time.time()) + 120
    world.repo.users[a.user_id]["silence_end"] = end
    run_async(h.silence(world.state, a.user_id))
    left = C.values(received(a), C.SILENCE_END)
    assert len(left) == 1 and 118 <= left[0] <= 120 and a.silence_end == end
    assert C.values(received(b), C.USER_SILENCED) == [a.user_id]
    world.repo.users[a.user_id]["silence_end"] = None  # lifted
    run_async(h.silence(world.state, a.user_id))
    assert C.values(received(a), C.SILENCE_END) == [0] and a.silence_end == 0
    assert C.values(received(b), C.USER_SILENCED) == [a.user_id]
    # offline or unknown: nothing
    run_async(h.silence(world.state, 4242))
    del world.repo.users[b.user_id]
    run_async(h.silence(world.state, b.user_id))
    assert received(b) == [] and received(a) == []


def test_main_menu_icon_preview(caplog):
    world, (a, b) = world_with("Alice", "Bob")
    world.repo.icons[3] = "https://x/3.png|https://y"
    run_async(h.set_main_menu_icon(world.state, {"userID": a.user_id, "mainMenuIconID": 3}))
    assert C.values(received(a), C.MAIN_MENU_ICON) == ["https://x/3.png|https://y"]
    assert received(b) == []
    with caplog.at_level(logging.WARNING, logger="pep.pubsub"):
        run_async(h.set_main_menu_icon(world.state, {"userID": a.user_id, "mainMenuIconID": 9}))
    assert received(a) == []
    assert "set_main_menu_icon: no main_menu_icons row 9" in [r.getMessage() for r in caplog.records]
    run_async(h.set_main_menu_icon(world.state, {"userID": 4242, "mainMenuIconID": 3}))


def test_change_pass_drops_the_cache(caplog):
    world, (a,) = world_with("Alice")
    world.state.password_cache[a.user_id] = ("md5", "hash")
    with caplog.at_level(logging.INFO, logger="pep.pubsub"):
        run_async(h.change_pass(world.state, {"user_id": a.user_id}))
        run_async(h.change_pass(world.state, {"user_id": a.user_id}))
    assert a.user_id not in world.state.password_cache
    got = [r.getMessage() for r in caplog.records]
    assert got == [f"change_pass user={a.user_id}: password cache entry dropped",
                   f"change_pass user={a.user_id}: password cache entry absent"]


def test_bot_msg(caplog):
    world, (a,) = world_with("Alice")
    run_async(h.bot_msg(world.state, {"to": "#osu", "message": "announcement"}))
    run_async(h.bot_msg(world.state, {"to": "Alice", "message": "just you"}))
    got = [(m.sender, m.content, m.target) for m in messages(a)]
    assert got == [(BOT_NAME, "announcement", "#osu"), (BOT_NAME, "just you", "Alice")]
    with caplog.at_level(logging.INFO, logger="pep.pubsub"):
        run_async(h.bot_msg(world.state, {"to": "#nowhere", "message": "x"}))
    assert "bot_msg to '#nowhere' not delivered: no such channel" in [r.getMessage() for r in caplog.records]


def test_change_username_online_kicks_with_the_new_name():
    world, (a, b) = world_with("Alice", "Bob")
    run_async(h.change_username(world.state, {"userID": a.user_id, "newUsername": " Alicia "}))
    assert world.repo.users[a.user_id]["username"] == "Alicia"
    assert C.values(received(a), C.NOTIFICATION) == [moderation.NOTICE_RENAMED.format(name="Alicia")]
    assert a.kicked and not b.kicked


def test_change_username_while_playing_is_deferred():
    world, (a,) = world_with("Alice")
    for action in (game.PLAYING, game.MULTIPLAYING):
        a.action = action
        world.redis.calls.clear()
        run_async(h.change_username(world.state, {"userID": a.user_id, "newUsername": "Later"}))
        assert world.redis.calls == [("set_pending_rename", (a.user_id, "Later"))]
        assert world.repo.users[a.user_id]["username"] == "Alice" and not a.kicked


def test_refused_rename_is_logged_and_kicks():
    world, (a,) = world_with("Alice")
    run_async(h.change_username(world.state, {"userID": a.user_id, "newUsername": "bad_ name"}))
    assert world.repo.users[a.user_id]["username"] == "Alice"
    assert C.values(received(a), C.NOTIFICATION) == [moderation.NOTICE_RENAME_FAILED] and a.kicked
    assert len(world.repo.admin_logs) == 1
    author, text, through = world.repo.admin_logs[0]
    assert author == world.state.cfg.stack.bot_id and text.startswith("Username change: ") and through == "Bancho"
    # the admin log failing does not stop the kick
    world2, (c,) = world_with("Carol")
    world2.repo.fail = True
    run_async(h.change_username(world2.state, {"userID": c.user_id, "newUsername": ""}))
    assert c.kicked


def test_refresh_privs_and_ban():
    world, (a, b) = world_with("Alice", "Bob")
    world.repo.users[a.user_id]["privileges"] = 3 | ADMIN
    run_async(h.refresh_privs(world.state, {"user_id": a.user_id}))
    assert a.admin and a.privileges == 3 | ADMIN and received(a) == []
    world.repo.users[b.user_id]["privileges"] = 0  # banned
    run_async(h.ban(world.state, b.user_id))
    assert b.kicked and C.values(received(b), C.LOGIN_REPLY)[-1] == -1


def test_logged_events(caplog):
    world, (a, b, c) = world_with("Alice", "Bob", "Carol")
    world.repo.fail = True  # the admin log cannot be written
    b.action = game.PLAYING
    world.repo.users[c.user_id]["silence_end"] = int(time.time()) + 60
    with caplog.at_level(logging.INFO):  # pep.pubsub and pep.moderation (the shared rename)
        run_async(h.change_username(world.state, {"userID": a.user_id, "newUsername": ""}))
        run_async(h.change_username(world.state, {"userID": b.user_id, "newUsername": "Later"}))
        run_async(h.silence(world.state, c.user_id))
    got = [r.getMessage() for r in caplog.records]
    assert f"rename user={a.user_id} to '' refused: empty username" in got
    assert "admin log not written: 2003: cannot connect (fake)" in got
    assert f"rename user={b.user_id} to 'Later' deferred until the end of the play" in got
    assert any(t.startswith(f"silence user={c.user_id}: ") and t.endswith(" s left") for t in got)


def test_menu_icon_uses_the_configured_base():
    world, (a,) = world_with("Alice", env={"PEP_STACK_MENU_ICON_BASE": "https://icons.example"})
    world.repo.icons[1] = "x|y"
    run_async(h.set_main_menu_icon(world.state, {"userID": a.user_id, "mainMenuIconID": 1}))
    assert world.repo.icon_bases == ["https://icons.example"]


def test_reload_settings_adds_channels_and_tells_everyone():
    import types

    for handler in (h.reload_settings, h.reload_chat_channels):
        world, (a,) = world_with("Alice")
        world.repo.channel_rows = [types.SimpleNamespace(name="#new", description="fresh", public_read=True,
                                                         public_write=True)]
        world.repo.menu_icon_value = "img|url"
        run_async(handler(world.state, None))
        assert world.state.channels.get("#new") is not None and "#new" in world.bot.channels
        packets = received(a)
        assert C.values(packets, C.MAIN_MENU_ICON) == ["img|url"] and C.of(packets, C.CHANNEL_INFO_END)
        assert "#new" in [i.name for i in C.values(packets, C.CHANNEL_INFO)]


def test_catch_up_applies_what_changed_while_disconnected(caplog):
    """After a reconnect of the listener: privileges and silences re-read for the online users
    (not the bot), applied where they differ, counted and logged."""
    world, (a, b, c) = world_with("Alice", "Bob", "Carol")
    asked = []
    soon = int(time.time()) + 300

    async def privileges_and_silences(user_ids):
        asked.append(list(user_ids))
        return {a.user_id: (3, 0),  # unchanged
                b.user_id: (3, soon),  # silenced meanwhile
                c.user_id: (2, 0),  # restricted meanwhile
                4242: (3, soon)}  # went offline since

    world.repo.privileges_and_silences = privileges_and_silences
    world.repo.users[c.user_id]["privileges"] = 2
    with caplog.at_level(logging.INFO, logger="pep.pubsub"):
        assert run_async(h.catch_up(world.state)) == 2
    assert asked == [sorted([a.user_id, b.user_id, c.user_id])]
    assert b.silence_end == soon and a.silence_end == 0 and c.restricted and not a.restricted
    assert "pub/sub catch-up: 3 online user(s) checked, 2 change(s) applied" in [r.getMessage() for r in caplog.records]
    only_bot = World(repo=True)
    assert run_async(h.catch_up(only_bot.state)) == 0  # nobody online but the bot: no query


class Cluster(NoOpHooks):
    """A cluster seen from this node: it handles messages about the users in ``owned`` only."""

    def __init__(self, owned, leader=True):
        self.owned = set(owned)
        self.leader = leader
        self.asked = []

    def owns_user(self, user_id):
        self.asked.append(user_id)
        return user_id in self.owned

    def is_leader(self):
        return self.leader


def test_in_a_cluster_only_the_owning_node_acts():
    world, (a, b) = world_with("Alice", "Bob")
    world.state.cluster = Cluster({a.user_id})
    for uid in (a.user_id, b.user_id):
        run_async(h.notification(world.state, {"userID": uid, "message": "hello"}))
    assert C.values(received(a), C.NOTIFICATION) == ["hello"] and C.values(received(b), C.NOTIFICATION) == []
    calls = [
        (h.disconnect, lambda uid: {"userID": uid, "reason": "bye"}),
        (h.change_username, lambda uid: {"userID": uid, "newUsername": "Renamed"}),
        (h.set_main_menu_icon, lambda uid: {"userID": uid, "mainMenuIconID": 1}),
        (h.refresh_privs, lambda uid: {"user_id": uid}),
        (h.update_cached_stats, lambda uid: uid),
        (h.silence, lambda uid: uid),
        (h.ban, lambda uid: uid),
    ]
    for handler, data in calls:
        world.state.cluster.asked.clear()
        run_async(handler(world.state, data(b.user_id)))
        assert world.state.cluster.asked == [b.user_id], handler.__name__
    assert not b.kicked and b.username == "Bob" and received(b) == []


def test_bot_messages_are_sent_by_the_leader_only():
    world, (a,) = world_with("Alice")
    world.state.cluster = Cluster({a.user_id}, leader=False)
    run_async(h.bot_msg(world.state, {"to": "Alice", "message": "from a follower"}))
    assert messages(a) == []
    world.state.cluster.leader = True
    run_async(h.bot_msg(world.state, {"to": "Alice", "message": "from the leader"}))
    assert [m.content for m in messages(a)] == ["from the leader"]
