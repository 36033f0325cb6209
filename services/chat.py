"""The chat pipeline shared by public and private messages, the bot and the API.

Order of the checks follows docs/rules.md §6.2 with the [FIX]es of the spec: UTF-8 both ways,
restricted senders mute, silenced senders told how long is left, the 2048-character limit,
channel read/write rules with the admin bypass, moderated channels, the private-message rules
of docs/protocol.md §7.3 (blocked DMs → 100, silenced target → 101, away reply once per sender,
restricted or offline target → dropped), and the spam auto-silence (more than ``spam_limit``
messages within ``spam_window`` seconds).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from typing import TYPE_CHECKING

from common.db import DatabaseError
from common.ripple import NO_SUCH_TABLE, StoreResult, safe_username
from services import publish, session
from helpers import codec
from helpers.layout import MESSAGE
from objects import bot as bot_module
from objects.channel import MULTIPLAYER_PREFIX, SPECTATOR_PREFIX

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.chat")

NEW_MESSAGE_CHANNEL = "rosu:new_message_notify"  # docs/integration.md, off by default
#: the line the sender sees in the recipient's tab when a message was kept for later
OFFLINE_NOTICE = "\x01ACTION is offline: your message will be delivered when they next log in.\x01"
OFFLINE_UNAVAILABLE = ("\x01ACTION is offline, and messages to offline users cannot be kept right now: yours "
                       "was not delivered.\x01")
OFFLINE_FULL = "\x01ACTION is offline and has too many messages waiting: yours was not kept.\x01"

SPAM_REASON = "Spamming (auto spam protection)"


class Result(enum.Enum):
    """What became of a message (the IRC gateway and the API map these to their own codes)."""

    SENT = "sent"
    RESTRICTED = "sender restricted"
    SILENCED = "sender silenced"
    EMPTY = "empty message"
    NO_CHANNEL = "no such channel"
    NOT_ALLOWED = "not allowed in this channel"
    OFFLINE = "recipient offline"
    STORED = "recipient offline, kept for their next login"
    TARGET_RESTRICTED = "recipient restricted"
    BLOCKED = "recipient blocks private messages from non-friends"
    TARGET_SILENCED = "recipient silenced"


def resolve_channel_name(token: Token, target: str) -> str:
    """Translate the client names ``#spectator`` and ``#multiplayer`` to internal names."""
    if target == "#spectator":
        host = token.spectating if token.spectating is not None else token
        return f"{SPECTATOR_PREFIX}{host.user_id}"
    if target == "#multiplayer":
        match_id = token.match_id if token.match_id is not None else token.tourney_match_id
        return f"{MULTIPLAYER_PREFIX}{match_id}" if match_id is not None else target
    return target


def truncate(state: State, text: str) -> str:
    """Cut ``text`` to ``[chat] max_message_length`` characters, ending with "..." when cut."""
    limit = state.cfg.chat.max_message_length
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


def send_message(state: State, sender: Token, target: str, text: str) -> Result:
    """Send ``text`` from ``sender`` to a channel (``#name``) or a user (by name).

    Never raises for bad input; returns a :class:`Result`.
    """
    if not sender.is_bot:
        if sender.restricted:
            return Result.RESTRICTED
        if sender.silencing or sender.is_silenced():
            sender.enqueue(codec.silence_end(sender.silence_left()))
            return Result.SILENCED
    bot = state.bot
    if text.startswith("!report") and bot is not None and not sender.is_bot:
        target = bot.username  # reports are never seen by others (the bot's own lines, e.g. its
        # help entry for !report, go where they are sent)
    if not text.strip():
        return Result.EMPTY
    text = truncate(state, text)
    if target.startswith("#"):
        result = _send_public(state, sender, resolve_channel_name(sender, target), text)
    else:
        result = _send_private(state, sender, target, text)
        if result is Result.OFFLINE and state.cfg.chat.offline_messages > 0:
            # chained per sender: each store waits for the previous one, so messages sent within
            # milliseconds (one poll) keep their order instead of racing on the MySQL pool
            task = state.spawn(_keep_for_later(state, sender, target, text, sender.offline_store),
                               f"offline message from {sender.user_id}")
            sender.offline_store = task
            result = Result.STORED
    if result is Result.SENT or result is Result.STORED:
        if not sender.is_bot:
            _count_spam(state, sender)  # also bounds the MySQL work of offline messages per sender
        if state.cfg.chat.publish_new_message:
            note = {"user_id": sender.user_id, "target": target, "content": text}
            state.spawn(publish.publish(state, NEW_MESSAGE_CHANNEL, note), "new message notify")
    return result


