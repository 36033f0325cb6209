"""bancho.py's mappool, clan and scrim commands through real clients (docs/commands.md):
``!pool``, ``!clan``, and ``!mp condition|scrim|endscrim|rematch|loadpool|unloadpool|ban|unban|pick``
(in both ``[bot] mp_style`` s). Rows are read back
from MySQL (``tourney_pools``, ``tourney_pool_maps``, ``clans``, ``user_clans``), match changes
from the match packets.
"""

from __future__ import annotations

import re
import secrets

import pytest

from tests import client as C
from tests.integration.test_commands import ask, connect, sentinel, wait_bot
from tests.integration.test_commands_beatmaps import add_set, np
from tests.integration.test_commands_mp import (SERVER_ENV, TOURNAMENT_STAFF, invite_and_join, latest, make_tourney,
                                                mp_ask, mp_say, tourney_with_player)

MANAGE_USERS = 16


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


@pytest.fixture
def roomy(start_server):
    return start_server(SERVER_ENV)


def lines_until(client, bot: str, first: str, count: int, target: str | None = None) -> list[str]:
    """The reply ``first`` had and the ``count - 1`` bot lines after it."""
    out = [first]
    while len(out) < count:
        out.append(wait_bot(client, bot, target=target))
    return out


# ------------------------------------------------------------------------------------ !pool
def test_pool_lifecycle(server, roomy, bot):
    staff = connect(server, 3 | TOURNAMENT_STAFF, on=roomy)
    name = f"p{secrets.token_hex(3)}"
    set_id, ids, _ = add_set(server, 2)
    assert ask(staff, bot, f"!pool create {name}") == f"{name} created."
    assert ask(staff, bot, f"!pool create {name}") == "Pool already exists by that name!"
    assert ask(staff, bot, "!pool create no/slashes") == "A pool name has 1-16 letters, digits, - or _."
    assert ask(staff, bot, "!pool create") == "Invalid syntax: !pool create <name>"
    assert ask(staff, bot, f"!pool add {name} HD1") == "Please /np a map first!"
    np(staff, bot, ids[0])
    assert ask(staff, bot, f"!pool add {name} HDX") == "Invalid pick syntax; correct example: HD2"
    assert ask(staff, bot, f"!pool add {name} XY1") == "Invalid pick syntax; correct example: HD2"
    assert ask(staff, bot, "!pool add nosuchpool HD1") == "Could not find a pool by that name!"
    song0 = f"Artist - Song {set_id} [Diff 0]"
    assert ask(staff, bot, f"!pool add {name} hd1") == f"[https://osu.ppy.sh/b/{ids[0]} {song0}] added to {name} as HD1."
    assert ask(staff, bot, f"!pool add {name} DT1") == f"[https://osu.ppy.sh/b/{ids[0]} {song0}] is already in the pool!"
    np(staff, bot, ids[1])
    assert ask(staff, bot, f"!pool add {name} HD1") == f"HD1 is already taken in {name}!"
    assert ask(staff, bot, f"!pool add {name} NM2").endswith(f"added to {name} as NM2.")
    pool_id = server.db.scalar("SELECT id FROM tourney_pools WHERE name=%s", (name,))
    assert server.db.scalar("SELECT created_by FROM tourney_pools WHERE id=%s", (pool_id,)) == staff.user_id
    rows = server.db.query("SELECT map_id, mods, slot FROM tourney_pool_maps WHERE pool_id=%s ORDER BY mods",
                           (pool_id,))
    assert [(r["map_id"], r["mods"], r["slot"]) for r in rows] == [(ids[1], 0, 2), (ids[0], 8, 1)]
    info = ask(staff, bot, f"!pool info {name}")
    assert info.startswith(f"{pool_id}. {name}, by {staff.user_id} | Created at ")
    detail = [wait_bot(staff, bot), wait_bot(staff, bot)]
    assert detail == [f"NM2: [https://osu.ppy.sh/b/{ids[1]} Artist - Song {set_id} [Diff 1]]",
                      f"HD1: [https://osu.ppy.sh/b/{ids[0]} {song0}]"]
    listed = ask(staff, bot, "!pool list")
    assert listed.startswith("Mappools (")
    assert ask(staff, bot, f"!pool remove {name} DT5") == "Found no DT5 pick in the pool."
    assert ask(staff, bot, f"!pool remove {name} NM2") == f"NM2 removed from {name}."
    assert ask(staff, bot, f"!pool delete {name}") == f"{name} deleted."
    assert server.db.scalar("SELECT COUNT(*) FROM tourney_pools WHERE name=%s", (name,)) == 0
    assert server.db.scalar("SELECT COUNT(*) FROM tourney_pool_maps WHERE pool_id=%s", (pool_id,)) == 0
    assert ask(staff, bot, "!pool frobnicate") == "Invalid subcommand. Use !pool help."
    # players may not use it
    player = connect(server, on=roomy)
    player.send(C.private_message(bot, "!pool list"))
    assert not sentinel(player, bot)


