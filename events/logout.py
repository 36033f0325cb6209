"""Packet 2, logout (docs/protocol.md §1.6, docs/rules.md §7.2).

A logout within ``[sessions] logout_grace`` seconds of the login is the stale exit of the
previous session and is ignored; the session then ends by timeout if the client really left.
"""

from __future__ import annotations

import time

from services import session


def handle(state, token, payload: bytes) -> None:
    """Run the logout procedure unless the token is younger than the grace period."""
    if time.monotonic() - token.login_time < state.cfg.sessions.logout_grace:
        return
    session.logout(state, token)
