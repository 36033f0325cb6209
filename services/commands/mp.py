"""``!mp``: the referee commands (docs/rules.md §8.4, docs/rules.md §1.11).

Every subcommand acts through :mod:`services.multiplayer`, the one implementation of the match
rules that the game packets use; this module only parses, checks who may do what, and answers.

Who may use ``!mp``: users with ``USER_TOURNAMENT_STAFF`` (any match), and the referees of a
match (the staff member who made it with ``!mp make`` and whoever a referee added with
``!mp addref``) in that match's channel. Others get no reply. Subcommands other than ``make``,
``join``, ``help`` and the referee list work only in the match's channel (``#multi_<id>``,
shown as ``#multiplayer``); replies go to that channel.

Slots are numbered 0–15 as in Kawata. [FIX]es: ``!mp start force`` forces (K only read
``force`` as the third word); ``!mp move`` refuses slot 16; ``!mp team``, ``!mp abort`` and a
refused start answer instead of staying silent; outside a match channel the referee gets a
clear reply instead of the generic error.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import dataclasses
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from common.ripple import safe_username
from constants import privileges as privs
from constants.mods import names as mod_names
from services import multiplayer as mp
from services.commands import STACKS, Context, Subcommand, command, find
from services.commands import banchopy, mp_official
from services.commands.mp_official import cancel_countdown
from helpers import codec
from objects import match as m

if TYPE_CHECKING:
    from objects.match import Match
    from objects.state import State
    from objects.token import Token


NOT_IN_CHANNEL = "This command only works in multiplayer chat channels"
MATCH_NOT_FOUND = "Match not found"
INVALID = "Invalid subcommand"
NOT_READY = "Some users aren't ready yet. Use '!mp start force' if you want to start the match, even with non-ready players."
CANT_START = "Couldn't start match. Make sure there is at least one player who has the beatmap."
MAX_COUNTDOWN = 600  # seconds
_MODS = {"nf": 1, "ez": 2, "hd": 8, "hr": 16, "sd": 32, "dt": 64, "ht": 256, "nc": 512 | 64, "fl": 1024,
         "fi": 1048576, "so": 4096, "pf": 16384 | 32}
_STATUS = {m.READY: "ready", m.NOT_READY: "not ready", m.NO_MAP: "no map", m.PLAYING: "playing",
           m.COMPLETE: "playing"}

# ------------------------------------------------------------------------------------ referees
def referees(state: State, match: Match) -> set[int]:
    """The referee user ids of ``match`` (``match.referees``): a live set to add to (a new,
    unattached set for a disposed match)."""
    if match.disposed:
        return set()
    return match.referees


def _is_listed_referee(state: State, user_id: int, match: Match | None) -> bool:
    """Whether ``user_id`` is on the referee list of ``match`` (any live match when None)."""
    if match is not None:
        return not match.disposed and user_id in match.referees
    return any(user_id in other.referees for other in state.matches if not other.disposed)


def channel_match(state: State, channel: str | None) -> Match | None:
    """The live match whose channel is ``channel`` (``#multi_<id>``), or None."""
    if channel is None or not channel.startswith(m.CHANNEL_PREFIX):
        return None
    suffix = channel[len(m.CHANNEL_PREFIX):]
    if not suffix.isdigit():
        return None
    return state.matches.get(int(suffix))


def is_referee(state: State, sender: Token, match: Match | None) -> bool:
    """Tournament staff, or a referee of ``match``."""
    if sender.privileges & privs.USER_TOURNAMENT_STAFF:
        return True
    return match is not None and _is_listed_referee(state, sender.user_id, match)


def _gate(state: State, sender: Token, channel: str | None) -> bool:
    """Extra gate of ``!mp`` beyond the tournament-staff bit: a referee of this channel's match,
    or, outside a match channel (``!mp join``, ``!mp help``), of any live match."""
    match = channel_match(state, channel)
    return _is_listed_referee(state, sender.user_id, match)


# ------------------------------------------------------------------------------------ helpers
def _online_game_client(state: State, name: str) -> Token | None:
    token = state.tokens.by_name(safe_username(name))
    if token is None or token.is_bot or token.tournament or token.kicked:
        return None
    return token


def _seated(state: State, match: Match, name: str) -> Token | None:
    """The token of ``name`` seated in ``match``, or None."""
    safe = safe_username(name)
    for slot in match.slots:
        if slot.token is not None and slot.token.safe_name == safe:
            return slot.token
    return None


# ------------------------------------------------------------------------------------ subcommands
SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("make", "<name...>", "Creates a tournament match (no host, random password, survives being empty "
                                    "until !mp close or the cleanup loop); you become its referee. Anywhere."),
    Subcommand("join", "<id>", "Your game client joins the match (no password needed). Anywhere."),
    Subcommand("close", "", "Disposes the match; everyone is sent back to the lobby."),
    Subcommand("lock", "", "Players can no longer change slot or team."),
    Subcommand("unlock", "", "Undoes !mp lock."),
    Subcommand("size", "<2-16>", "Opens the slots below the size, locks the others (their players are kicked)."),
    Subcommand("move", "<user> <slot 0-15>", "Moves a player to a free slot."),
    Subcommand("host", "<user>", "Gives host to a player of the match."),
    Subcommand("clearhost", "", "Removes the host."),
    Subcommand("start", "[seconds] [force]", "Starts now or after a countdown (the match is locked meanwhile); "
                                             "force starts players who are not ready too."),
    Subcommand("abort", "", "Aborts the running round or the countdown."),
    Subcommand("invite", "<user>", "The bot invites a user (they get the invite and a notification)."),
    Subcommand("map", "<beatmap id> [mode 0-3]", "Sets the beatmap (it must be in the beatmaps table); "
                                                 "everyone is un-readied."),
    Subcommand("set", "<teammode 0-3> [scoremode 0-3] [size]", "Team mode (0 head-to-head, 1 tag co-op, "
               "2 team vs, 3 tag team vs), scoring (0 score, 1 accuracy, 2 combo, 3 score v2) and size."),
    Subcommand("kick", "<user>", "Sends a player back to the lobby (the slot stays open)."),
    Subcommand("password", "[password]", "Sets the password (none: the match becomes public)."),
    Subcommand("randompassword", "", "Sets a random password."),
    Subcommand("mods", "<mod> [mod...]", "Match mods: nf ez hd hr sd dt nc ht fl fi so pf, none, freemod "
                                         "(free mod on; without it free mod is turned off)."),
    Subcommand("team", "<user> <red|blue>", "Puts a player in a team (team modes, not during a round)."),
    Subcommand("settings", "[single]", "Lists the players: team, status, name and mods."),
    Subcommand("scorev", "<1|2>", "Scoring: score v1 or score v2."),
    Subcommand("addref", "<user>", "Makes a user a referee of this match (they may use !mp in its channel)."),
    Subcommand("rmref", "<user>", "Removes a referee of this match."),
    Subcommand("listref", "", "Lists the referees of this match."),
    *banchopy.MP_SUBCOMMANDS,
    Subcommand("help", "", "Lists the subcommands. Anywhere."),
)
_SYNTAX = {s.name: f"!mp {s.name} {s.syntax}".rstrip() for s in SUBCOMMANDS}
HELP = "Supported subcommands: !mp <" + "|".join(s.name for s in SUBCOMMANDS) + ">"


