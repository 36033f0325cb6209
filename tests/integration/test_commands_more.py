"""More bot commands through real clients: ``!username`` and the small commands of every stack
(docs/commands.md). MySQL rows and Redis keys are read back.
"""

from __future__ import annotations

import secrets
import time

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


# ------------------------------------------------------------------------------------ small commands
MANAGE_SERVERS, KICK = 512, 524288


@pytest.fixture
def roomy(start_server):
    """A server on the same database without the chat spam limit (many commands per client)."""
    return start_server({"PEP_CHAT_SPAM_LIMIT": "1000"})


def test_recent_syntax_mm00(server, roomy, bot):
    c = connect(server, on=roomy)
    assert ask(c, bot, "!recent") == "Please submit a score!"
    assert ask(c, bot, "!syntax !with") == "Syntax: !with <mods>"
    assert ask(c, bot, "!syntax roll") == "Syntax: !roll [max]"
    # a staff command the sender may not use is as unknown as a command that does not exist
    assert ask(c, bot, "!syntax !kickall") == "Unknown command. Type !help to see the commands you can use."
    assert ask(c, bot, "!syntax !nothing") == "Unknown command. Type !help to see the commands you can use."
    assert ask(c, bot, "!syntax") == "Wrong syntax: !syntax <command...>"
    staff = connect(server, 3 | MANAGE_SERVERS, on=roomy)
    assert ask(staff, bot, "!syntax !kickall") == "Syntax: !kickall <No syntax>"
    assert ask(c, bot, "!mm00") in ("meme", "MA MAURO ESISTE?")


def test_mirrors_and_update(server, roomy, bot):
    from tests.integration.test_commands_beatmaps import Subscriber, add_set, np

    c = connect(server, on=roomy)
    no_np = ("You're currently not spectating or playing a match, if you wish to request beatmap mirror "
             "/np it before!")
    assert ask(c, bot, "!chimu") == no_np
    assert ask(c, bot, "!update") == "Please give me a beatmap first with /np command."
    set_id, ids, md5s = add_set(server, 1)
    np(c, bot, ids[0])
    song = f"Artist - Song {set_id} [Diff 0]"
    assert ask(c, bot, "!chimu") == f"Download [https://chimu.moe/en/d/{set_id} {song}] from Chimu"
    assert ask(c, bot, "!beatconnect") == f"Download [https://beatconnect.io/b/{set_id} {song}] from Beatconnect"
    assert ask(c, bot, "!mirror") == (f"Download {song} from [https://beatconnect.io/b/{set_id} Beatconnect], "
                                      f"[https://chimu.moe/en/d/{set_id} Chimu] or [osu://dl/{set_id} osu!direct].")
    sub = Subscriber(roomy, "ussr:refresh_bmap")
    try:
        assert ask(c, bot, "!update").startswith("An update request for that beatmap has been queued.")
        assert sub.messages(1.0) == [md5s[0]]
    finally:
        sub.close()
    np(c, bot, 1)  # not in beatmaps
    assert ask(c, bot, "!chimu") == "Sorry, I'm not able to provide a download link for this map :("
    assert ask(c, bot, "!update") == "Could not find beatmap."


def test_mirror_url_is_configurable(server, start_server, bot):
    from tests.integration.test_commands_beatmaps import add_set, np

    srv = start_server({"PEP_BOT_MIRROR_CHIMU": "https://mirror.example/d/{set}"})
    c = connect(server, on=srv)
    set_id, ids, _ = add_set(server, 1)
    np(c, bot, ids[0])
    assert ask(c, bot, "!chimu") == f"Download [https://mirror.example/d/{set_id} Artist - Song {set_id} [Diff 0]] from Chimu"


def test_reconnect(server, roomy, bot):
    c = connect(server, on=roomy)
    c.send(C.private_message(bot, "!reconnect"))
    wait_login_reply(c, -1)
    player = connect(server, on=roomy)
    target = connect(server, on=roomy)
    assert ask(player, bot, f"!reconnect {target.user.name}") == "You may only reconnect yourself."
    staff = connect(server, 3 | KICK, on=roomy)
    assert ask(staff, bot, "!reconnect nobody_here_at_all") == "nobody_here_at_all is not online"
    assert ask(staff, bot, f"!reconnect {target.user.name}") == f"{target.user.name} has been reconnected."
    wait_login_reply(target, -1)
    assert roomy.client().login(target.user.name, target.user.password).user_id == target.user.id


