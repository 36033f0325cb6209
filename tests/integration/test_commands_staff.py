"""Staff commands through real clients: alerts, moderated channels, kicks, silences, bans and
restrictions (MySQL rows and ``peppy:ban`` on Redis), ``!system``, ``!switchserver``, ``!rtx``.

Specs: docs/rules.md §8.3, §8.6 (commands and privileges), §7.3 (kick, ban, restricted), §7.5
(restart), §5.6 (maintenance); docs/schema.md §2.3–2.4. Commands that disconnect everyone or change
the server's state run on a server of their own (``start_server``).
"""

from __future__ import annotations

import secrets
import time

import pytest

from tests import client as C
from tests.integration.test_commands import (KAWATA_FULL_PERMS, ask, assert_no_reply, connect, more_bot_lines,
                                             say, wait_bot)

SEND_ALERTS, CHAT_MOD, KICK, MANAGE_SERVERS, MANAGE_SETTINGS = 131072, 262144, 524288, 512, 1024
SILENCE, BAN, MANAGE_USERS = 64, 32, 16


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def got_notification(client, text: str, timeout: float = 5.0) -> str:
    return C.wait_for(client, lambda p: p.id == C.NOTIFICATION and text in p.value, timeout=timeout,
                      description=f"notification {text!r}").value


def not_heard(speaker, channel: str, control, watcher) -> None:
    """A line of ``speaker`` in ``channel`` never reaches ``watcher``: a later line of
    ``control`` there does, and the first is not in the watcher's inbox by then."""
    muted = f"muted {secrets.token_hex(3)}"
    say(speaker, channel, muted)
    mark = f"control line {secrets.token_hex(3)}"
    say(control, channel, mark)
    C.wait_for(watcher, lambda p: C.is_message(p, content=mark))
    assert not [p for p in watcher.inbox if p.id == C.SEND_MESSAGE and p.value.content == muted]


def refused(login) -> bool:
    """A login that did not give a session (a negative login reply, or only a notice + restart)."""
    return login.user_id is None or login.user_id < 0