def _wrong(sub: str) -> str:
    return f"Wrong syntax: {_SYNTAX[sub]}"


@command("!mp", "<subcommand>", privileges=privs.USER_TOURNAMENT_STAFF, allow=_gate,
         allow_doc="or a referee of the match (in its channel)",
         description="Referee commands for multiplayer matches (below); most work in the match's channel.",
         subcommands=SUBCOMMANDS, stacks=STACKS)
def mp_command(ctx: Context):
    """Dispatch on the first word; see :data:`SUBCOMMANDS`."""
    sub, args = ctx.args[0].lower(), ctx.args[1:]
    state, sender = ctx.state, ctx.sender
    if sub == "help":
        return HELP
    official = getattr(state.cfg.bot, "mp_style", "kawata") == "official"  # docs/irc.md
    if sub == "make" or (official and sub == "makeprivate"):
        if not sender.privileges & privs.USER_TOURNAMENT_STAFF:
            return None
        if official:
            return mp_official.make(ctx, " ".join(args))
        return _make(ctx, " ".join(args))
    if sub == "join":
        return _join(ctx, args)
    extra = banchopy.MP_HANDLERS.get(sub)  # bancho.py's subcommands, in both styles
    shared = SHARED.get(sub)
    own = mp_official.HANDLERS.get(sub) if official else _IN_MATCH.get(sub)
    if shared is None and own is None and extra is None:
        return INVALID
    match = channel_match(state, ctx.channel)
    if match is None:
        if ctx.channel is not None and ctx.channel.startswith(m.CHANNEL_PREFIX):
            return MATCH_NOT_FOUND
        return NOT_IN_CHANNEL
    if not is_referee(state, sender, match):
        return None
    try:
        if shared is not None:
            return shared(ctx, match, args, OFFICIAL if official else KAWATA)
        if own is not None:
            return own(ctx, match, args)
        return extra(ctx, match, args)
    except mp.MatchError as exc:  # a refused match operation: its text is the reply
        return str(exc)


