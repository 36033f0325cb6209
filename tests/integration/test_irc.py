"""The IRC gateway (docs/irc.md) against the real server, with the ``irc`` library from PyPI
next to the game client of the test suite: registration, chat both ways, presence, bad input."""

from __future__ import annotations

import secrets
import time

import pytest
import requests

from tests import client as C
from tests.waiting import past_logout_grace, wait_until
from tests.irc_client import IrcUser, RawIrc


def text(stem: str = "msg") -> str:
    return f"{stem} {secrets.token_hex(4)}"


@pytest.fixture
def irc_users(server):
    made: list[IrcUser] = []

    def factory(user=None, server=server, **kw) -> IrcUser:
        user = user or server.new_user()
        u = IrcUser(server, user.name, **kw)
        u.user = user
        made.append(u)
        return u

    yield factory
    for u in made:
        u.close()


def raw_register(server, user, caps: bool = False) -> RawIrc:
    token = server.irc_token(user.name)
    raw = RawIrc(server.irc_port)
    raw.send(f"PASS {token}\r\nNICK {user.name}\r\nUSER {user.name} 0 * :{user.name}\r\n".encode())
    raw.lines_until(lambda line: " 376 " in line)
    return raw


# -------------------------------------------------------------------------------- registration
def test_registration_replies_and_presence(server, irc_users):
    watcher = server.connect()
    u = irc_users()
    u.welcome()
    kinds = [e.type for e in u.events]
    for kind in ("welcome", "yourhost", "created", "myinfo", "featurelist", "luserclient", "motdstart", "endofmotd"):
        assert kind in kinds, kind
    isupport = " ".join(" ".join(e.args) for e in u.events if e.type == "featurelist")
    for key in ("CHANTYPES=#", "PREFIX=", "NICKLEN=", "CHANNELLEN=", "CASEMAPPING="):
        assert key in isupport
    # the game sees an online user: presence, ripple:online_users, the API
    C.wait_for(watcher, lambda p: p.id == C.USER_PRESENCE and p.value.user_id == u.user.id,
               description="presence of the IRC user")
    r = requests.get(server.url + "api/v1/isOnline", params={"id": u.user.id}, timeout=5)
    assert r.json()["result"] is True
    # PING/PONG both ways
    u.conn.send_raw("PING :hello123")
    u.wait(lambda e: e.type == "pong" and "hello123" in e.args)
    # a clean QUIT: the game sees the logout
    u.conn.quit("bye")
    C.wait_for(watcher, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == u.user.id,
               description="logout of the IRC user")


def test_wrong_token_nick_banned_and_failure_limit(server, start_server, irc_users):
    srv = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "3"})
    # a banned account: 465 (not a failed login)
    banned = srv.new_user()
    tok = srv.irc_token(banned.name)
    srv.set_privileges(banned.id, 0)
    b = irc_users(banned, token=tok, server=srv)
    b.wait_type("yourebannedcreep")
    # spaces as underscores, any case
    spaced = srv.new_user(name=f"Sp Ace{secrets.token_hex(2)}")
    s = irc_users(spaced, nick=spaced.name.replace(" ", "_").upper(), server=srv)
    s.welcome()
    # wrong token, someone else's token: 464, counted against the address
    user = srv.new_user()
    token = srv.irc_token(user.name)
    irc_users(user, token="0" * 32, server=srv).wait_type("passwdmismatch")
    irc_users(srv.new_user(), token=token, server=srv).wait_type("passwdmismatch")
    irc_users(user, token="1" * 32, server=srv).wait_type("passwdmismatch")
    # past [limits] login_failures_ip even the right token is refused before any MySQL work
    blocked = irc_users(user, token=token, server=srv)
    ev = blocked.wait_type("passwdmismatch")
    assert "too many" in ev.text()


def test_irc_token_table_holds_md5(server):
    user = server.new_user()
    token = server.irc_token(user.name)
    import hashlib

    stored = server.db.scalar("SELECT token FROM irc_tokens WHERE userid=%s", (user.id,))
    assert stored == hashlib.md5(token.encode()).hexdigest()