class BanWatcher:
    """Subscribes to the server's (prefixed) ``peppy:ban`` channel."""

    def __init__(self, server) -> None:
        self.pubsub = server.redis.raw.pubsub()
        self.pubsub.subscribe(server.redis.key("peppy:ban"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.2)
            if msg and msg["type"] == "subscribe":
                break

    def wait(self, user_id: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pubsub.get_message(timeout=0.2)
            if msg and msg["type"] == "message" and str(msg["data"]) == str(user_id):
                return
        raise AssertionError(f"no peppy:ban message for {user_id}")

    def close(self) -> None:
        self.pubsub.close()


# ------------------------------------------------------------------------------------ alerts
def test_alert(server, bot):
    staff = connect(server, 3 | SEND_ALERTS)
    b = server.connect()
    b.drain(rounds=1)
    text = f"Server news {secrets.token_hex(3)}"
    assert_no_reply(staff, bot, f"!alert {text}")  # the alert itself is the answer
    assert text in C.values(staff.received, C.NOTIFICATION)
    assert got_notification(b, text) == text


def test_alertuser(server, bot):
    staff = connect(server, 3 | SEND_ALERTS)
    target = server.connect()
    other = server.connect()
    other.drain(rounds=1)
    text = f"Just for you {secrets.token_hex(3)}"
    staff.send(C.private_message(bot, f"!alertuser {target.user.name} {text}"))
    assert got_notification(target, text) == text
    assert ask(staff, bot, "!alertuser nobody_here_at_all hi") == "User offline."
    assert text not in C.values(other.drain(rounds=1), C.NOTIFICATION)


def test_announce(server, bot):
    staff = connect(server, 3 | SEND_ALERTS)
    b = server.connect()
    text = f"Big announcement {secrets.token_hex(3)}"
    assert ask(staff, bot, f"!announce {text}") == "Announcement successfully sent."
    assert wait_bot(b, bot, target="#announce") == text


def test_moderated(server, bot):
    admin = connect(server, KAWATA_FULL_PERMS)
    a = server.connect()
    b = server.connect()
    for c in (admin, a, b):
        c.send(C.channel_join("#english"))
        c.drain(rounds=1)
    try:
        say(admin, "#english", "!moderated")
        assert wait_bot(b, bot, target="#english") == "This channel is now in moderated mode!"
        not_heard(a, "#english", admin, b)
    finally:
        say(admin, "#english", "!moderated off")
    assert wait_bot(b, bot, target="#english") == "This channel is no longer in moderated mode!"
    free = f"free again {secrets.token_hex(3)}"
    say(a, "#english", free)
    C.wait_for(b, lambda p: C.is_message(p, content=free))
    # a user without ADMIN_CHAT_MOD gets no answer
    assert_no_reply(a, bot, "!moderated", channel="#english")


# ------------------------------------------------------------------------------------ kicks
def test_kick(server, bot):
    staff = connect(server, 3 | KICK)
    target = server.connect()
    watcher = server.connect()
    watcher.drain(rounds=1)
    assert ask(staff, bot, f"!kick {target.user.name}") == f"{target.user.name} has been kicked from the server."
    packets = target.drain(rounds=1)
    assert "You have been kicked from the server. Please login again." in C.values(packets, C.NOTIFICATION)
    assert -1 in C.values(packets, C.LOGIN_REPLY)
    C.wait_for(watcher, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == target.user_id)
    assert ask(staff, bot, f"!kick {target.user.name}") == f"{target.user.name} is not online"
    assert ask(staff, bot, f"!kick {bot}") == "Nope."
    assert ask(staff, bot, "!kick") == "Wrong syntax: !kick <user...>"


def test_kickall(server, start_server, bot):
    srv = start_server()
    staff = connect(server, 3 | MANAGE_SERVERS, on=srv)
    admin = connect(server, KAWATA_FULL_PERMS, on=srv)
    players = [connect(server, on=srv) for _ in range(2)]
    assert ask(staff, bot, "!kickall") == "Whoops! Who needs players anyways?"
    for p in players:
        assert -1 in C.values(p.drain(rounds=1), C.LOGIN_REPLY)
    assert -1 not in C.values(admin.drain(rounds=1), C.LOGIN_REPLY)
    assert "rolls" in ask(staff, bot, "!roll"), "the issuer is not kicked"
    assert "rolls" in ask(admin, bot, "!roll"), "admins are not kicked"


def test_kickall_reply_on_ripple(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple"})
    staff = connect(server, 3 | MANAGE_SERVERS, on=srv)
    player = connect(server, on=srv)
    assert ask(staff, bot, "!kickall") == "Whoops! Rip everyone."
    assert -1 in C.values(player.drain(rounds=1), C.LOGIN_REPLY)


# ------------------------------------------------------------------------------------ silences
def test_silence_and_removesilence(server, bot):
    staff = connect(server, 3 | SILENCE)
    target = server.connect()
    watcher = server.connect()
    offline = server.new_user()
    watcher.drain(rounds=1)
    name = target.user.name
    assert ask(staff, bot, f"!silence {name} 10 m Spamming a lot") == f"{name} has been silenced for: Spamming a lot"
    row = server.db.one("SELECT silence_end, silence_reason FROM users WHERE id=%s", (target.user_id,))
    assert abs(int(row["silence_end"]) - (time.time() + 600)) < 30 and row["silence_reason"] == "Spamming a lot"
    left = C.wait_for(target, lambda p: p.id == C.SILENCE_END and p.value > 0).value
    assert 560 <= left <= 600
    C.wait_for(watcher, lambda p: p.id == C.USER_SILENCED and p.value == target.user_id)
    # the silenced user can no longer talk
    not_heard(target, "#osu", staff, watcher)
    # errors
    assert ask(staff, bot, f"!silence {name} ten m x") == "The amount must be a number."
    assert ask(staff, bot, f"!silence {name} 10 w x") == "Invalid time format (s/m/h/d)."
    assert ask(staff, bot, f"!silence {name} 31 d x") == "Invalid silence time. Max silence time is 1 month."
    assert ask(staff, bot, "!silence nobody_like_this 10 m x") == "nobody_like_this: user not found"
    # offline users can be silenced too
    assert ask(staff, bot, f"!silence {offline.name} 2 h away") == f"{offline.name} has been silenced for: away"
    end = server.db.scalar("SELECT silence_end FROM users WHERE id=%s", (offline.id,))
    assert abs(int(end) - (time.time() + 7200)) < 30
    # lift it
    target.drain(rounds=1)
    assert ask(staff, bot, f"!removesilence {name}") == f"{name}'s silence reset"
    assert server.db.scalar("SELECT silence_end FROM users WHERE id=%s", (target.user_id,)) <= time.time() + 1
    C.wait_for(target, lambda p: p.id == C.SILENCE_END and p.value == 0)
    back = f"back {secrets.token_hex(3)}"
    say(target, "#osu", back)
    C.wait_for(watcher, lambda p: C.is_message(p, content=back))


def test_silence_admin_log_on_ripple(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple"})
    staff = connect(server, 3 | SILENCE, on=srv)
    target = server.new_user()
    assert ask(staff, bot, f"!silence {target.name} 30 s rude words") == \
        f"{target.name} has been silenced for the following reason: rude words"
    row = server.db.one("SELECT * FROM rap_logs WHERE userid=%s ORDER BY id DESC LIMIT 1", (staff.user_id,))
    assert row is not None
    assert row["text"] == f'has silenced {target.name} for 30 seconds for the following reason: "rude words"'
    assert row["through"] == bot


# ------------------------------------------------------------------------------------ bans
def test_ban_and_unban(server, bot):
    staff = connect(server, 3 | BAN)
    target = server.connect()
    watch = BanWatcher(server)
    try:
        assert ask(staff, bot, f"!ban {target.user.name}") == f"RIP {target.user.name}. You will not be missed."
        assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,)) & 3 == 0
        watch.wait(target.user_id)
        C.wait_for(target, lambda p: p.id == C.LOGIN_REPLY and p.value == -3)
        assert ask(staff, bot, f"!unban {target.user.name}") == f"Welcome back {target.user.name}!"
        assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,)) & 3 == 3
        watch.wait(target.user_id)
    finally:
        watch.close()
    assert ask(staff, bot, f"!ban {bot}") == "NO!"
    assert ask(staff, bot, f"!ban {staff.user.name}") == "NO!"
    assert ask(staff, bot, "!ban nobody_like_this") == "nobody_like_this: user not found"
    assert server.db.scalar("SELECT privileges FROM users WHERE id=999") & 3 == 3


