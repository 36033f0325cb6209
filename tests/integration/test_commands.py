"""The bot's command registry and its user commands, through real clients.

Specs: docs/rules.md §8.2 (dispatch), §8.3/§8.6 (commands), §8.5 (/np), §6.2 and §6.6
(``!report`` and the report buffer); the pp API: docs/integration.md §5. docs/commands.md lists the commands.

Every client sends fewer than 10 messages per test (the spam limit of the session server).
A "no reply" check sends a sentinel command after the one that must stay unanswered: replies
to synchronous commands are queued in order, so once the sentinel's reply is in, a reply to the
earlier command would be too.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
import time
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from tests import client as C

KAWATA_FULL_PERMS = 136104116219  # a Kawata admin preset (admin: joins #admin)


# ------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def connect(server, privileges: int = 3, on=None):
    """A logged-in client of a new user with ``privileges`` (on ``on``, an extra server on the
    same database, else the session server). Users come from the session server's pool, which
    is much faster than ``pep.py adduser`` for every staff member."""
    user = server.new_user()
    if privileges != 3:
        server.set_privileges(user.id, privileges)
    return (on or server).login(user)


def is_bot_message(p, bot: str, target: str | None = None) -> bool:
    return p.id == C.SEND_MESSAGE and p.value.sender == bot and (target is None or p.value.target == target)


def wait_bot(client, bot: str, *, contains: str | None = None, match: str | None = None,
             target: str | None = None, timeout: float = 5.0) -> str:
    """The next message from the bot to ``client`` (optionally containing a text / matching a
    regular expression / in ``target``); returns its content."""

    def pred(p) -> bool:
        if not is_bot_message(p, bot, target):
            return False
        text = p.value.content
        return (contains is None or contains in text) and (match is None or re.search(match, text) is not None)

    return C.wait_for(client, pred, timeout=timeout, description=f"bot message {contains or match or ''!r}").value.content


def ask(client, bot: str, text: str, **kw) -> str:
    """PM ``text`` to the bot and return the first reply (by PM)."""
    client.drain(rounds=1)
    client.send(C.private_message(bot, text))
    return wait_bot(client, bot, target=client.user.name, **kw)


def say(client, channel: str, text: str) -> None:
    client.send(C.public_message(channel, text))


def sentinel(client, bot: str) -> list:
    """Send ``!roll 1`` by PM, wait for its reply and return the bot messages that came before it
    and are still unconsumed."""
    client.send(C.private_message(bot, "!roll 1"))
    wait_bot(client, bot, contains="rolls 0 points!")
    return [p.value.content for p in client.inbox if is_bot_message(p, bot)]


def assert_no_reply(client, bot: str, text: str, channel: str | None = None) -> None:
    client.drain(rounds=1)
    if channel is None:
        client.send(C.private_message(bot, text))
    else:
        say(client, channel, text)
    leftover = sentinel(client, bot)
    assert not leftover, f"{text!r} got a reply: {leftover!r}"


def more_bot_lines(client, bot: str, duration: float = 0.3) -> list[str]:
    """Bot messages already received but not consumed, plus those of ``duration`` more seconds."""
    pending = [p.value.content for p in client.inbox if is_bot_message(p, bot)]
    return pending + [p.value.content for p in C.collect(client, duration) if is_bot_message(p, bot)]


def notifications(packets) -> list[str]:
    return C.values(packets, C.NOTIFICATION)


# ------------------------------------------------------------------------------------ dispatch
def test_roll_in_pm(server, bot):
    a = server.connect()
    text = ask(a, bot, "!roll")
    m = re.fullmatch(rf"{re.escape(a.user.name)} rolls (\d+) points!", text)
    assert m and 0 <= int(m.group(1)) < 100
    for _ in range(2):
        text = ask(a, bot, "!roll 3")
        assert 0 <= int(re.search(r"rolls (\d+) points", text).group(1)) < 3
    text = ask(a, bot, "!roll banana")
    assert 0 <= int(re.search(r"rolls (\d+) points", text).group(1)) < 100


def test_roll_in_channel_reaches_everyone(server, bot):
    a = server.connect()
    b = server.connect()
    b.drain(rounds=1)
    say(a, "#osu", "!roll 10")
    text = wait_bot(a, bot, target="#osu", contains=a.user.name)
    assert re.fullmatch(rf"{re.escape(a.user.name)} rolls \d points!", text)
    # the other member of #osu sees the command line and the bot's answer
    C.wait_for(b, lambda p: C.is_message(p, sender=a.user.name, content="!roll 10", target="#osu"))
    assert wait_bot(b, bot, target="#osu", contains=a.user.name) == text


def test_matching_is_case_sensitive_and_needs_a_word_boundary(server, bot):
    a = server.connect()
    assert ask(a, bot, "!ROLL") == "Unknown command. Type !help to see the commands you can use."
    assert ask(a, bot, "!rolling 5") == "Unknown command. Type !help to see the commands you can use."
    assert_no_reply(a, bot, "!ROLL", channel="#osu")


def test_plain_pm_gets_a_greeting(server, bot):
    a = server.connect()
    assert "!help" in ask(a, bot, "hi there")
    assert bot in ask(a, bot, "are you a bot?")


def test_faq(server, bot):
    a = server.connect()
    assert ask(a, bot, "!faq spam") == "Please don't spam."
    assert ask(a, bot, "!faq LINES").startswith("Please try to keep your sentences")
    assert ask(a, bot, "!faq") == "Wrong syntax: !faq <topic>"
    assert_no_reply(a, bot, "!faq no-such-topic")


def test_help_lists_only_usable_commands(server, start_server, bot):
    srv = start_server({"PEP_CHAT_SPAM_LIMIT": "1000"})  # every page of the list
    a = connect(server, on=srv)
    a.drain(rounds=1)
    a.send(C.private_message(bot, "!help"))
    header = wait_bot(a, bot, contains="pages of commands")
    pages = int(re.search(r"1 of (\d+) pages", header).group(1))
    lines = more_bot_lines(a, bot)
    assert any(line.startswith("1. - !roll [max]") for line in lines)
    assert not any(re.match(r"\d+\. - !(ban|kick|alert|mp|system)\b", line) for line in lines)
    assert ask(a, bot, f"!help {pages + 1}") == f"Invalid page number (1-{pages})"

    # a staff member sees the staff commands they may use, and only those
    s = connect(server, 3 | 32, on=srv)  # ADMIN_BAN_USERS
    s.drain(rounds=1)
    seen: list[str] = []
    for page in range(1, 20):
        s.send(C.private_message(bot, f"!help {page}"))
        first = wait_bot(s, bot)
        if first.startswith("Invalid page"):
            break
        seen += more_bot_lines(s, bot)
    assert any(" - !ban <user...> - " in line for line in seen)
    assert any(" - !unrestrict " in line for line in seen)
    assert not any(re.search(r" - !(kick|alert|silence) ", line) for line in seen)


def test_help_in_a_channel_answers_by_pm(server, bot):
    a = server.connect()
    b = server.connect()
    b.drain(rounds=1)
    a.drain(rounds=1)
    say(a, "#osu", "!help")
    wait_bot(a, bot, target=a.user.name, contains="pages of commands")
    sentinel_text = f"sentinel {secrets.token_hex(3)}"
    say(a, "#osu", sentinel_text)
    C.wait_for(b, lambda p: C.is_message(p, content=sentinel_text))
    assert not [p for p in b.inbox if is_bot_message(p, bot)], "!help must not answer in the channel"


def test_missing_privileges_get_silence(server, bot):
    a = server.connect()
    b = server.connect()
    b.drain(rounds=1)
    for text in ("!ban " + b.user.name, "!alert hello everyone", "!system status", "!mp make secret"):
        assert_no_reply(a, bot, text)
    assert not notifications(b.drain(rounds=1)), "an unprivileged !alert must do nothing"
    assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (b.user_id,)) == 3


def test_wrong_place(server, bot):
    a = server.connect()
    b = server.connect()
    b.drain(rounds=1)
    a.drain(rounds=1)
    say(a, "#osu", "!with HD")
    assert wait_bot(a, bot, target=a.user.name) == f"!with only works in a private message to {bot}."
    chat_mod = connect(server, 3 | 262144)
    assert ask(chat_mod, bot, "!moderated").startswith("You are trying to put a private chat in moderated mode")
    sentinel_text = f"sentinel {secrets.token_hex(3)}"
    say(a, "#osu", sentinel_text)
    C.wait_for(b, lambda p: C.is_message(p, content=sentinel_text))
    assert not [p for p in b.inbox if is_bot_message(p, bot)]


def test_wrong_syntax(server, bot):
    s = connect(server, 3 | 64 | 131072)  # silence, alerts
    assert ask(s, bot, "!silence") == "Wrong syntax: !silence <user> <amount> <s|m|h|d> <reason...>"
    assert ask(s, bot, "!alertuser someone") == "Wrong syntax: !alertuser <user> <message...>"
    assert ask(s, bot, "!silence x 5") == "Wrong syntax: !silence <user> <amount> <s|m|h|d> <reason...>"


def test_messages_from_other_users_to_each_other_are_not_commands(server, bot):
    a = server.connect()
    b = server.connect()
    a.drain(rounds=1)
    b.drain(rounds=1)
    a.send(C.private_message(b.user.name, "!roll"))
    C.wait_for(b, lambda p: C.is_message(p, sender=a.user.name, content="!roll"))
    leftover = sentinel(a, bot)
    assert not leftover
    assert not [p for p in b.drain(rounds=1) if is_bot_message(p, bot)]


# ------------------------------------------------------------------------------------ extension
EXTRA_MODULE = '''
from constants import privileges as privs
from services.commands import command


@command("!hello", "<name>", description="Says hello.")
def hello(ctx):
    return f"Hello {ctx.args[0]}, from {ctx.sender.username}!"


@command("!boom", privileges=privs.ADMIN_MANAGE_SERVERS, description="Always fails.")
def boom(ctx):
    raise RuntimeError("kaboom")


@command("!slowboom", description="Fails later.")
async def slowboom(ctx):
    raise ValueError("later kaboom")
'''


def doc_example() -> str:
    """The example module of docs/commands.md ("Adding a command")."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "commands.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a command"):]
    return section[section.index("```python\n") + 10: section.index("```\n", section.index("```python"))]


