"""What the server loads from MySQL at start-up and on a settings reload: bancho settings, the
menu icon, the admin groups, the channels and the bot (docs/operations.md "Start-up").

Loading is split in two so that a start-up that fails changes nothing outside the process:
:func:`read_world` only reads (MySQL, and Redis for the bot's rank) and raises when a
prerequisite is missing; :func:`apply_world` then changes memory only. Channel rows become
channels in one place, :func:`add_channels`, used by both start-up and the settings reload.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Iterable

from common.ripple import ChannelRow, Repository, Settings, Stats, safe_username
from helpers.config import Config
from objects import bot as bot_module
from objects.channel import Channel

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.world")


class WorldError(RuntimeError):
    """A start-up prerequisite is missing in the database (e.g. the bot user)."""


@dataclasses.dataclass
class BotRow:
    """The bot user as read from MySQL: id, name, ``users.privileges``, stats in osu!, country."""

    user_id: int
    username: str
    privileges: int
    stats: Stats
    country: str


@dataclasses.dataclass
class World:
    """Everything :func:`read_world` read: settings (with the menu icon), channel rows, the bot."""

    settings: Settings
    channels: list[ChannelRow]
    bot: BotRow


async def read_world(repo: Repository, cfg: Config) -> World:
    """Read what the server needs to start, without changing anything anywhere.

    Also loads the admin groups into ``repo`` (Ripple flavour). Raises
    :class:`common.db.DatabaseError` when MySQL fails and :class:`WorldError` when the bot user
    ``[stack] bot_id`` does not exist (run ``pep.py init-db``).
    """
    await repo.load_admin_groups()
    settings = await repo.settings()
    settings.menu_icon = await repo.menu_icon(cfg.stack.menu_icon_base)
    channels = await repo.channels()
    user = await repo.user_by_id(cfg.stack.bot_id)
    if user is None:
        raise WorldError(f"bot user {cfg.stack.bot_id} does not exist: run `python3 pep.py init-db`")
    stats = await repo.stats(cfg.stack.bot_id, 0)
    country = await repo.country(cfg.stack.bot_id, user)
    bot = BotRow(cfg.stack.bot_id, str(user["username"]), int(user["privileges"] or 0), stats, country)
    return World(settings, channels, bot)


def add_channels(state: State, rows: Iterable[ChannelRow]) -> list[str]:
    """Add the channels of ``rows`` that ``state`` does not have yet (existing ones are never
    changed), each joined by the bot when it is online. Memory only; returns the names added."""
    added = []
    for row in rows:
        if state.channels.get(row.name) is not None:
            continue
        channel = Channel(row.name, row.description, row.public_read, row.public_write)
        state.channels.add(channel)
        if state.bot is not None:
            channel.members.add(state.bot)
            state.bot.channels.add(channel.name)
        added.append(channel.name)
    return added


def apply_world(state: State, world: World) -> None:
    """Install ``world`` in ``state`` (memory only): settings, channels, the bot online in every
    channel and in the token list."""
    repo = state.repo
    row = world.bot
    state.settings = world.settings
    bot = bot_module.make_token(row.user_id, row.username, safe_username(row.username), row.privileges,
                                repo.presence_rank(row.privileges, True, True))
    s = row.stats
    bot.set_stats(s.ranked_score, s.accuracy, s.playcount, s.total_score, s.rank, s.pp)
    bot.country = row.country
    state.bot = bot
    add_channels(state, world.channels)
    state.tokens.add(bot)
    log.info("loaded %d channels; bot %r online; maintenance %s", len(state.channels), row.username,
             "on" if state.settings.maintenance else "off")
