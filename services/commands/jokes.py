"""Kawata's joke commands ``!bless``, ``!troll`` and ``!msg``: off by default, turned on with
``[bot] joke_commands = 1`` (docs/commands.md). Staff who may manage users only, as on Kawata.

They send private messages that seem to come from someone else (``!bless`` from "Jesus",
``!troll`` from "Trollface", ``!msg`` from the bot) straight to the target's game sessions.
Unlike Kawata's ``!bless``, which queued a whole book in 2,000-character messages to make the
game hang, every command here sends a few short lines: nothing that harms a client
(docs/decisions.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from common.ripple import safe_username
from constants import privileges as privs
from helpers import codec
from services.commands import KAWATA, Context, command

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

#: longest ``!msg`` text (the chat limit of a normal message)
MAX_MESSAGE = 2000
BLESS_SENDER = "Jesus"
TROLL_SENDER = "Trollface"
BLESSING = (
    "Peace be with you, {name}.",
    "May your accuracy be high, your misses few and your combos never break.",
    "Go forth and full-combo.",
)
TROLL_LINES = (
    "We do little bit of trolling :tf:",
    "(\u0361\u00b0 \u035c\u0296 \u0361\u00b0)",
)


def jokes_enabled(state: State) -> bool:
    """``[bot] joke_commands``."""
    return bool(getattr(state.cfg.bot, "joke_commands", False))


_ENABLED_DOC = "[bot] joke_commands = 1"


def _target(ctx: Context, name: str) -> Token | None:
    """The online game session of ``name`` (not the bot), or None."""
    token = ctx.state.tokens.by_name(safe_username(name))
    if token is None or token.is_bot or token.kicked:
        return None
    return token


def _send(token: Token, sender: str, sender_id: int, lines: tuple[str, ...] | list[str]) -> None:
    token.enqueue(b"".join(codec.message(sender, line, token.username, sender_id, token.layout) for line in lines))


@command("!bless", "<user...>", privileges=privs.ADMIN_MANAGE_USERS, stacks=(KAWATA,),
         enabled=jokes_enabled, enabled_doc=_ENABLED_DOC,
         description="A joke: the user gets a short blessing in a private message from Jesus.")
def bless(ctx: Context) -> str:
    token = _target(ctx, ctx.rest)
    if token is None:
        return "This user is not online, and may not be blessed."
    _send(token, BLESS_SENDER, 0, [line.format(name=token.username) for line in BLESSING])
    return "THEY ARE BLESSED AND ASCENDED TO HeAVeN"


@command("!troll", "<user...>", privileges=privs.ADMIN_MANAGE_USERS, stacks=(KAWATA,),
         enabled=jokes_enabled, enabled_doc=_ENABLED_DOC,
         description="A joke: the user gets a private message from Trollface.")
def troll(ctx: Context) -> str:
    token = _target(ctx, ctx.rest)
    if token is None:
        return "This user is not online, and may not be trolled."
    _send(token, TROLL_SENDER, 0, TROLL_LINES)
    return "They have been trolled"


@command("!msg", "<user> <message...>", privileges=privs.ADMIN_MANAGE_USERS, stacks=(KAWATA,),
         enabled=jokes_enabled, enabled_doc=_ENABLED_DOC,
         description="Sends a private message as the bot to an online user (only they see it).")
def msg(ctx: Context) -> str:
    token = _target(ctx, ctx.args[0])
    if token is None:
        return "You can not message a offline user."
    text = ctx.rest[len(ctx.args[0]):].strip()[:MAX_MESSAGE]
    bot = ctx.state.bot
    _send(token, ctx.bot_name, bot.user_id if bot is not None else 0, [text])
    return f"Messaged {token.username}."