def test_operator_module_and_handler_failure(server, start_server, tmp_path, bot):
    path = tmp_path / "my_commands.py"
    path.write_text(EXTRA_MODULE)
    broken = tmp_path / "broken_commands.py"
    broken.write_text("raise ImportError('this module is broken')\n")
    example = tmp_path / "commands_local.py"
    example.write_text(doc_example())
    srv = start_server({"PEP_BOT_COMMAND_MODULES": f"{path},{broken},{example}"})
    a = connect(server, on=srv)
    assert ask(a, bot, "!hello world") == f"Hello world, from {a.user.name}!"
    # the example of the documentation works as written
    assert ask(a, bot, "!discord").startswith("Join us on (Discord)")
    staff = connect(server, 3 | 16, on=srv)
    assert ask(staff, bot, f"!note {a.user.name} plays too well") == "Noted."
    assert "plays too well" in server.db.scalar("SELECT notes FROM users WHERE id=%s", (a.user_id,))
    assert ask(a, bot, "!hello") == "Wrong syntax: !hello <name>"
    # the failing handler needs a privilege: a user without it gets nothing
    assert_no_reply(a, bot, "!boom")
    generic = "Sorry, something went wrong while running !slowboom."
    assert ask(a, bot, "!slowboom").startswith(generic)
    admin = connect(server, 3 | 512, on=srv)
    reply = ask(admin, bot, "!boom")
    assert reply.startswith("Sorry, something went wrong while running !boom.")
    log = srv.log_text()
    assert "Traceback" in log and "kaboom" in log and "later kaboom" in log
    assert "this module is broken" in log, "a broken operator module is logged"
    # the server and the bot still work
    assert "rolls" in ask(admin, bot, "!roll")


