"""A scripted referee session over IRC (docs/irc.md, "Referees"): ``!mp make`` by PM to the bot,
players of the test suite (game clients) join and play a round, and every line the bot writes in
``#mp_<id>`` is checked against the official server's texts (``[bot] mp_style = official``).
The game players read the same lines in ``#multiplayer``."""

from __future__ import annotations

import re
import secrets

import pytest

from tests import client as C
from tests.integration import test_multiplayer_common as M
from tests.irc_client import IrcUser

TOURNAMENT_STAFF = 2097152
OFFICIAL = {"PEP_BOT_MP_STYLE": "official", "PEP_CHAT_SPAM_LIMIT": "1000"}


@pytest.fixture
def world(server, start_server):
    srv = start_server(OFFICIAL)
    made = []
    yield srv, made
    for u in made:
        u.close()


def referee(server, srv, made) -> IrcUser:
    user = server.new_user()
    server.set_privileges(user.id, 3 | TOURNAMENT_STAFF)
    ref = IrcUser(srv, user.name)
    ref.user = user
    made.append(ref)
    return ref.welcome()


def bot_line(ref: IrcUser, bot: str, channel: str, expected: str | None = None, pattern: str | None = None,
             timeout: float = 8.0) -> str:
    """The next line of the bot in ``channel`` equal to ``expected`` / matching ``pattern``."""

    def pred(e) -> bool:
        if e.type != "pubmsg" or e.source != bot or e.target.lower() != channel.lower():
            return False
        return (expected is None or e.text() == expected) and (pattern is None or re.fullmatch(pattern, e.text()))

    return ref.wait(pred, timeout, f"bot line {expected or pattern!r} in {channel}").text()


