"""Staff commands: alerts, moderated channels, kicks, silences, bans and restrictions, server
operations (``!system``), ``!switchserver``, ``!rtx``, ``!announce``.

Sources: docs/rules.md §8.3 (O) and §8.6 (K) for triggers, privileges and reply texts; §7.3
(kick), §7.5 (restart), §7.6 (maintenance); docs/schema.md §2.3–2.4 (ban, restrict, silence).
Targets are users written in their IRC form (spaces as underscores; any case): for commands
whose only argument is the user, every remaining word is part of the name (K), so names with
spaces work as typed. Bans and restrictions go through :mod:`services.moderation` (MySQL first,
then ``peppy:ban``, whose loop-back handles the online user); silences through
:func:`services.session.silence` (MySQL first, then the packets); server operations through
:mod:`services.stop`, :mod:`services.maintenance` and :mod:`services.reload`.

[FIX]es over Kawata: ``!kick`` and ``!silence`` work; ``!rtx`` to an offline user answers
instead of raising; ``!switchserver`` switches the named user, not the sender.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import TYPE_CHECKING, Any, Callable

from common.db import DatabaseError
from common.ripple import safe_username
from constants import privileges as privs
from services import chat, maintenance, moderation, reload, session, stop
from services.commands import (BANCHOPY, CHANNEL, Context, KAWATA, REALISTIK, RIPPLE, RIPPLE_LIKE, STACKS, WrongSyntax,
                               command)
from helpers import codec

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.commands.staff")

#: longest silence (K: one month; O had 7 days)
MAX_SILENCE = 2_628_000
#: longest silence on the ripple flavour (Ripple's bot: 7 days)
MAX_SILENCE_RIPPLE = 7 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ADDRESS = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                      r"[A-Za-z0-9])?(?::\d{1,5})?$")


# ------------------------------------------------------------------------------------ helpers
def _online(state: State, name: str) -> list[Token]:
    """Every live session (game and tournament clients) of the user named ``name`` (any form)."""
    main = state.tokens.by_name(safe_username(name))
    if main is None:
        return []
    return [t for t in state.tokens.user_tokens(main.user_id) if not t.kicked]


def _send_to(state: State, name: str, encode: Callable[[], bytes]) -> Token | None:
    """Enqueue the packet ``encode()`` (encoded once, only when someone receives it) to every
    live session of the user named ``name``; returns the first session, or None (nothing sent)
    when the user is offline or is the bot."""
    tokens = _online(state, name)
    if not tokens or tokens[0].is_bot:
        return None
    packet = encode()
    for token in tokens:
        token.enqueue(packet)
    return tokens[0]


async def _user(ctx: Context, name: str) -> dict[str, Any] | None:
    """The ``users`` row of ``name`` (IRC form or with spaces), or None."""
    return await ctx.state.repo.user_by_safe_name(safe_username(name))


def _is_bot(ctx: Context, row_or_id: Any) -> bool:
    user_id = row_or_id if isinstance(row_or_id, int) else int(row_or_id["id"])
    return ctx.state.bot is not None and user_id == ctx.state.bot.user_id


async def admin_log(ctx: Context, target_id: int, text: str) -> None:
    """A ``rap_logs`` row by the issuer (``through`` = the bot's name), as O writes for its staff
    commands (docs/rules.md §8.3 "Admin log"). Best effort: a dump without the table only logs."""
    try:
        await ctx.state.repo.admin_log(ctx.sender.user_id, text, ctx.bot_name)
    except DatabaseError as exc:
        log.warning("rap_logs write failed (%s): %s", exc, text)
    log.info("[RAP] %s %s", ctx.sender.username, text)


# ------------------------------------------------------------------------------------ alerts
@command("!alert", "<message...>", privileges=privs.ADMIN_SEND_ALERTS,
         description="Sends a notification to everyone online. No reply.", stacks=STACKS)
def alert(ctx: Context) -> None:
    packet = codec.notification(ctx.rest)
    ctx.state.tokens.broadcast(packet)
    if ctx.state.cluster is not None:  # every node's users (docs/cluster.md)
        ctx.state.cluster.broadcast(packet)


@command("!alertuser", "<user> <message...>", privileges=privs.ADMIN_SEND_ALERTS,
         description="Sends a notification to every session of one user. No reply unless the user is offline.", stacks=RIPPLE_LIKE)
def alertuser(ctx: Context) -> str | None:
    message = ctx.rest[len(ctx.args[0]):].strip()
    if _send_to(ctx.state, ctx.args[0], lambda: codec.notification(message)) is None:
        return "User offline."
    return None


@command("!announce", "<text...>", privileges=privs.ADMIN_SEND_ALERTS,
         description="Posts a message as the bot in #announce.", stacks=(KAWATA, REALISTIK))
def announce(ctx: Context) -> str:
    result = chat.bot_message(ctx.state, "#announce", ctx.rest)
    if result is not chat.Result.SENT:
        return f"Could not post in #announce ({result.value})."
    return "Announcement successfully sent."


# ------------------------------------------------------------------------------------ channels
@command("!moderated", "[on|off]", privileges=privs.ADMIN_CHAT_MOD, where=CHANNEL,
         wrong_place="You are trying to put a private chat in moderated mode. Are you serious?!? You're fired.",
         description="Moderated mode for this channel: only admins may talk (in memory until restart). "
                     "Any argument but off turns it on.", stacks=RIPPLE_LIKE)
def moderated(ctx: Context) -> str:
    channel = ctx.state.channels.get(ctx.channel or "")
    if channel is None:
        return "This channel does not exist any more."
    channel.moderated = not (ctx.args and ctx.args[0].lower() == "off")
    if channel.moderated:
        return "This channel is now in moderated mode!"
    return "This channel is no longer in moderated mode!"


# ------------------------------------------------------------------------------------ kicks
@command("!kick", "<user...>", privileges=privs.ADMIN_KICK_USERS,
         description="Disconnects every session of a user (they may log in again).", stacks=RIPPLE_LIKE)
def kick(ctx: Context) -> str:
    name = ctx.rest
    tokens = _online(ctx.state, name)
    if tokens and tokens[0].is_bot:
        return "Nope."
    if not tokens:
        return f"{name} is not online"
    for token in tokens:
        session.kick(ctx.state, token)
    return f"{tokens[0].username} has been kicked from the server."


@command("!kickall", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Disconnects everyone except admins (and you).", stacks=RIPPLE_LIKE)
def kickall(ctx: Context) -> str:
    for token in ctx.state.tokens:
        if token.is_bot or token.admin or token.user_id == ctx.sender.user_id or token.kicked:
            continue
        session.kick(ctx.state, token)
    # the one reply whose text differs between the stacks: Ripple's on the ripple flavour
    return "Whoops! Rip everyone." if ctx.state.repo.flavour.name == "ripple" else "Whoops! Who needs players anyways?"


# ------------------------------------------------------------------------------------ silences
#: the texts of ``!silence`` that differ between the stacks: Kawata/RealistikOsu (one month at
#: most) and Ripple (7 days at most), as their bots answer them
SILENCE_TEXTS = {
    "kawata": {"max": MAX_SILENCE, "too_long": "Invalid silence time. Max silence time is 1 month.",
               "unit": "Invalid time format (s/m/h/d).", "done": "{name} has been silenced for: {reason}"},
    "ripple": {"max": MAX_SILENCE_RIPPLE, "too_long": "Invalid silence time. Max silence time is 7 days.",
               "unit": "Invalid time unit (s/m/h/d).",
               "done": "{name} has been silenced for the following reason: {reason}"},
}


def silence_texts(flavour: str) -> dict[str, Any]:
    """The ``!silence`` limits and texts of ``flavour`` (RealistikOsu answers as Kawata)."""
    return SILENCE_TEXTS["ripple" if flavour == "ripple" else "kawata"]


def parse_silence(args: list[str], flavour: str = "kawata") -> tuple[str, int, str]:
    """(target name, seconds, reason) from ``<user...> <amount> <s|m|h|d> <reason...>``.

    The name is every word before the first number after it (K), so names with spaces work.
    Raises :class:`WrongSyntax` (with the reply text of ``flavour``'s bot) for a bad amount,
    unit, length (at most :data:`MAX_SILENCE`, 7 days on Ripple) or reason.
    """
    texts = silence_texts(flavour)
    index = next((i for i in range(1, len(args)) if args[i].isdigit()), None)
    if index is None:
        if len(args) >= 2:
            raise WrongSyntax("The amount must be a number.")
        raise WrongSyntax()
    name = " ".join(args[:index])
    if index + 1 >= len(args):
        raise WrongSyntax()
    unit = args[index + 1].lower()
    if unit not in _UNITS:
        raise WrongSyntax(texts["unit"])
    reason = " ".join(args[index + 2:]).strip()
    if not reason:
        raise WrongSyntax("Please provide a valid reason.")
    if len(args[index]) > 12:
        raise WrongSyntax(texts["too_long"])
    seconds = int(args[index]) * _UNITS[unit]
    if not 0 < seconds <= texts["max"]:
        raise WrongSyntax(texts["too_long"])
    return name, seconds, reason


@command("!silence", "<user> <amount> <s|m|h|d> <reason...>", privileges=privs.ADMIN_SILENCE_USERS,
         description="Silences a user (online or not) for at most one month (7 days on Ripple).",
         effect="Writes users.silence_end/silence_reason and a rap_logs row; online sessions get the silence "
                "packets.", stacks=STACKS)
async def silence(ctx: Context) -> str:
    """The stack's ``!silence`` (:data:`SILENCE_TEXTS` by ``[stack] flavour``): MySQL first
    (:func:`services.session.silence`), then the packets, then the Ripple admin log."""
    flavour = ctx.state.repo.flavour.name
    name, seconds, reason = parse_silence(ctx.args, flavour)
    user = await _user(ctx, name)
    if user is None:
        return f"{name}: user not found"
    if _is_bot(ctx, user):
        return "Nope."
    await session.silence(ctx.state, int(user["id"]), seconds, reason)
    await admin_log(ctx, int(user["id"]),
                    f'has silenced {user["username"]} for {seconds} seconds for the following reason: "{reason}"')
    return silence_texts(flavour)["done"].format(name=user["username"], reason=reason)


@command("!removesilence", "<user...>", privileges=privs.ADMIN_SILENCE_USERS,
         description="Ends a user's silence.", stacks=RIPPLE_LIKE)
async def removesilence(ctx: Context) -> str:
    user = await _user(ctx, ctx.rest)
    if user is None:
        return f"{ctx.rest}: user not found"
    await session.silence(ctx.state, int(user["id"]), 0, "")
    await admin_log(ctx, int(user["id"]), f"has removed {user['username']}'s silence")
    return f"{user['username']}'s silence reset"


# ------------------------------------------------------------------------------------ bans
async def _moderate(ctx: Context, action: str) -> str:
    user = await _user(ctx, ctx.rest)
    if user is None:
        return f"{ctx.rest}: user not found"
    name, user_id = str(user["username"]), int(user["id"])
    state, by = ctx.state, ctx.sender.user_id
    if action in ("ban", "restrict") and (_is_bot(ctx, user_id) or user_id == by):
        return "NO!"
    if action == "ban":
        await moderation.ban(state, user_id, by=by)
        return f"RIP {name}. You will not be missed."
    if action == "restrict":
        await moderation.restrict(state, user_id, by=by)
        return f"Bye bye {name}. See you later, maybe."
    if action == "unban":
        await moderation.unban(state, user_id, by=by)
    else:
        await moderation.unrestrict(state, user_id, by=by)
    return f"Welcome back {name}!"


@command("!ban", "<user...>", privileges=privs.ADMIN_BAN_USERS,
         description="Bans a user (not the bot, not yourself).",
         effect="users.privileges &= ~3, ban_datetime, leaderboards, peppy:ban; online sessions are kicked.", stacks=RIPPLE_LIKE)
def ban(ctx: Context):
    return _moderate(ctx, "ban")


@command("!unban", "<user...>", privileges=privs.ADMIN_BAN_USERS, description="Lifts a ban.",
         effect="users.privileges |= 3, ban_datetime 0, peppy:ban.", stacks=RIPPLE_LIKE)
def unban(ctx: Context):
    return _moderate(ctx, "unban")


#: RealistikOsu's ``!restrict <user> "summary" "detail"``: the two quoted parts at the end
_RESTRICT_REASONS = re.compile(r'^(?P<user>[^"]+?)\s+"(?P<summary>[^"]+)"\s+"(?P<detail>[^"]+)"\s*$')
RESTRICT_NEEDS_REASONS = "Please specify both a reason and a summary for the ban."
MAX_BAN_SUMMARY = 256
MAX_BAN_DETAIL = 2048


def parse_restrict(rest: str) -> tuple[str, str, str] | None:
    """(user, summary, detail) of ``<user...> "summary" "detail"`` (RealistikOsu's syntax), or
    None when the two quoted parts are missing. The quotes are not part of the stored texts."""
    match = _RESTRICT_REASONS.match(rest.strip())
    if match is None:
        return None
    return match["user"].strip(), match["summary"].strip(), match["detail"].strip()


@command("!restrict", '<user...> ["summary" "detail"]', privileges=privs.ADMIN_BAN_USERS,
         description='Puts a user in restricted mode (not the bot, not yourself). On RealistikOsu the '
                     'quoted summary and detail are required (its ban_logs row).',
         effect="users.privileges &= ~1, ban_datetime, ban_logs (RealistikOsu), peppy:ban; an online user "
                "gets the restricted notice.", stacks=STACKS)
async def restrict(ctx: Context) -> str:
    """Kawata/Ripple: ``!restrict <user...>``. RealistikOsu: ``!restrict <user> "summary"
    "detail"`` (its texts; the ``ban_logs`` row gets the summary and the detail, from the
    issuer). On other flavours quoted reasons are accepted and the detail goes to the log."""
    realistik = ctx.state.repo.flavour.name == "realistikosu"
    parsed = parse_restrict(ctx.rest)
    if parsed is None:
        if realistik:
            return RESTRICT_NEEDS_REASONS
        return await _moderate(ctx, "restrict")
    name, summary, detail = parsed
    if len(summary) > MAX_BAN_SUMMARY or len(detail) > MAX_BAN_DETAIL:
        return f"The summary may have {MAX_BAN_SUMMARY} characters and the detail {MAX_BAN_DETAIL} at most."
    user = await _user(ctx, name)
    if user is None:
        return f"Could not find the user '{name}' on the server." if realistik else f"{name}: user not found"
    user_id = int(user["id"])
    if _is_bot(ctx, user_id) or user_id == ctx.sender.user_id:
        return "NO!"
    if not await moderation.restrict(ctx.state, user_id, by=ctx.sender.user_id, reason=detail, summary=summary):
        return f"{user['username']} is already restricted."
    if realistik:
        return f"{user['username']} has been successfully restricted for '{summary}'"
    return f"Bye bye {user['username']}. See you later, maybe."


@command("!unrestrict", "<user...>", privileges=privs.ADMIN_BAN_USERS, description="Lifts a restriction.",
         effect="users.privileges |= 3, ban_datetime 0, peppy:ban.", stacks=STACKS)
def unrestrict(ctx: Context):
    return _moderate(ctx, "unrestrict")


# ------------------------------------------------------------------------------------ !system
SHUTDOWN_NOTICE = ("We are performing some maintenance. Bancho will {what} in {seconds} seconds. "
                   "Thank you for your patience.")
SYSTEM_SYNTAX = "Wrong syntax: !system <restart|shutdown|reload|maintenance [on|off]|status>"


def _shutdown(ctx: Context, restart: bool) -> str:
    text = SHUTDOWN_NOTICE.format(what="restart" if restart else "shutdown", seconds=5)
    stop.schedule_shutdown(ctx.state, restart, message=text, send_after=5, delay=20)
    return text


@command("!system restart", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Restarts the server: notice now, clients told to reconnect after 5 s, restart after 25 s.", stacks=RIPPLE_LIKE)
def system_restart(ctx: Context) -> str:
    return _shutdown(ctx, True)


@command("!system shutdown", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Stops the server: notice now, clients told to reconnect after 5 s, stop after 25 s.", stacks=RIPPLE_LIKE)
def system_shutdown(ctx: Context) -> str:
    return _shutdown(ctx, False)


@command("!system reload", privileges=privs.ADMIN_MANAGE_SERVERS | privs.ADMIN_MANAGE_SETTINGS,
         description="Reloads bancho_settings, the menu icon and new channels from MySQL (as peppy:reload_settings).", stacks=RIPPLE_LIKE)
async def system_reload(ctx: Context) -> str:
    await reload.reload_settings(ctx.state)
    return "Bancho settings reloaded!"


@command("!system maintenance", "[on|off]", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Turns maintenance mode on (default) or off: only admins may log in; non-admins are "
                     "disconnected.", stacks=RIPPLE_LIKE)
async def system_maintenance(ctx: Context) -> str:
    arg = ctx.args[0].lower() if ctx.args else "on"
    if arg not in ("on", "off"):
        raise WrongSyntax()
    on = arg == "on"
    await maintenance.set_maintenance(ctx.state, on)
    return "The server is now in maintenance mode!" if on else "The server is no longer in maintenance mode!"


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{days}d {hours}h {minutes}m {seconds}s"


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


@command("!system status", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Shows online users, matches, uptime, maintenance, memory and load.", stacks=RIPPLE_LIKE)
def system_status(ctx: Context) -> list[str]:
    state = ctx.state
    matches = getattr(state, "matches", None)
    lines = [
        f"--- {state.cfg.stack.server_name} realtime server ---",
        f"> Online users: {len(state.tokens)}",
        f"> Multiplayer matches: {len(matches) if matches is not None else 0}",
        f"> Uptime: {_uptime(time.time() - state.started)}",
        f"> Maintenance: {'on' if state.settings.maintenance else 'off'}",
    ]
    rss = _rss_mb()
    if rss is not None:
        lines.append(f"> Memory: {rss:.1f} MB")
    if hasattr(os, "getloadavg"):
        lines.append("> Load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return lines


@command("!system", "<restart|shutdown|reload|maintenance|status>",
         privileges=privs.ADMIN_MANAGE_SERVERS | privs.ADMIN_MANAGE_SETTINGS,
         description="Any other !system word: lists the subcommands.", hidden=True, stacks=RIPPLE_LIKE)
def system_other(ctx: Context) -> str:
    """Any other ``!system ...``: the list of subcommands."""
    return SYSTEM_SYNTAX


# ------------------------------------------------------------------------------------ clients
@command("!switchserver", "<user> <address>", privileges=privs.ADMIN_MANAGE_SERVERS,
         description="Tells a user's tournament clients to switch to another server (packet 107).", stacks=RIPPLE_LIKE)
def switchserver(ctx: Context) -> str:
    name, address = ctx.args[0], ctx.args[1]
    if len(ctx.args) != 2 or not _ADDRESS.match(address):
        return "Invalid server IP"
    first = _send_to(ctx.state, name, lambda: codec.switch_tournament_server(address))
    if first is None:
        return f"{name} is not online"
    return f"{first.username} has been connected to {address}"


@command("!rtx", "<user> <message...>", privileges=privs.ADMIN_MANAGE_USERS,
         description="Shows a full-screen RTX message on a user's game client (packet 105).", stacks=(RIPPLE,))
def rtx(ctx: Context) -> str:
    name = ctx.args[0]
    message = ctx.rest[len(name):].strip()
    if not message:
        return "Invalid message"
    if _send_to(ctx.state, name, lambda: codec.rtx(message)) is None:
        return f"{name} is not online"
    return ":ok_hand:"


# ------------------------------------------------------------------------------------ bancho.py
SWITCHSERV_SYNTAX = "Invalid syntax: !switch <endpoint>"
_TIMESPAN = re.compile(r"^(\d{1,7})([smhd]?)$")
MIN_SHUTDOWN_DELAY = 15
#: restart packet this long before a delayed !shutdown stops the server (seconds)
SHUTDOWN_WARNING = 5


def parse_timespan(text: str) -> int | None:
    """Seconds of a bancho.py timespan (``90``, ``30s``, ``5m``, ``2h``, ``1d``), or None."""
    match = _TIMESPAN.match(text.strip().lower())
    if match is None:
        return None
    return int(match[1]) * _UNITS[match[2] or "s"]


@command("!switchserv", "[address]", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=(BANCHOPY,),
         description="Tells your own tournament client to switch to another server (packet 107).")
def switchserv(ctx: Context) -> str:
    """bancho.py's ``!switchserv``: 107 to the sender's session (``host[:port]`` checked)."""
    if len(ctx.args) != 1 or not _ADDRESS.match(ctx.args[0]):
        return SWITCHSERV_SYNTAX
    ctx.sender.enqueue(codec.switch_tournament_server(ctx.args[0]))
    return "Have a nice journey.."


@command("!shutdown", "[delay] [reason...]", privileges=privs.ADMIN_MANAGE_SERVERS, stacks=(BANCHOPY,),
         description="Stops the server gracefully: now (as SIGTERM), or after a delay (15 s to 1 h: 30s, 5m, 1h) "
                     "with an optional reason notified to everyone.")
def shutdown(ctx: Context) -> str:
    """bancho.py's ``!shutdown`` through the server's own stops: without arguments
    :func:`services.stop.request_stop` (what SIGTERM does: sessions are kept for the next
    start when ``[sessions] handover`` is on); with a delay :func:`services.stop.schedule_shutdown`
    (the restart packet 5 s before the stop; new logins are refused meanwhile, as for
    ``!system shutdown``). A reason is notified to everyone at once."""
    if not ctx.args:
        stop.request_stop(ctx.state, False, reason=f"!shutdown by {ctx.sender.username}")
        return "Process killed"
    delay = parse_timespan(ctx.args[0])
    if not delay:
        return "Invalid timespan."
    if delay < MIN_SHUTDOWN_DELAY:
        return f"Minimum delay is {MIN_SHUTDOWN_DELAY} seconds."
    if delay > stop.MAX_SCHEDULE:
        return "Maximum delay is 1 hour."
    reason = ctx.rest[len(ctx.args[0]):].strip()
    alert = f"The server will shutdown in {ctx.args[0]}.\n\nReason: {reason}" if reason else None
    stop.schedule_shutdown(ctx.state, False, message=alert, send_after=delay - SHUTDOWN_WARNING,
                             delay=SHUTDOWN_WARNING)
    return "Enqueued shutdown."