# ------------------------------------------------------------------------------------ !report
def test_report(server, bot):
    reporter = server.connect()
    target = server.connect()
    admin = connect(server, KAWATA_FULL_PERMS)
    watcher = server.connect()
    for c in (reporter, target, admin, watcher):
        c.drain(rounds=1)
    line = f"insulting line {secrets.token_hex(3)}"
    say(target, "#osu", line)
    C.wait_for(watcher, lambda p: C.is_message(p, content=line))
    reporter.drain(rounds=1)
    text = f"!report {target.user.name} (Insulting): said {line}"
    say(reporter, "#osu", text)
    done = C.wait_for(reporter, lambda p: p.id == C.NOTIFICATION and "You've reported" in p.value).value
    assert done.startswith(f"You've reported {target.user.name} for Insulting (said {line}).")
    note = wait_bot(admin, bot, target="#admin", contains=f"{reporter.user.name} has reported")
    assert note == f"{reporter.user.name} has reported {target.user.name} for Insulting (said {line})"
    row = server.db.one("SELECT * FROM reports WHERE from_uid=%s ORDER BY id DESC LIMIT 1", (reporter.user_id,))
    assert row is not None and row["to_uid"] == target.user_id
    assert row["reason"] == f"Insulting - ingame (said {line})"
    assert f"{target.user.name}@#osu: {line[:50]}" in row["chatlog"]
    assert abs(int(row["time"]) - time.time()) < 60
    # nobody in the channel saw the !report line
    sentinel_text = f"sentinel {secrets.token_hex(3)}"
    say(target, "#osu", sentinel_text)
    C.wait_for(watcher, lambda p: C.is_message(p, content=sentinel_text))
    assert not [p for p in watcher.inbox if p.id == C.SEND_MESSAGE and "!report" in p.value.content]


