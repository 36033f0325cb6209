"""Chat: channels, private messages, permissions, silence, DM blocking, away messages, spam.

Specs: docs/protocol.md §7.2–7.4; docs/rules.md §6 (chat rules).

Negative checks ("X receives nothing") use a sentinel: after the action that must not be
delivered, something that must be delivered is sent on the same path; once the sentinel has
arrived, the earlier message would have arrived too.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from tests import client as C
from tests.waiting import wait_until

KAWATA_FULL_PERMS = 136104116219


def token_text(stem: str = "msg") -> str:
    return f"{stem} {secrets.token_hex(4)}"


def messages(packets):
    return C.values(packets, C.SEND_MESSAGE)


def contents(packets):
    return [m.content for m in messages(packets)]


def sentinel_channel(sender, receiver, channel="#osu"):
    """Send a sentinel public message and wait until ``receiver`` has it."""
    text = token_text("sentinel")
    sender.send(C.public_message(channel, text))
    C.wait_for(receiver, lambda p: C.is_message(p, content=text), description=f"sentinel {text!r}")


def sentinel_pm(sender, receiver):
    text = token_text("sentinel")
    sender.send(C.private_message(receiver.user.name, text))
    C.wait_for(receiver, lambda p: C.is_message(p, content=text), description=f"sentinel PM {text!r}")


def other_public_channel(server) -> str:
    name = server.db.scalar(
        "SELECT name FROM bancho_channels WHERE public_read=1 AND public_write=1 "
        "AND name NOT IN ('#osu','#announce','#lobby') ORDER BY name LIMIT 1"
    )
    if not name:
        name = server.db.scalar("SELECT name FROM bancho_channels WHERE name='#lobby' AND public_read=1")
    if not name:
        pytest.skip("no extra public channel in bancho_channels")
    return name


# --------------------------------------------------------------------------------------------
# channels
# --------------------------------------------------------------------------------------------
def test_public_message_delivered_to_others_not_echoed(server):
    a = server.connect()
    b = server.connect()
    text = token_text("hello")
    a_packets = a.send(C.public_message("#osu", text))
    p = C.wait_for(b, lambda p: C.is_message(p, content=text))
    m = p.value
    assert m.sender == a.user.name
    assert m.target == "#osu"
    assert m.sender_id == a.user_id
    a_packets += a.drain()
    assert text not in contents(a_packets), "the sender must not get its own line back"


def test_utf8_message_roundtrip(server):
    a = server.connect()
    b = server.connect()
    text = "héllo ✓ 日本語 " + secrets.token_hex(2)
    a.send(C.public_message("#osu", text))
    p = C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert p.value.content == text


def test_private_message(server):
    a = server.connect()
    b = server.connect()
    text = token_text("pm")
    packets = a.send(C.private_message(b.user.name, text))
    p = C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert p.value.sender == a.user.name
    assert p.value.target == b.user.name
    assert p.value.sender_id == a.user_id
    assert not C.of(packets, C.USER_DM_BLOCKED) and not C.of(packets, C.TARGET_IS_SILENCED)


def test_private_message_to_offline_user_is_lost(server):
    a = server.connect()
    offline = server.new_user()
    text = token_text("lost")
    packets = a.send(C.private_message(offline.name, text)) + a.drain(rounds=1)
    assert text not in contents(packets)
    assert not C.of(packets, C.RESTART)
    # no offline mail: the message is lost (docs/rules.md §6.3)
    c = server.client()
    res = c.login(offline.name, offline.password)
    assert res.user_id == offline.id
    assert text not in contents(res.packets + c.drain())


def test_private_message_to_unknown_name(server):
    a = server.connect()
    packets = a.send(C.private_message(server.unique_name("nobody"), "hi?"))
    assert not C.of(packets, C.RESTART)
    assert not C.of(a.poll(), C.RESTART)


def test_channel_join_public(server):
    a = server.connect()
    b = server.connect()
    name = other_public_channel(server)
    packets = a.send(C.channel_join(name)) + a.drain(rounds=1)
    assert name in C.values(packets, C.CHANNEL_JOIN_SUCCESS)
    # joined for real: messages in that channel reach A
    b.send(C.channel_join(name))
    C.wait_for(b, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == name)
    text = token_text("in channel")
    b.send(C.public_message(name, text))
    p = C.wait_for(a, lambda p: C.is_message(p, content=text))
    assert p.value.target == name


def test_channel_part_stops_delivery(server):
    a = server.connect()
    b = server.connect()
    name = other_public_channel(server)
    a.send(C.channel_join(name))
    b.send(C.channel_join(name))
    C.wait_for(a, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == name)
    C.wait_for(b, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == name)
    b.send(C.channel_part(name))
    b.drain()
    text = token_text("after part")
    a.send(C.public_message(name, text))
    sentinel_channel(a, b, "#osu")
    assert text not in contents(b.received)


def test_not_a_member_cannot_post(server):
    a = server.connect()
    b = server.connect()
    name = other_public_channel(server)
    b.send(C.channel_join(name))
    C.wait_for(b, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == name)
    text = token_text("outsider")
    a.send(C.public_message(name, text))  # A never joined
    sentinel_channel(a, b, "#osu")
    assert text not in contents(b.received)


def test_admin_channel_refused_for_non_admin(server):
    a = server.connect()
    row = server.db.one("SELECT public_read FROM bancho_channels WHERE name='#admin'")
    assert row is not None and row["public_read"] == 0, "init-db seeds #admin as admin-only"
    packets = a.send(C.channel_join("#admin")) + a.drain(rounds=1)
    assert "#admin" not in C.values(packets, C.CHANNEL_JOIN_SUCCESS)
    # and an admin in #admin does not get A's posts there
    admin = server.connect(privileges=KAWATA_FULL_PERMS, stem="adm")
    text = token_text("sneaky")
    a.send(C.public_message("#admin", text))
    sentinel_pm(a, admin)
    assert text not in contents(admin.received)


def test_admin_channel_works_for_admins(server):
    x = server.connect(privileges=KAWATA_FULL_PERMS, stem="adm")
    y = server.connect(privileges=KAWATA_FULL_PERMS, stem="adm")
    text = token_text("staff")
    x.send(C.public_message("#admin", text))
    p = C.wait_for(y, lambda p: C.is_message(p, content=text))
    assert p.value.target == "#admin"


def test_announce_is_read_only_for_non_admins(server):
    a = server.connect()
    b = server.connect()
    text = token_text("announce by user")
    a.send(C.public_message("#announce", text))
    sentinel_channel(a, b, "#osu")
    assert text not in contents(b.received)
    # positive control: an admin may write there
    admin = server.connect(privileges=KAWATA_FULL_PERMS, stem="adm")
    text = token_text("announce by admin")
    admin.send(C.public_message("#announce", text))
    p = C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert p.value.target == "#announce"


def test_long_message_truncated(server):
    a = server.connect()
    b = server.connect()
    head = secrets.token_hex(4)
    text = head + "x" * 3000
    a.send(C.public_message("#osu", text))
    p = C.wait_for(b, lambda p: p.id == C.SEND_MESSAGE and p.value.content.startswith(head))
    got = p.value.content
    assert len(got) <= 2048, len(got)
    assert got.endswith("...")
    assert len(got) >= 2000
    assert set(got[len(head):-3]) == {"x"}


def test_message_at_the_limit_not_truncated(server):
    a = server.connect()
    b = server.connect()
    head = secrets.token_hex(4)
    text = head + "y" * (2048 - len(head))
    a.send(C.public_message("#osu", text))
    p = C.wait_for(b, lambda p: p.id == C.SEND_MESSAGE and p.value.content.startswith(head))
    assert p.value.content == text


def test_empty_message_dropped(server):
    a = server.connect()
    b = server.connect()
    a.send(C.public_message("#osu", "   "))
    sentinel_channel(a, b)
    assert "   " not in contents(b.received) and "" not in contents(b.received)


# --------------------------------------------------------------------------------------------
# silence
# --------------------------------------------------------------------------------------------
def silenced_user(server, seconds=600):
    user = server.new_user()
    server.db.execute(
        "UPDATE users SET silence_end=%s, silence_reason='test' WHERE id=%s", (int(time.time()) + seconds, user.id)
    )
    return user


def test_silenced_sender(server):
    b = server.connect()
    user = silenced_user(server, 600)
    s = server.client()
    res = s.login(user.name, user.password)
    assert res.user_id == user.id
    left = res.values(C.SILENCE_END)
    assert left and 590 <= left[-1] <= 600, left
    s.user = user
    text = token_text("silenced")
    packets = s.send(C.public_message("#osu", text), C.private_message(b.user.name, text + " pm"))
    packets += s.drain(rounds=1)
    again = C.values(packets, C.SILENCE_END)
    assert again and 0 < again[-1] <= 600, f"a silenced sender gets 92 with the seconds left: {packets!r}"
    sentinel_channel(server.connect(), b)
    assert text not in contents(b.received) and text + " pm" not in contents(b.received)


def test_expired_silence_is_no_silence(server):
    b = server.connect()
    user = server.new_user()
    server.db.execute("UPDATE users SET silence_end=%s WHERE id=%s", (int(time.time()) - 10, user.id))
    s = server.login(user, drain=False)
    assert s.login_result.values(C.SILENCE_END) == [0]
    text = token_text("free again")
    s.send(C.public_message("#osu", text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def test_pm_to_silenced_target(server):
    a = server.connect()
    user = silenced_user(server, 600)
    t = server.login(user)
    packets = a.send(C.private_message(user.name, token_text("to silenced"))) + a.drain(rounds=1)
    replies = C.values(packets, C.TARGET_IS_SILENCED)
    assert replies, packets
    assert replies[0].target == user.name
    assert t.user_id == user.id


# --------------------------------------------------------------------------------------------
# DM blocking, friends, away
# --------------------------------------------------------------------------------------------
def test_block_non_friend_dms_packet_then_friend(server):
    a = server.connect()
    b = server.connect()
    b.send(C.toggle_block_dms(1))
    text = token_text("blocked")
    packets = a.send(C.private_message(b.user.name, text)) + a.drain(rounds=1)
    blocked = C.values(packets, C.USER_DM_BLOCKED)
    assert blocked and blocked[0].target == b.user.name, packets
    # B gets nothing (sentinel: a public line from A)
    sentinel_channel(a, b)
    assert text not in contents(b.received)

    # after B befriends A the PM goes through
    b.send(C.friend_add(a.user_id))
    wait_until(lambda: server.db.scalar("SELECT COUNT(*) FROM users_relationships WHERE user1=%s AND user2=%s",
                                        (b.user_id, a.user_id)), what="the friend row")
    # the row is written before the session's friend list changes (events/friend_add.py), and
    # the server applies the list one turn of its loop after the write: one round trip of B's
    # later, A's message is read after it (seen once: the message came in the same turn)
    b.poll()
    text = token_text("friend")
    packets = a.send(C.private_message(b.user.name, text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert not C.of(packets, C.USER_DM_BLOCKED)

    # unblocking lets a non-friend through again
    c = server.connect()
    b.send(C.toggle_block_dms(0))
    text = token_text("unblocked")
    c.send(C.private_message(b.user.name, text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def test_block_non_friend_dms_login_flag(server):
    a = server.connect()
    user = server.new_user()
    b = server.login(user, block_nonfriend_pm=True)
    packets = a.send(C.private_message(user.name, token_text("blocked"))) + a.drain(rounds=1)
    blocked = C.values(packets, C.USER_DM_BLOCKED)
    assert blocked and blocked[0].target == user.name, packets
    assert b.user_id == user.id


def test_away_message_sent_once_per_sender(server):
    a = server.connect()
    b = server.connect()
    c = server.connect()
    away = "gone fishing " + secrets.token_hex(2)
    b.send(C.set_away_message(away), C.change_action(1, "", "", 0, 0, 0))
    b.drain()
    expected = f"\x01ACTION is away: {away}\x01"

    first = token_text("are you there")
    a.send(C.private_message(b.user.name, first))
    p = C.wait_for(a, lambda p: C.is_message(p, content=expected), description="away auto-reply")
    assert p.value.sender == b.user.name
    assert p.value.sender_id == b.user_id
    C.wait_for(b, lambda p: C.is_message(p, content=first))  # B still receives the PM

    # second PM from A: no second auto-reply
    second = token_text("hello again")
    a.send(C.private_message(b.user.name, second))
    C.wait_for(b, lambda p: C.is_message(p, content=second))
    a.drain()
    replies = [m for m in messages(a.received) if m.content == expected]
    assert len(replies) == 1, f"the away reply is sent once per sender, got {len(replies)}"

    # another sender gets it once too
    c.send(C.private_message(b.user.name, token_text("hi")))
    C.wait_for(c, lambda p: C.is_message(p, content=expected))


# --------------------------------------------------------------------------------------------
# spam protection
# --------------------------------------------------------------------------------------------
def test_spam_protection_silences(server):
    a = server.connect()
    b = server.connect()
    frames = [C.public_message("#osu", f"spam {i} {secrets.token_hex(2)}") for i in range(11)]
    before = int(time.time())
    packets = a.send(*frames) + a.drain(rounds=1)
    got = C.values(packets, C.SILENCE_END)
    if not got:
        got = [C.wait_for_id(a, C.SILENCE_END).value]
    assert 1790 <= got[-1] <= 1800, got
    row = server.db.one("SELECT silence_end, silence_reason FROM users WHERE id=%s", (a.user_id,))
    assert row["silence_end"] >= before + 1790
    assert row["silence_reason"] == "Spamming (auto spam protection)"
    p = C.wait_for(b, lambda p: p.id == C.USER_SILENCED and p.value == a.user_id, description="94 for A")
    assert p.value == a.user_id

    # A is silenced now: further messages are dropped
    text = token_text("after silence")
    a.send(C.public_message("#osu", text))
    sentinel_channel(server.connect(), b)
    assert text not in contents(b.received)


def test_ten_messages_do_not_trigger_spam(server):
    a = server.connect()
    b = server.connect()
    frames = [C.public_message("#osu", f"ok {i} {secrets.token_hex(2)}") for i in range(10)]
    packets = a.send(*frames) + a.drain(rounds=1)
    assert not [v for v in C.values(packets, C.SILENCE_END) if v > 0]
    assert server.db.scalar("SELECT silence_end FROM users WHERE id=%s", (a.user_id,)) <= int(time.time())


# --------------------------------------------------------------------------------------------
# the bot
# --------------------------------------------------------------------------------------------
def test_pm_to_bot_accepted(server):
    a = server.connect()
    bot = server.bot_name()
    packets = a.send(C.private_message(bot, "hello bot")) + a.drain(rounds=1)
    assert not C.of(packets, C.USER_DM_BLOCKED)
    assert not C.of(packets, C.TARGET_IS_SILENCED)
    assert not C.of(packets, C.RESTART)
    pres = [p for p in C.values(a.send(C.presence_request([C.BOT_ID])), C.USER_PRESENCE) if p.user_id == C.BOT_ID]
    assert pres and pres[0].username == bot


def test_chat_again_after_the_spam_silence_ends(start_server):
    srv = start_server({"PEP_CHAT_SPAM_LIMIT": "3", "PEP_CHAT_SPAM_SILENCE": "2"})
    a, b = srv.connect(), srv.connect()
    packets = a.send(*[C.public_message("#osu", token_text(f"spam {i}")) for i in range(4)]) + a.drain(rounds=1)
    got = [v for v in C.values(packets, C.SILENCE_END) if v > 0]
    if not got:
        got = [C.wait_for(a, lambda p: p.id == C.SILENCE_END and p.value > 0, description="92 > 0").value]
    assert 1 <= got[-1] <= 2, got
    end = srv.db.scalar("SELECT silence_end FROM users WHERE id=%s", (a.user_id,))
    assert end >= int(time.time()) + 1
    muted = token_text("muted")
    a.send(C.public_message("#osu", muted))
    sentinel_channel(srv.connect(), b)
    assert muted not in contents(b.received)
    while time.time() <= end + 0.05:  # the silence ends at a whole second
        time.sleep(0.05)
    text = token_text("back")
    a.send(C.public_message("#osu", text))
    C.wait_for(b, lambda p: C.is_message(p, content=text), description="a message after the silence")


def test_bot_messages_are_exempt_from_the_spam_limit(start_server):
    srv = start_server({"PEP_CHAT_SPAM_LIMIT": "3"})
    b = srv.connect()
    texts = [token_text(f"announcement {i}") for i in range(8)]
    for t in texts:
        srv.redis.publish("peppy:bot_msg", json.dumps({"to": "#osu", "message": t}))
    C.wait_for(b, lambda p: C.is_message(p, content=texts[-1]), description="the last announcement")
    assert [t for t in texts if t in contents(b.received)] == texts
    assert srv.db.scalar("SELECT silence_end FROM users WHERE id=999") <= int(time.time())
    assert not [p for p in b.received if p.id == C.USER_SILENCED and p.value == C.BOT_ID]
