"""bancho.py's tournament and clan commands: ``!pool`` (mappools), ``!clan``, and the ``!mp``
subcommands ``condition``, ``scrim``, ``endscrim``, ``rematch``, ``loadpool``, ``unloadpool``,
``ban``, ``unban`` and ``pick`` (dispatched from :mod:`services.commands.mp` through
:data:`MP_HANDLERS`, with bancho.py's texts in both ``[bot] mp_style`` s).

Sources: docs/commands.md (the commands, their replies, the decisions taken where bancho.py's
model does not fit the Ripple-family schema: docs/decisions.md, "bancho.py's commands");
docs/schema.md §1.12 (``clans``, ``user_clans``, ``tourney_pools``, ``tourney_pool_maps``).
Clans use the Ripple-family websites' tables (``user_clans.perms`` 1 member, 8 owner), so a
clan made in game shows on the website and the other way round; mappools use bancho.py's
tables, created by ``init-db``. Match changes go through :mod:`services.multiplayer`.

Scrims: ``!mp scrim bo<N>`` makes the bot keep points. At the end of every round
(:class:`ScrimReferee`, a :class:`objects.state.MatchListener` added to the state on the first
scrim or by a restart that restored a running one) the round's winner, by the match's win
condition (score, accuracy or max combo of each player's last score frame; team sums in team
modes), gets a point; the first to
``N // 2 + 1`` wins the match. The scrim (``objects.match.Scrim``), the loaded pool and its
banned picks (``Match.pool``, ``Match.bans``; one set per match, as bancho.py's
``Match.bans``) are match state, kept by the restart snapshot (``objects.match.match_to_snapshot``).
Source of the behaviour: bancho.py's ``app/commands.py`` (``mp_scrim``, ``mp_endscrim``,
``mp_rematch``, ``mp_ban``, ``mp_unban``, ``mp_pick``) and ``Match.reset_scrim``; the
differences are in docs/decisions.md.
"""

from __future__ import annotations

import functools
import logging
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from common.ripple import CLAN_OWNER
from constants import privileges as privs
from objects import match as m
from objects.state import MatchListener
from services import chat
from services import multiplayer as mp
from services.commands import BANCHOPY, Context, Subcommand, command
from services.commands.beatmaps import beatmap_link
from services.commands.np import NEED_NP

if TYPE_CHECKING:
    from objects.match import Match
    from objects.state import State

log = logging.getLogger("pep.commands.banchopy")

# ------------------------------------------------------------------------------------ picks
#: two-letter mod names of a pick (``HD2``, ``HDHR1``; ``NM`` = no mod; ``FM``/``TB`` mean no
#: forced mod, as bancho.py's mod parser ignores them)
PICK_MODS = {"nm": 0, "fm": 0, "tb": 0, "nf": 1, "ez": 2, "hd": 8, "hr": 16, "sd": 32, "dt": 64, "ht": 256,
             "nc": 512 | 64, "fl": 1024, "so": 4096, "pf": 16384 | 32}
_PICK = re.compile(r"^([A-Za-z]{2,16})(\d{1,2})$")
INVALID_PICK = "Invalid pick syntax; correct example: HD2"
POOL_NAME = re.compile(r"^[\w-]{1,16}$")


def parse_pick(text: str) -> tuple[int, int] | None:
    """(mods, slot) of a pick such as ``HD2`` or ``HDHR1``, or None when it is not one (odd
    letter count, unknown mod, slot out of 0-99)."""
    match = _PICK.fullmatch(text)
    if match is None or len(match[1]) % 2:
        return None
    mods = 0
    letters = match[1].lower()
    for i in range(0, len(letters), 2):
        pair = letters[i:i + 2]
        if pair not in PICK_MODS:
            return None
        mods |= PICK_MODS[pair]
    return mods, int(match[2])


def pick_name(mods: int, slot: int) -> str:
    """``HD2`` for mods 8, slot 2 (``NM`` when there are none)."""
    names = [name.upper() for name, value in PICK_MODS.items() if value and value & mods == value
             and not (name == "dt" and mods & 512) and not (name == "sd" and mods & 16384)]
    return ("".join(names) or "NM") + str(slot)