@pytest.mark.parametrize("text, expected", [
    ("!report nobody_like_this_{hex} (Spam): x", "The user you've tried to report doesn't exist."),
    ("!report {target} (Other):", "Please specify the reason of your report."),
    ("!report {target} spam spam", "Invalid report command syntax."),
    ("!report {bot} (Spam): hi", "You can't report me."),
])
def test_report_errors(server, bot, text, expected):
    reporter = server.connect()
    target = server.connect()
    reporter.drain(rounds=1)
    before = server.db.scalar("SELECT COUNT(*) FROM reports WHERE from_uid=%s", (reporter.user_id,))
    reporter.send(C.private_message(bot, text.format(target=target.user.name, bot=bot, hex=secrets.token_hex(2))))
    C.wait_for(reporter, lambda p: p.id == C.NOTIFICATION and expected in p.value)
    assert server.db.scalar("SELECT COUNT(*) FROM reports WHERE from_uid=%s", (reporter.user_id,)) == before


# ------------------------------------------------------------------------------------ !pp / !last
def test_pp(server, bot):
    a = server.connect()
    server.db.execute("UPDATE users_stats SET pp_std=%s, pp_taiko=%s, pp_mania=%s WHERE id=%s",
                      (123456, 789, 70000, a.user_id))
    assert ask(a, bot, "!pp") == "You have 123,456 pp"
    assert ask(a, bot, "!pp taiko") == "You have 789 pp"
    assert ask(a, bot, "!pp mania") == "You have 70,000 pp"
    assert ask(a, bot, "!pp ctb") == "You have 0 pp"
    assert ask(a, bot, "!pp chess") == "What's that game mode? I've never heard of it :/"