# ------------------------------------------------------------------------------------ !mp extras
def test_mp_loadpool_pick_condition(server, roomy, bot):
    ref, match_id, _ = make_tourney(server, roomy, bot)
    name = f"p{secrets.token_hex(3)}"
    set_id, ids, md5s = add_set(server, 1)
    assert ask(ref, bot, f"!pool create {name}") == f"{name} created."
    np(ref, bot, ids[0])
    assert ask(ref, bot, f"!pool add {name} HDHR3").endswith(f"as HDHR3.")
    assert mp_ask(ref, bot, "!mp pick HD1") == "No pool currently loaded!"
    assert mp_ask(ref, bot, "!mp unloadpool") == "No mappool currently selected!"
    assert mp_ask(ref, bot, "!mp loadpool nosuchpool") == "Could not find a pool by that name!"
    assert mp_ask(ref, bot, "!mp loadpool") == "Invalid syntax: !mp loadpool <name>"
    assert mp_ask(ref, bot, f"!mp loadpool {name} {name}") == "Invalid syntax: !mp loadpool <name>"
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} selected."
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} already selected!"
    assert mp_ask(ref, bot, "!mp pick HD1") == "Found no HD1 pick in the pool."
    assert mp_ask(ref, bot, "!mp pick H") == "Invalid pick syntax; correct example: HD2"
    assert mp_ask(ref, bot, "!mp pick") == "Invalid syntax: !mp pick <pick>"
    assert mp_ask(ref, bot, "!mp pick hdhr3") == \
        f"Picked [https://osu.ppy.sh/b/{ids[0]} Artist - Song {set_id} [Diff 0]]. (HDHR3)"
    state = latest(ref, match_id)
    assert (state.beatmap_id, state.beatmap_checksum, int(state.mods)) == (ids[0], md5s[0], 8 | 16)
    assert not state.freemod
    # win condition = the match's scoring type
    assert mp_ask(ref, bot, "!mp condition acc") == "Match win condition updated."
    assert int(latest(ref, match_id).scoring_type) == 1
    assert mp_ask(ref, bot, "!mp condition combo") == "Match win condition updated."
    assert int(latest(ref, match_id).scoring_type) == 2
    assert mp_ask(ref, bot, "!mp condition pp") == "PP is only useful as a win condition during scrims."
    assert mp_ask(ref, bot, "!mp condition fastest") == "Invalid win condition. (score, acc, combo, scorev2, *pp)"
    assert mp_ask(ref, bot, "!mp condition") == "Invalid syntax: !mp condition <type>"
    assert mp_ask(ref, bot, "!mp condition acc combo") == "Invalid syntax: !mp condition <type>"
    assert mp_ask(ref, bot, "!mp unloadpool now") == "Invalid syntax: !mp unloadpool"
    assert mp_ask(ref, bot, "!mp unloadpool") == "Mappool unloaded."


