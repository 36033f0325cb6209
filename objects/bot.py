"""The bot user (id 999 by default): always online, a member of every channel, visible in presence.

Its token never times out and discards what is queued to it (docs/rules.md §8.1). Every
message that reaches the bot (a channel message, or a private message to it) is offered to
:func:`on_message`; the command registry that answers them plugs in through
``state.bot_hooks`` (:func:`services.commands.install`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from constants import game
from objects.token import Token

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.bot")

def make_token(user_id: int, username: str, safe_name: str, privileges: int, presence_rank: int) -> Token:
    """Build the bot's token: no IP, never restricted, idle in osu! standard, country XX."""
    token = Token(user_id, username, safe_name, privileges, admin=True, is_bot=True, utc_offset=0)
    token.presence_rank = presence_rank
    token.action = game.IDLE
    return token


def on_message(state: State, sender: Token, channel: str | None, text: str) -> None:
    """A message the bot sees: ``channel`` is the internal channel name, None for a PM to the bot."""
    for hook in state.bot_hooks:
        try:
            hook(state, sender, channel, text)
        except Exception:
            log.exception("bot hook failed on a message from %s", sender.username)