def _send_public(state: State, sender: Token, name: str, text: str) -> Result:
    channel = state.channels.get(name)
    if channel is None:
        if state.cluster is not None and state.cluster.remote_channel(sender, name, text):
            return Result.SENT  # #spectator of a host on another node: said there (docs/cluster.md)
        return Result.NO_CHANNEL
    if channel.name not in sender.channels and not sender.is_bot:
        return Result.NOT_ALLOWED
    if not channel.can_write(sender):
        return Result.NOT_ALLOWED
    channel.members.broadcast_layouts(
        lambda lay: codec.message(sender.username, text, channel.client_name, sender.user_id, lay), MESSAGE, but=sender)
    if state.cluster is not None:  # the members on the other nodes (docs/cluster.md)
        state.cluster.channel_message(sender, channel, text,
                                      codec.message(sender.username, text, channel.client_name, sender.user_id))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.channel_message(channel, sender, text)
    sender.remember_message(f"{time.strftime('%H:%M')} - {sender.username}@{channel.name}: {text[:50]}")
    log.debug("chat %s @ %s: %s", sender.username, channel.name, text)
    if state.bot is not None and not sender.is_bot:
        bot_module.on_message(state, sender, channel.name, text)
    return Result.SENT


def _send_private(state: State, sender: Token, target_name: str, text: str) -> Result:
    target = state.tokens.by_name(safe_username(target_name))
    if target is None:
        return Result.OFFLINE
    if target.is_bot:
        bot_module.on_message(state, sender, None, text)
        return Result.SENT
    if target.restricted and not sender.is_bot:
        return Result.TARGET_RESTRICTED
    # a remote target's friends and blocks are checked on its node (services/cluster.py)
    if not sender.is_bot and target.node is None and (
            (target.block_nonfriend_dms and sender.user_id not in target.friends) or sender.user_id in target.blocked):
        sender.enqueue(codec.dms_blocked(target.username, sender.layout))
        return Result.BLOCKED
    if target.is_silenced() and not sender.is_bot:
        sender.enqueue(codec.target_silenced(target.username, sender.layout))
        return Result.TARGET_SILENCED
    if target.away_message and not sender.is_bot and target.tell_away(sender.user_id):
        sender.enqueue(codec.message(target.username, f"\x01ACTION is away: {target.away_message}\x01",
                                     sender.username, target.user_id, sender.layout))
    if target.node is not None and state.cluster is not None:
        state.cluster.private_message(sender, target, text)
    else:
        target.enqueue(codec.message(sender.username, text, target.username, sender.user_id, target.layout))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.private_message(sender, target, text)
    return Result.SENT


def message_like_allowed(state: State, sender: Token) -> bool:
    """The chat gate for packets that carry text or a notice to others without being chat
    (match invites, away messages): refused for restricted and silenced senders (the latter get
    92 with the seconds left), else True. The caller counts a delivered one with
    :func:`count_message_like`, so they share the spam limit with chat (docs/security.md,
    "Hardening II: in game")."""
    if sender.is_bot:
        return True
    if sender.restricted:
        return False
    if sender.silencing or sender.is_silenced():
        sender.enqueue(codec.silence_end(sender.silence_left()))
        return False
    return True


def count_message_like(state: State, sender: Token) -> None:
    """Count one delivered invite or away message against ``[chat] spam_limit``."""
    if not sender.is_bot:
        _count_spam(state, sender)


