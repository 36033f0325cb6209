"""Joining and leaving chat channels (docs/rules.md §6.1), and the temporary channels of
spectating and multiplayer; the lowest layer of the session procedures (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpers import codec
from objects.channel import Channel

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token


def part_channel(state: State, token: Token, channel: Channel, kick: bool = False) -> None:
    """Remove ``token`` from ``channel``; with ``kick`` the client is told to close the tab (66).

    A temporary channel is disposed when its last human leaves.
    """
    channel.members.remove(token)
    token.channels.discard(channel.name)
    if state.cluster is not None and not token.logged_out:
        state.cluster.changed(token)
    if kick:
        token.enqueue(codec.channel_kicked(channel.client_name))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.parted(channel, token, kick)
    if channel.temp and channel.humans() == 0:
        for member in channel.members:
            member.channels.discard(channel.name)
        state.channels.remove(channel.name)


def join_channel(state: State, token: Token, channel: Channel) -> None:
    """Add ``token`` to ``channel`` and tell the client (64 with the client-side name)."""
    channel.members.add(token)
    token.channels.add(channel.name)
    if state.cluster is not None:
        state.cluster.changed(token)
    token.enqueue(codec.channel_join_success(channel.client_name))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.joined(channel, token)


def open_temporary(state: State, name: str, description: str) -> Channel:
    """The temporary hidden channel ``name`` (``#spect_<id>``, ``#multi_<id>``), created with the
    bot as a member when it does not exist yet. Disposed when its last human leaves
    (:func:`part_channel`)."""
    channel = state.channels.get(name)
    if channel is None:
        channel = Channel(name, description, temp=True, hidden=True)
        state.channels.add(channel)
        if state.bot is not None:
            channel.members.add(state.bot)
            state.bot.channels.add(channel.name)
    return channel