def _insert_score(server, user_id: int, beatmap_id: int, md5: str, *, mods=0, completed=3, combo=500, max_combo=500,
                  n300=480, n100=15, n50=5, miss=0, acc=97.5, pp=123.456, mode=0, song="Artist - Title [Hard]",
                  with_beatmap=True):
    if with_beatmap:
        server.db.execute(
            "INSERT INTO beatmaps (beatmap_id, beatmapset_id, beatmap_md5, song_name, max_combo, difficulty_std, "
            "difficulty_taiko, ranked, mode) VALUES (%s, %s, %s, %s, %s, %s, %s, 2, %s)",
            (beatmap_id, beatmap_id // 10, md5, song, max_combo, 4.56, 3.21, mode))
    server.db.execute(
        "INSERT INTO scores (beatmap_md5, userid, score, max_combo, full_combo, mods, 300_count, 100_count, 50_count, "
        "misses_count, time, play_mode, completed, accuracy, pp, is_relax) "
        "VALUES (%s, %s, 1234567, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0)",
        (md5, user_id, combo, int(combo == max_combo), mods, n300, n100, n50, miss, str(int(time.time())), mode,
         completed, acc, pp))


def test_last_without_pp_api(server, bot):
    a = server.connect()
    assert ask(a, bot, "!last") == "Please submit a score!"
    bid = 700000 + secrets.randbelow(100000)
    md5 = secrets.token_hex(16)
    _insert_score(server, a.user_id, bid, md5, combo=321, max_combo=500, miss=2, acc=95.25, mods=8 | 16)
    text = ask(a, bot, "!last")
    # the session server's pp API is not running: stars come from the beatmaps table
    assert text == (f"[https://osu.ppy.sh/b/{bid} Artist - Title [Hard]] +HDHR (95.25%, A) 321x/500x "
                    f"| 123.46pp | 4.56 stars")
    # in a channel it answers in the channel (K)
    b = server.connect()
    b.drain(rounds=1)
    say(a, "#osu", "!last")
    assert wait_bot(b, bot, target="#osu") == text


# ------------------------------------------------------------------------------------ the pp API
class FakeLets:
    """A tiny LETS pp API on 127.0.0.1 (a thread running http.server).

    ``GET /api/v1/pp?b=&m=[&a=]``: beatmap 404 → 400 "beatmap not found"; 408 → answers after
    ``slow`` seconds; 500 → not JSON; otherwise 200 with pp derived from the mods."""

    def __init__(self, slow: float = 2.0) -> None:
        self.requests: list[dict[str, str]] = []
        self.slow = slow
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                outer.requests.append({"path": url.path, **query})
                if url.path != "/api/v1/pp":
                    return self._send(404, {"status": 404, "message": "not found"})
                b = int(query.get("b", "0"))
                m = int(query.get("m", "0"))
                if b == 404:
                    return self._send(400, {"status": 400, "message": "beatmap not found"})
                if b == 408:
                    time.sleep(outer.slow)
                if b == 500:
                    body = b"<html>oops</html>"
                    self.send_response(500)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                base = 100.0 + m
                if "a" in query:
                    pp: object = round(float(query["a"]) * 2, 2)
                else:
                    pp = [base * 2, base * 1.5, base * 1.25, base]
                self._send(200, {"status": 200, "message": "ok", "song_name": f"Song {b} [Insane]", "pp": pp,
                                 "length": 120, "stars": 5.4321, "ar": 9, "bpm": 180})

            def _send(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def last(self, beatmap: int) -> dict[str, str]:
        for req in reversed(self.requests):
            if req.get("b") == str(beatmap):
                return req
        raise AssertionError(f"no pp request for beatmap {beatmap}: {self.requests!r}")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def lets():
    fake = FakeLets()
    yield fake
    fake.close()


def np_playing(beatmap_link: str, title: str, mods: str = "") -> str:
    return f"\x01ACTION is playing [{beatmap_link} {title}]{(' ' + mods) if mods else ''}\x01"


def test_np_with_acc_through_the_pp_api(server, start_server, lets, bot):
    srv = start_server({"PEP_LETS_API_URL": lets.url, "PEP_LETS_TIMEOUT": "1"})
    a = connect(server, on=srv)
    text = ask(a, bot, np_playing("https://osu.ppy.sh/b/1234", "Artist - Song [Insane]", "+Hidden +HardRock"))
    req = lets.last(1234)
    assert req["path"] == "/api/v1/pp" and req["m"] == "24" and "a" not in req
    assert text == ("Song 1234 [Insane] +HDHR  95%: 124.00pp | 98%: 155.00pp | 99%: 186.00pp | 100%: 248.00pp "
                    "| 180 BPM | AR 10 (9) | 5.43 stars")
    # !with: other mods for the same map
    text = ask(a, bot, "!with HDDT")
    assert lets.last(1234)["m"] == str(8 | 64)
    assert text.startswith("Song 1234 [Insane] +HDDT  95%: 172.00pp")
    assert ask(a, bot, "!with NC").startswith("Song 1234 [Insane] +NC  ")
    assert lets.last(1234)["m"] == str(512 | 64)
    assert ask(a, bot, "!with XYZ").startswith("Invalid mods. Allowed mods: NO, NF, EZ")
    # !acc: one accuracy, sent as &a= ([FIX] of K's "&a98")
    text = ask(a, bot, "!acc 98.5")
    assert lets.last(1234)["a"] == "98.50"
    assert text.startswith("Song 1234 [Insane] +NC  98.50%: 197.00pp")
    assert ask(a, bot, "!acc lots") == "Invalid acc value"
    assert ask(a, bot, "!acc 101") == "Invalid acc value"


def test_np_links_and_errors(server, start_server, lets, bot):
    srv = start_server({"PEP_LETS_API_URL": lets.url, "PEP_LETS_TIMEOUT": "1"})
    a = connect(server, on=srv)
    # !with and !acc need a /np first
    assert ask(a, bot, "!with HD") == "Please give me a beatmap first with /np command."
    assert ask(a, bot, "!acc 99") == "Please give me a beatmap first with /np command."
    # new-style links, listening (no mods), watching
    text = ask(a, bot, "\x01ACTION is listening to [https://osu.ppy.sh/beatmapsets/77#osu/4321 Artist - Song]\x01")
    assert lets.last(4321)["m"] == "0" and text.startswith("Song 4321 [Insane]  95%")
    ask(a, bot, "\x01ACTION is watching [https://osu.ppy.sh/beatmaps/9876 Someone - Song [Hard]] +DoubleTime\x01")
    assert lets.last(9876)["m"] == "64"
    # a link to a set, not a difficulty
    assert ask(a, bot, np_playing("https://osu.ppy.sh/s/555", "A set")).startswith("I couldn't find a beatmap")
    # API errors
    assert ask(a, bot, np_playing("https://osu.ppy.sh/b/404", "Missing")) == \
        "Error in LETS API call (beatmap not found)."
    assert ask(a, bot, np_playing("https://osu.ppy.sh/b/500", "Broken")) == "Unknown error in LETS API call."
    b = connect(server, on=srv)
    assert ask(b, bot, np_playing("https://osu.ppy.sh/b/408", "Slow"), timeout=8) == \
        "API Timeout. Please try again in a few seconds."
    # /np in a channel is ignored by the bot (no reply in the channel, no API call)
    count = len(lets.requests)
    assert_no_reply(b, bot, np_playing("https://osu.ppy.sh/b/31337", "Public"), channel="#osu")
    assert len(lets.requests) == count


def test_last_with_pp_api_stars(server, start_server, lets, bot):
    srv = start_server({"PEP_LETS_API_URL": lets.url})
    a = connect(server, on=srv)
    bid = 800000 + secrets.randbelow(100000)
    _insert_score(srv, a.user_id, bid, secrets.token_hex(16), mods=64, combo=500, max_combo=500, n100=0, n50=0,
                  n300=500, acc=100.0, pp=321.0)
    text = ask(a, bot, "!last")
    assert lets.last(bid)["m"] == "64"
    assert text == f"[https://osu.ppy.sh/b/{bid} Artist - Title [Hard]] +DT (100.00%, SS) (FC) | 321.00pp | 5.43 stars"
    # the score became the /np: !with works on it
    assert ask(a, bot, "!with HR").startswith(f"Song {bid} [Insane] +HR  95%")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pp_api_unreachable(server, start_server, bot):
    srv = start_server({"PEP_LETS_API_URL": f"http://127.0.0.1:{_closed_port()}/api", "PEP_LETS_TIMEOUT": "2"})
    a = connect(server, on=srv)
    assert ask(a, bot, np_playing("https://osu.ppy.sh/b/42", "Unreachable")) == \
        "The pp API is unreachable right now. Please try again later."
    # the bot stays responsive
    assert "rolls" in ask(a, bot, "!roll")
