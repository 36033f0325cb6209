"""More bot commands through real clients: ``!username`` and the small commands of every stack
(docs/commands.md). MySQL rows and Redis keys are read back.
"""

from __future__ import annotations

import pytest

from tests import client as C
from tests.integration.test_commands import ask, connect, sentinel
from tests.integration.test_pubsub import RENAMED, wait_login_reply, wait_notification

DONOR = 4


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def test_username_renames_clears_caches_and_kicks(server, bot):
    c = connect(server, 3 | DONOR)
    old_safe = c.user.name.lower().replace(" ", "_")
    server.redis.set(f"ripple:userid_cache:{old_safe}", c.user.id, ex=3600)
    new = f"Don {server.unique_name('r')[-8:].replace('_', 'x')}"
    c.send(C.private_message(bot, f"!username {new}"))
    wait_notification(c, RENAMED.format(new))
    wait_login_reply(c, -1)
    row = server.db.one("SELECT username, username_safe FROM users WHERE id=%s", (c.user.id,))
    assert (row["username"], row["username_safe"]) == (new, new.lower().replace(" ", "_"))
    assert server.db.scalar("SELECT username FROM users_stats WHERE id=%s", (c.user.id,)) == new
    assert not server.redis.exists(f"ripple:userid_cache:{old_safe}")
    assert server.client().login(new, c.user.password).user_id == c.user.id


def test_username_errors_and_privilege(server, bot):
    c = connect(server, 3 | DONOR)
    other = server.new_user()
    assert ask(c, bot, "!username") == "Wrong syntax: !username <new name...>"
    assert ask(c, bot, "!username a b_c").startswith("You can't use that username (username with both a space")
    assert ask(c, bot, f"!username {'x' * 31}").startswith("You can't use that username (username longer than 30")
    assert ask(c, bot, f"!username {other.name.upper()}") == "That username is already taken."
    assert ask(c, bot, f"!username {c.user.name}") == "That is already your username."
    assert server.db.scalar("SELECT username FROM users WHERE id=%s", (c.user.id,)) == c.user.name
    # a player who is not a donor gets no reply, nothing changes
    p = connect(server)
    p.send(C.private_message(bot, "!username Someone Else"))
    assert not sentinel(p, bot)
    assert server.db.scalar("SELECT username FROM users WHERE id=%s", (p.user.id,)) == p.user.name


def test_username_while_playing_is_deferred(server, bot):
    c = connect(server, 3 | DONOR)
    c.send(C.change_action(2, "Artist - Title [Hard]", "a" * 32))
    new = server.unique_name("later")
    assert ask(c, bot, f"!username {new}") == \
        f"You are playing: your username will be changed to {new} when the play ends."
    assert server.redis.get(f"ripple:change_username_pending:{c.user.id}") == new
    assert server.db.scalar("SELECT username FROM users WHERE id=%s", (c.user.id,)) == c.user.name
