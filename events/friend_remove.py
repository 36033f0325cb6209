"""Packet 74, friend remove (i32 user id): the row is deleted (idempotent), then memory follows.

Counted with the additions against ``[limits] friend_changes`` per ``friend_window`` s
(docs/security.md, "Hardening II: in game")."""

from __future__ import annotations

from common.db import DatabaseError
from objects import ratelimit
from services import session
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Schedule the delete."""
    friend_id = codec.read_i32(payload)
    if friend_id in token.friends_pending:
        return
    if not ratelimit.allow(token, token.friend_limit, "friend change",
                           state.cfg.limits.friend_changes, state.cfg.limits.friend_window):
        return
    token.set_friend_pending(friend_id, True)
    state.spawn(_remove(state, token, friend_id), f"friend remove {token.user_id}->{friend_id}")


async def _remove(state, token, friend_id: int) -> None:
    try:
        await state.repo.remove_friend(token.user_id, friend_id)
        token.remove_friend(friend_id)
    except DatabaseError:
        session.save_failed(token, "friend removed")
        raise
    finally:
        token.set_friend_pending(friend_id, False)
