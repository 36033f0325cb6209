"""Chat channels and the channel list (docs/rules.md §6.1).

Channels loaded from ``bancho_channels`` are permanent; ``#spect_<host id>`` and
``#multi_<match id>`` are runtime channels, hidden from listings and shown to clients as
``#spectator`` and ``#multiplayer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from helpers import codec
from objects.stream import Stream

if TYPE_CHECKING:
    from objects.token import Token

SPECTATOR_PREFIX = "#spect_"
MULTIPLAYER_PREFIX = "#multi_"


def client_name(name: str) -> str:
    """The name a client sees for internal channel ``name`` (docs/protocol.md §7.2)."""
    if name.startswith(SPECTATOR_PREFIX):
        return "#spectator"
    if name.startswith(MULTIPLAYER_PREFIX):
        return "#multiplayer"
    return name


class Channel:
    """One chat channel: its flags and its members (a :class:`Stream`)."""

    __slots__ = ("name", "description", "public_read", "public_write", "temp", "hidden",
                 "moderated", "members", "client_name")

    def __init__(self, name: str, description: str = "", public_read: bool = True,
                 public_write: bool = True, temp: bool = False, hidden: bool = False) -> None:
        self.name = name
        self.description = description
        self.public_read = public_read
        self.public_write = public_write
        self.temp = temp  # disposed when the last human leaves
        self.hidden = hidden  # never listed with 65
        self.moderated = False  # only admins may talk (in memory, lost on restart)
        self.members = Stream(name)
        self.client_name = client_name(name)

    def __repr__(self) -> str:
        return f"<Channel {self.name} ({len(self.members)})>"

    @property
    def listed(self) -> bool:
        """Whether the channel appears in the 65 channel listing (public read and not hidden)."""
        return self.public_read and not self.hidden

    def can_read(self, token: Token) -> bool:
        """Whether ``token`` may join/read: public read, or an admin, or the bot."""
        return self.public_read or token.admin or token.is_bot

    def can_write(self, token: Token) -> bool:
        """Whether ``token`` may post: the bot always; admins always; others when public write and not moderated."""
        if token.is_bot:
            return True
        if self.moderated and not token.admin:
            return False
        return self.public_write or token.admin

    def info_packet(self) -> bytes:
        """Channel info (65) with the current member count."""
        return codec.channel_info(self.client_name, self.description, len(self.members))

    def humans(self) -> int:
        """Members that are not the bot."""
        return sum(1 for t in self.members.members.values() if not t.is_bot)

    # ---------------------------------------------------------------- snapshot
    def to_snapshot(self) -> dict:
        """The channel as a JSON-ready dict for the restart snapshot (docs/operations.md):
        flags and the token strings of its human members (the bot rejoins by itself)."""
        return {"name": self.name, "description": self.description, "public_read": self.public_read,
                "public_write": self.public_write, "temp": self.temp, "hidden": self.hidden,
                "moderated": self.moderated,
                "members": [t.token for t in self.members.members.values() if not t.is_bot]}

    @classmethod
    def from_snapshot(cls, rec) -> tuple["Channel", list[str]]:
        """``(channel, member token strings)`` from a record (:class:`objects.snapshot.Record`);
        raises :class:`objects.snapshot.SnapshotError`."""
        name = rec.str("name", 64)
        if not name.startswith("#") or len(name) < 2:
            raise rec.fail("name", "a channel name starts with #")
        channel = cls(name, rec.str("description", 1024), rec.bool("public_read"), rec.bool("public_write"),
                      temp=rec.bool("temp"), hidden=rec.bool("hidden"))
        channel.moderated = rec.bool("moderated")
        return channel, rec.token_refs("members", 1_000_000)


class ChannelList:
    """Every channel by name; lookups ignore case (``#osu`` and ``#OSU`` are one channel)."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}

    def __iter__(self) -> Iterator[Channel]:
        return iter(tuple(self._channels.values()))

    def __len__(self) -> int:
        return len(self._channels)

    def get(self, name: str) -> Channel | None:
        """The channel named ``name`` (any case), or None."""
        return self._channels.get(name.lower())

    def add(self, channel: Channel) -> bool:
        """Add ``channel`` unless one of that name exists; returns whether it was added."""
        key = channel.name.lower()
        if key in self._channels:
            return False
        self._channels[key] = channel
        return True

    def remove(self, name: str) -> Channel | None:
        """Remove the channel named ``name`` (any case); returns it, or None."""
        return self._channels.pop(name.lower(), None)

    def listed(self) -> list[Channel]:
        """Channels shown in the channel listing, in load order."""
        return [c for c in self._channels.values() if c.listed]
