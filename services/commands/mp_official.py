"""``!mp`` with the official server's reply texts (``[bot] mp_style = official``; docs/irc.md).

Referee tools written for the official server parse the bot's replies; this module answers
with those texts and takes slots numbered 1–16. It parses and answers only: every match
change goes through :mod:`services.multiplayer` (the one implementation of the match rules), and
who may use ``!mp`` is decided by :mod:`services.commands.mp` exactly as in the Kawata style.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from typing import TYPE_CHECKING

from common.ripple import safe_username
from objects import match as m
from services import channels
from services import multiplayer as mp
from services.commands import Context

if TYPE_CHECKING:
    from objects.match import Match
    from objects.token import Token

log = logging.getLogger("pep.commands.mp")

USER_NOT_FOUND = "User not found"
INVALID = "Invalid subcommand"
MATCH_NOT_FOUND = "Match not found"
CANT_START = "Couldn't start match. Make sure there is at least one player who has the beatmap."
MAX_COUNTDOWN = 600  # seconds, as the Kawata style
MOD_WORDS = {"nf": 1, "ez": 2, "hd": 8, "hr": 16, "sd": 32, "dt": 64, "ht": 256, "nc": 512 | 64, "fl": 1024,
             "fi": 1048576, "so": 4096, "pf": 16384 | 32}
MATCH_URL = "https://osu.ppy.sh/mp/{id}"
BEATMAP_URL = "https://osu.ppy.sh/b/{id}"
USER_URL = "https://osu.ppy.sh/u/{id}"
TEAM_MODES = {m.HEAD_TO_HEAD: "HeadToHead", m.TAG_COOP: "TagCoop", m.TEAM_VS: "TeamVs", m.TAG_TEAM_VS: "TagTeamVs"}
WIN_CONDITIONS = {m.SCORE: "Score", m.ACCURACY: "Accuracy", m.COMBO: "Combo", m.SCORE_V2: "ScoreV2"}
MOD_NAMES = (("NoFail", 1), ("Easy", 2), ("Hidden", 8), ("HardRock", 16), ("SuddenDeath", 32), ("Perfect", 16384),
             ("Nightcore", 512), ("DoubleTime", 64), ("HalfTime", 256), ("Flashlight", 1024), ("FadeIn", 1048576),
             ("SpunOut", 4096), ("Relax", 128), ("Autopilot", 8192))
STATUS = {m.READY: "Ready", m.NOT_READY: "Not Ready", m.NO_MAP: "No Map", m.PLAYING: "Playing", m.COMPLETE: "Playing"}
COUNTDOWN_MARKS = (600, 540, 480, 420, 360, 300, 240, 180, 120, 90, 60, 30, 10, 5, 4, 3, 2, 1)


def mod_names(mods: int) -> list[str]:
    """Readable names of a mod mask, NC and PF hiding DT and SD."""
    return [name for name, bit in MOD_NAMES if mods & bit and not (bit == 64 and mods & 512)
            and not (bit == 32 and mods & 16384)]


def duration(seconds: int) -> str:
    """``1 minute and 30 seconds``, ``10 seconds``, ``1 second`` (the official countdown words)."""
    minutes, rest = divmod(seconds, 60)
    parts = []
    if minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{rest} second{'s' if rest != 1 else ''}")
    return " and ".join(parts)


def _seated(match: Match, name: str) -> Token | None:
    safe = safe_username(name)
    for slot in match.slots:
        if slot.token is not None and slot.token.safe_name == safe:
            return slot.token
    return None


def _cancel_countdown(match: Match) -> bool:
    """Cancel the match's countdown (``match.countdown``); False when none runs."""
    task, match.countdown = match.countdown, None
    if task is None:
        return False
    task.cancel()
    match.starting = False
    return True


def join_referee_channel(ctx: Context, match: Match) -> None:
    """An IRC referee (docs/irc.md) joins the new match's channel, ``#mp_<id>`` on IRC, at once
    (both ``!mp`` styles)."""
    if getattr(ctx.sender, "irc", None) is None:
        return
    channel = ctx.state.channels.get(match.channel_name)
    if channel is not None and channel.name not in ctx.sender.channels:
        channels.join_channel(ctx.state, ctx.sender, channel)


def _slot_arg(text: str) -> int | None:
    """A 1-16 slot argument as a 0-15 index, or None."""
    return int(text) - 1 if text.isdigit() and 1 <= int(text) <= m.SLOTS else None


