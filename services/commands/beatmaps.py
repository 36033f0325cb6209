"""Beatmap commands: ``!map`` (Kawata/RealistikOsu ranking), ``!request``/``!requests``
(bancho.py's rank requests), the mirror links ``!chimu``/``!beatconnect``/``!mirror`` (Kawata).

Sources: docs/commands.md (the commands and the decisions), docs/integration.md §2
(``ussr:refresh_bmap``), docs/schema.md (``beatmaps``; ``map_requests`` is created by
``init-db``). Every command works on the sender's last /np (``token.now_playing``) or, for the
mirror links in a multiplayer or spectator channel, on the match's or the host's map.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import requests
from redis.exceptions import RedisError

from constants import privileges as privs
from services import chat, publish
from services.commands import BANCHOPY, KAWATA, REALISTIK, RIPPLE, Context, WrongSyntax, command
from services.commands.np import NEED_NP

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.commands.beatmaps")

#: ``!map`` words -> ``beatmaps.ranked`` values (Ripple/LETS: 0 pending, 2 ranked, 5 loved)
MAP_STATUSES = {"rank": 2, "love": 5, "unrank": 0}
STATUS_WORDS = {2: "ranked", 5: "loved", 0: "unranked"}
#: ``beatmaps.ranked`` values a player may request a status change for (pending, needs update)
REQUESTABLE = (0, 1)
#: open requests listed by ``!requests``
REQUESTS_SHOWN = 10


def website(state: State) -> str:
    """``[bot] website`` without its trailing slash ("" when not configured)."""
    return (state.cfg.bot.website or "").strip().rstrip("/")


def beatmap_link(state: State, beatmap_id: int, title: str) -> str:
    """An osu!-chat link ``[url title]`` to a difficulty: on the website when ``[bot] website``
    is set, else on osu.ppy.sh."""
    base = website(state) or "https://osu.ppy.sh"
    return f"[{base}/b/{beatmap_id} {title}]"


def user_link(state: State, user_id: int, name: str) -> str:
    """``[{website}/u/{id} name]``, or the bare name without ``[bot] website``."""
    base = website(state)
    return f"[{base}/u/{user_id} {name}]" if base else name


# ------------------------------------------------------------------------------------ !map
@command("!map", "<rank|love|unrank> <set|map>", privileges=privs.ADMIN_MANAGE_BEATMAPS,
         stacks=(KAWATA, REALISTIK, BANCHOPY),
         description="Changes the ranked status of your last /np map (or its whole set).",
         effect="Writes beatmaps.ranked, ranked_status_freezed = 1 and rankedby (your id), closes its "
                "!request rows, publishes ussr:refresh_bmap with every md5 of the set, posts in #announce "
                "and calls [bot] new_ranked_webhook.")
async def map_status(ctx: Context) -> str:
    """Kawata's ``!map <rank|love|unrank> <set|map>`` on the sender's last /np. MySQL is written
    first (one transaction), then the cache refresh, the announcement and the webhook (best
    effort: their failures are logged). Replies per docs/commands.md."""
    np = ctx.sender.now_playing
    if np is None or not np.beatmap_id:
        return NEED_NP
    word, scope = ctx.args[0].lower(), ctx.args[1].lower()
    if word not in MAP_STATUSES:
        return "Status must be either rank, unrank, or love."
    if scope not in ("set", "map"):
        return "Scope must either be set or map."
    status = MAP_STATUSES[word]
    done = STATUS_WORDS[status]
    state = ctx.state
    row = await state.repo.beatmap_by_id(np.beatmap_id)
    if row is None:
        return "Could not find beatmap."
    if int(row.get("ranked") or 0) == status:
        return f"That map is already {done}!"
    set_id = int(row.get("beatmapset_id") or 0)
    whole_set = scope == "set" and set_id > 0
    md5s = await state.repo.set_beatmap_status(np.beatmap_id, set_id if whole_set else None, status,
                                               ctx.sender.user_id)
    try:
        await publish.refresh_beatmaps(state, md5s)
    except (RedisError, OSError) as exc:
        log.warning("!map: ussr:refresh_bmap not published: %s", exc)
    song = str(row.get("song_name") or f"beatmap {np.beatmap_id}")
    if whole_set:
        title = song.split("[")[0].strip() or song
        what = f"the beatmap set {beatmap_link(state, np.beatmap_id, title)}"
    else:
        title = song
        what = f"the beatmap {beatmap_link(state, np.beatmap_id, title)}"
    chat.bot_message(state, "#announce",
                     f"{user_link(state, ctx.sender.user_id, ctx.sender.username)} has {done} {what}")
    hook = (state.cfg.bot.new_ranked_webhook or "").strip()
    if hook:
        state.spawn(_webhook(state, hook, title, done, ctx.sender.username, np.beatmap_id, set_id),
                    "new ranked webhook")
    return f"Successfully {done} a map."


async def _webhook(state: State, url: str, title: str, done: str, by: str, beatmap_id: int, set_id: int) -> None:
    """POST a Discord embed to ``[bot] new_ranked_webhook`` (5 s timeout; failures logged)."""
    embed: dict[str, Any] = {
        "author": {"name": f"{title} was just {done}"},
        "description": f"{done.title()} by {by}",
        "color": 242424,
        "footer": {"text": "via pep.py!"},
        "url": f"{website(state) or 'https://osu.ppy.sh'}/b/{beatmap_id}",
    }
    if set_id > 0:
        embed["image"] = {"url": f"https://assets.ppy.sh/beatmaps/{set_id}/covers/cover.jpg"}

    def post() -> int:
        return requests.post(url, json={"embeds": [embed]}, timeout=5).status_code

    try:
        code = await asyncio.get_running_loop().run_in_executor(None, post)
        if code >= 300:
            log.warning("new_ranked_webhook answered HTTP %d", code)
    except requests.RequestException as exc:
        log.warning("new_ranked_webhook failed: %s", exc)


# ------------------------------------------------------------------------------------ requests
@command("!request", stacks=(BANCHOPY,),
         description="Asks the staff to rank your last /np map (pending maps only; [bot] max_requests open per player).",
         effect="Writes a map_requests row.")
async def request(ctx: Context) -> str:
    """bancho.py's ``!request``: an open ``map_requests`` row for the sender's last /np; at most
    ``[bot] max_requests`` open per player, one per map."""
    np = ctx.sender.now_playing
    if np is None or not np.beatmap_id:
        return NEED_NP
    state = ctx.state
    row = await state.repo.beatmap_by_id(np.beatmap_id)
    if row is None:
        return "Could not find beatmap."
    if int(row.get("ranked") or 0) not in REQUESTABLE:
        return "Only pending maps may be requested for status change."
    result = await state.repo.add_map_request(np.beatmap_id, ctx.sender.user_id, max(1, state.cfg.bot.max_requests))
    if result == "duplicate":
        return "That map has already been requested."
    if result == "full":
        return f"You already have {max(1, state.cfg.bot.max_requests)} open requests. Please wait for the staff."
    return "Request submitted."


@command("!requests", privileges=privs.ADMIN_MANAGE_BEATMAPS, stacks=(BANCHOPY,),
         description=f"Lists the open map requests (the oldest {REQUESTS_SHOWN}); /np one and use !map.")
async def requests_list(ctx: Context) -> list[str] | str:
    """bancho.py's ``!requests``: the number of open requests, then the oldest ones."""
    if ctx.args:
        raise WrongSyntax()
    state = ctx.state
    total, rows = await state.repo.open_map_requests(REQUESTS_SHOWN)
    if not total:
        return "The queue is clean! (0 map requests)"
    lines = [f"Total requests: {total}"]
    for row in rows:
        when = time.strftime("%b %d %H:%M", time.gmtime(int(row.get("datetime") or 0)))
        song = str(row.get("song_name") or f"beatmap {row['map_id']}")
        lines.append(f"[{row.get('username') or '?'} @ {when}] {beatmap_link(state, int(row['map_id']), song)}")
    return lines


