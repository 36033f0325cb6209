"""``!mp`` with the official server's reply texts (``[bot] mp_style = official``; docs/irc.md).

Referee tools written for the official server parse the bot's replies; this style answers with
those texts and takes slots numbered 1–16. The subcommands both styles share (close, lock,
size, move, host, abort, invite, map, kick, password, scorev, team...) are implemented once in
:mod:`services.commands.mp`, which reads their official texts from :data:`TEXTS`; this module
keeps what only the official style has or does differently (its ``make``, ``set``,
``settings``, ``start``/``timer`` countdowns, ``mods``, ``name``, several referees at once).
Every match change goes through :mod:`services.multiplayer`, and who may use ``!mp`` is decided
by :mod:`services.commands.mp` exactly as in the Kawata style.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from types import MappingProxyType
from typing import TYPE_CHECKING, Awaitable, Mapping

from common.ripple import safe_username
from objects import match as m
from services import channels
from services import multiplayer as mp
from services.commands import Context

if TYPE_CHECKING:
    from objects.match import Match

log = logging.getLogger("pep.commands.mp")

USER_NOT_FOUND = "User not found"
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


def cancel_countdown(match: Match) -> bool:
    """Cancel the match's countdown (``match.countdown``); False when none runs."""
    task, match.countdown = match.countdown, None
    if task is None:
        return False
    task.cancel()
    match.starting = False
    return True


async def as_countdown(match: Match, ticks: Awaitable[None], start: bool) -> None:
    """Run ``ticks`` (the body of a countdown, both ``!mp`` styles) as the match's countdown
    task: a failure is logged, never raised (a cancel goes through); at the end
    ``match.starting`` is cleared when the countdown was a start's, and ``match.countdown``
    forgotten when it is still this task."""
    try:
        await ticks
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("countdown of match %d failed", match.id)
    finally:
        if start:
            match.starting = False
        if match.countdown is asyncio.current_task():
            match.countdown = None


def join_referee_channel(ctx: Context, match: Match) -> None:
    """An IRC referee (docs/irc.md) joins the new match's channel, ``#mp_<id>`` on IRC, at once
    (both ``!mp`` styles)."""
    if getattr(ctx.sender, "irc", None) is None:
        return
    channel = ctx.state.channels.get(match.channel_name)
    if channel is not None and channel.name not in ctx.sender.channels:
        channels.join_channel(ctx.state, ctx.sender, channel)


def create_tourney(ctx: Context, name: str, beatmap_name: str) -> Match | str:
    """The tournament match of ``!mp make <name>`` in both styles: no host, a random password,
    ``beatmap_name`` shown until a map is set, the sender its referee (an IRC referee joins its
    channel ``#mp_<id>`` at once); or the text of :class:`services.multiplayer.MatchError` when
    it cannot be made (docs/commands.md)."""
    password = hashlib.md5(secrets.token_bytes(16)).hexdigest()
    try:
        match = mp.create_match(ctx.state, None, name, password, beatmap_name=beatmap_name, beatmap_id=0,
                                mode=0, tourney=True, creator=ctx.sender)
    except mp.MatchError as exc:
        return str(exc)
    match.referees.add(ctx.sender.user_id)
    join_referee_channel(ctx, match)
    return match


def make(ctx: Context, name: str) -> str:
    """``!mp make <name>``: a tournament match with the sender as referee (:func:`create_tourney`)."""
    name = name.strip()
    if not name:
        return "Wrong syntax: !mp make <name>"
    match = create_tourney(ctx, name, "")
    if isinstance(match, str):
        return match
    return f"Created the tournament match {MATCH_URL.format(id=match.id)} {match.name}"


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
    cancel_countdown(match)
    task = ctx.state.spawn(_countdown(ctx, match, seconds, start), f"countdown of match {match.id}")
    if task is not None:
        if start:
            match.starting = True
        match.countdown = task


async def _countdown(ctx: Context, match: Match, seconds: int, start: bool) -> None:
    """``Match starts in ...`` / ``Countdown ends in ...`` at the official marks, then start
    (the event line ``The match has started!`` follows) or ``Countdown finished``."""
    words = "Match starts in" if start else "Countdown ends in"

    async def ticks() -> None:
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

    await as_countdown(match, ticks(), start)


def _timer_command(ctx: Context, match: Match, args: list[str]) -> str | None:
    if len(args) > 1 or (args and not args[0].isdigit()):
        return "Wrong syntax: !mp timer [<time>]"
    seconds = int(args[0]) if args else 30
    if not 1 <= seconds <= MAX_COUNTDOWN:
        return f"The countdown can be at most {MAX_COUNTDOWN} seconds."
    _timer(ctx, match, seconds, start=False)
    return None


def _aborttimer(ctx: Context, match: Match, args: list[str]) -> str:
    cancel_countdown(match)
    return "Countdown aborted"


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


#: the official style's own subcommands; the ones both styles share are implemented once in
#: :mod:`services.commands.mp` with :data:`TEXTS`
HANDLERS = {
    "set": _set, "settings": _settings, "start": _start, "timer": _timer_command, "aborttimer": _aborttimer,
    "mods": _mods, "name": _name, "addref": _addref, "removeref": _removeref, "rmref": _removeref,
    "listrefs": _listrefs, "listref": _listrefs,
}
#: the official server's texts of the subcommands both styles share (services.commands.mp.Style)
TEXTS: Mapping[str, str] = MappingProxyType({
    "closed": "Closed the match",
    "locked": "Locked the match",
    "unlocked": "Unlocked the match",
    "size_syntax": "Wrong syntax: !mp size <size>",
    "size_done": "Changed match to size {size}",
    "move_syntax": "Wrong syntax: !mp move <username> <slot>",
    "no_such_user": USER_NOT_FOUND,
    "not_seated": USER_NOT_FOUND,
    "slot_taken": "Slot {slot} is not available",
    "moved": "Moved {name} into slot {slot}",
    "host_syntax": "Wrong syntax: !mp host <username>",
    "host_failed": USER_NOT_FOUND,
    "host_done": "Changed match host to {name}",
    "host_cleared": "Cleared match host",
    "countdown_aborted": "Countdown aborted",
    "not_in_progress": "The match is not in progress",
    "aborted": "Aborted the match",
    "invite_syntax": "Wrong syntax: !mp invite <username>",
    "invite_offline": USER_NOT_FOUND,
    "invited": "Invited {name} to the room",
    "invite_notice": "",
    "map_syntax": "Wrong syntax: !mp map <mapid> [<playmode>]",
    "map_bad_mode": "Invalid map ID provided",
    "map_bad_id": "Invalid map ID provided",
    "map_unknown": "Invalid map ID provided",
    "map_done": "Changed beatmap to " + BEATMAP_URL + " {name}",
    "kick_syntax": "Wrong syntax: !mp kick <username>",
    "kick_missing": USER_NOT_FOUND,
    "kicked": "Kicked {name} from the match",
    "password_set": "Changed the match password",
    "password_removed": "Removed the match password",
    "password_random": "Changed the match password",
    "scorev_syntax": "Wrong syntax: !mp scorev <1|2>",
    "scorev_done": "Changed match settings to {condition}",
    "team_syntax": "Wrong syntax: !mp team <username> <colour>",
    "team_colour": "Wrong syntax: !mp team <username> <colour>",
    "team_locked": "",
    "team_refused": "Teams can only be changed in team modes and not during a round",
    "team_done": "Moved {name} to team {Colour}",
})
#: subcommands that the official server has beyond the Kawata ones (docs/irc.md)
EXTRA = ("timer", "aborttimer", "name", "removeref", "listrefs", "makeprivate")

