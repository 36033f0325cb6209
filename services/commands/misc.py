"""Small commands of the other stacks: ``!recent`` (bancho.py), ``!syntax`` (Kawata), ``!mm00``
(Ripple), ``!update`` (Ripple), ``!reconnect`` (bancho.py), the bot's own ``!bot reconnect`` /
``!fokabot reconnect`` / ``!bot reload``, ``!ir`` and ``!reloadconfig``.

Sources: docs/commands.md (the commands, their replies and the decisions taken);
docs/rules.md §7.5 (restarts) for ``!ir``; docs/integration.md §2 (``ussr:refresh_bmap``) for
``!update``. Server operations go through :mod:`services.stop` and :mod:`services.reload`, kicks through
:func:`services.session.kick`.
"""

from __future__ import annotations

import logging
import random
import time

from redis.exceptions import RedisError

from common.ripple import safe_username
from constants import game
from constants import privileges as privs
from services import publish, reload, session, stop
from services.commands import (BANCHOPY, KAWATA, PRIVATE, REALISTIK, RIPPLE, RIPPLE_LIKE,
                               UNKNOWN_COMMAND, Context, command, registry)
from services.commands.np import NEED_NP, last
from helpers import codec

log = logging.getLogger("pep.commands.misc")

IR_NOTICE = "We are restarting Bancho. Be right back!"
#: how long a frozen user has to show a liveplay (RealistikOsu: two days)
FREEZE_SECONDS = 2 * 86400
MAX_STATUS = 256
UPDATE_QUEUED = ("An update request for that beatmap has been queued. Check back in a few minutes and the "
                 "beatmap should be updated!")

@command("!recent", stacks=(BANCHOPY,), description="Same as !last (bancho.py's name).")
def recent(ctx: Context):
    """bancho.py's name of ``!last``."""
    return last(ctx)


@command("!syntax", "<command...>", stacks=(KAWATA, REALISTIK),
         description="Shows the syntax of a command you may use, e.g. !syntax !mp.")
def syntax(ctx: Context) -> str:
    """Kawata's ``!syntax``: ``Syntax: {trigger} {syntax or <No syntax>}`` for a documented
    command the sender may use (the ``!`` may be left out); the unknown-command reply
    otherwise (also for commands the sender may not use, which must stay invisible)."""
    wanted = ctx.rest if ctx.rest.startswith(("!", "/")) else "!" + ctx.rest
    for cmd in registry(ctx.state):
        if not cmd.hidden and wanted in (cmd.trigger, cmd.name) and cmd.active(ctx.state) \
                and cmd.permitted(ctx.state, ctx.sender, ctx.channel):
            return f"Syntax: {cmd.name} {cmd.syntax or '<No syntax>'}"
    return UNKNOWN_COMMAND


@command("!mm00", stacks=(RIPPLE,), description="A joke of Ripple's bot.")
def mm00(ctx: Context) -> str:
    return random.choice(("meme", "MA MAURO ESISTE?"))


@command("!update", where=PRIVATE, stacks=(RIPPLE,),
         description="Asks the score server to refresh your last /np map.",
         effect="Publishes ussr:refresh_bmap with its md5 (USSR flavours).")
async def update(ctx: Context) -> str:
    """Ripple's ``!update`` on the sender's last /np: the map's md5 goes on ``ussr:refresh_bmap``
    (kawata and realistikosu; nothing listens on Ripple's stack, whose LETS refreshes a map when
    its leaderboard is opened). Replies with Ripple's intended text."""
    np = ctx.sender.now_playing
    if np is None or not np.beatmap_id:
        return NEED_NP
    row = await ctx.state.repo.beatmap_by_id(np.beatmap_id)
    if row is None:
        return "Could not find beatmap."
    try:
        await publish.refresh_beatmaps(ctx.state, [str(row.get("beatmap_md5") or "")])
    except (RedisError, OSError) as exc:
        log.warning("!update: ussr:refresh_bmap not published: %s", exc)
        return "The score server could not be told right now. Please try again later."
    return UPDATE_QUEUED


@command("!reconnect", "[user...]", stacks=(BANCHOPY,),
         description="Disconnects you (or, for staff who may kick, another user) so the game reconnects.")