# ------------------------------------------------------------------------------------ !pool
POOL_SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("create", "<name>", "Creates a mappool (a name of 1-16 letters, digits, - or _)."),
    Subcommand("delete", "<name>", "Deletes a mappool and its picks."),
    Subcommand("add", "<name> <pick>", "Adds your last /np map to a pool as a pick such as HD2."),
    Subcommand("remove", "<name> <pick>", "Removes a pick from a pool."),
    Subcommand("list", "", "Lists the mappools."),
    Subcommand("info", "<name>", "Lists the picks of a pool."),
    Subcommand("help", "", "Lists the subcommands."),
)


@command("!pool", "<subcommand>", privileges=privs.USER_TOURNAMENT_STAFF, stacks=(BANCHOPY,),
         subcommands=POOL_SUBCOMMANDS,
         description="Mappools for tournaments (below); !mp loadpool and !mp pick use them.",
         effect="Writes tourney_pools and tourney_pool_maps.")
async def pool(ctx: Context) -> str | list[str]:
    """bancho.py's ``!pool`` (its texts); tournament staff only."""
    sub, args = ctx.args[0].lower(), ctx.args[1:]
    repo = ctx.state.repo
    if sub in ("help", "h"):
        return [f"!pool {s.name} {s.syntax}".rstrip() + f": {s.description}" for s in POOL_SUBCOMMANDS]
    if sub in ("list", "l"):
        pools = await repo.pools()
        if not pools:
            return "There are currently no pools!"
        return [f"Mappools ({len(pools)})"] + [f"[{p['created_at']:%Y-%m-%d}] {p['name']}, by {p['creator']}."
                                               for p in pools]
    syntax = {"create": "!pool create <name>", "c": "!pool create <name>", "delete": "!pool delete <name>",
              "del": "!pool delete <name>", "d": "!pool delete <name>", "info": "!pool info <name>",
              "i": "!pool info <name>", "add": "!pool add <name> <pick>", "a": "!pool add <name> <pick>",
              "remove": "!pool remove <name> <pick>", "rm": "!pool remove <name> <pick>",
              "r": "!pool remove <name> <pick>"}
    if sub not in syntax:
        return "Invalid subcommand. Use !pool help."
    wanted = 2 if sub in ("add", "a", "remove", "rm", "r") else 1
    if len(args) != wanted:
        return f"Invalid syntax: {syntax[sub]}"
    name = args[0]
    if sub in ("create", "c"):
        if not POOL_NAME.match(name):
            return "A pool name has 1-16 letters, digits, - or _."
        if not await repo.create_pool(name, ctx.sender.user_id):
            return "Pool already exists by that name!"
        return f"{name} created."
    row = await repo.pool_by_name(name) if POOL_NAME.match(name) else None
    if row is None:
        return "Could not find a pool by that name!"
    pool_id = int(row["id"])
    if sub in ("delete", "del", "d"):
        await repo.delete_pool(pool_id)
        return f"{name} deleted."
    if sub in ("info", "i"):
        lines = [f"{pool_id}. {row['name']}, by {row['created_by']} | Created at "
                 f"{row['created_at']:%H:%M:%S} on {row['created_at']:%Y-%m-%d}."]
        for pick in await repo.pool_maps(pool_id):
            title = pick["song_name"] or f"beatmap {pick['map_id']}"
            lines.append(f"{pick_name(int(pick['mods']), int(pick['slot']))}: "
                         f"{beatmap_link(ctx.state, int(pick['map_id']), title)}")
        return lines
    parsed = parse_pick(args[1].upper())
    if parsed is None:
        return INVALID_PICK
    mods, slot = parsed
    label = args[1].upper()
    if sub in ("remove", "rm", "r"):
        if not await repo.remove_pool_map(pool_id, mods, slot):
            return f"Found no {label} pick in the pool."
        return f"{label} removed from {name}."
    np = ctx.sender.now_playing
    if np is None or not np.beatmap_id:
        return "Please /np a map first!"
    beatmap = await repo.beatmap_by_id(np.beatmap_id)
    if beatmap is None:
        return "That map is not in the beatmaps table; open its leaderboard first."
    embed = beatmap_link(ctx.state, np.beatmap_id, str(beatmap.get("song_name") or np.beatmap_id))
    result = await repo.add_pool_map(pool_id, np.beatmap_id, mods, slot)
    if result == "pick":
        return f"{label} is already taken in {name}!"
    if result == "map":
        return f"{embed} is already in the pool!"
    if result == "full":
        return "That pool is full (128 maps)."
    return f"{embed} added to {name} as {label}."


