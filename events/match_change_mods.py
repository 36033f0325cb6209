"""Packet 51, change mods (i32 mods) (docs/rules.md §1.7).

The rules live in :mod:`services.multiplayer`, shared with logout and the referee commands.
"""

from __future__ import annotations

from services import multiplayer
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Normal mode: host only; free-mod: own slot (non-speed mods), the host also the speed mods."""
    multiplayer.change_mods(state, token, codec.read_i32(payload))
