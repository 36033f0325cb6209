"""Bot commands whose texts or behaviour depend on the stack (``[stack] flavour``), and the
commands of one stack only (docs/commands.md): ``!help`` (Kawata/RealistikOsu paged list, Ripple's
link), ``!silence`` (Ripple's texts and 7-day limit), RealistikOsu's ``!restrict`` with quoted
reasons and ``!status`` shown in the idle status, Kawata's optional joke commands, bancho.py's
``!switchserv`` and ``!shutdown``. Real servers, MySQL rows and Redis publishes read back.
"""

from __future__ import annotations

import re
import time

import pytest

from tests import client as C
from tests.integration.test_commands import ask, connect, more_bot_lines, sentinel, wait_bot
from tests.integration.test_commands_staff import BanWatcher
from tests.integration.test_pubsub import wait_notification
from tests.waiting import wait_until

SILENCE, BAN, MANAGE_SERVERS, MANAGE_USERS = 64, 32, 512, 16
UNKNOWN = "Unknown command. Type !help to see the commands you can use."


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def help_page(client, bot: str, page: int | None = None) -> list[str]:
    """Every line of one ``!help`` page (header first)."""
    client.drain(rounds=1)
    client.send(C.private_message(bot, "!help" if page is None else f"!help {page}"))
    header = wait_bot(client, bot, target=client.user.name)
    return [header] + more_bot_lines(client, bot, 0.5)


# ------------------------------------------------------------------------------------ !help
def test_help_is_kawatas_paged_list(server, bot):
    c = server.connect()
    lines = help_page(c, bot)
    head = re.fullmatch(r"--- 1 of (\d+) pages of commands currently available on (.+)! ---", lines[0])
    assert head is not None, lines[0]
    pages = int(head.group(1))
    assert pages >= 2
    numbered = [line for line in lines[1:] if re.match(r"\d+\. - ", line)]
    assert [line.split(".")[0] for line in numbered] == ["1", "2", "3", "4", "5"]
    assert numbered[0].startswith("1. - !roll [max] - Rolls a number")
    assert lines[-1] == "You can check syntax of individual command using !syntax <command eg. !help>"
    # page 2 continues the numbering and has no hint; staff commands never show for a player
    second = help_page(c, bot, 2)
    assert second[0] == f"--- 2 of {pages} pages of commands currently available on {head.group(2)}! ---"
    assert second[1].startswith("6. - ")
    assert not any("You can check syntax" in line for line in second)
    assert not any(" - !ban " in line or " - !kick " in line for line in lines + second)
    assert ask(c, bot, f"!help {pages + 1}") == f"Invalid page number (1-{pages})"
    # a word that is no number means page 1 (Kawata)
    assert help_page(c, bot, "next")[0] == lines[0]  # type: ignore[arg-type]