# ------------------------------------------------------------------------------------ mirrors
MIRROR_NO_MAP = ("You're currently not spectating or playing a match, if you wish to request beatmap mirror "
                 "/np it before!")
MIRROR_UNKNOWN = "Sorry, I'm not able to provide a download link for this map :("


def _channel_beatmap(ctx: Context) -> int | str:
    """The beatmap id the mirror commands are about: the match's map in ``#multi_<id>``, the
    host's map in ``#spect_<host id>``, else the sender's last /np; or the reply when none."""
    state, channel = ctx.state, ctx.channel or ""
    if channel.startswith("#multi_"):
        suffix = channel[len("#multi_"):]
        match = state.matches.get(int(suffix)) if suffix.isdigit() else None
        if match is None:
            return "This match doesn't seem to exist... Or does it...?"
        return int(match.beatmap_id or 0) or MIRROR_UNKNOWN
    if channel.startswith("#spect_"):
        suffix = channel[len("#spect_"):]
        host = state.tokens.user(int(suffix)) if suffix.isdigit() else None
        if host is None:
            return "The spectator host is offline."
        return int(host.beatmap_id or 0) or MIRROR_UNKNOWN
    np = ctx.sender.now_playing
    if np is None or not np.beatmap_id:
        return MIRROR_NO_MAP
    return np.beatmap_id