def test_bot_commands_and_reloadconfig(server, roomy, bot):
    staff = connect(server, 3 | MANAGE_SERVERS, on=roomy)
    assert ask(staff, bot, "!bot reconnect").startswith(f"{bot} is already connected to ")
    assert ask(staff, bot, "!fokabot reconnect") == f"{bot} is already connected to Bancho"
    assert "!system restart" in ask(staff, bot, "!bot reload")
    # !reloadconfig reads bancho_settings and bancho_channels again: a new channel is announced
    name = f"#rc{secrets.token_hex(3)}"
    server.db.execute("INSERT INTO bancho_channels (name, description, public_read, public_write, status) "
                      "VALUES (%s, 'reloadconfig test', 1, 1, 1)", (name,))
    try:
        assert ask(staff, bot, "!reloadconfig") == \
            "Configuration reloaded successfully (config.ini changes need a restart)."
        C.wait_for(staff, lambda p: p.id == C.CHANNEL_INFO and p.value.name == name, timeout=5,
                   description="the new channel")
    finally:
        server.db.execute("DELETE FROM bancho_channels WHERE name=%s", (name,))
    # none of them for a player
    p = connect(server, on=roomy)
    for text in ("!bot reconnect", "!bot reload", "!fokabot reconnect", "!reloadconfig", "!ir"):
        p.send(C.private_message(bot, text))
    assert not sentinel(p, bot)


def test_ir(server, start_server, bot):
    srv = start_server()
    admin = connect(server, 3 | MANAGE_SERVERS, on=srv)
    other = connect(server, on=srv)
    admin.send(C.private_message(bot, "!ir"))
    C.wait_for(other, lambda p: p.id == C.NOTIFICATION and p.value == "We are restarting Bancho. Be right back!",
               timeout=5, description="!ir notice")
    C.wait_for(other, lambda p: p.id == C.RESTART, timeout=5, description="restart packet")
    assert not [p for p in admin.drain(rounds=1) if p.id == C.SEND_MESSAGE and p.value.sender == bot]


# ------------------------------------------------------------------------------------ RealistikOsu
MANAGE_USERS = 16


def test_freeze_and_unfreeze(server, roomy, bot):
    staff = connect(server, 3 | MANAGE_USERS, on=roomy)
    target = connect(server, on=roomy)
    name = target.user.name
    assert ask(staff, bot, "!freeze") == "Wrong syntax: !freeze <user...>"
    assert ask(staff, bot, "!freeze nobody_here_at_all") == "nobody_here_at_all: user not found"
    assert ask(staff, bot, "!unfreeze " + name) == "That user is not frozen."
    assert ask(staff, bot, "!freeze " + name) == "User has been frozen!"
    row = server.db.one("SELECT frozen, freezedate FROM users WHERE id=%s", (target.user.id,))
    assert row["frozen"] == 1 and abs(row["freezedate"] - (time.time() + 2 * 86400)) < 120
    C.wait_for(target, lambda p: p.id == C.NOTIFICATION and p.value.startswith("You have been frozen!"), timeout=5)
    assert ask(staff, bot, "!freeze " + name) == "That user is already frozen."
    assert ask(staff, bot, "!unfreeze " + name) == "User has been unfrozen!"
    row = server.db.one("SELECT frozen, freezedate, firstloginafterfrozen FROM users WHERE id=%s", (target.user.id,))
    assert (row["frozen"], row["freezedate"], row["firstloginafterfrozen"]) == (0, 0, 1)
    C.wait_for(target, lambda p: p.id == C.NOTIFICATION and p.value.startswith("Your account has been unfrozen!"),
               timeout=5)
    # players get no reply and change nothing
    target.send(C.private_message(bot, f"!freeze {staff.user.name}"))
    assert not sentinel(target, bot)
    assert server.db.scalar("SELECT frozen FROM users WHERE id=%s", (staff.user.id,)) == 0


def test_status_on_realistikosu(server, start_server, bot):
    from common import schema

    server.db.execute(schema.table_ddl("user_statuses"))  # the test database is a Kawata one
    srv = start_server({"PEP_STACK_FLAVOUR": "realistikosu", "PEP_CHAT_SPAM_LIMIT": "1000"})
    c = connect(server, on=srv)
    assert ask(c, bot, "!status").startswith("You may not toggle your status if you do not have one!")
    assert ask(c, bot, "!status Farming pp") == "Your status has been set to: Farming pp"
    row = server.db.one("SELECT status, enabled FROM user_statuses WHERE user_id=%s", (c.user.id,))
    assert (row["status"], row["enabled"]) == ("Farming pp", 1)
    assert ask(c, bot, "!status") == "Your status has been toggled off!"
    assert server.db.scalar("SELECT enabled FROM user_statuses WHERE user_id=%s", (c.user.id,)) == 0
    assert ask(c, bot, "!status") == "Your status has been toggled on!"
    assert ask(c, bot, "!status " + "x" * 257) == "This status is too long! (Max is 256, yours was 257)"
    assert server.db.scalar("SELECT status FROM user_statuses WHERE user_id=%s", (c.user.id,)) == "Farming pp"


def test_status_elsewhere(server, bot):
    c = connect(server)
    assert ask(c, bot, "!status hi") == "Statuses are not kept on this server."


