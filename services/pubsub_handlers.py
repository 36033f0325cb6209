"""What the server does with each Redis pub/sub message of the web stack (docs/integration.md §1–2).

:data:`SUBSCRIPTIONS` is the table the listener (:mod:`services.pubsub`) subscribes to: the
channel, its payload kind and exact JSON key set, and the handler. The listener has already
validated the payload when a handler runs (ids are ints, text fields are strings); handlers
never raise for bad input, they log and return. Every handler acts on **every** session of the
user (tournament clients included) and does nothing for an offline user, except
``change_username`` (renames in MySQL) and ``change_pass`` (drops the password cache entry).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from common.db import DatabaseError
from services.pubsub import Subscription
from services import chat, moderation, reload, session
from helpers import codec

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.pubsub")


def _mine(state: State, user_id: int) -> bool:
    """Whether this node handles a message about ``user_id``: always on one node; in a cluster,
    the node holding the user's session, or the leader for an offline user (docs/cluster.md)."""
    return state.cluster is None or state.cluster.owns_user(user_id)


async def disconnect(state: State, data: dict[str, Any]) -> None:
    """``peppy:disconnect`` ``{"userID", "reason"}``: kick every session; the reason is the
    notification (none when empty), then login reply -1 and the logout (docs/rules.md §7.3)."""
    if not _mine(state, data["userID"]):
        return
    for token in moderation.online_tokens(state, data["userID"]):
        session.kick(state, token, data["reason"])


async def change_username(state: State, data: dict[str, Any]) -> None:
    """``peppy:change_username`` ``{"userID", "newUsername"}`` (docs/integration.md §1).

    Offline: rename in MySQL. Online and playing (action 2 or 12 on any session): store
    ``ripple:change_username_pending:{id}``; LETS republishes after the score submission, this
    server at the logout. Otherwise rename, then kick every session with "Your username has been
    changed to {new}. Please log in again.". A refused rename (invalid or taken name) is logged
    (and written to Ripple's admin log) and the online user is kicked with the "critical error"
    notice. Raises :class:`common.db.DatabaseError` (nothing renamed then).
    """
    if not _mine(state, data["userID"]):
        return
    user_id, new_name = data["userID"], data["newUsername"]
    try:
        await moderation.change_username(state, user_id, new_name)
    except moderation.RenameError as exc:
        log.warning("rename user=%d to %r refused: %s", user_id, new_name, exc)
        try:
            await state.repo.admin_log(state.cfg.stack.bot_id, f"Username change: {exc}", through="Bancho")
        except DatabaseError as db_exc:
            log.warning("admin log not written: %s", db_exc)
        for token in moderation.online_tokens(state, user_id):
            session.kick(state, token, moderation.NOTICE_RENAME_FAILED)


async def reload_settings(state: State, _: None) -> None:
    """``peppy:reload_settings`` (literal ``reload``): bancho settings, menu icon, new channels."""
    await reload.reload_settings(state)


async def reload_chat_channels(state: State, _: None) -> None:
    """``peppy:reload_chat_channels`` (literal ``reload``, RAP): no peer subscribes to it; the
    spec recommends the channel part of ``reload_settings``. The whole reload is run (it only
    adds channels and resends the listing and the menu icon), so there is one code path."""
    await reload.reload_settings(state)


async def update_cached_stats(state: State, user_id: int) -> None:
    """``peppy:update_cached_stats`` (int): re-read the stats (current mode, relax/autopilot
    table, leaderboard rank) of every session, then push the new 11 to the user and its
    spectators at once (docs/integration.md §1)."""
    if not _mine(state, user_id):
        return
    for token in moderation.online_tokens(state, user_id):
        await session.reload_stats(state, token)
        session.send_own_status(token, presence=False)


async def silence(state: State, user_id: int) -> None:
    """``peppy:silence`` (int): the website already wrote ``users.silence_end`` (and
    ``silence_reason``). Every session gets 92 with the seconds left (and the reason as a
    notification while silenced), everyone gets 94 (also when the silence was lifted)."""
    if not _mine(state, user_id):
        return
    if not moderation.online_tokens(state, user_id):
        return
    row = await state.repo.user_by_id(user_id)
    if row is None:
        return
    if not moderation.online_tokens(state, user_id):
        return
    left = session.apply_silence(state, user_id, int(row.get("silence_end") or 0), str(row.get("silence_reason") or ""))
    log.info("silence user=%d: %d s left", user_id, left)


