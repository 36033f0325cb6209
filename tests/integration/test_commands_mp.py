"""``!mp`` referee commands through real clients (docs/rules.md §8.4, docs/rules.md §1.11).

The referee talks in ``#multiplayer`` (the match channel ``#multi_<id>``); the effects are
checked in the match packets the players and the lobby receive. Each test runs its own server
with a high spam limit, since a referee types many commands in a few seconds.
"""

from __future__ import annotations

import re
import secrets
import time

import pytest

from tests import client as C
from tests.waiting import holds_for, past_logout_grace
from tests.integration import test_multiplayer_common as M
from tests.integration.test_commands import (ask, assert_no_reply, connect, is_bot_message, more_bot_lines, say,
                                             wait_bot)

TOURNAMENT_STAFF = 2097152
SERVER_ENV = {"PEP_CHAT_SPAM_LIMIT": "1000"}


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def mp_say(client, text: str) -> None:
    say(client, "#multiplayer", text)


def mp_ask(client, bot: str, text: str, **kw) -> str:
    """Send ``text`` in #multiplayer and return the bot's first answer there."""
    client.drain(rounds=1)
    mp_say(client, text)
    return wait_bot(client, bot, target="#multiplayer", **kw)


def latest(client, match_id: int):
    """Poll once and return the newest state of the match the client has seen."""
    client.poll()
    return M.current(client, match_id)


def slot_of(match, user_id: int) -> int | None:
    for index, slot in enumerate(match.slots):
        if slot.user_id == user_id and slot.has_player:
            return index
    return None