def reconnect(ctx: Context) -> str | None:
    """bancho.py's ``!reconnect``: kick without a notice; the client logs in again by itself.
    A target needs ADMIN_KICK_USERS; the bot cannot be reconnected."""
    state = ctx.state
    if ctx.rest:
        if not ctx.sender.privileges & privs.ADMIN_KICK_USERS:
            return "You may only reconnect yourself."
        main = state.tokens.by_name(safe_username(ctx.rest))
        if main is None or main.is_bot:
            return f"{ctx.rest} is not online"
        targets = [t for t in state.tokens.user_tokens(main.user_id) if not t.kicked]
    else:
        targets = [ctx.sender]
    for token in targets:
        session.kick(state, token, "")
    return f"{ctx.rest} has been reconnected." if ctx.rest else None


@command("!bot reconnect", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=(KAWATA, REALISTIK),
         description="The bot is part of the server and always connected: says so.")
def bot_reconnect(ctx: Context) -> str:
    return f"{ctx.bot_name} is already connected to {ctx.state.cfg.stack.server_name}!"


@command("!fokabot reconnect", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=(RIPPLE,),
         description="Ripple's name of !bot reconnect.")
def fokabot_reconnect(ctx: Context) -> str:
    return f"{ctx.bot_name} is already connected to Bancho"


@command("!bot reload", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=(KAWATA, REALISTIK),
         description="The commands are loaded at start-up: says how to load changed command modules.")
def bot_reload(ctx: Context) -> str:
    return (f"{ctx.bot_name}'s commands are loaded when the server starts: use !system restart to load "
            "changed command modules.")


@command("!ir", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=RIPPLE_LIKE,
         description="Instant restart: everyone is told, clients reconnect now, the server restarts in 5 s. No reply.")
def instant_restart(ctx: Context) -> None:
    stop.schedule_shutdown(ctx.state, True, message=IR_NOTICE, send_after=0, delay=5)


@command("!reloadconfig", privileges=privs.ADMIN_MANAGE_SERVERS, where=PRIVATE, stacks=(RIPPLE,),
         description="Reloads bancho_settings, the menu icon and new channels (as !system reload and SIGHUP); "
                     "config.ini itself is read at start-up.")
async def reloadconfig(ctx: Context) -> str:
    await reload.reload_settings(ctx.state)
    return "Configuration reloaded successfully (config.ini changes need a restart)."


# ------------------------------------------------------------------------------------ RealistikOsu
async def _freeze(ctx: Context, frozen: bool) -> str:
    state = ctx.state
    row = await state.repo.user_by_safe_name(safe_username(ctx.rest))
    if row is None:
        return f"{ctx.rest}: user not found"
    user_id = int(row["id"])
    if state.bot is not None and user_id == state.bot.user_id:
        return "Nope."
    if frozen and int(row.get("frozen") or 0):
        return "That user is already frozen."
    if not frozen and not int(row.get("frozen") or 0):
        return "That user is not frozen."
    await state.repo.set_frozen(user_id, frozen, int(time.time()) + FREEZE_SECONDS if frozen else 0)
    server = state.cfg.stack.server_name
    notice = (f"You have been frozen! The {server} staff team has found you suspicious and would like to "
              "request a liveplay." if frozen else
              f"Your account has been unfrozen! You have proven your legitimacy. Thank you and have fun playing on {server}!")
    packet = codec.notification(notice)
    for token in state.tokens.user_tokens(user_id):
        if not token.kicked:
            token.enqueue(packet)
    log.info("%s %s user=%d", ctx.sender.username, "froze" if frozen else "unfroze", user_id)
    return "User has been frozen!" if frozen else "User has been unfrozen!"


@command("!freeze", "<user...>", privileges=privs.ADMIN_MANAGE_USERS, stacks=(REALISTIK,),
         description="Freezes a user: they have two days to show a liveplay (RealistikOsu).",
         effect="users.frozen = 1, freezedate = now + 2 days; the user is notified.")
async def freeze(ctx: Context) -> str:
    """RealistikOsu's ``!freeze``: MySQL first, then a notification to the online user."""
    return await _freeze(ctx, True)


@command("!unfreeze", "<user...>", privileges=privs.ADMIN_MANAGE_USERS, stacks=(REALISTIK,),
         description="Lifts a freeze.", effect="users.frozen = 0, freezedate = 0, firstloginafterfrozen = 1.")
async def unfreeze(ctx: Context) -> str:
    """RealistikOsu's ``!unfreeze``: MySQL first, then a notification to the online user."""
    return await _freeze(ctx, False)