def test_referee_session_official_texts(server, world):
    srv, made = world
    bot = server.bot_name().replace(" ", "_")
    ref = referee(server, srv, made)
    # !mp make by PM: the official reply, and the referee is in #mp_<id> at once
    name = f"OWC {secrets.token_hex(2)}"
    ref.privmsg(bot, f"!mp make {name}")
    reply = ref.wait_type("privmsg", lambda e: e.source == bot).text()
    found = re.fullmatch(r"Created the tournament match https://osu\.ppy\.sh/mp/(\d+) (.+)", reply)
    assert found and found.group(2) == name, reply
    match_id = int(found.group(1))
    channel = f"#mp_{match_id}"
    ref.wait(lambda e: e.type == "join" and e.source == ref.nick and e.target.lower() == channel, anywhere=True)
    ref.wait(lambda e: e.type == "endofnames" and e.args[0].lower() == channel, anywhere=True)

    def mp(text: str) -> None:
        ref.privmsg(channel, text)

    # players of the test suite are invited and join with the password of the invite link
    players = [srv.login(server.new_user()) for _ in range(2)]
    for index, player in enumerate(players):
        mp(f"!mp invite {player.user.name}")
        bot_line(ref, bot, channel, f"Invited {player.user.name} to the room")
        invite = C.wait_for_id(player, C.MATCH_INVITE).value
        link = re.search(r"\[osump://(\d+)/(\S*) ", invite.content)
        M.join(player, match_id, link.group(2))
        bot_line(ref, bot, channel, f"{player.user.name} joined in slot {index + 1}.")
    a, b = players
    an, bn = a.user.name, b.user.name
    # settings, teams, slots, host
    mp("!mp set 2 3 8")
    bot_line(ref, bot, channel, "Changed match settings to 8 slots, TeamVs, ScoreV2")
    mp(f"!mp team {an} blue")
    bot_line(ref, bot, channel, f"{an} changed to Blue")
    bot_line(ref, bot, channel, f"Moved {an} to team Blue")
    mp(f"!mp move {bn} 5")
    bot_line(ref, bot, channel, f"{bn} moved to slot 5")
    bot_line(ref, bot, channel, f"Moved {bn} into slot 5")
    mp(f"!mp host {an}")
    bot_line(ref, bot, channel, f"{an} became the host.")
    bot_line(ref, bot, channel, f"Changed match host to {an}")
    mp("!mp host nobody_here_x")
    bot_line(ref, bot, channel, "User not found")
    mp("!mp addref nobody_here_x")
    bot_line(ref, bot, channel, "User not found")
    # beatmap and mods
    bid = 800000 + secrets.randbelow(90000)
    md5 = secrets.token_hex(16)
    song = "Camellia - Exit This Earth [Extra]"
    server.db.execute("INSERT INTO beatmaps (beatmap_id, beatmapset_id, beatmap_md5, song_name, ranked) "
                      "VALUES (%s, 1, %s, %s, 2)", (bid, md5, song))
    mp(f"!mp map {bid}")
    bot_line(ref, bot, channel, f"Beatmap changed to: {song} (https://osu.ppy.sh/b/{bid})")
    bot_line(ref, bot, channel, f"Changed beatmap to https://osu.ppy.sh/b/{bid} {song}")
    mp("!mp mods hd hr")
    bot_line(ref, bot, channel, "Enabled Hidden, HardRock, disabled FreeMod")
    mp(f"!mp name {name} II")
    bot_line(ref, bot, channel, f"Room name updated to \"{name} II\"")
    mp("!mp settings")
    bot_line(ref, bot, channel, f"Room name: {name} II, History: https://osu.ppy.sh/mp/{match_id}")
    bot_line(ref, bot, channel, f"Beatmap: https://osu.ppy.sh/b/{bid} {song}")
    bot_line(ref, bot, channel, "Team mode: TeamVs, Win condition: ScoreV2")
    bot_line(ref, bot, channel, "Active mods: Hidden, HardRock")
    bot_line(ref, bot, channel, "Players: 2")
    bot_line(ref, bot, channel, pattern=rf"Slot 1 +Not Ready +https://osu\.ppy\.sh/u/{a.user.id} {an} *"
                                        r"\[Host / Team Blue\]")
    bot_line(ref, bot, channel, pattern=rf"Slot 5 +Not Ready +https://osu\.ppy\.sh/u/{b.user.id} {bn} *"
                                        r"\[Team (Red|Blue)\]")
    # ready, countdown, round
    for player in players:
        player.send(C.match_ready())
    bot_line(ref, bot, channel, "All players are ready")
    mp("!mp start 2")
    bot_line(ref, bot, channel, "Match starts in 2 seconds")
    bot_line(ref, bot, channel, "Match starts in 1 second")
    bot_line(ref, bot, channel, "The match has started!")
    for player in players:
        C.wait_for_id(player, C.MATCH_START)
        player.send(C.match_load_complete())
    a.send(C.match_score_update(C.score_frame(score=424242, hp=200, scorev2=True)))
    b.send(C.match_score_update(C.score_frame(score=1337, hp=200, scorev2=True)))
    b.send(C.match_failed())
    a.send(C.match_complete())
    b.send(C.match_complete())
    bot_line(ref, bot, channel, f"{an} finished playing (Score: 424242, PASSED).")
    bot_line(ref, bot, channel, f"{bn} finished playing (Score: 1337, FAILED).")
    bot_line(ref, bot, channel, "The match has finished!")
    # the game players read the same lines in #multiplayer
    for line in ("All players are ready", "The match has started!", "The match has finished!",
                 f"{an} finished playing (Score: 424242, PASSED)."):
        C.wait_for(a, lambda p, line=line: C.is_message(p, sender=server.bot_name(), content=line,
                                                        target="#multiplayer"), description=line)
    # a timer, an abort of it, a player leaving, the match closing
    mp("!mp timer 30")
    bot_line(ref, bot, channel, "Countdown ends in 30 seconds")
    mp("!mp aborttimer")
    bot_line(ref, bot, channel, "Countdown aborted")
    b.send(C.match_part())
    bot_line(ref, bot, channel, f"{bn} left the game.")
    mp("!mp password")
    bot_line(ref, bot, channel, "Removed the match password")
    mp("!mp close")
    bot_line(ref, bot, channel, "Closed the match")
    ref.wait(lambda e: e.type == "part" and e.source == ref.nick and e.target.lower() == channel)
    C.wait_for(a, lambda p: p.id == C.MATCH_DISPOSE and p.value == match_id)


def test_irc_user_cannot_join_foreign_match_channel(server, world):
    srv, made = world
    host = srv.login(server.new_user())
    match_id, _ = M.create(host)
    outsider = IrcUser(srv, server.new_user().name)
    made.append(outsider)
    outsider.welcome()
    outsider.conn.join(f"#mp_{match_id}")
    outsider.wait_type("inviteonlychan")
    # the host's own IRC connection may (its game client plays in it) and reads the match chat
    own = IrcUser(srv, host.user.name)
    made.append(own)
    own.welcome()
    own.join(f"#mp_{match_id}")
    host.send(C.public_message("#multiplayer", "glhf"))
    own.wait_type("pubmsg", lambda e: e.text() == "glhf" and e.target == f"#mp_{match_id}")