# ------------------------------------------------------------------------------------ !clan
CLAN_SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("create", "<tag> <name...>", "Founds a clan (tag 1-6 characters, name 2-16); you are its owner."),
    Subcommand("disband", "[tag]", "Disbands your clan (staff who may manage users: any clan, by tag)."),
    Subcommand("info", "<tag>", "A clan and its members."),
    Subcommand("leave", "", "Leaves your clan (an owner disbands it instead)."),
    Subcommand("list", "[page]", "Lists the clans, 25 per page."),
    Subcommand("help", "", "Lists the subcommands."),
)
CLANS_PER_PAGE = 25
_CLAN_TEXT = re.compile(r"^[\w \-\[\]().!?']+$")


def _clan_name(row: dict[str, Any]) -> str:
    return f"[{row['tag']}] {row['name']}"


@command("!clan", "<subcommand>", stacks=(BANCHOPY,), subcommands=CLAN_SUBCOMMANDS,
         description="Clans (below), kept in the website's clans and user_clans tables.",
         effect="Writes clans and user_clans (perms 8 owner, 1 member); foundings and disbandings are "
                "announced in #announce.")
async def clan(ctx: Context) -> str | list[str]:
    """bancho.py's ``!clan`` (its texts) on the Ripple-family tables."""
    sub, args = ctx.args[0].lower(), ctx.args[1:]
    state, repo, me = ctx.state, ctx.state.repo, ctx.sender
    if sub in ("help", "h"):
        return [f"!clan {s.name} {s.syntax}".rstrip() + f": {s.description}" for s in CLAN_SUBCOMMANDS]
    if sub in ("create", "c"):
        if len(args) < 2:
            return "Invalid syntax: !clan create <tag> <name>"
        tag, name = args[0].upper(), " ".join(args[1:])
        if not 1 <= len(tag) <= 6 or not _CLAN_TEXT.match(tag):
            return "Clan tag may be 1-6 characters long."
        if not 2 <= len(name) <= 16 or not _CLAN_TEXT.match(name):
            return "Clan name may be 2-16 characters long."
        result, _ = await repo.create_clan(me.user_id, name, tag)
        if result == "member":
            current = await repo.user_clan(me.user_id)
            return f"You're already a member of {_clan_name(current) if current else 'a clan'}!"
        if result == "name":
            return "That name has already been claimed by another clan."
        if result == "tag":
            return "That tag has already been claimed by another clan."
        shown = f"[{tag}] {name}"
        chat.bot_message(state, "#announce", f"{me.username} founded {shown}.")
        return f"{shown} founded."
    if sub in ("disband", "delete", "d"):
        if args:
            if not me.privileges & privs.ADMIN_MANAGE_USERS:
                return "Only staff members may disband the clans of others."
            row = await repo.clan_by_tag(" ".join(args).upper()[:8])
            if row is None:
                return "Could not find a clan by that tag."
        else:
            row = await repo.user_clan(me.user_id)
            if row is None:
                return "You're not a member of a clan!"
            if int(row["perms"]) < CLAN_OWNER:
                return "Only the owner may disband a clan; use !clan leave."
        await repo.disband_clan(int(row["id"]))
        chat.bot_message(state, "#announce", f"{me.username} disbanded {_clan_name(row)}.")
        return f"{_clan_name(row)} disbanded."
    if sub in ("info", "i"):
        if not args:
            return "Invalid syntax: !clan info <tag>"
        row = await repo.clan_by_tag(" ".join(args).upper()[:8])
        if row is None:
            return "Could not find a clan by that tag."
        lines = [_clan_name(row)]
        for member in await repo.clan_members(int(row["id"])):
            rank = "Owner" if int(member["perms"]) >= CLAN_OWNER else "Member"
            lines.append(f"[{rank}] {member['username']}")
        return lines
    if sub == "leave":
        row = await repo.user_clan(me.user_id)
        if row is None:
            return "You're not in a clan."
        if int(row["perms"]) >= CLAN_OWNER:
            return ("You must transfer your clan's ownership before leaving it. Alternatively, you can use "
                    "!clan disband.")
        await repo.leave_clan(me.user_id, int(row["id"]))
        return f"You have successfully left {_clan_name(row)}."
    if sub in ("list", "l"):
        if len(args) > 1 or (args and (not args[0].isdigit() or len(args[0]) > 6)):
            return "Invalid syntax: !clan list (page)"
        page = int(args[0]) if args else 0
        total, rows = await repo.clans_page(page * CLANS_PER_PAGE, CLANS_PER_PAGE)
        if not rows:
            return "No clans found."
        return [f"{state.cfg.stack.server_name} clans listing ({total} total)."] + \
            [f"{page * CLANS_PER_PAGE + i}. {_clan_name(r)}" for i, r in enumerate(rows, 1)]
    return "Invalid subcommand. Use !clan help."


