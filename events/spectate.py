"""Spectating procedures shared by the spectator packets and logout.

Owned by the spectating issue; the foundation only needs the two functions the logout
procedure calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token


def stop_spectating(state: State, token: Token) -> None:
    """Stop ``token`` spectating its host (no-op when it spectates nobody)."""
    token.spectating = None


def detach_spectators(state: State, token: Token) -> None:
    """Detach every spectator of ``token`` (the host is leaving)."""
    token.spectators.clear()
