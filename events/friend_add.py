"""Packet 73, friend add (i32 user id): persisted as a one-way ``users_relationships`` row.

Self, unknown users and existing friends are ignored (docs/rules.md §4 [FIX]); there is no
reply packet. The row is written before the in-memory friend list changes. Friend changes are
limited per session (``[limits] friend_changes`` per ``friend_window`` s; docs/security.md,
"Hardening II: in game")."""

from __future__ import annotations

from common.db import DatabaseError
from objects import ratelimit
from services import session
from helpers import codec


def handle(state, token, payload: bytes) -> None:
    """Schedule the insert."""
    friend_id = codec.read_i32(payload)
    if (friend_id == token.user_id or friend_id in token.friends or friend_id in token.friends_pending
            or friend_id <= 0):
        return
    if not ratelimit.allow(token, token.friend_limit, "friend change",
                           state.cfg.limits.friend_changes, state.cfg.limits.friend_window):
        return
    token.set_friend_pending(friend_id, True)
    state.spawn(_add(state, token, friend_id), f"friend add {token.user_id}->{friend_id}")


async def _add(state, token, friend_id: int) -> None:
    try:
        if await state.repo.add_friend(token.user_id, friend_id):
            token.add_friend(friend_id)
    except DatabaseError:
        session.save_failed(token, "friend added")
        raise
    finally:
        token.set_friend_pending(friend_id, False)