def test_help_on_ripple_is_its_link(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple", "PEP_BOT_WEBSITE": "https://ripple.example/"})
    c = connect(server, on=srv)
    assert ask(c, bot, "!help") == f"Click (here)[https://ripple.example/doc/4] for {bot}'s full command list"
    assert ask(c, bot, "!help 3") == f"Click (here)[https://ripple.example/doc/4] for {bot}'s full command list"


def test_help_on_ripple_without_a_page_falls_back_to_the_list(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple", "PEP_BOT_HELP_URL": ""})
    c = connect(server, on=srv)
    assert help_page(c, bot)[0].startswith("--- 1 of ")


# ------------------------------------------------------------------------------------ !silence
def test_silence_texts_and_limit_on_ripple(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple", "PEP_CHAT_SPAM_LIMIT": "1000"})
    staff = connect(server, 3 | SILENCE, on=srv)
    target = server.new_user()
    assert ask(staff, bot, f"!silence {target.name} 8 d spam") == "Invalid silence time. Max silence time is 7 days."
    assert ask(staff, bot, f"!silence {target.name} 2 w spam") == "Invalid time unit (s/m/h/d)."
    assert server.db.scalar("SELECT silence_end FROM users WHERE id=%s", (target.id,)) <= time.time()
    assert ask(staff, bot, f"!silence {target.name} 7 d Spamming links") == \
        f"{target.name} has been silenced for the following reason: Spamming links"
    row = server.db.one("SELECT silence_end, silence_reason FROM users WHERE id=%s", (target.id,))
    assert abs(int(row["silence_end"]) - (time.time() + 7 * 86400)) < 60
    assert row["silence_reason"] == "Spamming links"
    log_text = server.db.scalar("SELECT text FROM rap_logs WHERE userid=%s ORDER BY id DESC LIMIT 1", (staff.user_id,))
    assert log_text == f'has silenced {target.name} for 604800 seconds for the following reason: "Spamming links"'


def test_silence_month_limit_elsewhere(server, bot):
    staff = connect(server, 3 | SILENCE)
    target = server.new_user()
    assert ask(staff, bot, f"!silence {target.name} 8 d spam") == f"{target.name} has been silenced for: spam"
    assert ask(staff, bot, f"!silence {target.name} 31 d spam") == "Invalid silence time. Max silence time is 1 month."
    assert ask(staff, bot, f"!silence {target.name} {'9' * 30} s spam") == \
        "Invalid silence time. Max silence time is 1 month."


# ------------------------------------------------------------------------------------ !restrict
@pytest.fixture
def realistik(server, start_server):
    from common import schema

    for table in ("ban_logs", "user_statuses"):  # the test database is a Kawata one
        server.db.execute(schema.table_ddl(table))
    return start_server({"PEP_STACK_FLAVOUR": "realistikosu", "PEP_CHAT_SPAM_LIMIT": "1000"})


def test_restrict_with_reasons_on_realistikosu(server, realistik, bot):
    staff = connect(server, 3 | BAN, on=realistik)
    target = connect(server, on=realistik)
    name = target.user.name
    assert ask(staff, bot, f"!restrict {name}") == "Please specify both a reason and a summary for the ban."
    assert ask(staff, bot, f'!restrict {name} "only one"') == "Please specify both a reason and a summary for the ban."
    assert ask(staff, bot, '!restrict nobody_like_this "Cheating" "Relax hack"') == \
        "Could not find the user 'nobody_like_this' on the server."
    assert ask(staff, bot, f'!restrict {bot} "a" "b"') == "NO!"
    assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,)) & 3 == 3
    watch = BanWatcher(realistik)
    try:
        reply = ask(staff, bot, f'!restrict {name} "Cheating" "Relax hack seen in replays 1 and 2"')
        assert reply == f"{name} has been successfully restricted for 'Cheating'"
        watch.wait(target.user_id)
    finally:
        watch.close()
    privileges = server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.user_id,))
    assert privileges & 1 == 0 and privileges & 2 == 2
    row = server.db.one("SELECT from_id, summary, detail FROM ban_logs WHERE to_id=%s ORDER BY id DESC LIMIT 1",
                        (target.user_id,))
    assert (row["from_id"], row["summary"], row["detail"]) == \
        (staff.user_id, "Cheating", "Relax hack seen in replays 1 and 2")
    C.wait_for_id(target, C.ACCOUNT_RESTRICTED)
    assert ask(staff, bot, f'!restrict {name} "Again" "twice"') == f"{name} is already restricted."


def test_restrict_quoted_reasons_elsewhere(server, bot):
    staff = connect(server, 3 | BAN)
    target = server.new_user()
    assert ask(staff, bot, f'!restrict {target.name} "Multi" "second account"') == \
        f"Bye bye {target.name}. See you later, maybe."
    assert server.db.scalar("SELECT privileges FROM users WHERE id=%s", (target.id,)) & 1 == 0


# ------------------------------------------------------------------------------------ !status
def own_stats(client, predicate, timeout: float = 5.0):
    return C.wait_for(client, lambda p: p.id == C.USER_STATS and p.value.user_id == client.user_id
                      and predicate(p.value), timeout=timeout, description="own stats").value


def test_status_is_shown_in_the_idle_status(server, realistik, bot):
    c = connect(server, on=realistik)
    watcher = connect(server, on=realistik)
    c.send(C.change_action(0))
    own_stats(c, lambda s: s.text == "[VN]")
    assert ask(c, bot, "!status Farming pp") == "Your status has been set to: Farming pp"
    # shown at once while idle, to the user and to anyone asking for the stats
    own_stats(c, lambda s: s.text == "(Farming pp) [VN]")
    watcher.drain(rounds=1)
    watcher.send(C.stats_request([c.user_id]))
    C.wait_for(watcher, lambda p: p.id == C.USER_STATS and p.value.user_id == c.user_id
               and p.value.text == "(Farming pp) [VN]")
    # playing shows the map, not the status
    c.send(C.change_action(2, "Artist - Title [Hard]", "a" * 32))
    own_stats(c, lambda s: s.text == "[VN] Artist - Title [Hard]")
    c.send(C.change_action(1))  # AFK
    own_stats(c, lambda s: s.text == "(Farming pp) [VN]")
    # toggled off: the prefix alone
    assert ask(c, bot, "!status") == "Your status has been toggled off!"
    own_stats(c, lambda s: s.text == "[VN]")
    assert ask(c, bot, "!status") == "Your status has been toggled on!"
    own_stats(c, lambda s: s.text == "(Farming pp) [VN]")
    # read from MySQL at the next login
    again = realistik.login(c.user)
    again.send(C.change_action(0))
    own_stats(again, lambda s: s.text == "(Farming pp) [VN]")
    assert server.db.scalar("SELECT enabled FROM user_statuses WHERE user_id=%s", (c.user.id,)) == 1