def _mirror_url(template: str, set_id: int) -> str:
    return template.replace("{set}", str(set_id))


async def _mirror(ctx: Context, which: str) -> str:
    """Kawata's mirror links ([FIX]: a multiplayer channel gives the match's map, a spectator
    channel the host's, and a map missing from ``beatmaps`` gets a reply instead of a crash)."""
    target = _channel_beatmap(ctx)
    if isinstance(target, str):
        return target
    row = await ctx.state.repo.beatmap_by_id(target)
    set_id = int(row.get("beatmapset_id") or 0) if row else 0
    if set_id <= 0:
        return MIRROR_UNKNOWN
    song = str(row.get("song_name") or "Unknown Beatmap")
    bot = ctx.state.cfg.bot
    chimu, beatconnect = _mirror_url(bot.mirror_chimu, set_id), _mirror_url(bot.mirror_beatconnect, set_id)
    if which == "chimu":
        return f"Download [{chimu} {song}] from Chimu"
    if which == "beatconnect":
        return f"Download [{beatconnect} {song}] from Beatconnect"
    return f"Download {song} from [{beatconnect} Beatconnect], [{chimu} Chimu] or [osu://dl/{set_id} osu!direct]."


@command("!chimu", stacks=(KAWATA, REALISTIK),
         description="A Chimu download link ([bot] mirror_chimu) for the match's map (multiplayer channel), the "
                     "host's map (spectator channel) or your last /np.")
async def chimu(ctx: Context) -> str:
    return await _mirror(ctx, "chimu")


@command("!beatconnect", stacks=(KAWATA, REALISTIK),
         description="A Beatconnect download link ([bot] mirror_beatconnect), like !chimu.")
async def beatconnect(ctx: Context) -> str:
    return await _mirror(ctx, "beatconnect")


@command("!mirror", stacks=(KAWATA, REALISTIK),
         description="Beatconnect, Chimu and osu!direct links, like !chimu.")
async def mirror(ctx: Context) -> str:
    return await _mirror(ctx, "mirror")


command("!maplink", stacks=(BANCHOPY,), description="Same as !mirror (bancho.py's name).")(mirror)
command("!bloodcat", stacks=(RIPPLE,),
        description="Ripple's name of !mirror (Bloodcat is gone: the configured mirrors are given).")(mirror)