def make(ctx: Context, name: str) -> str:
    """``!mp make <name>``: a tournament match with the sender as referee; an IRC referee joins
    its channel ``#mp_<id>`` at once."""
    name = name.strip()
    if not name:
        return "Wrong syntax: !mp make <name>"
    password = hashlib.md5(secrets.token_bytes(16)).hexdigest()
    try:
        match = mp.create_match(ctx.state, None, name, password, beatmap_name="", beatmap_id=0,
                                mode=0, tourney=True, creator=ctx.sender)
    except mp.MatchError as exc:
        return str(exc)
    match.referees.add(ctx.sender.user_id)
    join_referee_channel(ctx, match)
    return f"Created the tournament match {MATCH_URL.format(id=match.id)} {match.name}"


def dispatch(ctx: Context, sub: str, args: list[str], match: Match):
    """Answer subcommand ``sub`` of a match command in ``match``'s channel (the sender is a referee)."""
    handler = HANDLERS.get(sub)
    if handler is None:
        return INVALID
    try:
        return handler(ctx, match, args)
    except mp.MatchError as exc:
        return str(exc)


def _close(ctx: Context, match: Match, args: list[str]) -> None:
    _cancel_countdown(match)
    ctx.reply("Closed the match")
    mp.dispose(ctx.state, match)
    return None


def _lock(ctx: Context, match: Match, args: list[str]) -> str:
    mp.set_referee_lock(match, True)
    return "Locked the match"


def _unlock(ctx: Context, match: Match, args: list[str]) -> str:
    mp.set_referee_lock(match, False)
    return "Unlocked the match"