def test_restrict_and_unrestrict(server, bot):
    staff = connect(server, 3 | BAN)
    target = server.connect()
    watch = BanWatcher(server)
    try:
        reply = ask(staff, bot, f"!restrict {target.user.name}")
        assert reply == f"Bye bye {target.user.name}. See you later, maybe."
        privileges = server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,))
        assert privileges & 1 == 0 and privileges & 2 == 2
        watch.wait(target.user_id)
        C.wait_for_id(target, C.ACCOUNT_RESTRICTED)
        wait_bot(target, bot, contains="restricted")
        assert ask(staff, bot, f"!unrestrict {target.user.name}") == f"Welcome back {target.user.name}!"
        assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,)) & 3 == 3
        watch.wait(target.user_id)
        wait_bot(target, bot, contains="unrestricted")
    finally:
        watch.close()


# ------------------------------------------------------------------------------------ clients
def test_switchserver_and_rtx(server, bot):
    staff = connect(server, 3 | MANAGE_SERVERS | MANAGE_USERS)
    target = server.connect()
    name = target.user.name
    assert ask(staff, bot, f"!switchserver {name} c.example.org:13381") == f"{name} has been connected to c.example.org:13381"
    assert C.wait_for_id(target, C.SWITCH_TOURNAMENT_SERVER).value == "c.example.org:13381"
    assert ask(staff, bot, f"!switchserver {name} not/an?address") == "Invalid server IP"
    assert ask(staff, bot, "!switchserver nobody_x 127.0.0.1") == "nobody_x is not online"
    assert ask(staff, bot, f"!rtx {name} Look behind you") == ":ok_hand:"
    assert C.wait_for_id(target, C.RTX).value == "Look behind you"
    assert ask(staff, bot, "!rtx nobody_x boo") == "nobody_x is not online"
    plain = server.connect()
    assert_no_reply(plain, bot, f"!rtx {name} boo")


