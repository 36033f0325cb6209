"""Commands for everyone: ``!roll``, ``!faq``, ``!help``, ``!report``, ``!pp``.

Sources: docs/rules.md §8.3 (O table), §8.6 (K table), §6.2 and §6.6 (report buffer).
"""

from __future__ import annotations

import math
import random
import re

from common.ripple import safe_username
from constants import game
from constants import privileges as privs
from services import chat, moderation
from services.commands import (BANCHOPY, KAWATA, PRIVATE, REALISTIK, RIPPLE, RIPPLE_LIKE, STACKS, Context, command,
                               usable_commands)

# ------------------------------------------------------------------------------------ !roll
ROLL_DEFAULT = 100
ROLL_MAX = 10**18


@command("!roll", "[max]", description="Rolls a number from 0 to max - 1 (max defaults to 100).", stacks=STACKS)
def roll(ctx: Context) -> str:
    """``{user} rolls {n} points!`` with 0 <= n < max; a max that is not a positive integer
    (or is absurdly large) means 100 (docs/rules.md §8.3)."""
    top = ROLL_DEFAULT
    if ctx.args and ctx.args[0].isdigit() and len(ctx.args[0]) <= 18:
        value = int(ctx.args[0])
        if 0 < value <= ROLL_MAX:
            top = value
    return f"{ctx.sender.username} rolls {random.randrange(top)} points!"


# ------------------------------------------------------------------------------------ !faq
#: ``!faq`` answers, osu! "(label)[url]" link syntax allowed. Edit freely for your community.
FAQ: dict[str, str] = {
    "rules": "Please make sure to read the server's rules (you can find them on the website).",
    "swearing": "Please don't be rude to other players.",
    "spam": "Please don't spam.",
    "offend": "Please don't offend other players.",
    "english": "Please keep this channel in English.",
    "topic": "Please keep the conversation on topic.",
    "lines": "Please try to keep your sentences on a single line to avoid getting silenced.",
    "report": "To report a player, click on their name and select 'Report user'.",
    "status": "If the server seems down, please wait a few minutes and try again.",
}


@command("!faq", "<topic>", description="Posts a canned answer. Topics: " + ", ".join(FAQ) + ".", stacks=(RIPPLE,))
def faq(ctx: Context) -> str | None:
    """One canned line per key; an unknown key gives no reply (docs/rules.md §8.3)."""
    return FAQ.get(ctx.args[0].lower())


# ------------------------------------------------------------------------------------ !help
#: commands per page of Kawata's and RealistikOsu's paged list
HELP_PAGE_SIZE = 5
HELP_HEADER = "--- {page} of {pages} pages of commands currently available on {server}! ---"
HELP_SYNTAX_HINT = "You can check syntax of individual command using !syntax <command eg. !help>"
#: Ripple's static answer (its bot linked a documentation page of the website)
HELP_RIPPLE = "Click (here)[{url}] for {bot}'s full command list"


def help_url(state) -> str:
    """The page Ripple's ``!help`` links to: ``[bot] help_url``, else ``{[bot] website}/doc/4``
    (hanayo's documentation page of the commands), else "" (no page known)."""
    url = (state.cfg.bot.help_url or "").strip()
    if url:
        return url
    base = (state.cfg.bot.website or "").strip().rstrip("/")
    return f"{base}/doc/4" if base else ""


@command("!help", "[page]", private_reply=True,
         description="Lists the commands you may use, by PM: 5 per page (Kawata, RealistikOsu), or a link "
                     "to the website's command list (Ripple).", stacks=STACKS)
def help_(ctx: Context) -> list[str] | str:
    """Ripple flavour: Ripple's one-line link to the command list page (:func:`help_url`; without
    a known page, the paged list). Otherwise Kawata's (and RealistikOsu's) paged list: only the
    commands the sender may use, 5 per page, ``{n}. - {usage} - {description}`` under the header
    ``--- {page} of {pages} pages of commands currently available on {server}! ---``, the
    ``!syntax`` hint on page 1. A page that is not a number means page 1 (K); a number out of
    range gets ``Invalid page number (1-{pages})``. Always by PM, so channels stay readable."""
    state = ctx.state
    if state.repo.flavour.name == "ripple":
        url = help_url(state)
        if url:
            return HELP_RIPPLE.format(url=url, bot=ctx.bot_name)
    usable = usable_commands(state, ctx.sender, ctx.channel)
    pages = max(1, math.ceil(len(usable) / HELP_PAGE_SIZE))
    page = 1
    if ctx.args and ctx.args[0].isdigit():
        if len(ctx.args[0]) > 6 or not 1 <= int(ctx.args[0]) <= pages:
            return f"Invalid page number (1-{pages})"
        page = int(ctx.args[0])
    lines = [HELP_HEADER.format(page=page, pages=pages, server=state.cfg.stack.server_name)]
    first = (page - 1) * HELP_PAGE_SIZE
    for number, cmd in enumerate(usable[first: first + HELP_PAGE_SIZE], first + 1):
        usage = f"{cmd.name} {cmd.syntax}".rstrip()
        lines.append(f"{number}. - {usage} - {cmd.description or 'No description available.'}")
    if page == 1:
        lines.append(HELP_SYNTAX_HINT)
    return lines