def test_cap_negotiation(server):
    user = server.new_user()
    token = server.irc_token(user.name)
    raw = RawIrc(server.irc_port)
    try:
        raw.send(b"CAP LS 302\r\n")
        lines = raw.lines_until(lambda line: " CAP " in line and " LS " in line)
        assert "server-time" in lines[-1] and "multi-prefix" in lines[-1]
        raw.send(f"PASS {token}\r\nNICK {user.name}\r\nUSER x 0 * :x\r\nCAP REQ :server-time multi-prefix\r\n".encode())
        raw.lines_until(lambda line: " ACK " in line)
        raw.send(b"CAP REQ :bogus-cap\r\n")
        raw.lines_until(lambda line: " NAK " in line)
        raw.send(b"CAP END\r\n")
        raw.lines_until(lambda line: " 001 " in line)
        raw.lines_until(lambda line: " 376 " in line)
        raw.send(b"JOIN #osu\r\n")
        raw.lines_until(lambda line: " 366 " in line)
        game = server.connect()
        game.send(C.channel_join("#osu"))
        msg = text("tagged")
        game.send(C.public_message("#osu", msg))
        line = raw.lines_until(lambda line: msg in line)[-1]
        assert line.startswith("@time=") and " PRIVMSG #osu :" + msg in line
    finally:
        raw.close()


# -------------------------------------------------------------------------------- chat
def test_channel_chat_both_ways_joins_parts_quits(server, irc_users):
    u = irc_users()
    u.welcome()
    u.join("#osu")
    names = " ".join(e.args[-1] for e in u.events if e.type == "namreply")
    assert u.nick in names.split() or "@" + u.nick in names.split()
    assert "@" + server.bot_name().replace(" ", "_") in names.split()
    assert any(e.type == "currenttopic" for e in u.events)  # 332

    game = server.connect()
    game.send(C.channel_join("#osu"))
    u.wait(lambda e: e.type == "join" and e.source == game.user.name and e.target == "#osu")
    said = text("from game")
    game.send(C.public_message("#osu", said))
    ev = u.wait_type("pubmsg", lambda e: e.text() == said)
    assert ev.source == game.user.name and ev.target == "#osu"

    said = text("from irc")
    u.privmsg("#osu", said)
    p = C.wait_for(game, lambda p: C.is_message(p, content=said), description="IRC message in #osu")
    assert p.value.sender == u.user.name and p.value.target == "#osu" and p.value.sender_id == u.user.id

    game.send(C.channel_part("#osu"))
    u.wait(lambda e: e.type == "part" and e.source == game.user.name)
    game.send(C.channel_join("#osu"))
    u.wait(lambda e: e.type == "join" and e.source == game.user.name)
    past_logout_grace(game)  # a logout right after login is ignored
    game.send(C.logout())
    u.wait(lambda e: e.type == "quit" and e.source == game.user.name)


def test_private_messages_both_ways_and_bot_commands(server, irc_users):
    u = irc_users()
    u.welcome()
    game = server.connect()
    said = text("pm to irc")
    game.send(C.private_message(u.nick, said))
    ev = u.wait_type("privmsg", lambda e: e.text() == said)
    assert ev.source == game.user.name and ev.target == u.nick
    said = text("pm to game")
    u.privmsg(game.user.name, said)
    p = C.wait_for(game, lambda p: C.is_message(p, content=said), description="PM from IRC")
    assert p.value.sender == u.user.name and p.value.target == game.user.name
    # !roll in a channel: the bot answers there, IRC and game alike
    u.join("#osu")
    game.send(C.channel_join("#osu"))
    u.privmsg("#osu", "!roll 50")
    bot = server.bot_name()
    ev = u.wait_type("pubmsg", lambda e: e.source == bot.replace(" ", "_") and "rolls" in e.text())
    C.wait_for(game, lambda p: C.is_message(p, sender=bot, content=ev.text()), description="bot roll in game")
    # a PM to the bot
    u.privmsg(bot.replace(" ", "_"), "!roll")
    u.wait_type("privmsg", lambda e: e.source == bot.replace(" ", "_") and "rolls" in e.text())
    # an offline user: the message is kept for their next login (the same pipeline), the sender
    # is told by PM; at that login (here over IRC) it is delivered
    offline = server.new_user()
    kept = text("kept")
    u.privmsg(offline.name, kept)
    u.wait_type("action", lambda e: e.source == offline.name and "offline" in e.text())
    later = IrcUser(server, offline.name)
    try:
        later.welcome()
        ev = later.wait_type("privmsg", lambda e: kept in e.text())
        assert ev.source == u.nick and ev.text().endswith(kept)
    finally:
        later.close()


