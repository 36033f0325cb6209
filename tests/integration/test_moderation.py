"""Moderation: ban, unban, restrict, unrestrict, the ``peppy:ban`` loop-back, renames, and the
publishers (docs/schema.md §2.3; docs/integration.md §1–3; docs/rules.md §7.3).

Nothing outside the server calls these functions yet (the bot's ``!ban`` will), so they run
here in-process, on a :class:`objects.state.State` built on the test MySQL database and Redis
(real connections, nothing patched), the way another part of the server calls them. The first
test shares the session server's key prefix: the ``peppy:ban`` it publishes reaches the running
server, whose chio-based clients must see the effect. Sessions of the in-process state are
created by the real login code, and their queued packets are decoded with chio
(``tests.client.decode_packets``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

import pytest

from tests import client as C
from tests.waiting import Subscription, subscribe, until

KAWATA_FLAVOUR = "kawata"


# --------------------------------------------------------------------------------------------
# an in-process state on the test database
# --------------------------------------------------------------------------------------------
def _cfg(server, prefix: str, flavour: str, extra: dict | None = None):
    from helpers import config as config_module

    env = {k: v for k, v in server.env.items() if k.startswith("PEP_")}
    env["PEP_REDIS_KEY_PREFIX"] = prefix
    env["PEP_STACK_FLAVOUR"] = flavour
    env.update(extra or {})
    return config_module.load(None, environ=env)


@contextlib.asynccontextmanager
async def world(server, prefix: str | None = None, flavour: str = KAWATA_FLAVOUR, listen: bool = False,
                extra: dict | None = None):
    from services import pubsub, pubsub_handlers
    from common.db import Database
    from common.redis import Redis
    from common.ripple import safe_username
    from objects import bot as bot_module
    from objects.state import State

    cfg = _cfg(server, prefix if prefix is not None else sub_prefix(server), flavour, extra)
    db = Database(cfg.db)
    redis = Redis(cfg.redis)
    state = State(cfg, db, redis)
    row = await state.repo.user_by_id(cfg.stack.bot_id)
    name = str(row["username"])
    state.bot = bot_module.make_token(cfg.stack.bot_id, name, safe_username(name), int(row["privileges"]),
                                      state.repo.presence_rank(int(row["privileges"]), True, True))
    state.tokens.add(state.bot)
    await state.repo.load_admin_groups()
    if listen:
        state.listener = pubsub.Listener(state, pubsub_handlers.SUBSCRIPTIONS)
        await state.listener.start()
    try:
        yield state
    finally:
        if state.listener is not None:
            await state.listener.stop()
        await state.drain_tasks()
        await redis.close()
        db.close()
        state.cpu_pool.shutdown(wait=False)


def sub_prefix(server) -> str:
    return f"{server.prefix}m{secrets.token_hex(3)}:"


async def login(state, user):
    from services import login as login_event

    token, data = await login_event.login(state, C.login_body(user.name, user.password), "10.77.0.1")
    assert token is not None, f"in-process login of {user.name} failed: {C.decode_packets(data)!r}"
    return token


def packets(token):
    return C.decode_packets(token.drain())


def privileges(server, user_id) -> int:
    return int(server.db.scalar("SELECT privileges FROM users WHERE id=%s", (user_id,)))


def ban_datetime(server, user_id) -> int:
    return int(server.db.scalar("SELECT ban_datetime FROM users WHERE id=%s", (user_id,)))


def Subscriber(server, channel: str) -> Subscription:  # noqa: N802 (used like the class it was)
    """A test-side subscriber on one prefixed channel (sync redis-py), confirmed before it returns."""
    return subscribe(server.redis.raw, channel)


def run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------
# the state changes, seen by the running server through peppy:ban
# --------------------------------------------------------------------------------------------
def test_restrict_unrestrict_ban_unban_reach_the_running_server(server):
    from services import moderation

    x = server.connect()
    y = server.connect()
    staff = server.new_user()
    sub = Subscriber(server, server.prefix + "peppy:ban")
    try:
        async def scenario(step):
            async with world(server, prefix=server.prefix) as state:
                await step(state)

        # restrict
        before = int(time.time())
        run(scenario(lambda s: moderation.restrict(s, x.user_id, by=staff.id, reason="cheating")))
        assert privileges(server, x.user_id) == 2
        assert before <= ban_datetime(server, x.user_id) <= int(time.time())
        assert sub.messages(0.5) == [str(x.user_id)]
        C.wait_for(x, lambda p: p.id == C.ACCOUNT_RESTRICTED, description="104")
        C.wait_for(x, lambda p: C.is_message(p, sender_id=C.BOT_ID) and "restricted" in p.value.content,
                   description="restricted PM")
        C.wait_for(y, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == x.user_id, description="12 of X")
        # already restricted: nothing changes, nothing is published
        stamp = ban_datetime(server, x.user_id)
        time.sleep(1.1)  # the behaviour: ban_datetime has 1 s resolution; a second write would differ now
        run(scenario(lambda s: moderation.restrict(s, x.user_id, by=staff.id)))
        assert ban_datetime(server, x.user_id) == stamp
        assert sub.messages(0.5) == []
        # unrestrict
        run(scenario(lambda s: moderation.unrestrict(s, x.user_id, by=staff.id)))
        assert privileges(server, x.user_id) == 3 and ban_datetime(server, x.user_id) == 0
        assert sub.messages(0.5) == [str(x.user_id)]
        C.wait_for(x, lambda p: C.is_message(p, sender_id=C.BOT_ID) and "unrestricted" in p.value.content,
                   description="unrestricted PM")
        C.wait_for(y, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == x.user_id, description="83 of X")
        # ban
        run(scenario(lambda s: moderation.ban(s, x.user_id, by=staff.id, reason="multi")))
        assert privileges(server, x.user_id) & 3 == 0
        assert ban_datetime(server, x.user_id) >= before
        assert sub.messages(0.5) == [str(x.user_id)]
        C.wait_for(x, lambda p: p.id == C.LOGIN_REPLY and p.value == -3, description="login reply -3")
        C.wait_for(y, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == x.user_id, description="12 of X")
        assert server.client().login(x.user.name, x.user.password).user_id == -3
        # unban: can log in again
        run(scenario(lambda s: moderation.unban(s, x.user_id, by=staff.id)))
        assert privileges(server, x.user_id) == 3 and ban_datetime(server, x.user_id) == 0
        assert server.client().login(x.user.name, x.user.password).user_id == x.user_id
    finally:
        sub.close()


def test_unknown_user(server):
    from services import moderation

    async def scenario():
        async with world(server) as state:
            for fn in (moderation.ban, moderation.unban, moderation.restrict, moderation.unrestrict):
                with pytest.raises(moderation.UserNotFound):
                    await fn(state, 2_000_000_000)

    run(scenario())


# --------------------------------------------------------------------------------------------
# leaderboards and audit logs per flavour
# --------------------------------------------------------------------------------------------
def _fill(server, prefix, keys, member, other="1999999999"):
    r = server.redis.raw
    for k in keys:
        r.zadd(prefix + k, {member: 100, other: 50})


def _members(server, prefix, keys):
    return {k: set(server.redis.raw.zrange(prefix + k, 0, -1)) for k in keys}


def test_ban_removes_every_leaderboard_entry_kawata(server):
    from services import moderation

    user = server.new_user()
    server.db.execute("UPDATE users_stats SET country='JP' WHERE id=%s", (user.id,))
    keys = [f"ripple:leaderboard{family}:{m}{cc}" for family in ("", "_relax", "_ap")
            for m in ("std", "taiko", "ctb", "mania") for cc in ("", ":jp")]
    prefix = sub_prefix(server)
    _fill(server, prefix, keys + ["ripple:leaderboard:std:gb"], str(user.id))

    async def scenario():
        async with world(server, prefix=prefix) as state:
            await moderation.ban(state, user.id, reason="x")

    run(scenario())
    after = _members(server, prefix, keys)
    assert all(v == {"1999999999"} for v in after.values()), after
    assert str(user.id) in _members(server, prefix, ["ripple:leaderboard:std:gb"])["ripple:leaderboard:std:gb"]


def test_restrict_ripple_flavour_suffix_boards_and_rap_logs(server):
    from services import moderation

    user = server.new_user()
    staff = server.new_user()
    server.db.execute("UPDATE users_stats SET country='JP' WHERE id=%s", (user.id,))
    keys = ["ripple:leaderboard:std", "ripple:leaderboard:std:jp", "ripple:leaderboard:std:relax",
            "ripple:leaderboard:std:jp:relax", "ripple:leaderboard:mania:jp"]
    prefix = sub_prefix(server)
    _fill(server, prefix, keys, str(user.id))

    async def scenario():
        async with world(server, prefix=prefix, flavour="ripple") as state:
            await moderation.restrict(state, user.id, by=staff.id, reason="r")
            await moderation.unrestrict(state, user.id)

    run(scenario())
    assert all(v == {"1999999999"} for v in _members(server, prefix, keys).values())
    rows = server.db.query("SELECT userid, text, through FROM rap_logs WHERE text LIKE %s ORDER BY id",
                           (f"%{user.name}%",))
    assert [(r["userid"], r["text"], r["through"]) for r in rows] == [
        (staff.id, f"has put {user.name} in restricted mode", server.bot_name()),
        (999, f"has removed restricted mode from {user.name}", "Bancho"),
    ]


def test_ban_realistikosu_flavour_ban_logs_and_users_country(server):
    from services import moderation

    from common import schema

    server.db.execute(schema.table_ddl("ban_logs"))  # a RealistikOsu table (the test DB is kawata's)
    user = server.new_user()
    staff = server.new_user()
    server.db.execute("UPDATE users SET country='DE' WHERE id=%s", (user.id,))
    keys = ["ripple:leaderboard:std:de", "ripple:leaderboard_relax:std:de", "ripple:leaderboard_ap:std:de",
            "ripple:leaderboard_ap:std"]
    prefix = sub_prefix(server)
    _fill(server, prefix, keys, str(user.id))

    async def scenario():
        async with world(server, prefix=prefix, flavour="realistikosu") as state:
            await moderation.ban(state, user.id, by=staff.id, reason="multi-account")

    run(scenario())
    assert all(v == {"1999999999"} for v in _members(server, prefix, keys).values())
    row = server.db.one("SELECT from_id, summary, detail FROM ban_logs WHERE to_id=%s", (user.id,))
    assert row and (row["from_id"], row["summary"], row["detail"]) == (staff.id, "Ban", "multi-account")
    assert privileges(server, user.id) & 3 == 0


# --------------------------------------------------------------------------------------------
# the loop-back inside one server, and its fallback
# --------------------------------------------------------------------------------------------
def test_ban_loop_back_through_the_servers_own_listener(server):
    from services import moderation

    user = server.new_user()

    async def scenario():
        async with world(server, listen=True) as state:
            assert state.listener is not None and state.listener.listening
            token = await login(state, user)
            token.drain()
            await moderation.ban(state, user.id)
            await until(lambda: token.kicked, what="kick by the loop-back")
            got = packets(token)
            assert [p.value for p in C.of(got, C.LOGIN_REPLY)] == [-3, -1]
            assert any("banned" in n for n in C.values(got, C.NOTIFICATION))
            assert state.tokens.user(user.id) is None

    run(scenario())


def test_restrict_applies_at_once_when_the_loop_back_cannot_come(server):
    from services import moderation

    user = server.new_user()
    other = server.new_user()

    async def scenario():
        async with world(server) as state:  # not listening
            assert state.listener is None
            token = await login(state, user)
            watcher = await login(state, other)
            token.drain(), watcher.drain()
            await moderation.restrict(state, user.id)
            assert token.restricted and not token.kicked
            got = packets(token)
            assert C.of(got, C.ACCOUNT_RESTRICTED)
            assert any(C.is_message(p, sender_id=C.BOT_ID) for p in got)
            assert [q.user_id for q in C.values(packets(watcher), C.USER_LOGOUT)] == [user.id]
            await moderation.unrestrict(state, user.id)
            assert not token.restricted
            assert any("unrestricted" in m.content for m in C.values(packets(token), C.SEND_MESSAGE))

    run(scenario())


def test_redis_down_the_state_change_still_applies(server):
    """Redis unreachable: MySQL is written, the leaderboards and the publish fail (logged), and
    the online session gets the new state directly."""
    from services import moderation
    from tests.conftest import free_port

    user = server.new_user()

    async def scenario():
        async with world(server, extra={"PEP_REDIS_PORT": str(free_port())}) as state:
            token = await login(state, user)
            token.drain()
            await moderation.restrict(state, user.id, reason="no redis")
            assert token.restricted
            assert C.of(packets(token), C.ACCOUNT_RESTRICTED)

    run(scenario())
    assert privileges(server, user.id) == 2


def test_refresh_privileges_of_an_offline_user_does_nothing(server):
    from services import moderation

    user = server.new_user()

    async def scenario():
        async with world(server) as state:
            await moderation.refresh_privileges(state, user.id)
            assert await moderation.reload_privileges(state, user.id) is None

    run(scenario())


# --------------------------------------------------------------------------------------------
# rename
# --------------------------------------------------------------------------------------------
def test_rename(server):
    from services import moderation

    user = server.new_user()
    taken = server.new_user()
    new = "Rn " + secrets.token_hex(4)

    async def scenario():
        async with world(server) as state:
            for bad in ("", "  ", "a b_c", "x" * 31, "bell\x07"):
                with pytest.raises(moderation.RenameError):
                    await moderation.rename(state, user.id, bad)
            with pytest.raises(moderation.RenameError):
                await moderation.rename(state, user.id, taken.name.upper())
            with pytest.raises(moderation.RenameError):
                await moderation.rename(state, 2_000_000_000, "nobody here")
            assert await moderation.rename(state, user.id, f"  {new} ") == user.name
            notes = server.db.scalar("SELECT notes FROM users WHERE id=%s", (user.id,))
            # the same name again: already done, no second note
            assert await moderation.rename(state, user.id, new) == new
            assert server.db.scalar("SELECT notes FROM users WHERE id=%s", (user.id,)) == notes

    run(scenario())
    row = server.db.one("SELECT username, username_safe, notes FROM users WHERE id=%s", (user.id,))
    assert (row["username"], row["username_safe"]) == (new, new.lower().replace(" ", "_"))
    assert row["notes"].count("Username change:") == 1


# --------------------------------------------------------------------------------------------
# publishers
# --------------------------------------------------------------------------------------------
def test_refresh_beatmaps_publishes_for_ussr_flavours_only(server):
    from services import publish

    prefix = sub_prefix(server)
    sub = Subscriber(server, prefix + "ussr:refresh_bmap")
    md5s = ["A" * 32, "not an md5", "b" * 32, 12]
    try:
        async def scenario(flavour):
            async with world(server, prefix=prefix, flavour=flavour) as state:
                return await publish.refresh_beatmaps(state, md5s)

        assert run(scenario("kawata")) == 2
        assert sub.messages(0.5) == ["a" * 32, "b" * 32]
        assert run(scenario("realistikosu")) == 2
        assert sub.messages(0.5) == ["a" * 32, "b" * 32]
        assert run(scenario("ripple")) == 0
        assert sub.messages(0.5) == []
    finally:
        sub.close()
