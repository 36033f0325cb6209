"""Moderation shared by the bot's staff commands, pub/sub and the API: ban, restrict, rename.

Sources: docs/schema.md §2.3 (privilege states and their changes), docs/integration.md §1 ("ban",
"change_username"), §2 (the ``peppy:ban`` loop-back); docs/rules.md §7.3 (kick, banned, restricted).

The state changes (:func:`ban`, :func:`unban`, :func:`restrict`, :func:`unrestrict`) write
MySQL first, then remove the user from the Redis leaderboards (ban and restrict), then publish
``peppy:ban``. This server receives its own message and runs :func:`refresh_privileges`, which
applies the new privileges to the online sessions (kick when banned, the restricted /
unrestricted private message); LETS/USSR and the admin panels get the same message. When the
message cannot come back (Redis down), :func:`refresh_privileges` is run directly.

They also write the flavour's audit log: Ripple ``rap_logs`` ("has banned {name}", ...), through
the bot's name (``FokaBot``) when a staff member acted (``by``) and ``Bancho`` otherwise; RealistikOsu
``ban_logs`` (summary and ``reason``); Kawata keeps none (the server log only). Callers such as
the bot's ``!ban`` must not write these rows again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from common.db import DatabaseError
from common.ripple import UsernameTaken, safe_username
from constants import game, privileges as privs
from redis.exceptions import RedisError

from services import chat, multiplayer, publish, session, spectate
from helpers import codec
from helpers.layout import QUIT
from objects.stream import enqueue_layouts
from objects.token import client_privileges  # noqa: F401  (used here and by callers)

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.moderation")

NOTICE_BANNED = "You are banned. Please contact the staff of {server} if you think this is a mistake."
NOTICE_RESTRICTED = ("Your account is currently in restricted mode. Please contact the staff of {server} "
                     "for more information.")
NOTICE_UNRESTRICTED = "Your account has been unrestricted! Please log in again to refresh your status."
NOTICE_RENAMED = "Your username has been changed to {name}. Please log in again."
NOTICE_RENAME_FAILED = ("There was a critical error while trying to change your username. "
                        "Please contact a developer.")
MAX_USERNAME = 30
#: actions during which a rename waits for the score submission or the logout (docs/integration.md §1)
PLAYING_ACTIONS = frozenset({game.PLAYING, game.MULTIPLAYING})


class UserNotFound(LookupError):
    """No ``users`` row has this id."""


class RenameError(ValueError):
    """A username change was refused: invalid name, name in use, or no such user."""


def online_tokens(state: State, user_id: int) -> list[Token]:
    """The user's live sessions on this node (kicked ones, the bot and the remote presences of a
    cluster left out: a ``peppy:*`` message is handled by the node holding the session,
    docs/cluster.md)."""
    return [t for t in state.tokens.user_tokens(user_id) if not t.kicked and not t.is_bot and t.node is None]


def is_restricted(privileges: int) -> bool:
    """Restricted = normal without public (docs/schema.md §2.3)."""
    return bool(privileges & privs.USER_NORMAL) and not privileges & privs.USER_PUBLIC


def is_banned(privileges: int) -> bool:
    """Banned = neither public nor normal (docs/schema.md §2.3)."""
    return privileges & (privs.USER_PUBLIC | privs.USER_NORMAL) == 0


async def _user(state: State, user_id: int) -> dict:
    row = await state.repo.user_by_id(user_id)
    if row is None:
        raise UserNotFound(user_id)
    return row


async def _audit(state: State, user_id: int, by: int | None, action: str, name: str, reason: str,
                 summary: str = "") -> None:
    """The flavour's audit rows (``summary`` defaults to the action, e.g. ``Restrict``); a failure
    is logged, never raised (the change itself is done)."""
    author = by if by is not None else state.cfg.stack.bot_id
    log.info("%s user=%d name=%s by=%s reason=%r", action, user_id, name, by, reason)
    texts = {"ban": f"has banned {name}", "unban": f"has unbanned {name}",
             "restrict": f"has put {name} in restricted mode",
             "unrestrict": f"has removed restricted mode from {name}"}
    try:
        through = (state.bot.username if state.bot is not None else "FokaBot") if by is not None else "Bancho"
        await state.repo.admin_log(author, texts[action], through)
        await state.repo.ban_log(author, user_id, summary or action.capitalize(), reason)
    except DatabaseError as exc:
        log.warning("audit log of %s of %d not written: %s", action, user_id, exc)


async def _leaderboards(state: State, user_id: int, row: dict) -> None:
    try:
        country = await state.repo.country(user_id, row)
        await state.repo.remove_from_leaderboards(user_id, country)
    except Exception as exc:  # Redis down: LETS/USSR's own clean-up will catch up
        log.warning("leaderboard removal of %d failed: %s", user_id, exc)


async def ban(state: State, user_id: int, by: int | None = None, reason: str = "") -> None:
    """Ban ``user_id`` (docs/schema.md §2.3): ``privileges &= ~3``, ``ban_datetime = now``, audit
    log, removal from every leaderboard (country boards included), publish ``peppy:ban``
    (online sessions get the banned notice and login reply -3, and are logged out).

    ``by`` is the staff member's user id (None: the server itself). Raises
    :class:`UserNotFound` and :class:`common.db.DatabaseError` (nothing changed then).
    """
    row = await _user(state, user_id)
    await state.repo.ban_user(user_id)
    await _audit(state, user_id, by, "ban", str(row["username"]), reason)
    await _leaderboards(state, user_id, row)
    await publish_ban(state, user_id)


async def unban(state: State, user_id: int, by: int | None = None) -> None:
    """Unban (docs/schema.md §2.3): ``privileges |= 3``, ``ban_datetime = 0``, audit log, publish
    ``peppy:ban``. Leaderboards are rebuilt by the score server. Raises :class:`UserNotFound`
    and :class:`common.db.DatabaseError`."""
    await _lift(state, user_id, by, "unban")


async def restrict(state: State, user_id: int, by: int | None = None, reason: str = "",
                   summary: str = "") -> bool:
    """Restrict (docs/schema.md §2.3) unless already restricted: ``privileges &= ~1``,
    ``ban_datetime = now``, audit log (RealistikOsu ``ban_logs``: ``summary``, default
    ``Restrict``, and ``reason`` as the detail), leaderboard removal, publish ``peppy:ban``
    (online sessions get 104 and the restricted private message, and disappear for everyone
    else). Returns False when the user was already restricted (nothing written).
    Raises :class:`UserNotFound` and :class:`common.db.DatabaseError`."""
    row = await _user(state, user_id)
    if is_restricted(int(row["privileges"] or 0)):
        log.info("restrict user=%d: already restricted", user_id)
        return False
    await state.repo.restrict_user(user_id)
    await _audit(state, user_id, by, "restrict", str(row["username"]), reason, summary)
    await _leaderboards(state, user_id, row)
    await publish_ban(state, user_id)
    return True


async def unrestrict(state: State, user_id: int, by: int | None = None) -> None:
    """Same change as :func:`unban` (docs/rules.md §8.3); online sessions get the
    unrestricted private message and become visible again."""
    await _lift(state, user_id, by, "unrestrict")


async def _lift(state: State, user_id: int, by: int | None, action: str) -> None:
    row = await _user(state, user_id)
    await state.repo.unban_user(user_id)
    await _audit(state, user_id, by, action, str(row["username"]), "")
    await publish_ban(state, user_id)


def _apply(state: State, token: Token, privileges: int, admin: bool) -> None:
    """Put new privileges on a live token and drop its cached packets."""
    token.privileges = privileges
    token.admin = admin
    token.restricted = not privileges & privs.USER_PUBLIC
    token.presence_rank = state.repo.presence_rank(privileges, admin, False)
    token.client_privileges = client_privileges(privileges, admin, token.restricted)
    token.invalidate()
    if state.cluster is not None:
        state.cluster.changed(token)


def _to_others(state: State, user_id: int, data: bytes) -> None:
    for token in state.tokens:
        if token.user_id != user_id:
            token.enqueue(data)


async def reload_privileges(state: State, user_id: int) -> int | None:
    """``peppy:refresh_privs`` (docs/integration.md §1): re-read ``users.privileges`` into the
    user's sessions (admin and restricted state, presence colour, packet 71 value). Nothing is
    sent. Returns the privileges, or None when the user is offline or unknown."""
    if not online_tokens(state, user_id):
        return None
    row = await state.repo.user_by_id(user_id)
    if row is None:
        return None
    privileges = int(row["privileges"] or 0)
    admin = await state.repo.is_admin(privileges)
    for token in online_tokens(state, user_id):
        _apply(state, token, privileges, admin)
    return privileges


async def refresh_privileges(state: State, user_id: int) -> None:
    """The ``peppy:ban`` handler (docs/integration.md §1 "ban"; docs/rules.md §7.3).

    Re-reads ``users.privileges``. Banned (neither public nor normal): every session gets the
    banned notice and login reply -3 and is kicked (logout broadcast to everyone). Otherwise the
    privileges are applied to every session, and on a change of state:

    * became restricted: 104 and the restricted private message from the bot; the user leaves
      its match and spectating, and everybody else gets its logout (12), so it disappears;
    * became unrestricted: the unrestricted private message; everybody else gets its presence.

    A ``users.silence_end`` different from the sessions' is applied as by ``peppy:silence``
    (:func:`services.session.apply_silence`). Nothing happens for an offline user. Raises
    :class:`common.db.DatabaseError`.
    """
    if not online_tokens(state, user_id):
        return
    row = await state.repo.user_by_id(user_id)
    if row is None:
        return
    privileges = int(row["privileges"] or 0)
    server = state.cfg.stack.server_name
    tokens = online_tokens(state, user_id)  # again: the await above may have seen a logout
    if is_banned(privileges) and not privileges & privs.USER_PENDING_VERIFICATION:
        for token in tokens:
            token.enqueue(codec.notification(NOTICE_BANNED.format(server=server)))
            token.enqueue(codec.login_reply(game.LOGIN_BANNED))
            session.kick(state, token, reason="")
        log.info("banned user=%d: %d session(s) closed", user_id, len(tokens))
        return
    admin = await state.repo.is_admin(privileges)
    tokens = online_tokens(state, user_id)
    if not tokens:
        return
    was_restricted = any(t.restricted for t in tokens)
    for token in tokens:
        _apply(state, token, privileges, admin)
    # the Ripple API and RealistikAPI silence by writing users.silence_end and publishing
    # peppy:ban: apply a changed silence as peppy:silence does (docs/security.md)
    session.apply_silence(state, user_id, int(row.get("silence_end") or 0), str(row.get("silence_reason") or ""),
                          always=False)
    now_restricted = tokens[0].restricted
    if now_restricted and not was_restricted:
        for token in tokens:
            spectate.stop_spectating(state, token)
            spectate.detach_spectators(state, token)
            multiplayer.leave_match(state, token)
            token.enqueue(codec.account_restricted())
            chat.bot_private(state, token, NOTICE_RESTRICTED.format(server=server))
        quitter = tokens[0]
        enqueue_layouts((t for t in state.tokens if t.user_id != user_id), quitter.quit_packet, QUIT)
        log.info("restricted user=%d", user_id)
    elif was_restricted and not now_restricted:
        for token in tokens:
            chat.bot_private(state, token, NOTICE_UNRESTRICTED)
        main = state.tokens.user(user_id)
        if main is not None:
            _to_others(state, user_id, main.presence_packet())
        log.info("unrestricted user=%d", user_id)


def check_username(name: str) -> str:
    """The new name, stripped, or :class:`RenameError`: empty, longer than 30 characters,
    control characters, or both a space and an underscore (docs/integration.md §1)."""
    name = name.strip()
    if not name:
        raise RenameError("empty username")
    if len(name) > MAX_USERNAME:
        raise RenameError(f"username longer than {MAX_USERNAME} characters")
    if not name.isprintable():
        raise RenameError("username with control characters")
    if " " in name and "_" in name:
        raise RenameError("username with both a space and an underscore")
    return name


async def rename(state: State, user_id: int, new_name: str) -> str:
    """Rename ``user_id`` in MySQL (docs/integration.md §1 "change_username", the rename itself):
    CM note, ``users``, the stats tables; then delete ``ripple:userid_cache:{old safe}`` and
    ``ripple:change_username_pending:{id}``. Online sessions are not touched (the caller kicks).

    When the new name already belongs to this user (RealistikOsu's panel renames before it
    publishes), nothing is written and the caches are still cleared. Returns the old name.
    Raises :class:`RenameError` and :class:`common.db.DatabaseError`.
    """
    new_name = check_username(new_name)
    old_safes = {t.safe_name for t in state.tokens.user_tokens(user_id)}
    row = await state.repo.user_by_id(user_id)
    if row is None:
        raise RenameError(f"no user {user_id}")
    if str(row["username"]) == new_name:
        old = new_name
        log.info("rename user=%d: already named %r", user_id, new_name)
    else:
        try:
            result = await state.repo.rename_user(user_id, new_name)
        except UsernameTaken:
            raise RenameError(f"username {new_name!r} is already in use") from None
        if result is None:
            raise RenameError(f"no user {user_id}")
        old, old_safe = result
        old_safes.add(old_safe)
        log.info("rename user=%d: %r -> %r", user_id, old, new_name)
    old_safes.discard("")
    try:
        await state.redis.forget_username(user_id, *(old_safes | {safe_username(new_name)}))
    except Exception as exc:  # the rename is done; the caches expire by themselves (1 h)
        log.warning("rename user=%d: username caches not cleared: %s", user_id, exc)
    return old


async def change_username(state: State, user_id: int, new_name: str) -> bool:
    """The ``peppy:change_username`` procedure (docs/integration.md §1), shared by the pub/sub
    handler and the bot's ``!username``: when a session of the user is playing (action 2 or 12),
    store ``ripple:change_username_pending:{id}`` (LETS republishes after the score submission,
    this server at the logout) and return False; otherwise :func:`rename` and kick every session
    with "Your username has been changed to {new}. Please log in again.", and return True.
    Raises :class:`RenameError` (nothing renamed, nobody kicked) and
    :class:`common.db.DatabaseError`."""
    if any(t.action in PLAYING_ACTIONS for t in online_tokens(state, user_id)):
        await state.redis.set_pending_rename(user_id, new_name)
        log.info("rename user=%d to %r deferred until the end of the play", user_id, new_name)
        return False
    await rename(state, user_id, new_name)
    notice = NOTICE_RENAMED.format(name=new_name.strip())
    for token in online_tokens(state, user_id):
        session.kick(state, token, notice)
    return True


async def publish_ban(state: State, user_id: int) -> bool:
    """The ``peppy:ban`` loop-back after a change of ``users.privileges`` (docs/integration.md §2):
    tells LETS/USSR/RealistikPanel and this server's own listener.

    When the message cannot come back to this server (publish failed, or the listener is not
    subscribed at the moment), the ``peppy:ban`` handler is run directly instead, so an online
    user is never left with stale privileges. Returns whether the message was published.
    """
    published = False
    try:
        await publish.publish(state, "peppy:ban", int(user_id))
        published = True
    except (RedisError, OSError) as exc:
        log.warning("peppy:ban %d not published: %s", user_id, exc)
    if not (published and state.listener is not None and state.listener.listening):
        await refresh_privileges(state, user_id)
    return published