async def catch_up(state: State) -> int:
    """After the listener reconnects: re-read the privileges and silences of every online user
    (one query per 1,000 users) and apply what changed while it was disconnected, as
    ``peppy:ban`` and ``peppy:silence`` would have (docs/security.md, Hardening II). Messages
    that leave no trace in MySQL (``peppy:disconnect``, notifications) cannot be recovered.
    Returns how many users were updated. Raises :class:`common.db.DatabaseError`."""
    bot_id = state.bot.user_id if state.bot is not None else None
    online = sorted({t.user_id for t in state.tokens if t.user_id != bot_id})
    if not online:
        return 0
    rows = await state.repo.privileges_and_silences(online)
    changed = 0
    for user_id, (privileges, silence_end) in rows.items():
        tokens = moderation.online_tokens(state, user_id)
        if not tokens:
            continue
        if any(t.privileges != privileges for t in tokens):
            await moderation.refresh_privileges(state, user_id)
            changed += 1
            tokens = moderation.online_tokens(state, user_id)
        if tokens and any(t.silence_end != silence_end for t in tokens):
            session.apply_silence(state, user_id, silence_end)
            changed += 1
    log.info("pub/sub catch-up: %d online user(s) checked, %d change(s) applied", len(online), changed)
    return changed


async def ban(state: State, user_id: int) -> None:
    """``peppy:ban`` (int): :func:`services.moderation.refresh_privileges`, which also applies
    a changed ``users.silence_end`` (the Ripple API and RealistikAPI silence a user by writing
    it and publishing ``peppy:ban``; docs/security.md, "Hardening II: in game")."""
    if not _mine(state, user_id):
        return
    await moderation.refresh_privileges(state, user_id)


async def notification(state: State, data: dict[str, Any]) -> None:
    """``peppy:notification`` ``{"userID", "message"}``: a notification (24) to every session."""
    if not _mine(state, data["userID"]):
        return
    if not data["message"]:
        return
    packet = codec.notification(data["message"])
    for token in moderation.online_tokens(state, data["userID"]):
        token.enqueue(packet)


async def set_main_menu_icon(state: State, data: dict[str, Any]) -> None:
    """``peppy:set_main_menu_icon`` ``{"userID", "mainMenuIconID"}`` (Ripple's admin panel
    preview): 76 with ``{base}/{file_id}.png|{url}`` of that ``main_menu_icons`` row to every
    session of the user; an unknown icon id is logged."""
    if not _mine(state, data["userID"]):
        return
    user_id = data["userID"]
    if not moderation.online_tokens(state, user_id):
        return
    icon = await state.repo.menu_icon_by_id(data["mainMenuIconID"], state.cfg.stack.menu_icon_base)
    if icon is None:
        log.warning("set_main_menu_icon: no main_menu_icons row %d", data["mainMenuIconID"])
        return
    for token in moderation.online_tokens(state, user_id):
        packet = codec.main_menu_icon(icon, token.layout)
        if packet:
            token.enqueue(packet)


async def refresh_privs(state: State, data: dict[str, Any]) -> None:
    """``peppy:refresh_privs`` ``{"user_id"}``: re-read the privileges into the sessions;
    nothing is sent (RealistikOsu's panel follows it with ``peppy:disconnect``)."""
    if not _mine(state, data["user_id"]):
        return
    await moderation.reload_privileges(state, data["user_id"])


async def change_pass(state: State, data: dict[str, Any]) -> None:
    """``peppy:change_pass`` ``{"user_id"}``: forget the cached password check, so the next
    login runs bcrypt against the stored hash (online or not)."""
    dropped = state.password_cache.pop(data["user_id"], None) is not None
    log.info("change_pass user=%d: password cache entry %s", data["user_id"], "dropped" if dropped else "absent")


async def bot_msg(state: State, data: dict[str, Any]) -> None:
    """``peppy:bot_msg`` ``{"to", "message"}`` (USSR #1 announcements): a message from the bot to
    a channel (``#name``) or a user, through the chat pipeline. Plain UTF-8 JSON is taken as it
    is (Kawata's latin-1 round trip is not copied)."""
    if state.cluster is not None and not state.cluster.is_leader():
        return  # the leader sends it through the chat pipeline, which reaches every node
    result = chat.bot_message(state, data["to"], data["message"])
    if result is not chat.Result.SENT:
        log.info("bot_msg to %r not delivered: %s", data["to"], result.value)


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription("peppy:disconnect", "json", disconnect, {"userID": "id", "reason": "str"}),
    Subscription("peppy:change_username", "json", change_username, {"userID": "id", "newUsername": "str"}),
    Subscription("peppy:reload_settings", "literal", reload_settings),
    Subscription("peppy:reload_chat_channels", "literal", reload_chat_channels),
    Subscription("peppy:update_cached_stats", "int", update_cached_stats),
    Subscription("peppy:silence", "int", silence),
    Subscription("peppy:ban", "int", ban),
    Subscription("peppy:notification", "json", notification, {"userID": "id", "message": "str"}),
    Subscription("peppy:set_main_menu_icon", "json", set_main_menu_icon, {"userID": "id", "mainMenuIconID": "int"}),
    Subscription("peppy:refresh_privs", "json", refresh_privs, {"user_id": "id"}),
    Subscription("peppy:change_pass", "json", change_pass, {"user_id": "id"}),
    Subscription("peppy:bot_msg", "json", bot_msg, {"to": "str", "message": "str"}),
)