# ------------------------------------------------------------------------------------ !mp extras
MP_SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("condition", "<score|acc|combo|scorev2>", "Win condition of the match (its scoring type)."),
    Subcommand("scrim", "<bo#>", "Starts a scrim: the bot keeps points, first to N // 2 + 1 wins (bo0 cancels)."),
    Subcommand("endscrim", "", "Ends the running scrim (its points and bans are cleared; !mp rematch restarts it)."),
    Subcommand("rematch", "", "During a scrim takes back the last point; after one, starts it again from 0."),
    Subcommand("loadpool", "<name>", "Loads a mappool (!pool) into the match."),
    Subcommand("unloadpool", "", "Unloads the match's mappool (and its bans)."),
    Subcommand("ban", "<pick>", "Bans a pick of the loaded pool, e.g. HD2: !mp pick refuses it."),
    Subcommand("unban", "<pick>", "Lifts the ban of a pick."),
    Subcommand("pick", "<pick>", "Sets the map and mods of a pick of the loaded pool, e.g. HD2."),
)
_CONDITIONS = {"score": m.SCORE, "accuracy": m.ACCURACY, "acc": m.ACCURACY, "combo": m.COMBO,
               "scorev2": m.SCORE_V2, "v2": m.SCORE_V2}
_BEST_OF = re.compile(r"^(?:bo)?(\d{1,2})$", re.IGNORECASE)
#: bancho.py's tournament match names: ``OWC2020: (Team one) vs. (Team two)``
_TOURNEY_NAME = re.compile(r"^(?P<name>[\w ]+): \((?P<T1>[\w ]+)\) vs\.? \((?P<T2>[\w ]+)\)$")


#: an ``!mp`` subcommand: (ctx, match, args) -> the reply, or a coroutine of it (services.commands.mp)
Handler = Callable[["Context", "Match", list[str]], Any]
#: what a pick subcommand does with a pick of the loaded pool: (ctx, match, label, mods, slot, beatmap id)
PickAction = Callable[["Context", "Match", str, int, int, int], Awaitable[str]]


def _takes(words: int, usage: str) -> Callable[[Handler], Handler]:
    """Decorator of an ``!mp`` handler: ``args`` of another length than ``words`` are answered
    ``Invalid syntax: !mp <usage>`` (bancho.py's text) without calling it."""
    refusal = f"Invalid syntax: !mp {usage}"

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def checked(ctx: Context, match: Match, args: list[str]) -> Any:
            return refusal if len(args) != words else handler(ctx, match, args)
        return checked
    return wrap


def _scrimming(match: Match) -> bool:
    return match.scrim is not None and match.scrim.active