# ------------------------------------------------------------------------------------ !report
REPORT_SYNTAX = "Invalid report command syntax. To report an user, click on it and select 'Report user'."
REPORT_UNKNOWN = "The user you've tried to report doesn't exist."
REPORT_OTHER = "Please specify the reason of your report."
REPORT_BOT = "Hello, {bot} here! You can't report me. I won't forget what you've tried to do. Watch out."
REPORT_DONE = ("You've reported {target} for {reason}{info}. A Community Manager will check your report as soon "
               "as possible. Every !report message you may see in chat wasn't sent to anyone, so nobody in "
               "chat, but admins, know about your report. Thank you for reporting!")
# what the client's "Report user" dialog sends: !report <user> (<reason>): <info>
_REPORT = re.compile(r"^!report (.+?) \(([^()]+)\):?(?:\s+(.*))?$", re.DOTALL)


@command("!report", "<user> (<reason>): [info]",
         description="Reports a user to the staff (the client's 'Report user' dialog sends this).",
         effect="Never shown in chat. Writes a `reports` row (with the user's last 10 channel lines), "
                "posts it to #admin and confirms with a notification.", stacks=RIPPLE_LIKE)
async def report(ctx: Context) -> None:
    """docs/rules.md §8.3 ``!report`` (K: bot name used). The pipeline has already turned the
    message into a PM to the bot (docs/rules.md §6.2). Every answer is a notification to the reporter."""
    state = ctx.state
    match = _REPORT.match(ctx.text.strip())
    if match is None:
        ctx.notify(REPORT_SYNTAX)
        return
    target_name, reason, info = match.group(1).strip(), match.group(2).strip(), (match.group(3) or "").strip()
    safe = safe_username(target_name)
    if state.bot is not None and safe == state.bot.safe_name:
        ctx.notify(REPORT_BOT.format(bot=ctx.bot_name))
        return
    if reason.lower() == "other" and not info:
        ctx.notify(REPORT_OTHER)
        return
    user = await state.repo.user_by_safe_name(safe)
    if user is None:
        ctx.notify(REPORT_UNKNOWN)
        return
    target_id, target = int(user["id"]), str(user["username"])
    online = state.tokens.user(target_id)
    chatlog = "\n".join(online.recent_messages) if online is not None else ""
    stored_reason = f"{reason} - ingame" + (f" ({info})" if info else "")
    await state.repo.insert_report(ctx.sender.user_id, target_id, stored_reason, chatlog)
    suffix = f" ({info})" if info else ""
    chat.bot_message(state, "#admin", f"{ctx.sender.username} has reported {target} for {reason}{suffix}")
    ctx.notify(REPORT_DONE.format(target=target, reason=reason, info=suffix))


# ------------------------------------------------------------------------------------ !pp
_MODES = {"std": game.STD, "standard": game.STD, "osu": game.STD, "taiko": game.TAIKO, "ctb": game.CTB,
          "catch": game.CTB, "fruits": game.CTB, "mania": game.MANIA}


@command("!pp", "[std|taiko|ctb|mania]", where=PRIVATE,
         description="Shows your total pp in a mode (default: the mode you are playing, relax/autopilot included).", stacks=(RIPPLE,))
async def pp(ctx: Context) -> str:
    """``You have {pp:,} pp`` from the stats table of the sender's current relax/autopilot state
    (docs/rules.md §8.3; [FIX] every mode works, O refused taiko and ctb)."""
    mode = ctx.sender.mode
    if ctx.args:
        key = ctx.args[0].lower()
        if key not in _MODES:
            return "What's that game mode? I've never heard of it :/"
        mode = _MODES[key]
    value = await ctx.state.repo.user_pp(ctx.sender.user_id, mode, ctx.sender.relax, ctx.sender.autopilot)
    return f"You have {value:,} pp"


# ------------------------------------------------------------------------------------ !username
@command("!username", "<new name...>", privileges=privs.USER_DONOR, private_reply=True,
         stacks=(KAWATA, REALISTIK),
         description="Changes your username (donors). You are disconnected and log in with the new name; "
                     "while you play, the change waits until the play ends.",
         effect="Same rules, MySQL writes and Redis keys as peppy:change_username.")
async def username(ctx: Context) -> str | None:
    """Kawata's ``!username`` (bancho.py's ``!changename``) through
    :func:`services.moderation.change_username`, the one rename of the server: the name is
    checked (1-30 printable characters, not both a space and an underscore, not in use), then
    MySQL and the ``ripple:userid_cache`` keys, then every session is kicked with the rename
    notice (so no reply). While the sender plays, ``ripple:change_username_pending:{id}`` is set
    instead (the uniqueness check happens when the rename runs)."""
    try:
        new_name = moderation.check_username(ctx.rest)
        if new_name == ctx.sender.username:
            return "That is already your username."
        taken = await ctx.state.repo.user_by_safe_name(safe_username(new_name))
        if taken is not None and int(taken["id"]) != ctx.sender.user_id:
            return "That username is already taken."
        done = await moderation.change_username(ctx.state, ctx.sender.user_id, new_name)
    except moderation.RenameError as exc:
        return f"You can't use that username ({exc})."
    if not done:
        return f"You are playing: your username will be changed to {new_name} when the play ends."
    return None


command("!changename", "<new name...>", privileges=privs.USER_DONOR, private_reply=True, stacks=(BANCHOPY,),
        description="Same as !username (bancho.py's name).")(username)