def play_round(ref, bot, players_scores: list[tuple[object, int]]) -> None:
    """Force-start a round; every player sends one score frame with its score and completes."""
    ref.drain(rounds=1)
    mp_say(ref, "!mp start force")
    assert wait_bot(ref, bot, target="#multiplayer", contains="Have fun!")
    for client, _ in players_scores:
        C.wait_for_id(client, C.MATCH_START)
    for client, score in players_scores:
        client.send(C.match_load_complete())
    for client, score in players_scores:
        client.send(C.match_score_update(C.score_frame(score=score)))
    for client, _ in players_scores:
        client.send(C.match_complete())
    for client, _ in players_scores:
        C.wait_for_id(client, C.MATCH_COMPLETE)


def test_mp_scrim_keeps_points(server, roomy, bot):
    ref, match_id, player = tourney_with_player(server, roomy, bot)
    assert mp_ask(ref, bot, "!mp scrim bo0") == "Not currently scrimming!"
    assert mp_ask(ref, bot, "!mp scrim bo2") == "Best of must be an odd number!"
    assert mp_ask(ref, bot, "!mp scrim bo17") == "Best of must be in range 0-15."
    assert mp_ask(ref, bot, "!mp scrim three") == "Invalid syntax: !mp scrim <bo#>"
    assert mp_ask(ref, bot, "!mp scrim bo3") == \
        f"A scrimmage has been started by {ref.user.name}; first to 2 points wins. Best of luck!"
    assert mp_ask(ref, bot, "!mp scrim bo3") == "Already scrimming!"
    assert mp_ask(ref, bot, "!mp condition pp") == "PP is not available as a win condition on this server."
    play_round(ref, bot, [(ref, 1000), (player, 5000)])
    first = wait_bot(ref, bot, target="#multiplayer", contains="takes the point!")
    assert first == f"{player.user.name} takes the point! (5000 [Match avg. 3000])"
    assert wait_bot(ref, bot, target="#multiplayer", contains="Total Score") == \
        f"Total Score: {player.user.name} - 1"
    play_round(ref, bot, [(ref, 7000), (player, 7000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="tie") == "The point has ended in a tie!"
    play_round(ref, bot, [(ref, 100), (player, 900)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the point!") == \
        f"{player.user.name} takes the point! (900 [Match avg. 500])"
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the match") == \
        f"{player.user.name} takes the match! Congratulations!"
    # the scrim is over
    assert mp_ask(ref, bot, "!mp scrim bo0") == "Not currently scrimming!"


def test_mp_scrim_teams_and_cancel(server, roomy, bot):
    ref, match_id, player = tourney_with_player(server, roomy, bot,
                                                name=f"CUP{secrets.token_hex(2)}: (Cats) vs. (Dogs)")
    assert mp_ask(ref, bot, "!mp set 2") == "Match settings have been updated!"
    assert mp_ask(ref, bot, f"!mp team {ref.user.name} blue") == f"{ref.user.name} is now in blue team"
    assert mp_ask(ref, bot, f"!mp team {player.user.name} red") == f"{player.user.name} is now in red team"
    assert mp_ask(ref, bot, "!mp scrim 1").startswith("A scrimmage has been started")
    play_round(ref, bot, [(ref, 3000), (player, 2000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the point!") == \
        "Cats takes the point! (3000 vs. 2000)"
    assert "takes the match, finishing CUP" in wait_bot(ref, bot, target="#multiplayer", contains="takes the match")
    assert mp_ask(ref, bot, "!mp scrim bo5").startswith("A scrimmage has been started")
    assert mp_ask(ref, bot, "!mp scrim bo0") == "Scrimming cancelled."


def make_pool(server, ref, bot, picks: int = 2) -> tuple[str, list[int], int]:
    """A pool of ``picks`` maps as HD1, NM2, ... made by ``ref`` (tournament staff): (name,
    beatmap ids, set id)."""
    name = f"p{secrets.token_hex(3)}"
    set_id, ids, _ = add_set(server, picks)
    assert ask(ref, bot, f"!pool create {name}") == f"{name} created."
    for index, (beatmap_id, label) in enumerate(zip(ids, ("HD1", "NM2", "DT3"))):
        np(ref, bot, beatmap_id)
        assert ask(ref, bot, f"!pool add {name} {label}").endswith(f"added to {name} as {label}.")
    return name, ids, set_id


def test_mp_ban_unban_pick(server, roomy, bot):
    ref, match_id, _ = make_tourney(server, roomy, bot)
    name, ids, set_id = make_pool(server, ref, bot)
    other, _, _ = make_pool(server, ref, bot, picks=1)
    assert mp_ask(ref, bot, "!mp ban HD1") == "No pool currently selected!"
    assert mp_ask(ref, bot, "!mp unban HD1") == "No pool currently selected!"
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} selected."
    assert mp_ask(ref, bot, "!mp ban") == "Invalid syntax: !mp ban <pick>"
    assert mp_ask(ref, bot, "!mp unban HD1 NM2") == "Invalid syntax: !mp unban <pick>"
    assert mp_ask(ref, bot, "!mp ban H1") == "Invalid pick syntax; correct example: HD2"
    assert mp_ask(ref, bot, "!mp ban XX1") == "Invalid pick syntax; correct example: HD2"
    assert mp_ask(ref, bot, "!mp ban DT3") == "Found no DT3 pick in the pool."
    assert mp_ask(ref, bot, "!mp unban hd1") == "That pick is not currently banned!"
    assert mp_ask(ref, bot, "!mp ban hd1") == "HD1 banned."
    assert mp_ask(ref, bot, "!mp ban HD1") == "That pick is already banned!"
    assert mp_ask(ref, bot, "!mp pick HD1") == "HD1 has been banned from being picked."
    before = latest(ref, match_id)
    assert before.beatmap_id != ids[0], "a banned pick changes nothing"
    # the other picks stay open
    assert mp_ask(ref, bot, "!mp pick NM2") == \
        f"Picked [https://osu.ppy.sh/b/{ids[1]} Artist - Song {set_id} [Diff 1]]. (NM2)"
    assert mp_ask(ref, bot, "!mp unban HD1") == "HD1 unbanned."
    assert mp_ask(ref, bot, "!mp pick HD1") == \
        f"Picked [https://osu.ppy.sh/b/{ids[0]} Artist - Song {set_id} [Diff 0]]. (HD1)"
    assert latest(ref, match_id).beatmap_id == ids[0]
    # bans belong to the loaded pool: another pool (or none) starts without them
    assert mp_ask(ref, bot, "!mp ban HD1") == "HD1 banned."
    assert mp_ask(ref, bot, f"!mp loadpool {other}") == f"{other} selected."
    assert mp_ask(ref, bot, "!mp unban HD1") == "That pick is not currently banned!"
    assert mp_ask(ref, bot, "!mp ban HD1") == "HD1 banned."
    assert mp_ask(ref, bot, "!mp unloadpool") == "Mappool unloaded."
    assert mp_ask(ref, bot, f"!mp loadpool {other}") == f"{other} selected."
    assert mp_ask(ref, bot, "!mp pick HD1").startswith("Picked ")
    # players who are not referees get no answer
    player = connect(server, on=roomy)
    invite_and_join(ref, bot, player, match_id)
    mp_say(player, "!mp ban HD1")
    assert not [t for t in sentinel(player, bot) if "banned" in t]


def test_mp_endscrim_and_rematch(server, roomy, bot):
    ref, match_id, player = tourney_with_player(server, roomy, bot)
    pname = player.user.name
    assert mp_ask(ref, bot, "!mp rematch") == "No scrim to rematch; to start one, use !mp scrim."
    assert mp_ask(ref, bot, "!mp endscrim") == "Not currently scrimming!"
    assert mp_ask(ref, bot, "!mp rematch now") == "Invalid syntax: !mp rematch"
    assert mp_ask(ref, bot, "!mp scrim bo3").startswith("A scrimmage has been started")
    assert mp_ask(ref, bot, "!mp rematch") == "No match points have yet been awarded!"
    play_round(ref, bot, [(ref, 1000), (player, 5000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="Total Score") == f"Total Score: {pname} - 1"
    # rematch during a scrim takes the last point back
    assert mp_ask(ref, bot, "!mp rm") == f"A point has been deducted from {pname}."
    assert mp_ask(ref, bot, "!mp rematch") == "No match points have yet been awarded!"
    play_round(ref, bot, [(ref, 3000), (player, 1000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="Total Score") == f"Total Score: {ref.user.name} - 1"
    play_round(ref, bot, [(ref, 2000), (player, 2000)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="tie") == "The point has ended in a tie!"
    assert mp_ask(ref, bot, "!mp rematch") == "The last point was a tie!"
    # endscrim ends it; rematch starts it again from zero with the same points to win
    assert mp_ask(ref, bot, "!mp endscrim") == "Scrimmage ended."
    assert mp_ask(ref, bot, "!mp end") == "Not currently scrimming!"
    assert mp_ask(ref, bot, "!mp condition pp") == "PP is only useful as a win condition during scrims."
    assert mp_ask(ref, bot, "!mp rematch") == \
        f"A rematch has been started by {ref.user.name}; first to 2 points wins. Best of luck!"
    assert mp_ask(ref, bot, "!mp scrim bo3") == "Already scrimming!"
    play_round(ref, bot, [(ref, 100), (player, 900)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="Total Score") == f"Total Score: {pname} - 1"
    play_round(ref, bot, [(ref, 100), (player, 900)])
    assert wait_bot(ref, bot, target="#multiplayer", contains="takes the match") == \
        f"{pname} takes the match! Congratulations!"
    # a won scrim can be played again; a cancelled one (bo0) cannot
    assert mp_ask(ref, bot, "!mp rematch").startswith(f"A rematch has been started by {ref.user.name}")
    assert mp_ask(ref, bot, "!mp scrim bo0") == "Scrimming cancelled."
    assert mp_ask(ref, bot, "!mp rematch") == "No scrim to rematch; to start one, use !mp scrim."


def test_mp_ban_and_rematch_in_the_official_style(server, start_server, bot):
    """``[bot] mp_style = official``: the same subcommands answer with bancho.py's texts."""
    srv = start_server(dict(SERVER_ENV, PEP_BOT_MP_STYLE="official"))
    ref = connect(server, 3 | TOURNAMENT_STAFF, on=srv)
    reply = ask(ref, bot, f"!mp make Official {secrets.token_hex(2)}")
    found = re.fullmatch(r"Created the tournament match https://osu\.ppy\.sh/mp/(\d+) .+", reply)
    assert found, reply
    match_id = int(found.group(1))
    assert ask(ref, bot, f"!mp join {match_id}") == f"Attempting to join match #{match_id}!"
    C.wait_for(ref, lambda p: p.id == C.CHANNEL_JOIN_SUCCESS and p.value == "#multiplayer")
    name, _, _ = make_pool(server, ref, bot, picks=1)
    assert mp_ask(ref, bot, f"!mp loadpool {name}") == f"{name} selected."
    assert mp_ask(ref, bot, "!mp ban HD1") == "HD1 banned."
    assert mp_ask(ref, bot, "!mp pick HD1") == "HD1 has been banned from being picked."
    assert mp_ask(ref, bot, "!mp unban HD1") == "HD1 unbanned."
    assert mp_ask(ref, bot, "!mp rematch") == "No scrim to rematch; to start one, use !mp scrim."
    assert mp_ask(ref, bot, "!mp scrim bo1").startswith("A scrimmage has been started")
    assert mp_ask(ref, bot, "!mp endscrim") == "Scrimmage ended."


# ------------------------------------------------------------------------------------ !clan
def test_clan_lifecycle(server, roomy, bot):
    owner = connect(server, on=roomy)
    other = connect(server, on=roomy)
    watcher = roomy.connect()
    tag = secrets.token_hex(2).upper()
    name = f"Clan {tag}"
    assert ask(owner, bot, "!clan create") == "Invalid syntax: !clan create <tag> <name>"
    assert ask(owner, bot, "!clan create TOOLONGTAG name") == "Clan tag may be 1-6 characters long."
    assert ask(owner, bot, f"!clan create {tag} x") == "Clan name may be 2-16 characters long."
    assert ask(owner, bot, f"!clan create {tag.lower()} {name}") == f"[{tag}] {name} founded."
    assert wait_bot(watcher, bot, target="#announce", contains=tag) == f"{owner.user.name} founded [{tag}] {name}."
    clan_id = server.db.scalar("SELECT id FROM clans WHERE tag=%s", (tag,))
    assert server.db.scalar("SELECT name FROM clans WHERE id=%s", (clan_id,)) == name
    assert server.db.scalar("SELECT perms FROM user_clans WHERE user=%s AND clan=%s", (owner.user_id, clan_id)) == 8
    assert ask(owner, bot, f"!clan create ZZ{tag} Another one") == f"You're already a member of [{tag}] {name}!"
    assert ask(other, bot, f"!clan create {tag} Something else") == "That tag has already been claimed by another clan."
    assert ask(other, bot, f"!clan create Q{tag} {name}") == "That name has already been claimed by another clan."
    # a member (joined on the website: a user_clans row with perms 1)
    server.db.execute("INSERT INTO user_clans (user, clan, perms) VALUES (%s, %s, 1)", (other.user_id, clan_id))
    info = ask(owner, bot, f"!clan info {tag}")
    assert info == f"[{tag}] {name}"
    assert [wait_bot(owner, bot), wait_bot(owner, bot)] == [f"[Owner] {owner.user.name}", f"[Member] {other.user.name}"]
    assert ask(owner, bot, "!clan info NOPE99") == "Could not find a clan by that tag."
    assert ask(owner, bot, "!clan list").endswith("clans listing (" +
                                                  str(server.db.scalar("SELECT COUNT(*) FROM clans")) + " total).")
    assert ask(owner, bot, "!clan list x") == "Invalid syntax: !clan list (page)"
    assert ask(owner, bot, "!clan list 99999") == "No clans found."
    assert ask(owner, bot, "!clan leave").startswith("You must transfer your clan's ownership before leaving it.")
    assert ask(other, bot, f"!clan disband {tag}") == "Only staff members may disband the clans of others."
    assert ask(other, bot, "!clan disband") == "Only the owner may disband a clan; use !clan leave."
    assert ask(other, bot, "!clan leave") == f"You have successfully left [{tag}] {name}."
    assert server.db.scalar("SELECT COUNT(*) FROM user_clans WHERE user=%s", (other.user_id,)) == 0
    assert ask(other, bot, "!clan leave") == "You're not in a clan."
    assert ask(owner, bot, "!clan disband") == f"[{tag}] {name} disbanded."
    assert wait_bot(watcher, bot, target="#announce", contains="disbanded") == \
        f"{owner.user.name} disbanded [{tag}] {name}."
    assert server.db.scalar("SELECT COUNT(*) FROM clans WHERE id=%s", (clan_id,)) == 0
    assert server.db.scalar("SELECT COUNT(*) FROM user_clans WHERE clan=%s", (clan_id,)) == 0
    assert ask(owner, bot, "!clan disband") == "You're not a member of a clan!"
    # staff may disband the clan of others
    assert ask(other, bot, f"!clan create {tag} Second {tag}") == f"[{tag}] Second {tag} founded."
    staff = connect(server, 3 | MANAGE_USERS, on=roomy)
    assert ask(staff, bot, f"!clan disband {tag.lower()}") == f"[{tag}] Second {tag} disbanded."
    assert ask(staff, bot, "!clan frob") == "Invalid subcommand. Use !clan help."