def _show_status(ctx: Context, text: str) -> None:
    """Put the (enabled) ``!status`` text on every session of the sender; an idle or AFK
    session shows it at once (``({text}) [VN]``, as RealistikOsu shows it), others at their
    next idle status."""
    for token in ctx.state.tokens.user_tokens(ctx.sender.user_id):
        if token.kicked or token.is_bot:
            continue
        token.status_text = text
        if token.action in (game.IDLE, game.AFK) and ctx.state.repo.flavour.relax_prefix:
            token.action_text = session.prefixed_action_text(token, token.action, token.action_text)
            token.invalidate()
            session.send_own_status(token)


@command("!status", "[status...]", stacks=(REALISTIK,),
         description="Sets your status text (up to 256 characters), shown in your idle/AFK status as "
                     "(text) [VN]; without a text, turns it on or off (RealistikOsu flavour).",
         effect="Writes user_statuses.")
async def status(ctx: Context) -> str:
    """RealistikOsu's ``!status``: one ``user_statuses`` row per user (the table exists on the
    realistikosu flavour only; other flavours get a reply saying so). MySQL first, then the
    sender's sessions show it (:func:`_show_status`)."""
    state = ctx.state
    if state.repo.flavour.name != "realistikosu":
        return "Statuses are not kept on this server."
    current = await state.repo.user_status(ctx.sender.user_id)
    if not ctx.rest:
        if current is None:
            return ("You may not toggle your status if you do not have one! You may create a new one using the "
                    "command !status <your status>")
        enabled = not int(current.get("enabled") or 0)
        await state.repo.set_user_status(ctx.sender.user_id, None, enabled)
        _show_status(ctx, str(current.get("status") or "") if enabled else "")
        return f"Your status has been toggled {'on' if enabled else 'off'}!"
    if len(ctx.rest) > MAX_STATUS:
        return f"This status is too long! (Max is {MAX_STATUS}, yours was {len(ctx.rest)})"
    if not ctx.rest.isprintable():
        return "Your status may not contain control characters."
    await state.repo.set_user_status(ctx.sender.user_id, ctx.rest, True)
    _show_status(ctx, ctx.rest)
    return f"Your status has been set to: {ctx.rest}"


# ------------------------------------------------------------------------------------ bancho.py
async def _block_target(ctx: Context) -> dict | str:
    row = await ctx.state.repo.user_by_safe_name(safe_username(ctx.rest))
    if row is None:
        return "Could not find user."
    if int(row["id"]) == ctx.sender.user_id:
        return "What?"
    if ctx.state.bot is not None and int(row["id"]) == ctx.state.bot.user_id:
        return f"You can't block {ctx.bot_name}."
    return row


@command("!block", "<user...>", stacks=(BANCHOPY,),
         description="Blocks a user: their private messages to you are refused (and they are no longer your friend).",
         effect="Writes user_blocks (at most 100 per user).")
async def block(ctx: Context) -> str:
    """bancho.py's ``!block``: MySQL first (``user_blocks``, friendship removed), then every
    session of the sender refuses the user's PMs (packet 100 to the blocked sender, as for
    "friends only" DMs)."""
    row = await _block_target(ctx)
    if isinstance(row, str):
        return row
    target_id, name = int(row["id"]), str(row["username"])
    result = await ctx.state.repo.block_user(ctx.sender.user_id, target_id)
    if result == "already":
        return f"{name} already blocked!"
    if result == "full":
        return "You have blocked too many users. Unblock someone first."
    for token in ctx.state.tokens.user_tokens(ctx.sender.user_id):
        token.blocked = set(token.blocked) | {target_id}
        token.friends.discard(target_id)
    return f"Added {name} to blocked users."


@command("!unblock", "<user...>", stacks=(BANCHOPY,), description="Lifts a !block.",
         effect="Deletes the user_blocks row.")
async def unblock(ctx: Context) -> str:
    """bancho.py's ``!unblock``: MySQL first, then the sender's sessions."""
    row = await _block_target(ctx)
    if isinstance(row, str):
        return row
    target_id, name = int(row["id"]), str(row["username"])
    if not await ctx.state.repo.unblock_user(ctx.sender.user_id, target_id):
        return f"{name} not blocked!"
    for token in ctx.state.tokens.user_tokens(ctx.sender.user_id):
        token.blocked = set(token.blocked) - {target_id}
    return f"Removed {name} from blocked users."


@command("!delta", where=PRIVATE, stacks=(RIPPLE,),
         description="Ripple's switch to its beta server; there is none here, so it says it is disabled.")
def delta(ctx: Context) -> str:
    return "Delta is disabled."