async def _keep_for_later(state: State, sender: Token, target_name: str, text: str,
                          previous: asyncio.Future | None = None) -> None:
    """Store a private message to an offline user (docs/integration.md "Offline messages"), then
    tell the sender in the recipient's tab. Unknown users are dropped silently, as online-only
    messages to them always were; banned or restricted recipients only get the bot's messages.

    ``previous`` is the sender's store still running when this message was sent: it is awaited
    first (its outcome does not matter), so one sender's messages are stored, hence delivered,
    in the order they were sent. Without the table (a database ``init-db`` has not updated) or
    without MySQL, the sender is told that the message was not kept and the log says why."""
    if previous is not None and not previous.done():
        await asyncio.wait([previous])
    try:
        result, user_id, name = await state.repo.store_offline_message(
            sender.user_id, safe_username(target_name), text, state.cfg.chat.offline_messages,
            bypass=sender.is_bot)
    except DatabaseError as exc:
        if exc.code == NO_SUCH_TABLE:
            log.error("offline message from user=%d not kept: the offline_messages table is missing; "
                      "run `python pep.py init-db` to create it", sender.user_id)
        else:
            log.warning("offline message from user=%d not kept: %s", sender.user_id, exc)
        if not sender.is_bot:
            sender.enqueue(codec.message(target_name, OFFLINE_UNAVAILABLE, sender.username, 0, sender.layout))
        return
    finally:
        if sender.offline_store is asyncio.current_task():
            sender.offline_store = None
    if sender.is_bot or result is StoreResult.UNKNOWN or result is StoreResult.UNREACHABLE:
        return
    notice = OFFLINE_NOTICE if result is StoreResult.STORED else OFFLINE_FULL
    sender.enqueue(codec.message(name, notice, sender.username, user_id, sender.layout))


async def deliver_offline_messages(state: State, token: Token) -> int:
    """Deliver what was kept for ``token``'s user while they were offline, oldest first, each line
    prefixed with the UTC time it was sent: ``[2026-12-05 17:42 UTC] text``. The rows are
    deleted before the packets are queued (at most once); if the session ended meanwhile they
    wait for the next login. Returns the number delivered."""
    limit = state.cfg.chat.offline_messages
    if limit <= 0 or token.restricted:
        return 0
    try:
        messages = await state.repo.take_offline_messages(token.user_id, limit)
    except DatabaseError as exc:
        if exc.code != NO_SUCH_TABLE:
            raise
        log.error("offline messages of user=%d not read: the offline_messages table is missing; "
                  "run `python pep.py init-db` to create it", token.user_id)
        return 0
    if not messages:
        return 0
    if state.tokens.by_token.get(token.token) is not token:
        # the session ended while MySQL answered: keep them for the next login
        await state.repo.restore_offline_messages(token.user_id, messages)
        return 0
    for m in messages:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(m.sent_at))
        token.enqueue(codec.message(m.sender_name, f"[{stamp} UTC] {m.content}", token.username, m.sender_id,
                                    token.layout))
    log.info("delivered %d offline message(s) to user=%d", len(messages), token.user_id)
    return len(messages)


def _count_spam(state: State, sender: Token) -> None:
    now = time.monotonic()
    cfg = state.cfg.chat
    if now - sender.spam_window_start >= cfg.spam_window:
        sender.spam_window_start = now
        sender.spam_count = 0
    sender.spam_count += 1
    if sender.spam_count > cfg.spam_limit and not sender.silencing:
        sender.silencing = True
        log.info("spam auto-silence user=%d name=%s", sender.user_id, sender.username)
        state.spawn(_auto_silence(state, sender), f"auto-silence of {sender.user_id}")


async def _auto_silence(state: State, sender: Token) -> None:
    try:
        await session.silence(state, sender.user_id, state.cfg.chat.spam_silence, SPAM_REASON)
    finally:
        sender.silencing = False


def bot_message(state: State, target: str, text: str) -> Result:
    """Send ``text`` from the bot to a channel or user through the pipeline."""
    if state.bot is None:
        return Result.OFFLINE
    return send_message(state, state.bot, target, text)


def bot_private(state: State, token: Token, text: str) -> None:
    """Queue a private message from the bot straight to ``token`` (even when restricted)."""
    if state.bot is not None:
        token.enqueue(codec.message(state.bot.username, text, token.username, state.bot.user_id, token.layout))