# ------------------------------------------------------------------------------------ !system
def test_system_commands(server, start_server, bot):
    srv = start_server()
    admin = connect(server, KAWATA_FULL_PERMS, on=srv)
    settings_only = connect(server, 3 | MANAGE_SETTINGS, on=srv)
    player = connect(server, on=srv)
    # status (several lines) and the list of subcommands
    admin.drain(rounds=1)
    admin.send(C.private_message(bot, "!system status"))
    first = wait_bot(admin, bot)
    lines = [first] + more_bot_lines(admin, bot)
    assert any(line.startswith("> Online users: ") for line in lines), lines
    assert any(line.startswith("> Uptime: ") for line in lines)
    assert ask(admin, bot, "!system foo").startswith("Wrong syntax: !system <restart|shutdown|reload")
    # reload: MANAGE_SETTINGS is enough; restart is not allowed with it
    assert ask(settings_only, bot, "!system reload") == "Bancho settings reloaded!"
    assert_no_reply(settings_only, bot, "!system restart")
    assert_no_reply(player, bot, "!system maintenance on")
    try:
        assert ask(admin, bot, "!system maintenance on") == "The server is now in maintenance mode!"
        assert server.db.scalar("SELECT value_int FROM bancho_settings WHERE name='bancho_maintenance'") == 1
        packets = player.drain(rounds=1)
        assert -5 in C.values(packets, C.LOGIN_REPLY)
        late = server.new_user()
        assert refused(srv.client().login(late.name, late.password)), "non-admins cannot log in during maintenance"
        assert ask(admin, bot, "!system maintenance maybe") == "Wrong syntax: !system maintenance [on|off]"
    finally:
        server.db.execute("UPDATE bancho_settings SET value_int=0 WHERE name='bancho_maintenance'")
    assert ask(admin, bot, "!system maintenance off") == "The server is no longer in maintenance mode!"
    assert server.db.scalar("SELECT value_int FROM bancho_settings WHERE name='bancho_maintenance'") == 0
    other = connect(server, on=srv)
    other.drain(rounds=1)
    # restart: the notice goes to everyone, logins are refused from now on
    notice = "We are performing some maintenance. Bancho will restart in 5 seconds. Thank you for your patience."
    assert ask(admin, bot, "!system restart") == notice
    assert got_notification(other, notice) == notice
    late = server.new_user()
    res = srv.client().login(late.name, late.password)
    assert res.user_id is None and res.values(C.RESTART), "logins get a restart packet while restarting"


# ------------------------------------------------------------------------------------ privileges
ALL_STAFF = MANAGE_USERS | BAN | SILENCE | MANAGE_SERVERS | MANAGE_SETTINGS | SEND_ALERTS | CHAT_MOD | KICK | 2097152
# (command, the privilege bits that allow it) as docs/rules.md §8.3/§8.6 give them
GUARDED = [
    ("!alert wrong privileges", SEND_ALERTS),
    ("!alertuser {t} wrong privileges", SEND_ALERTS),
    ("!announce wrong privileges", SEND_ALERTS),
    ("!kick {t}", KICK),
    ("!kickall", MANAGE_SERVERS),
    ("!silence {t} 1 h wrong privileges", SILENCE),
    ("!removesilence {t}", SILENCE),
    ("!ban {t}", BAN),
    ("!unban {t}", BAN),
    ("!restrict {t}", BAN),
    ("!unrestrict {t}", BAN),
    ("!system status", MANAGE_SERVERS),
    ("!system maintenance on", MANAGE_SERVERS),
    ("!system restart", MANAGE_SERVERS),
    ("!system shutdown", MANAGE_SERVERS),
    ("!system reload", MANAGE_SERVERS | MANAGE_SETTINGS),
    ("!switchserver {t} evil.example.org", MANAGE_SERVERS),
    ("!rtx {t} wrong privileges", MANAGE_USERS),
    ("!mp make Wrong privileges", 2097152),
    ("!moderated", CHAT_MOD),
    # the commands of the other stacks (docs/commands.md, "stacks" column)
    ("!map rank set", 256),
    ("!requests", 256),
    ("!freeze {t}", MANAGE_USERS),
    ("!unfreeze {t}", MANAGE_USERS),
    ("!bot reconnect", MANAGE_SERVERS),
    ("!fokabot reconnect", MANAGE_SERVERS),
    ("!bot reload", MANAGE_SERVERS),
    ("!reloadconfig", MANAGE_SERVERS),
    ("!ir", MANAGE_SERVERS),
]