def test_chat_rules_apply_to_irc(server, irc_users):
    """Silenced and restricted IRC users are refused by the same pipeline as game users."""
    u = irc_users()
    u.welcome()
    u.join("#osu")
    game = server.connect()
    game.send(C.channel_join("#osu"))
    server.db.execute("UPDATE users SET silence_end=%s WHERE id=%s", (int(time.time()) + 600, u.user.id))
    # a new connection reads the silence from MySQL, replacing the first (one IRC connection per user)
    again = irc_users(u.user)
    again.welcome()
    u.wait(lambda e: e.type in ("error", "disconnect"))
    again.join("#osu")
    again.privmsg("#osu", text("silenced"))
    ev = again.wait_type("cannotsendtochan")
    assert "silenced" in ev.text()
    # a channel nobody may read
    again.conn.join("#nonexistent_" + secrets.token_hex(2))
    again.wait_type("nosuchchannel")
    again.conn.join("#mp_65000")
    again.wait_type("nosuchchannel")


def test_game_and_irc_at_once(server, irc_users):
    user = server.new_user()
    u = irc_users(user)
    u.welcome()
    game = server.login(user)  # the game login does not end the IRC session
    other = server.connect()
    said = text("both")
    other.send(C.private_message(user.name, said))
    C.wait_for(game, lambda p: C.is_message(p, content=said), description="PM on the game client")
    u.wait_type("privmsg", lambda e: e.text() == said)
    u.conn.send_raw("PING :still-here")
    u.wait(lambda e: e.type == "pong")


# -------------------------------------------------------------------------------- bad input
def test_bad_input(server):
    user = server.new_user()
    raw = RawIrc(server.irc_port)
    try:
        raw.send(b"JOIN #osu\r\n")
        raw.lines_until(lambda line: " 451 " in line)
        raw.send(b"FROBNICATE x\r\n")
        raw.lines_until(lambda line: " 421 " in line)
    finally:
        raw.close()
    raw = raw_register(server, user)
    try:
        raw.send(b"PRIVMSG #osu :" + b"x" * 600 + b"\r\n")
        raw.lines_until(lambda line: " 417 " in line)
        raw.send(b"A" * 5000 + b"\r\n")
        raw.lines_until(lambda line: " 417 " in line)
        raw.send(b"WHATEVER\r\n")
        raw.lines_until(lambda line: " 421 " in line)
        raw.send(b"PRIVMSG\r\nPART\r\nMODE\r\nJOIN\r\n\r\n:onlyprefix\r\n@tag=1 :x PING :tagged\r\n")
        raw.lines_until(lambda line: "PONG" in line and "tagged" in line)
        raw.send(b"JOIN #osu\r\n")
        raw.lines_until(lambda line: " 366 " in line)
        game = server.connect()
        game.send(C.channel_join("#osu"))
        raw.send(b"PRIVMSG #osu :caf\xe9 latin1\r\n")  # not UTF-8: read as Latin-1
        C.wait_for(game, lambda p: C.is_message(p, content="caf\u00e9 latin1"), description="latin-1 message")
        raw.send(b"PRIVMSG #osu :\xff\xfe\x00\x01 junk\r\n")
        raw.send(b"PING :alive\r\n")
        raw.lines_until(lambda line: "alive" in line)
        # flood: far past the burst -> Excess Flood, the user leaves the game
        raw.send(b"PING :x\r\n" * 200)
        raw.lines_until(lambda line: "Excess Flood" in line)
        assert raw.closed()
    finally:
        raw.close()
    wait_until(lambda: requests.get(server.url + "api/v1/isOnline", params={"id": user.id}, timeout=5).json()["result"]
               is False, timeout=10, what="the flooder offline")