def _make(ctx: Context, name: str) -> str:
    name = name.strip()
    if not name:
        return _wrong("make")
    match = mp_official.create_tourney(ctx, name, "Tournament")
    if isinstance(match, str):
        return match
    return f"Tourney match #{match.id} created!"


def _join(ctx: Context, args: list[str]) -> str | None:
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        return _wrong("join")
    match_id = int(args[0].lstrip("#"))
    match = ctx.state.matches.get(match_id)
    cluster = ctx.state.cluster
    if match is None and cluster is not None and cluster.forward_command(ctx.sender, match_id, ctx.text):
        return None  # a match of another node: the command runs there (docs/cluster.md)
    if not is_referee(ctx.state, ctx.sender, match):
        return None
    if match is None:
        return MATCH_NOT_FOUND
    token = ctx.state.tokens.user(ctx.sender.user_id)
    if token is None or token.tournament:
        return (f"No game clients found for {ctx.sender.username}, can't join the match. If you're a referee and "
                f"you want to follow the match, open its channel from a tournament client.")
    try:
        mp.join(ctx.state, token, match, password=None)
    except mp.MatchError as exc:
        return str(exc)
    return f"Attempting to join match #{match.id}!"


# ------------------------------------------------------------------------------------ shared subcommands
@dataclasses.dataclass(frozen=True)
class Style:
    """What differs between the ``[bot] mp_style`` s for the subcommands they share (one
    implementation below): the texts (:data:`KAWATA_TEXTS`, ``mp_official.TEXTS``), how slots
    are numbered for people (0-15 or 1-16), the smallest ``!mp size`` accepted (Kawata 2; the
    official 1, which means 2), whether ``!mp invite`` adds a notification, whether ``!mp team``
    is refused while the match is locked or counting down."""

    name: str
    texts: Mapping[str, str]
    slot_base: int = 0
    min_size: int = 2
    invite_notice: bool = True
    team_lock_check: bool = True

    def text(self, key: str, **fields: object) -> str:
        """The style's text ``key`` filled with ``fields``."""
        return self.texts[key].format(**fields)


#: the Kawata style's texts of the shared subcommands (``Style.texts``)
KAWATA_TEXTS: Mapping[str, str] = MappingProxyType({
    "closed": "Multiplayer match #{id} disposed successfully",
    "locked": "This match has been locked",
    "unlocked": "This match has been unlocked",
    "size_syntax": "Wrong syntax: !mp size <slots(2-16)>",
    "size_done": "Match size changed to {size}",
    "move_syntax": "Wrong syntax: !mp move <user> <slot 0-15>",
    "no_such_user": "No such user",
    "not_seated": "The specified user is not in this match",
    "slot_taken": "You can't use that slot: it's either already occupied by someone else or locked",
    "moved": "Player {name} moved to slot {slot}",
    "host_syntax": "Wrong syntax: !mp host <user>",
    "host_failed": "Couldn't give host to {arg}",
    "host_done": "{name} is now the host",
    "host_cleared": "Host has been removed from this match",
    "countdown_aborted": "Countdown aborted",
    "not_in_progress": "The match is not in progress.",
    "aborted": "Match aborted!",
    "invite_syntax": "Wrong syntax: !mp invite <user>",
    "invite_offline": "That user is not connected to bancho right now.",
    "invited": "An invite to this match has been sent to {name}",
    "invite_notice": "Please accept the invite you've just received from {bot} to enter your tourney match.",
    "map_syntax": "Wrong syntax: !mp map <beatmap id> [mode 0-3]",
    "map_bad_mode": "Gamemode must be 0, 1, 2 or 3",
    "map_bad_id": "Wrong syntax: !mp map <beatmap id> [mode 0-3]",
    "map_unknown": ("The beatmap you've selected couldn't be found in the database. If the beatmap id is valid, "
                    "please load the scoreboard first in order to cache it, then try again."),
    "map_done": "Match map has been updated",
    "kick_syntax": "Wrong syntax: !mp kick <user>",
    "kick_missing": "The specified user is not in this match",
    "kicked": "{name} has been kicked from the match.",
    "password_set": "Match password has been changed!",
    "password_removed": "Match password has been changed!",
    "password_random": "Match password has been changed to a random one",
    "scorev_syntax": "Wrong syntax: !mp scorev <1|2>",
    "scorev_done": "Match scoring type set to scorev{version}",
    "team_syntax": "Wrong syntax: !mp team <user> <red|blue>",
    "team_colour": "Team colour must be red or blue",
    "team_locked": "Teams can't be changed while the match is locked or counting down.",
    "team_refused": "Teams can only be changed in team modes and not during a round.",
    "team_done": "{name} is now in {colour} team",
})
KAWATA = Style("kawata", KAWATA_TEXTS)
OFFICIAL = Style("official", mp_official.TEXTS, slot_base=1, min_size=1, invite_notice=False, team_lock_check=False)