def make_tourney(server, srv, bot, name: str | None = None):
    """A referee (tournament staff) makes a tourney match and joins it with !mp join."""
    ref = connect(server, 3 | TOURNAMENT_STAFF, on=srv)
    name = name or f"Finals {secrets.token_hex(2)}"
    reply = ask(ref, bot, f"!mp make {name}")
    m = re.fullmatch(r"Tourney match #(\d+) created!", reply)
    assert m, reply
    match_id = int(m.group(1))
    assert ask(ref, bot, f"!mp join {match_id}") == f"Attempting to join match #{match_id}!"
    C.wait_for(ref, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == match_id)
    C.wait_for(ref, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer")
    return ref, match_id, name


def invite_and_join(ref, bot, player, match_id: int) -> None:
    """``!mp invite`` the player; it joins with the password from the invite link."""
    player.drain(rounds=1)
    assert mp_ask(ref, bot, f"!mp invite {player.user.name}") == \
        f"An invite to this match has been sent to {player.user.name}"
    invite = C.wait_for_id(player, C.MATCH_INVITE).value
    assert invite.sender == bot
    link = re.search(r"\[osump://(\d+)/(\S*) ", invite.content)
    assert link and int(link.group(1)) == match_id, invite.content
    C.wait_for(player, lambda p: p.id == C.NOTIFICATION and "Please accept the invite" in p.value)
    M.join(player, match_id, link.group(2))
    player.drain(rounds=1)


def tourney_with_player(server, srv, bot, name: str | None = None):
    """:func:`make_tourney` on ``srv`` and a player (on ``srv``) invited and joined
    (:func:`invite_and_join`): (ref, match_id, player)."""
    ref, match_id, _ = make_tourney(server, srv, bot, name)
    player = connect(server, on=srv)
    invite_and_join(ref, bot, player, match_id)
    return ref, match_id, player


# ------------------------------------------------------------------------------------ tests
def test_make_join_invite_settings_close(server, start_server, bot):
    srv = start_server(SERVER_ENV)
    lobby = connect(server, on=srv)
    lobby.send(C.lobby_join())
    lobby.drain(rounds=1)
    ref, match_id, name = make_tourney(server, srv, bot)
    seen = M.last_update(lobby.drain(rounds=1), match_id)
    assert seen.name == name and seen.host_id in (-1, ref.user_id)
    assert seen.password == "", "the lobby never sees the random password"
    player = connect(server, on=srv)
    invite_and_join(ref, bot, player, match_id)
    # settings: both players, one per line (and the single-line form)
    ref.drain(rounds=1)
    mp_say(ref, "!mp settings")
    header = wait_bot(ref, bot, target="#multiplayer")
    assert header == "PLAYERS IN THIS MATCH (use !mp settings single for a single-line version):"
    lines = more_bot_lines(ref, bot)
    assert f"* [!! no team !!] <not ready> ~ {ref.user.name}" in lines
    assert f"* [!! no team !!] <not ready> ~ {player.user.name}" in lines
    single = mp_ask(ref, bot, "!mp settings single")
    assert single.startswith("PLAYERS IN THIS MATCH : * [") and " | " in single
    # the player sees the referee's commands and the bot's answers in #multiplayer
    C.wait_for(player, lambda p: is_bot_message(p, bot, "#multiplayer") and p.value.content == single)
    # close: everyone is sent back, the lobby forgets the match
    ref.drain(rounds=1)
    mp_say(ref, "!mp close")
    assert wait_bot(ref, bot) == f"Multiplayer match #{match_id} disposed successfully"
    C.wait_for(ref, lambda p: p.id == C.MATCH_DISPOSE and p.value == match_id)
    C.wait_for(player, lambda p: p.id == C.MATCH_DISPOSE and p.value == match_id)
    C.wait_for(player, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#multiplayer")
    C.wait_for(lobby, lambda p: p.id == C.MATCH_DISPOSE and p.value == match_id)
    assert ask(ref, bot, f"!mp join {match_id}") == "Match not found"


def test_slots_host_map_mods_teams_password(server, start_server, bot):
    srv = start_server(SERVER_ENV)
    ref, match_id, player = tourney_with_player(server, srv, bot)
    pname = player.user.name
    # lock / move / unlock
    assert mp_ask(ref, bot, "!mp lock") == "This match has been locked"
    player.send(C.match_change_slot(9))
    assert slot_of(latest(ref, match_id), player.user_id) != 9, "a locked match refuses slot changes"
    assert mp_ask(ref, bot, f"!mp move {pname} 5") == f"Player {pname} moved to slot 5"
    assert slot_of(latest(player, match_id), player.user_id) == 5
    assert mp_ask(ref, bot, f"!mp move {pname} 16") == "Wrong syntax: !mp move <user> <slot 0-15>"
    assert mp_ask(ref, bot, f"!mp move {pname} 0").startswith("You can't use that slot")
    assert mp_ask(ref, bot, "!mp move nobody_here 3") == "No such user"
    assert mp_ask(ref, bot, "!mp unlock") == "This match has been unlocked"
    # host
    assert mp_ask(ref, bot, f"!mp host {pname}") == f"{pname} is now the host"
    C.wait_for_id(player, C.MATCH_TRANSFER_HOST)
    assert latest(ref, match_id).host_id == player.user_id
    assert mp_ask(ref, bot, "!mp host nobody_here") == "Couldn't give host to nobody_here"
    assert mp_ask(ref, bot, "!mp clearhost") == "Host has been removed from this match"
    assert latest(ref, match_id).host_id == -1
    # map: must be known in the beatmaps table
    bid = 900000 + secrets.randbelow(90000)
    md5 = secrets.token_hex(16)
    server.db.execute("INSERT INTO beatmaps (beatmap_id, beatmapset_id, beatmap_md5, song_name, ranked) "
                      "VALUES (%s, 1, %s, 'Camellia - Exit This Earth [Extra]', 2)", (bid, md5))
    assert mp_ask(ref, bot, f"!mp map {bid} 1") == "Match map has been updated"
    state = latest(player, match_id)
    assert (state.beatmap_id, state.beatmap_checksum, int(state.mode)) == (bid, md5, 1)
    assert state.beatmap_text == "Camellia - Exit This Earth [Extra]"
    assert mp_ask(ref, bot, "!mp map 1").startswith("The beatmap you've selected couldn't be found in the database.")
    assert mp_ask(ref, bot, f"!mp map {bid} 7") == "Gamemode must be 0, 1, 2 or 3"
    assert mp_ask(ref, bot, "!mp map banana") == "Wrong syntax: !mp map <beatmap id> [mode 0-3]"
    # mods
    assert mp_ask(ref, bot, "!mp mods hd dt") == "Match mods have been updated!"
    state = latest(player, match_id)
    assert int(state.mods) == 8 | 64 and not state.freemod
    assert mp_ask(ref, bot, "!mp mods freemod dt hd") == "Match mods have been updated!"
    state = latest(player, match_id)
    assert state.freemod and int(state.mods) == 64, "free mod keeps only the speed mods on the match"
    assert mp_ask(ref, bot, "!mp mods xx yy") == "Wrong syntax: !mp mods <mod1> [<mod2>] ..."
    assert mp_ask(ref, bot, "!mp mods none") == "Match mods have been updated!"
    assert int(latest(player, match_id).mods) == 0
    # teams and scoring
    assert mp_ask(ref, bot, f"!mp team {pname} blue").startswith("Teams can only be changed in team modes")
    assert mp_ask(ref, bot, "!mp set 2 1") == "Match settings have been updated!"
    state = latest(player, match_id)
    assert (int(state.team_type), int(state.scoring_type)) == (2, 1)
    assert mp_ask(ref, bot, f"!mp team {pname} blue") == f"{pname} is now in blue team"
    state = latest(player, match_id)
    assert int(state.slots[slot_of(state, player.user_id)].team) == 1
    assert mp_ask(ref, bot, f"!mp team {pname} green") == "Team colour must be red or blue"
    assert mp_ask(ref, bot, "!mp set 7") == "Match team type must be between 0 and 3"
    assert mp_ask(ref, bot, "!mp scorev 2") == "Match scoring type set to scorev2"
    assert int(latest(player, match_id).scoring_type) == 3
    assert mp_ask(ref, bot, "!mp scorev 3") == "Wrong syntax: !mp scorev <1|2>"
    # size: slots from 8 on are locked, the player in slot 5 stays
    assert mp_ask(ref, bot, "!mp size 8") == "Match size changed to 8"
    state = latest(player, match_id)
    assert all(int(s.status) == M.LOCKED for s in state.slots[8:])
    assert slot_of(state, player.user_id) == 5
    assert mp_ask(ref, bot, "!mp size 1") == "Wrong syntax: !mp size <slots(2-16)>"
    # passwords: members get 91
    player.drain(rounds=1)
    assert mp_ask(ref, bot, "!mp password open sesame") == "Match password has been changed!"
    assert C.wait_for_id(player, C.MATCH_CHANGE_PASSWORD).value == "open sesame"
    assert mp_ask(ref, bot, "!mp randompassword") == "Match password has been changed to a random one"
    assert re.fullmatch(r"[0-9a-f]{32}", C.wait_for_id(player, C.MATCH_CHANGE_PASSWORD).value)
    # kick: back to the lobby, the slot stays open
    assert mp_ask(ref, bot, f"!mp kick {pname}") == f"{pname} has been kicked from the match."
    C.wait_for(player, lambda p: p.id == C.CHANNEL_KICKED and p.value == "#multiplayer")
    assert slot_of(latest(ref, match_id), player.user_id) is None
    assert int(M.current(ref, match_id).slots[5].status) == M.OPEN
    assert mp_ask(ref, bot, f"!mp kick {pname}") == "The specified user is not in this match"


def test_start_force_countdown_abort(server, start_server, bot):
    srv = start_server(SERVER_ENV)
    ref, match_id, player = tourney_with_player(server, srv, bot)
    # nobody is ready: refused unless forced ([FIX]: "force" alone works)
    assert mp_ask(ref, bot, "!mp start").startswith("Some users aren't ready yet.")
    assert mp_ask(ref, bot, "!mp abort") == "The match is not in progress."
    ref.drain(rounds=1)
    mp_say(ref, "!mp start force")
    assert wait_bot(ref, bot, target="#multiplayer") == "Starting match"
    assert wait_bot(ref, bot, target="#multiplayer") == "Have fun!"
    C.wait_for_id(player, C.MATCH_START)
    assert latest(ref, match_id).in_progress
    assert mp_ask(ref, bot, "!mp start force") == "The match is already in progress."
    assert mp_ask(ref, bot, "!mp abort") == "Match aborted!"
    C.wait_for_id(player, C.MATCH_ABORT)
    assert not latest(ref, match_id).in_progress
    # everyone ready: a countdown, then the round starts by itself
    for c in (ref, player):
        c.send(C.match_ready())
    reply = mp_ask(ref, bot, "!mp start 2")
    assert reply.startswith("Match starts in 2 seconds. The match has been locked.")
    player.send(C.match_change_slot(7))  # refused during the countdown
    assert wait_bot(ref, bot, target="#multiplayer", timeout=5) == "Match starts in 1 seconds."
    assert wait_bot(ref, bot, target="#multiplayer", timeout=5) == "Have fun!"
    C.wait_for_id(player, C.MATCH_START)
    state = latest(ref, match_id)
    assert state.in_progress and slot_of(state, player.user_id) != 7
    assert mp_ask(ref, bot, "!mp abort") == "Match aborted!"
    # a countdown can be aborted; "ready" is refused while it runs, accepted after the abort
    assert mp_ask(ref, bot, "!mp start 30 force").startswith("Match starts in 30 seconds.")
    player.send(C.match_ready())
    assert mp_ask(ref, bot, "!mp abort") == "Countdown aborted"
    seat = slot_of(latest(ref, match_id), player.user_id)
    assert int(latest(ref, match_id).slots[seat].status) == 4, "ready during the countdown must be refused"
    player.send(C.match_ready())
    C.wait_for(ref, lambda p: p.id == C.MATCH_UPDATE and p.value.id == match_id
               and int(p.value.slots[seat].status) == 8, description="ready after the abort")
    assert mp_ask(ref, bot, "!mp start 9999") == "The countdown can be at most 600 seconds."
    holds_for(lambda: not latest(ref, match_id).in_progress, duration=1.2, what="no start after a refused countdown")


def test_who_may_referee(server, start_server, bot):
    srv = start_server(SERVER_ENV)
    # a normal match: its host has no !mp rights
    host = connect(server, on=srv)
    match_id, _ = M.create(host, password="pw")
    assert_no_reply(host, bot, "!mp lock", channel="#multiplayer")
    assert_no_reply(host, bot, "!mp help")
    # tournament staff may referee any match, and !mp join bypasses the password
    staff = connect(server, 3 | TOURNAMENT_STAFF, on=srv)
    assert ask(staff, bot, f"!mp join {match_id}") == f"Attempting to join match #{match_id}!"
    C.wait_for(staff, lambda p: p.id == C.MATCH_JOIN_SUCCESS and p.value.id == match_id)
    assert mp_ask(staff, bot, "!mp lock") == "This match has been locked"
    # outside a match channel
    assert ask(staff, bot, "!mp lock") == "This command only works in multiplayer chat channels"
    assert ask(staff, bot, "!mp dance") == "Invalid subcommand"
    assert ask(staff, bot, "!mp") == "Wrong syntax: !mp <subcommand>"
    assert ask(staff, bot, "!mp help").startswith("Supported subcommands: !mp <make|join|close|")
    assert ask(staff, bot, "!mp make") == "Wrong syntax: !mp make <name...>"
    # referees added with addref may use !mp in that match only
    assert mp_ask(staff, bot, f"!mp addref {host.user.name}") == f"{host.user.name} is now a referee of this match."
    assert mp_ask(host, bot, "!mp unlock") == "This match has been unlocked"
    assert mp_ask(host, bot, "!mp listref") == f"Referees: {host.user.name}"
    assert_no_reply(host, bot, "!mp make Sneaky")  # making matches needs the privilege
    assert mp_ask(staff, bot, f"!mp rmref {host.user.name}") == f"{host.user.name} is no longer a referee of this match."
    assert_no_reply(host, bot, "!mp lock", channel="#multiplayer")
    # a referee cannot join a game client that does not exist
    tourney = connect(server, 3 | TOURNAMENT_STAFF, on=srv)
    tourney_client = srv.client()
    res = tourney_client.login(tourney.user.name, "password", version="b20250306.2tourney")
    assert res.user_id == tourney.user_id
    tourney.send(C.logout())  # keep only the tournament client
    past_logout_grace(tourney)
    tourney.send(C.logout())
    tourney_client.drain(rounds=1)
    tourney_client.send(C.private_message(bot, f"!mp join {match_id}"))
    text = wait_bot(tourney_client, bot)
    assert text.startswith(f"No game clients found for {tourney.user.name}"), text