# ------------------------------------------------------------------------------------ jokes
def test_joke_commands_are_off_by_default(server, bot):
    staff = connect(server, 3 | MANAGE_USERS)
    target = server.connect()
    for text in (f"!msg {target.user.name} hello", f"!bless {target.user.name}", f"!troll {target.user.name}"):
        assert ask(staff, bot, text) == UNKNOWN
    assert ask(staff, bot, "!syntax !msg") == UNKNOWN
    lines = help_page(staff, bot, 99)
    assert lines[0].startswith("Invalid page number")
    assert not [p for p in target.drain(rounds=1) if p.id == C.SEND_MESSAGE and p.value.sender in ("Jesus", "Trollface")]


def test_joke_commands_when_enabled(server, start_server, bot):
    srv = start_server({"PEP_BOT_JOKE_COMMANDS": "1", "PEP_CHAT_SPAM_LIMIT": "1000"})
    staff = connect(server, 3 | MANAGE_USERS, on=srv)
    target = connect(server, on=srv)
    name = target.user.name
    assert ask(staff, bot, f"!msg {name} Hello from the bot") == f"Messaged {name}."
    got = C.wait_for(target, lambda p: p.id == C.SEND_MESSAGE and p.value.content == "Hello from the bot").value
    assert (got.sender, got.target) == (bot, name)
    assert ask(staff, bot, f"!bless {name}") == "THEY ARE BLESSED AND ASCENDED TO HeAVeN"
    C.wait_for(target, lambda p: p.id == C.SEND_MESSAGE and p.value.sender == "Jesus" and name in p.value.content)
    assert ask(staff, bot, f"!troll {name}") == "They have been trolled"
    C.wait_for(target, lambda p: p.id == C.SEND_MESSAGE and p.value.sender == "Trollface")
    assert ask(staff, bot, "!msg nobody_here hi") == "You can not message a offline user."
    assert ask(staff, bot, "!bless nobody_here") == "This user is not online, and may not be blessed."
    assert ask(staff, bot, "!troll nobody_here") == "This user is not online, and may not be trolled."
    assert ask(staff, bot, "!msg") == "Wrong syntax: !msg <user> <message...>"
    assert ask(staff, bot, "!syntax !msg") == "Syntax: !msg <user> <message...>"
    # players may not use them
    player = connect(server, on=srv)
    player.send(C.private_message(bot, f"!msg {name} hi"))
    assert not sentinel(player, bot)


# ------------------------------------------------------------------------------------ bancho.py
def test_switchserv(server, bot):
    staff = connect(server, 3 | MANAGE_SERVERS)
    assert ask(staff, bot, "!switchserv c.example.org:13381") == "Have a nice journey.."
    assert C.wait_for_id(staff, C.SWITCH_TOURNAMENT_SERVER).value == "c.example.org:13381"
    assert ask(staff, bot, "!switchserv") == "Invalid syntax: !switch <endpoint>"
    assert ask(staff, bot, "!switchserv not/an?address") == "Invalid syntax: !switch <endpoint>"
    assert ask(staff, bot, "!switchserv a b") == "Invalid syntax: !switch <endpoint>"
    player = server.connect()
    player.send(C.private_message(bot, "!switchserv c.example.org"))
    assert not sentinel(player, bot)


def test_shutdown_with_a_delay(server, start_server, bot):
    srv = start_server({"PEP_CHAT_SPAM_LIMIT": "1000", "PEP_SESSIONS_HANDOVER": "0"})
    staff = connect(server, 3 | MANAGE_SERVERS, on=srv)
    player = connect(server, on=srv)
    assert ask(staff, bot, "!shutdown soon") == "Invalid timespan."
    assert ask(staff, bot, "!shutdown 10s") == "Minimum delay is 15 seconds."
    assert ask(staff, bot, "!shutdown 2h") == "Maximum delay is 1 hour."
    assert srv.proc.alive()
    assert ask(staff, bot, "!shutdown 16s planned maintenance") == "Enqueued shutdown."
    wait_notification(player, "The server will shutdown in 16s.\n\nReason: planned maintenance")
    # the restart packet comes before the stop, then the process ends
    C.wait_for(player, lambda p: p.id == C.RESTART, timeout=40)
    wait_until(lambda: not srv.proc.alive(), timeout=60, what="the server stops")


def test_shutdown_now_is_the_graceful_stop(server, start_server, bot):
    srv = start_server({"PEP_SESSIONS_HANDOVER": "0"})
    staff = connect(server, 3 | MANAGE_SERVERS, on=srv)
    player = connect(server, on=srv)
    player.send(C.private_message(bot, "!shutdown"))
    assert not sentinel(player, bot) and srv.proc.alive()
    staff.send(C.private_message(bot, "!shutdown"))
    wait_until(lambda: not srv.proc.alive(), timeout=60, what="the server stops")
    assert srv.proc.proc.returncode == 0