def _close(ctx: Context, match: Match, args: list[str], style: Style) -> None:
    cancel_countdown(match)
    ctx.reply(style.text("closed", id=match.id))
    mp.dispose(ctx.state, match)
    return None


def _lock(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    mp.set_referee_lock(match, True)
    return style.text("locked")


def _unlock(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    mp.set_referee_lock(match, False)
    return style.text("unlocked")


def _size(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 1 or not args[0].isdigit() or not style.min_size <= int(args[0]) <= m.SLOTS:
        return style.text("size_syntax")
    mp.set_size(ctx.state, match, max(2, int(args[0])))
    return style.text("size_done", size=int(args[0]))


def _move(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    base = style.slot_base
    if len(args) != 2 or not args[1].isdigit() or not base <= int(args[1]) < m.SLOTS + base:
        return style.text("move_syntax")
    index = int(args[1]) - base
    token = _seated(ctx.state, match, args[0])
    if token is None:
        return style.text("no_such_user") if ctx.state.tokens.by_name(safe_username(args[0])) is None \
            else style.text("not_seated")
    if not mp.move(ctx.state, match, token, index, referee=True):
        return style.text("slot_taken", slot=index + base)
    return style.text("moved", name=token.username, slot=index + base)


def _host(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 1:
        return style.text("host_syntax")
    token = _seated(ctx.state, match, args[0])
    if token is None or not mp.set_host(ctx.state, match, token):
        return style.text("host_failed", arg=args[0])
    return style.text("host_done", name=token.username)


def _clearhost(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    mp.set_host(ctx.state, match, None)
    return style.text("host_cleared")


def _abort(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if cancel_countdown(match):
        return style.text("countdown_aborted")
    if not mp.abort(ctx.state, match):
        return style.text("not_in_progress")
    return style.text("aborted")


def _invite(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 1:
        return style.text("invite_syntax")
    token = _online_game_client(ctx.state, args[0])
    if token is None or ctx.state.bot is None:
        return style.text("invite_offline")
    mp.invite(ctx.state, match, ctx.state.bot, token)
    if style.invite_notice:
        token.enqueue(codec.notification(style.text("invite_notice", bot=ctx.bot_name)))
    return style.text("invited", name=token.username)


async def _map(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if not 1 <= len(args) <= 2 or not args[0].isdigit() or (len(args) == 2 and not args[1].lstrip("-").isdigit()):
        return style.text("map_syntax")
    beatmap_id = int(args[0])
    mode = int(args[1]) if len(args) == 2 else None
    if mode is not None and not 0 <= mode <= 3:
        return style.text("map_bad_mode")
    if not 0 < beatmap_id < 2**31:
        return style.text("map_bad_id")
    row = await ctx.state.repo.beatmap_by_id(beatmap_id)
    if row is None:
        return style.text("map_unknown")
    if match.disposed:
        return MATCH_NOT_FOUND
    try:
        mp.set_map(ctx.state, match, beatmap_id, str(row.get("beatmap_md5") or ""), str(row.get("song_name") or ""),
                   mode)
    except mp.MatchError as exc:
        return str(exc)
    return style.text("map_done", id=beatmap_id, name=match.beatmap_name)


def _kick(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 1:
        return style.text("kick_syntax")
    token = _seated(ctx.state, match, args[0])
    if token is None or not mp.kick(ctx.state, match, token):
        return style.text("kick_missing")
    return style.text("kicked", name=token.username)


def _password(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    password = " ".join(args)
    mp.set_password(ctx.state, match, password)
    return style.text("password_set" if password else "password_removed")


def _randompassword(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    mp.set_password(ctx.state, match, hashlib.md5(secrets.token_bytes(16)).hexdigest())
    return style.text("password_random")


def _scorev(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 1 or args[0] not in ("1", "2"):
        return style.text("scorev_syntax")
    mp.set_teams(ctx.state, match, scoring_type=m.SCORE_V2 if args[0] == "2" else m.SCORE)
    return style.text("scorev_done", version=args[0],
                      condition=mp_official.WIN_CONDITIONS.get(match.scoring_type, "?"))


def _team(ctx: Context, match: Match, args: list[str], style: Style) -> str:
    if len(args) != 2:
        return style.text("team_syntax")
    colour = args[1].lower()
    if colour not in ("red", "blue"):
        return style.text("team_colour")
    token = _seated(ctx.state, match, args[0])
    if token is None:
        return style.text("not_seated")
    if style.team_lock_check and (match.referee_locked or match.starting):
        return style.text("team_locked")
    if not mp.set_team(ctx.state, match, token, m.RED if colour == "red" else m.BLUE):
        return style.text("team_refused")
    return style.text("team_done", name=token.username, colour=colour, Colour=colour.capitalize())


#: the subcommands both styles share: one implementation, the style's texts
SHARED = {
    "close": _close, "lock": _lock, "unlock": _unlock, "size": _size, "move": _move, "host": _host,
    "clearhost": _clearhost, "abort": _abort, "invite": _invite, "map": _map, "kick": _kick,
    "password": _password, "randompassword": _randompassword, "scorev": _scorev, "team": _team,
}


def _start(ctx: Context, match: Match, args: list[str]) -> str | list[str]:
    force = any(a.lower() == "force" for a in args)
    numbers = [a for a in args if a.lower() != "force"]
    if len(numbers) > 1 or (numbers and not numbers[0].isdigit()):
        return _wrong("start")
    seconds = int(numbers[0]) if numbers else 0
    if seconds > MAX_COUNTDOWN:
        return f"The countdown can be at most {MAX_COUNTDOWN} seconds."
    if match.in_progress:
        return "The match is already in progress."
    if match.countdown is not None:
        return "The match is already counting down. Use !mp abort to stop the countdown."
    if not force and any(slot.token is not None and slot.status != m.READY for slot in match.slots):
        return NOT_READY
    if seconds == 0:
        if not mp.start(ctx.state, match):
            return CANT_START
        return ["Starting match", "Have fun!"]
    task = ctx.state.spawn(_countdown(ctx, match, seconds, force), f"countdown of match {match.id}")
    if task is None:
        return CANT_START
    match.starting = True
    match.countdown = task
    match.countdown_meta = (time.monotonic() + seconds, force, ctx.sender)
    return (f"Match starts in {seconds} seconds. The match has been locked. Please don't leave the match during "
            f"the countdown or you might receive a penalty.")


async def _countdown(ctx: Context, match: Match, seconds: int, force: bool) -> None:
    """Post "Match starts in {t} seconds." at multiples of 10 and the last 5, then start."""
    async def ticks() -> None:
        for left in range(seconds, 0, -1):
            if left != seconds and (left % 10 == 0 or left <= 5):
                ctx.reply(f"Match starts in {left} seconds.")
            await asyncio.sleep(1)
            if match.disposed or match.in_progress:  # closed, or the host started it meanwhile
                return
        match.starting = False
        if not force and any(slot.token is not None and slot.status not in (m.READY, m.NO_MAP)
                             for slot in match.slots):
            ctx.reply(NOT_READY)
        elif mp.start(ctx.state, match):
            ctx.reply("Have fun!")
        else:
            ctx.reply(CANT_START)

    await mp_official.as_countdown(match, ticks(), start=True)


def countdown_of(match: Match) -> tuple[float, bool, Token] | None:
    """The running ``!mp start`` countdown of ``match``: (seconds left, force, the referee's
    token), or None. Used by the restart snapshot (services/handover.py)."""
    if match.countdown is None or match.countdown.done() or match.countdown_meta is None:
        return None
    end, force, sender = match.countdown_meta
    return max(0.0, end - time.monotonic()), force, sender


def resume_countdown(state: State, match: Match, seconds: float, force: bool, sender: Token) -> bool:
    """Run a countdown kept across a restart (services/handover.py): ``seconds`` left (rounded
    up, at least 1), announced in the match channel as if ``sender`` had typed ``!mp start``.
    Returns False when it cannot run (no event loop, or one runs already)."""
    cmd = find("!mp start", state)
    if cmd is None or match.countdown is not None:
        return False
    left = max(1, math.ceil(seconds))
    ctx = Context(state, sender, match.channel_name, f"!mp start {left}", cmd)
    task = state.spawn(_countdown(ctx, match, left, force), f"countdown of match {match.id}")
    if task is None:
        return False
    match.starting = True
    match.countdown = task
    match.countdown_meta = (time.monotonic() + left, force, sender)
    return True


def _set(ctx: Context, match: Match, args: list[str]) -> str:
    if not 1 <= len(args) <= 3 or not all(a.isdigit() for a in args):
        return _wrong("set")
    team_type = int(args[0])
    scoring = int(args[1]) if len(args) >= 2 else None
    size = int(args[2]) if len(args) == 3 else None
    if size is not None and not 2 <= size <= m.SLOTS:
        return "Match size must be between 2 and 16"
    try:
        mp.set_teams(ctx.state, match, team_type, scoring)
    except mp.MatchError as exc:
        return str(exc)
    if size is not None and not match.disposed:
        mp.set_size(ctx.state, match, size)
    return "Match settings have been updated!"


def _mods(ctx: Context, match: Match, args: list[str]) -> str:
    words = [a.lower() for a in args]
    known = [w for w in words if w in _MODS or w in ("none", "freemod")]
    if not known:
        return "Wrong syntax: !mp mods <mod1> [<mod2>] ..."
    mods = 0
    for word in known:
        if word == "none":
            mods = 0
        elif word != "freemod":
            mods |= _MODS[word]
    try:
        mp.set_mods(ctx.state, match, mods, freemod="freemod" in known)
    except mp.MatchError as exc:
        return str(exc)
    return "Match mods have been updated!"


def _settings(ctx: Context, match: Match, args: list[str]) -> str | list[str]:
    single = bool(args) and args[0].lower() == "single"
    lines = []
    for slot in match.slots:
        if slot.token is None:
            continue
        team = {m.RED: "red", m.BLUE: "blue"}.get(slot.team, "!! no team !!")
        status = _STATUS.get(slot.status, "???")
        mods = mod_names(slot.mods | match.mods) if match.freemod else ""
        lines.append(f"* [{team}] <{status}> ~ {slot.token.username}" + (f" (+ {mods})" if mods else ""))
    if not lines:
        lines = ["Nobody."]
    if single:
        return "PLAYERS IN THIS MATCH : " + " | ".join(lines)
    return ["PLAYERS IN THIS MATCH (use !mp settings single for a single-line version):"] + lines


async def _addref(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1:
        return _wrong("addref")
    user = await ctx.state.repo.user_by_safe_name(safe_username(args[0]))
    if user is None:
        return f"{args[0]}: user not found"
    referees(ctx.state, match).add(int(user["id"]))
    return f"{user['username']} is now a referee of this match."


async def _rmref(ctx: Context, match: Match, args: list[str]) -> str:
    if len(args) != 1:
        return _wrong("rmref")
    user = await ctx.state.repo.user_by_safe_name(safe_username(args[0]))
    refs = referees(ctx.state, match)
    if user is None or int(user["id"]) not in refs:
        return f"{args[0]} is not a referee of this match."
    refs.discard(int(user["id"]))
    return f"{user['username']} is no longer a referee of this match."


def _listref(ctx: Context, match: Match, args: list[str]) -> str:
    refs = referees(ctx.state, match)
    names = []
    for user_id in sorted(refs):
        token = ctx.state.tokens.user(user_id)
        names.append(token.username if token is not None else f"#{user_id}")
    return "Referees: " + (", ".join(names) if names else "none (tournament staff only)")


#: the Kawata style's own subcommands (besides :data:`SHARED`)
_IN_MATCH = {
    "start": _start, "set": _set, "mods": _mods, "settings": _settings, "addref": _addref, "rmref": _rmref,
    "listref": _listref,
}