def test_every_staff_command_needs_its_privilege(server, start_server, bot):
    """Each command, sent by a user holding every staff bit but the ones it needs, gets no reply
    and changes nothing; the same users then get answers for bad arguments."""
    srv = start_server({"PEP_CHAT_SPAM_LIMIT": "1000"})
    target = connect(server, on=srv)
    target.send(C.lobby_join())
    target.drain(rounds=1)
    # one account, logged in again with other privileges for each mask (a new login replaces
    # the previous session)
    member = server.new_user()
    current: tuple[int, C.BanchoClient] | None = None
    for text, mask in GUARDED:
        if current is None or current[0] != mask:
            server.set_privileges(member.id, 3 | (ALL_STAFF & ~mask))
            current = (mask, srv.login(member))
        channel = "#osu" if text == "!moderated" else None
        assert_no_reply(current[1], bot, text.format(t=target.user.name), channel=channel)
    packets = target.drain(rounds=1)
    assert not C.values(packets, C.NOTIFICATION), packets
    assert not [p for p in packets if p.id in (C.LOGIN_REPLY, C.SILENCE_END, C.RTX, C.SWITCH_TOURNAMENT_SERVER,
                                               C.MATCH_UPDATE, C.MATCH_NEW, C.RESTART)], packets
    assert not [p for p in packets if p.id == C.SEND_MESSAGE and p.value.sender == bot], packets
    row = server.db.one("SELECT privileges, silence_end FROM users WHERE id=%s", (target.user_id,))
    assert row["privileges"] == 3 and int(row["silence_end"]) <= time.time()
    assert server.db.scalar("SELECT value_int FROM bancho_settings WHERE name='bancho_maintenance'") == 0
    assert "rolls" in ask(target, bot, "!roll"), "the server still runs and the target is still online"

    # bad arguments, by users who hold the privilege
    staff = connect(server, 3 | ALL_STAFF, on=srv)
    assert ask(staff, bot, "!alert") == "Wrong syntax: !alert <message...>"
    assert ask(staff, bot, "!announce") == "Wrong syntax: !announce <text...>"
    assert ask(staff, bot, "!alertuser") == "Wrong syntax: !alertuser <user> <message...>"
    assert ask(staff, bot, "!removesilence nobody_like_this") == "nobody_like_this: user not found"
    assert ask(staff, bot, "!unban nobody_like_this") == "nobody_like_this: user not found"
    assert ask(staff, bot, "!restrict nobody_like_this") == "nobody_like_this: user not found"
    assert ask(staff, bot, "!unrestrict") == "Wrong syntax: !unrestrict <user...>"
    assert ask(staff, bot, "!switchserver only_one") == "Wrong syntax: !switchserver <user> <address>"
    assert ask(staff, bot, f"!rtx {target.user.name}") == "Wrong syntax: !rtx <user> <message...>"
    assert ask(staff, bot, "!system") == "Wrong syntax: !system <restart|shutdown|reload|maintenance|status>"

    # shutdown with the privilege: the notice, then logins are refused
    notice = "We are performing some maintenance. Bancho will shutdown in 5 seconds. Thank you for your patience."
    assert ask(staff, bot, "!system shutdown") == notice
    assert got_notification(target, notice) == notice
    late = server.new_user()
    assert refused(srv.client().login(late.name, late.password)), "logins are refused during a shutdown"