def _size(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= m.SLOTS:
        return "Wrong syntax: !mp size <size>"
    mp.set_size(ctx.state, match, max(2, int(args[0])))
    return f"Changed match to size {int(args[0])}"


def _set(ctx: Context, match: Match, args: list[str]) -> str:
    if not 1 <= len(args) <= 3 or not all(a.isdigit() for a in args):
        return "Wrong syntax: !mp set <teammode> [<scoremode>] [<size>]"
    team_type = int(args[0])
    scoring = int(args[1]) if len(args) >= 2 else None
    size = int(args[2]) if len(args) == 3 else None
    if size is not None and not 1 <= size <= m.SLOTS:
        return "Wrong syntax: !mp set <teammode> [<scoremode>] [<size>]"
    mp.set_teams(ctx.state, match, team_type, scoring)
    if size is not None and not match.disposed:
        mp.set_size(ctx.state, match, max(2, size))
    slots = sum(1 for slot in match.slots if slot.status != m.LOCKED)
    return (f"Changed match settings to {slots} slots, {TEAM_MODES.get(match.team_type, '?')}, "
            f"{WIN_CONDITIONS.get(match.scoring_type, '?')}")


def _move(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 2:
        return "Wrong syntax: !mp move <username> <slot>"
    index = _slot_arg(args[1])
    if index is None:
        return "Wrong syntax: !mp move <username> <slot>"
    token = _seated(match, args[0])
    if token is None:
        return USER_NOT_FOUND
    if not mp.move(ctx.state, match, token, index, referee=True):
        return f"Slot {index + 1} is not available"
    return f"Moved {token.username} into slot {index + 1}"


def _team(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 2 or args[1].lower() not in ("red", "blue"):
        return "Wrong syntax: !mp team <username> <colour>"
    token = _seated(match, args[0])
    if token is None:
        return USER_NOT_FOUND
    colour = args[1].lower()
    if not mp.set_team(ctx.state, match, token, m.RED if colour == "red" else m.BLUE):
        return "Teams can only be changed in team modes and not during a round"
    return f"Moved {token.username} to team {colour.capitalize()}"


def _host(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1:
        return "Wrong syntax: !mp host <username>"
    token = _seated(match, args[0])
    if token is None or not mp.set_host(ctx.state, match, token):
        return USER_NOT_FOUND
    return f"Changed match host to {token.username}"


def _clearhost(ctx: Context, match: Match, args: list[str]) -> str:
    mp.set_host(ctx.state, match, None)
    return "Cleared match host"


def _settings(ctx: Context, match: Match, args: list[str]) -> list[str]:
    lines = [f"Room name: {match.name}, History: {MATCH_URL.format(id=match.id)}"]
    if match.beatmap_id > 0:
        lines.append(f"Beatmap: {BEATMAP_URL.format(id=match.beatmap_id)} {match.beatmap_name}")
    lines.append(f"Team mode: {TEAM_MODES.get(match.team_type, '?')}, "
                 f"Win condition: {WIN_CONDITIONS.get(match.scoring_type, '?')}")
    active = mod_names(match.mods) + (["Freemod"] if match.freemod else [])
    if active:
        lines.append("Active mods: " + ", ".join(active))
    seated = [(index, slot) for index, slot in enumerate(match.slots) if slot.token is not None]
    lines.append(f"Players: {len(seated)}")
    for index, slot in seated:
        token = slot.token
        assert token is not None
        tags = []
        if match.host is token:
            tags.append("Host")
        if slot.team in (m.RED, m.BLUE) and match.team_type in m.TEAM_MODES:
            tags.append("Team " + ("Red" if slot.team == m.RED else "Blue"))
        if match.freemod and slot.mods:
            tags.append(", ".join(mod_names(slot.mods)))
        extra = f" [{' / '.join(tags)}]" if tags else ""
        lines.append(f"Slot {index + 1:<2} {STATUS.get(slot.status, 'Not Ready'):<9} "
                     f"{USER_URL.format(id=token.user_id)} {token.username:<15}{extra}".rstrip())
    return lines


def _start(ctx: Context, match: Match, args: list[str]) -> str | None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return "Wrong syntax: !mp start [<time>]"
    seconds = int(args[0]) if args else 0
    if seconds > MAX_COUNTDOWN:
        return f"The countdown can be at most {MAX_COUNTDOWN} seconds."
    if match.in_progress:
        return "The match has already been started"
    if seconds == 0:
        if not mp.start(ctx.state, match):
            return CANT_START
        return "Started the match"
    _timer(ctx, match, seconds, start=True)
    return None


def _timer(ctx: Context, match: Match, seconds: int, start: bool) -> None:
    _cancel_countdown(match)
    task = ctx.state.spawn(_countdown(ctx, match, seconds, start), f"countdown of match {match.id}")
    if task is not None:
        if start:
            match.starting = True
        match.countdown = task


async def _countdown(ctx: Context, match: Match, seconds: int, start: bool) -> None:
    """``Match starts in ...`` / ``Countdown ends in ...`` at the official marks, then start
    (the event line ``The match has started!`` follows) or ``Countdown finished``."""
    words = "Match starts in" if start else "Countdown ends in"
    try:
        for left in range(seconds, 0, -1):
            if left == seconds or left in COUNTDOWN_MARKS:
                ctx.reply(f"{words} {duration(left)}")
            await asyncio.sleep(1)
            if match.disposed or (start and match.in_progress):
                return
        match.starting = False
        if not start:
            ctx.reply("Countdown finished")
        elif not mp.start(ctx.state, match):
            ctx.reply(CANT_START)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("countdown of match %d failed", match.id)
    finally:
        if start:
            match.starting = False
        if match.countdown is asyncio.current_task():
            match.countdown = None


def _timer_command(ctx: Context, match: Match, args: list[str]) -> str | None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return "Wrong syntax: !mp timer [<time>]"
    seconds = int(args[0]) if args else 30
    if not 1 <= seconds <= MAX_COUNTDOWN:
        return f"The countdown can be at most {MAX_COUNTDOWN} seconds."
    _timer(ctx, match, seconds, start=False)
    return None


def _aborttimer(ctx: Context, match: Match, args: list[str]) -> str:
    _cancel_countdown(match)
    return "Countdown aborted"


def _abort(ctx: Context, match: Match, args: list[str]) -> str:
    if _cancel_countdown(match):
        return "Countdown aborted"
    if not mp.abort(ctx.state, match):
        return "The match is not in progress"
    return "Aborted the match"


def _invite(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1:
        return "Wrong syntax: !mp invite <username>"
    token = ctx.state.tokens.by_name(safe_username(args[0]))
    if token is None or token.is_bot or token.tournament or token.kicked or ctx.state.bot is None:
        return USER_NOT_FOUND
    mp.invite(ctx.state, match, ctx.state.bot, token)
    return f"Invited {token.username} to the room"


async def _map(ctx: Context, match: Match, args: list[str]) -> str:
    if not 1 <= len(args) <= 2 or not args[0].isdigit() or (len(args) == 2 and not args[1].isdigit()):
        return "Wrong syntax: !mp map <mapid> [<playmode>]"
    beatmap_id = int(args[0])
    mode = int(args[1]) if len(args) == 2 else None
    if (mode is not None and not 0 <= mode <= 3) or not 0 < beatmap_id < 2**31:
        return "Invalid map ID provided"
    assert ctx.state.repo is not None
    row = await ctx.state.repo.beatmap_by_id(beatmap_id)
    if row is None:
        return "Invalid map ID provided"
    if match.disposed:
        return MATCH_NOT_FOUND
    try:
        mp.set_map(ctx.state, match, beatmap_id, str(row.get("beatmap_md5") or ""), str(row.get("song_name") or ""),
                   mode)
    except mp.MatchError as exc:
        return str(exc)
    return f"Changed beatmap to {BEATMAP_URL.format(id=beatmap_id)} {match.beatmap_name}"


def _mods(ctx: Context, match: Match, args: list[str]) -> str:
    words = [a.lower() for a in args]
    mods = 0
    freemod = False
    for word in words:
        if word.isdigit():
            mods |= int(word) & 0x7FFFFFFF
        elif word == "freemod":
            freemod = True
        elif word in MOD_WORDS:
            mods |= MOD_WORDS[word]
        elif word != "none":
            return "Wrong syntax: !mp mods <mod> [<mod>] [...]"
    mp.set_mods(ctx.state, match, mods, freemod=freemod)
    names = mod_names(match.mods)
    head = "Enabled " + ", ".join(names) if names else "Disabled all mods"
    return f"{head}, {'enabled' if match.freemod else 'disabled'} FreeMod"


def _kick(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1:
        return "Wrong syntax: !mp kick <username>"
    token = _seated(match, args[0])
    if token is None or not mp.kick(ctx.state, match, token):
        return USER_NOT_FOUND
    return f"Kicked {token.username} from the match"


def _password(ctx: Context, match: Match, args: list[str]) -> str:
    password = " ".join(args)
    mp.set_password(ctx.state, match, password)
    return "Changed the match password" if password else "Removed the match password"


def _randompassword(ctx: Context, match: Match, args: list[str]) -> str:
    mp.set_password(ctx.state, match, hashlib.md5(secrets.token_bytes(16)).hexdigest())
    return "Changed the match password"


def _name(ctx: Context, match: Match, args: list[str]) -> str:
    name = " ".join(args).strip()
    if not name or len(name) > m.MAX_NAME:
        return "Wrong syntax: !mp name <name>"
    match.name = name
    mp.send_updates(ctx.state, match)
    return f"Room name updated to \"{name}\""


async def _change_referees(ctx: Context, match: Match, args: list[str], add: bool) -> str:
    """``!mp addref`` / ``!mp removeref`` of up to 8 users; ``User not found`` stops at the first unknown."""
    if not args:
        return f"Wrong syntax: !mp {'addref' if add else 'removeref'} <username> [<username>] [...]"
    assert ctx.state.repo is not None
    names = []
    for name in args[:8]:
        user = await ctx.state.repo.user_by_safe_name(safe_username(name))
        if user is None:
            return USER_NOT_FOUND
        refs = match.referees
        (refs.add if add else refs.discard)(int(user["id"]))
        names.append(str(user["username"]))
    return f"{'Added' if add else 'Removed'} {', '.join(names)} {'to' if add else 'from'} the match referees"


def _addref(ctx: Context, match: Match, args: list[str]):
    return _change_referees(ctx, match, args, True)


def _removeref(ctx: Context, match: Match, args: list[str]):
    return _change_referees(ctx, match, args, False)


def _listrefs(ctx: Context, match: Match, args: list[str]) -> list[str]:
    names = []
    for user_id in sorted(match.referees):
        token = ctx.state.tokens.user(user_id)
        names.append(token.username if token is not None else f"#{user_id}")
    return ["Match referees:"] + names


def _scorev(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1 or args[0] not in ("1", "2"):
        return "Wrong syntax: !mp scorev <1|2>"
    mp.set_teams(ctx.state, match, scoring_type=m.SCORE_V2 if args[0] == "2" else m.SCORE)
    return f"Changed match settings to {WIN_CONDITIONS.get(match.scoring_type, '?')}"


HANDLERS = {
    "close": _close, "lock": _lock, "unlock": _unlock, "size": _size, "set": _set, "move": _move, "team": _team,
    "host": _host, "clearhost": _clearhost, "settings": _settings, "start": _start, "timer": _timer_command,
    "aborttimer": _aborttimer, "abort": _abort, "invite": _invite, "map": _map, "mods": _mods, "kick": _kick,
    "password": _password, "name": _name, "addref": _addref, "removeref": _removeref, "rmref": _removeref,
    "listrefs": _listrefs, "listref": _listrefs, "scorev": _scorev, "randompassword": _randompassword,
}
#: subcommands that the official server has beyond the Kawata ones (docs/irc.md)
EXTRA = ("timer", "aborttimer", "name", "removeref", "listrefs", "makeprivate")