@_takes(1, "condition <type>")
def _condition(ctx: Context, match: Match, args: list[str]) -> str:
    cond = args[0].lower()
    if cond == "pp":
        if not _scrimming(match):
            return "PP is only useful as a win condition during scrims."
        return "PP is not available as a win condition on this server."
    if cond not in _CONDITIONS:
        return "Invalid win condition. (score, acc, combo, scorev2, *pp)"
    mp.set_teams(ctx.state, match, scoring_type=_CONDITIONS[cond])
    return "Match win condition updated."


def _scrim(ctx: Context, match: Match, args: list[str]) -> str:
    parsed = _BEST_OF.fullmatch(args[0]) if len(args) == 1 else None
    if parsed is None:
        return "Invalid syntax: !mp scrim <bo#>"
    best_of = int(parsed[1])
    if not 0 <= best_of < 16:
        return "Best of must be in range 0-15."
    if best_of == 0:
        if not _scrimming(match):
            return "Not currently scrimming!"
        match.scrim = None  # nothing left for !mp rematch
        match.bans.clear()
        return "Scrimming cancelled."
    if _scrimming(match):
        return "Already scrimming!"
    if best_of % 2 == 0:
        return "Best of must be an odd number!"
    watch_scrims(ctx.state)
    match.scrim = m.Scrim(best_of // 2 + 1)
    return (f"A scrimmage has been started by {ctx.sender.username}; first to {best_of // 2 + 1} points wins. "
            "Best of luck!")


def _endscrim(ctx: Context, match: Match, args: list[str]) -> str:
    if match.scrim is None or not match.scrim.active:
        return "Not currently scrimming!"
    match.scrim.active = False  # its winning points stay for !mp rematch
    match.scrim.reset()
    match.bans.clear()
    return "Scrimmage ended."


@_takes(0, "rematch")
def _rematch(ctx: Context, match: Match, args: list[str]) -> str:
    scrim = match.scrim
    if scrim is None:
        return "No scrim to rematch; to start one, use !mp scrim."
    if not scrim.active:
        watch_scrims(ctx.state)
        scrim.active = True
        return (f"A rematch has been started by {ctx.sender.username}; first to {scrim.winning_points} points wins. "
                "Best of luck!")
    if not scrim.winners:
        return "No match points have yet been awarded!"
    last = scrim.winners[-1]
    if last is None:
        return "The last point was a tie!"
    scrim.winners.pop()
    name = scrim.names.get(last, last)
    scrim.points[last] = scrim.points.get(last, 1) - 1
    if scrim.points[last] <= 0:  # no point left: gone from the standing (as it never scored)
        del scrim.points[last]
        scrim.names.pop(last, None)
    return f"A point has been deducted from {name}."


@_takes(1, "loadpool <name>")
async def _loadpool(ctx: Context, match: Match, args: list[str]) -> str:
    row = await ctx.state.repo.pool_by_name(args[0]) if POOL_NAME.match(args[0]) else None
    if row is None:
        return "Could not find a pool by that name!"
    if match.pool is not None and match.pool[0] == int(row["id"]):
        return f"{row['name']} already selected!"
    match.pool = (int(row["id"]), str(row["name"]))
    match.bans.clear()  # the bans were picks of the other pool
    return f"{row['name']} selected."


@_takes(0, "unloadpool")
def _unloadpool(ctx: Context, match: Match, args: list[str]) -> str:
    if match.pool is None:
        return "No mappool currently selected!"
    match.pool = None
    match.bans.clear()
    return "Mappool unloaded."


async def _pool_pick(ctx: Context, match: Match, text: str, verb: str) -> tuple[str, int, int, int] | str:
    """(label, mods, slot, beatmap id) of ``text``, a pick of the loaded pool, or the reply that
    refuses it (bancho.py's texts)."""
    if match.pool is None:
        return "No pool currently loaded!" if verb == "pick" else "No pool currently selected!"
    label = text.upper()
    parsed = parse_pick(label)
    if parsed is None:
        return INVALID_PICK
    mods, slot = parsed
    pool_id = match.pool[0]
    map_id = await ctx.state.repo.pool_pick(pool_id, mods, slot)
    if map_id is None:
        return f"Found no {label} pick in the pool."
    if match.disposed:
        return "Match not found"
    if match.pool is None or match.pool[0] != pool_id:  # unloaded or changed while MySQL answered
        return "No pool currently loaded!" if verb == "pick" else "No pool currently selected!"
    return label, mods, slot, map_id


def _on_pick(verb: str) -> Callable[[PickAction], Handler]:
    """Decorator that makes an ``!mp <verb> <pick>`` handler of a :data:`PickAction`: one
    argument (:func:`_takes`), a pick of the loaded pool (:func:`_pool_pick`), whose refusals
    are the reply."""
    def wrap(action: PickAction) -> Handler:
        @_takes(1, f"{verb} <pick>")
        async def handler(ctx: Context, match: Match, args: list[str]) -> str:
            found = await _pool_pick(ctx, match, args[0], verb)
            if isinstance(found, str):
                return found
            return await action(ctx, match, *found)
        return handler
    return wrap


@_on_pick("ban")
async def _ban(ctx: Context, match: Match, label: str, mods: int, slot: int, map_id: int) -> str:
    if (mods, slot) in match.bans:
        return "That pick is already banned!"
    if len(match.bans) >= m.MAX_BANS:
        return f"At most {m.MAX_BANS} picks can be banned."
    match.bans.add((mods, slot))
    return f"{label} banned."


@_on_pick("unban")
async def _unban(ctx: Context, match: Match, label: str, mods: int, slot: int, map_id: int) -> str:
    if (mods, slot) not in match.bans:
        return "That pick is not currently banned!"
    match.bans.discard((mods, slot))
    return f"{label} unbanned."


@_on_pick("pick")
async def _pick(ctx: Context, match: Match, label: str, mods: int, slot: int, map_id: int) -> str:
    if (mods, slot) in match.bans:
        return f"{label} has been banned from being picked."
    beatmap = await ctx.state.repo.beatmap_by_id(map_id)
    if beatmap is None:
        return f"Found no beatmap for {label} pick."
    if match.disposed:
        return "Match not found"
    name = str(beatmap.get("song_name") or map_id)
    try:
        mp.set_map(ctx.state, match, map_id, str(beatmap.get("beatmap_md5") or ""), name)
        mp.set_mods(ctx.state, match, mods, freemod=False)
    except mp.MatchError as exc:
        return str(exc)
    return f"Picked {beatmap_link(ctx.state, map_id, name)}. ({label})"


#: subcommand -> handler(ctx, match, args), the referee's rights already checked
#: (services.commands.mp); the aliases are bancho.py's
MP_HANDLERS = {"condition": _condition, "cond": _condition, "scrim": _scrim, "autoref": _scrim,
               "endscrim": _endscrim, "end": _endscrim, "rematch": _rematch, "rm": _rematch,
               "loadpool": _loadpool, "lp": _loadpool, "unloadpool": _unloadpool, "ulp": _unloadpool,
               "ban": _ban, "unban": _unban, "pick": _pick}


# ------------------------------------------------------------------------------------ scrim points
class ScrimReferee(MatchListener):
    """Keeps the points of every scrim at the end of each round (module docstring); one per
    state (:func:`watch_scrims`), in ``state.match_listeners`` from the first ``!mp scrim`` (or
    a restart that restored a running scrim) on."""

    def __init__(self, state: State) -> None:
        self.state = state

    def round_finished(self, match: Any) -> None:
        scrim = getattr(match, "scrim", None)
        if scrim is None or not scrim.active:
            return
        try:
            lines = score_round(match, scrim)
        except Exception:
            log.exception("scrim points of match %d", match.id)
            return
        for line in lines:
            chat.bot_message(self.state, match.channel_name, line)


def watch_scrims(state: State) -> None:
    """Make sure the bot keeps the points of the scrims of ``state`` (adds the one
    :class:`ScrimReferee` to ``state.match_listeners`` if it is not there yet)."""
    if not any(isinstance(listener, ScrimReferee) for listener in state.match_listeners):
        state.match_listeners.append(ScrimReferee(state))


def _value(match: Match, slot: Any) -> float:
    if match.scoring_type == m.ACCURACY:
        return slot.accuracy(match.mode)
    if match.scoring_type == m.COMBO:
        return float(slot.max_combo)
    return float(slot.score)


def _shown(match: Match, value: float) -> str:
    if match.scoring_type == m.ACCURACY:
        return f"{value:.2f}%"
    if match.scoring_type == m.COMBO:
        return f"{int(value)}x"
    return str(int(value))


def score_round(match: Match, scrim: m.Scrim) -> list[str]:
    """Give the round's point (pure, apart from ``scrim`` and ``match.bans``) and return the
    bot's lines, in bancho.py's words: the winner of the point, then the standing or the
    winner of the match (the scrim then ends: not active, points and the match's bans cleared,
    its winning points kept for ``!mp rematch``). Players who did not complete the round do not
    count; a tie gives no point (it is remembered, as bancho.py does, for ``!mp rematch``)."""
    played = [s for s in match.slots if s.token is not None and s.playing and s.completed]
    if not played:
        return []
    teams = match.team_type in m.TEAM_MODES
    scores: dict[str, float] = {}
    names: dict[str, str] = {}
    if teams:
        parsed = _TOURNEY_NAME.match(match.name)
        team_names = {m.BLUE: parsed["T1"], m.RED: parsed["T2"]} if parsed else {m.BLUE: "Blue", m.RED: "Red"}
        for team in (m.BLUE, m.RED):
            key = m.scrim_key_team(team)
            scores[key] = sum(_value(match, s) for s in played if s.team == team)
            names[key] = team_names[team]
    else:
        for s in played:
            key = m.scrim_key_user(s.token.user_id)
            scores[key] = _value(match, s)
            names[key] = s.token.username
    best = max(scores.values())
    leaders = [key for key, value in scores.items() if value == best]
    if len(leaders) != 1:
        scrim.record(None)
        return ["The point has ended in a tie!"]
    winner = leaders[0]
    if winner not in scrim.points and len(scrim.points) >= m.MAX_SCRIM_ENTRIES:
        # 256 different players with points in one scrim: no room for one more
        return [f"{names[winner]} wins the round, but this scrim keeps no more players' points."]
    scrim.names.update(names)
    for key in list(scrim.names):
        if key not in scrim.points and key != winner:
            del scrim.names[key]  # only the names of those with points are kept
    scrim.points[winner] = scrim.points.get(winner, 0) + 1
    scrim.record(winner)
    won = scrim.points[winner] >= scrim.winning_points
    lines: list[str] = []
    if teams:
        loser = m.scrim_key_team(m.RED) if winner == m.scrim_key_team(m.BLUE) else m.scrim_key_team(m.BLUE)
        wins, losses = scrim.points.get(winner, 0), scrim.points.get(loser, 0)
        lines.append(f"{names[winner]} takes the point! ({_shown(match, scores[winner])} vs. "
                     f"{_shown(match, scores[loser])})")
        if won:
            title = parsed["name"] if parsed else match.name
            lines.append(f"{names[winner]} takes the match, finishing {title} with a score of {wins} - {losses}! "
                         "Congratulations!")
        else:
            lines.append(f"Total Score: {names[winner]} | {wins} - {losses} | {names[loser]}")
    else:
        average = sum(scores.values()) / len(scores)
        lines.append(f"{names[winner]} takes the point! ({_shown(match, scores[winner])} "
                     f"[Match avg. {_shown(match, average)}])")
        if won:
            lines.append(f"{names[winner]} takes the match! Congratulations!")
        else:
            standing = sorted(scrim.points.items(), key=lambda item: item[1])
            lines.append("Total Score: " + " | ".join(f"{scrim.names.get(k, k)} - {v}" for k, v in standing))
    if won:
        scrim.active = False
        scrim.reset()
        match.bans.clear()
    return lines