def test_idle_ping_timeout_and_send_queue(start_server):
    srv = start_server({"PEP_IRC_PING_INTERVAL": "1", "PEP_IRC_PING_TIMEOUT": "1", "PEP_IRC_REGISTER_TIMEOUT": "2"})
    user = srv.new_user()
    before = srv.settled_online_users()
    raw = raw_register(srv, user)
    try:
        assert srv.wait_online_users(before + 1) == before + 1, "the IRC user is in ripple:online_users"
        raw.lines_until(lambda line: line.startswith("PING"), timeout=5)
        raw.lines_until(lambda line: "Ping timeout" in line, timeout=5)
        assert raw.closed()
        assert srv.wait_online_users(before) == before
    finally:
        raw.close()
    idle = RawIrc(srv.irc_port)
    try:
        idle.lines_until(lambda line: "Registration timed out" in line, timeout=6)
    finally:
        idle.close()


def test_queries(server, irc_users):
    u = irc_users()
    u.welcome()
    u.join("#osu")
    game = server.connect()
    game.send(C.channel_join("#osu"))
    u.wait(lambda e: e.type == "join" and e.source == game.user.name)
    u.conn.who("#osu")
    u.wait_type("endofwho")
    assert any(e.type == "whoreply" and game.user.name in e.args for e in u.events)
    u.conn.whois([game.user.name])
    u.wait_type("endofwhois")
    assert any(e.type == "whoisuser" for e in u.events)
    u.conn.list()
    u.wait_type("listend")
    assert any(e.type == "list" and e.args and e.args[0] == "#osu" for e in u.events)
    u.conn.mode("#osu", "")
    u.wait_type("channelmodeis")
    u.conn.send_raw("MODE #osu b")
    u.wait_type("endofbanlist")
    u.conn.topic("#osu")
    u.wait_type("currenttopic")
    u.conn.send_raw("AWAY :gone fishing")
    u.wait_type("nowaway")
    game.send(C.private_message(u.nick, "hello?"))
    C.wait_for(game, lambda p: C.is_message(p, content="\x01ACTION is away: gone fishing\x01"),
               description="away reply")
    u.conn.send_raw("AWAY")
    u.wait_type("unaway")
    u.conn.ison([game.user.name, "nobody_here"])
    ev = u.wait_type("ison")
    assert ev.text().split() == [game.user.name]
    u.conn.names(["#osu"])
    u.wait_type("endofnames")
    u.conn.part(["#osu"])
    u.wait(lambda e: e.type == "part" and e.source == u.nick)


def test_send_queue_limit_disconnects_a_reader_that_stopped(start_server):
    """An IRC client that stops reading is closed once [irc] send_queue bytes wait for it; the
    game goes on (the talking game client is unaffected)."""
    import socket

    srv = start_server({"PEP_IRC_SEND_QUEUE": "8192", "PEP_CHAT_SPAM_LIMIT": "100000"})
    user = srv.new_user()
    token = srv.irc_token(user.name)
    deadline = time.monotonic() + 10
    while True:  # the gateway listens once the server's services have started
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            sock.connect(("127.0.0.1", srv.irc_port))
            break
        except ConnectionRefusedError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    raw = RawIrc.__new__(RawIrc)
    raw.sock, raw.buf = sock, b""
    try:
        raw.send(f"PASS {token}\r\nNICK {user.name}\r\nUSER x 0 * :x\r\nJOIN #osu\r\n".encode())
        raw.lines_until(lambda line: " 366 " in line)
        game = srv.connect()
        game.send(C.channel_join("#osu"))
        big = "x" * 1900
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            game.send(*[C.public_message("#osu", big) for _ in range(50)])
            r = requests.get(srv.url + "api/v1/isOnline", params={"id": user.id}, timeout=5)
            if r.json()["result"] is False:
                break
        assert r.json()["result"] is False, "the IRC user that stopped reading is still online"
        assert "SendQ exceeded" in srv.log_text() or "send queue exceeded" in srv.log_text()
        game.poll()
    finally:
        raw.close()


def test_ban_closes_the_irc_connection(server, irc_users):
    """A ban published on peppy:ban (the website's way) logs the IRC session out and closes it."""
    u = irc_users()
    u.welcome()
    watcher = server.connect()
    server.set_privileges(u.user.id, 0)
    server.redis.publish("peppy:ban", str(u.user.id))
    u.wait(lambda e: e.type in ("error", "disconnect"), timeout=10)
    C.wait_for(watcher, lambda p: p.id == C.USER_LOGOUT and p.value.user_id == u.user.id,
               description="logout of the banned IRC user")