# ------------------------------------------------------------------------------------ bancho.py
def test_block_and_unblock(server, roomy, bot):
    a = connect(server, on=roomy)
    b = connect(server, on=roomy)
    assert ask(a, bot, "!block nobody_here_at_all") == "Could not find user."
    assert ask(a, bot, f"!block {a.user.name}") == "What?"
    assert ask(a, bot, f"!block {b.user.name}") == f"Added {b.user.name} to blocked users."
    assert ask(a, bot, f"!block {b.user.name}") == f"{b.user.name} already blocked!"
    assert server.db.scalar("SELECT COUNT(*) FROM user_blocks WHERE user_id=%s AND blocked_id=%s",
                            (a.user.id, b.user.id)) == 1
    # b's PMs to a are refused (100 "DMs blocked"), a gets nothing
    b.drain(rounds=1)
    reply = b.send(C.private_message(a.user.name, "hello?"))
    assert any(a.user.name in str(v) for v in C.values(reply + C.collect(b, 0.3), C.USER_DM_BLOCKED))
    assert not [p for p in a.drain(rounds=1) if p.id == C.SEND_MESSAGE and p.value.sender == b.user.name]
    # the block survives a new login (read from MySQL)
    a2 = roomy.login(a.user)
    reply = b.send(C.private_message(a.user.name, "still there?"))
    assert any(a.user.name in str(v) for v in C.values(reply + C.collect(b, 0.5), C.USER_DM_BLOCKED))
    assert not [p for p in a2.drain(rounds=1) if p.id == C.SEND_MESSAGE and p.value.sender == b.user.name]
    assert ask(a2, bot, f"!unblock {b.user.name}") == f"Removed {b.user.name} from blocked users."
    assert ask(a2, bot, f"!unblock {b.user.name}") == f"{b.user.name} not blocked!"
    assert server.db.scalar("SELECT COUNT(*) FROM user_blocks WHERE user_id=%s", (a2.user.id,)) == 0
    b.send(C.private_message(a.user.name, "friends again"))
    C.wait_for(a2, lambda p: p.id == C.SEND_MESSAGE and p.value.content == "friends again", timeout=5)


def test_bancho_py_aliases(server, roomy, bot):
    from tests.integration.test_commands_beatmaps import add_set, np

    c = connect(server, 3 | DONOR, on=roomy)
    set_id, ids, _ = add_set(server, 1)
    np(c, bot, ids[0])
    assert ask(c, bot, "!maplink").startswith(f"Download Artist - Song {set_id} [Diff 0] from [https://beatconnect.io/b/{set_id} ")
    assert ask(c, bot, "!changename a b_c").startswith("You can't use that username (username with both a space")
    new = f"Cn {server.unique_name('r')[-8:].replace('_', 'x')}"
    c.send(C.private_message(bot, f"!changename {new}"))
    wait_notification(c, RENAMED.format(new))
    assert server.db.scalar("SELECT username FROM users WHERE id=%s", (c.user.id,)) == new


def test_ripple_bloodcat_and_delta(server, roomy, bot):
    from tests.integration.test_commands_beatmaps import add_set, np

    c = connect(server, on=roomy)
    assert ask(c, bot, "!delta") == "Delta is disabled."
    assert ask(c, bot, "!bloodcat").startswith("You're currently not spectating or playing a match")
    set_id, ids, _ = add_set(server, 1)
    np(c, bot, ids[0])
    assert ask(c, bot, "!bloodcat").endswith(f"[https://chimu.moe/en/d/{set_id} Chimu] or [osu://dl/{set_id} osu!direct].")


def test_mirror_in_a_spectator_channel_gives_the_hosts_map(server, roomy, bot):
    from tests.integration.test_commands_beatmaps import add_set
    from tests.integration.test_commands import wait_bot

    set_id, ids, md5s = add_set(server, 1)
    host = connect(server, on=roomy)
    viewer = connect(server, on=roomy)
    host.send(C.change_action(2, "Artist - Song", md5s[0], beatmap_id=ids[0]))
    viewer.send(C.start_spectating(host.user.id))
    C.wait_for(viewer, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#spectator", timeout=5)
    viewer.send(C.public_message("#spectator", "!chimu"))
    text = wait_bot(viewer, bot, target="#spectator")
    assert text == f"Download [https://chimu.moe/en/d/{set_id} Artist - Song {set_id} [Diff 0]] from Chimu"


def test_mirror_in_a_match_channel_gives_the_match_map(server, roomy, bot):
    from tests.integration.test_commands_beatmaps import add_set
    from tests.integration.test_commands_mp import make_tourney, mp_ask

    set_id, ids, _ = add_set(server, 1)
    ref, match_id, _ = make_tourney(server, roomy, bot)
    assert mp_ask(ref, bot, f"!mp map {ids[0]}") == "Match map has been updated"
    assert mp_ask(ref, bot, "!beatconnect") == \
        f"Download [https://beatconnect.io/b/{set_id} Artist - Song {set_id} [Diff 0]] from Beatconnect"
