"""Session procedures shared by several events: logout, kick, timeout sweep, silence.

Sources: integration.md §5.2–5.3, gamelogic.md §3.7. Memory changes happen at once; Redis
updates are scheduled in the background; a silence is written to MySQL before anyone is told.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from helpers import codec
from objects import channel as channel_module

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.session")

KICK_NOTICE = "You have been kicked from the server. Please login again."
SAVE_FAILED_NOTICE = "The server could not save this change ({what}); nothing was changed. Please try again later."


def save_failed(token: Token, what: str) -> None:
    """Tell the client that a change that must be persisted was refused (MySQL unavailable)."""
    token.enqueue(codec.notification(SAVE_FAILED_NOTICE.format(what=what)))


def part_channel(state: State, token: Token, channel: channel_module.Channel, kick: bool = False) -> None:
    """Remove ``token`` from ``channel``; with ``kick`` the client is told to close the tab (66).

    A temporary channel is disposed when its last human leaves.
    """
    channel.members.remove(token)
    token.channels.discard(channel.name)
    if kick:
        token.enqueue(codec.channel_kicked(channel.client_name))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.parted(channel, token, kick)
    if channel.temp and channel.humans() == 0:
        for member in channel.members:
            member.channels.discard(channel.name)
        state.channels.remove(channel.name)


def join_channel(state: State, token: Token, channel: channel_module.Channel) -> None:
    """Add ``token`` to ``channel`` and tell the client (64 with the client-side name)."""
    channel.members.add(token)
    token.channels.add(channel.name)
    token.enqueue(codec.channel_join_success(channel.client_name))
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.joined(channel, token)


def logout(state: State, token: Token, broadcast: bool = True) -> None:
    """The logout procedure (integration.md §5.2): leave everything and forget the token.

    Broadcasts user-logout (12) to everyone when the user is not restricted and has no other
    session left (gamelogic.md §3.7 [FIX]). Safe to call twice.
    """
    if token.logged_out:
        return
    from services import multiplayer, spectate

    spectate.stop_spectating(state, token)
    spectate.detach_spectators(state, token)
    multiplayer.leave_match(state, token)
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.logged_out(token)
    token.logged_out = True
    for name in list(token.channels):
        channel = state.channels.get(name)
        if channel is not None:
            part_channel(state, token, channel)
    token.channels.clear()  # names of channels that no longer exist
    state.lobby.remove(token)
    state.tokens.remove(token)
    others = state.tokens.user_tokens(token.user_id)
    if broadcast and not token.restricted and not others:
        state.tokens.broadcast(codec.user_logout(token.user_id))
    if state.redis is not None and token.ip and not any(t.ip == token.ip for t in others):
        state.spawn(state.redis.remove_session_ip(token.user_id, token.ip), "session ip removal")
    if state.redis is not None and not token.is_bot:  # a rename deferred while playing (§5.2 step 8)
        state.spawn(state.redis.republish_pending_rename(token.user_id), "pending rename check")
    log.info("logout user=%d name=%s", token.user_id, token.username)


def kick(state: State, token: Token, reason: str = KICK_NOTICE) -> None:
    """Kick a session: queue the reason and login reply -1, log it out, and keep its final
    packets until its next poll (or the next timeout sweep)."""
    if reason:
        token.enqueue(codec.notification(reason))
    token.enqueue(codec.login_reply(-1))
    logout(state, token)
    token.kicked = True
    state.kicked[token.token] = (token, time.monotonic())
    log.info("kick user=%d name=%s reason=%r", token.user_id, token.username, reason)


def sweep_timeouts(state: State, now: float | None = None) -> int:
    """Log out every token idle for longer than ``[sessions] timeout``; returns how many.

    The bot and tournament clients are exempt (integration.md §5.1); a token whose queue
    overflowed (``[limits] max_queue``) is logged out whatever its kind. Kicked tokens that never
    came back for their final packets are forgotten after the same delay.
    """
    now = time.monotonic() if now is None else now
    limit = state.cfg.sessions.timeout
    dropped = 0
    for token in state.tokens:
        if token.is_bot or (not token.overflowed and (token.tournament or now - token.last_seen <= limit)):
            continue
        logout(state, token)  # the client learns it on its next poll: unknown token → restart
        log.info("timeout user=%d name=%s", token.user_id, token.username)
        dropped += 1
    for key, (_, kicked_at) in list(state.kicked.items()):
        if now - kicked_at > limit:
            del state.kicked[key]
    return dropped


async def silence(state: State, user_id: int, seconds: int, reason: str) -> int:
    """Silence ``user_id`` for ``seconds`` (0 removes it): MySQL first, then the packets.

    The user's sessions get 92 with the seconds left, everyone gets 94 (integration.md §1.3
    "silence"). Returns the absolute end time. Raises :class:`common.db.DatabaseError` when the
    write fails; nothing is changed in memory then.
    """
    assert state.repo is not None
    end = await state.repo.set_silence(user_id, seconds, reason)
    left = max(0, end - int(time.time()))
    for token in state.tokens.user_tokens(user_id):
        token.silence_end = end
        token.enqueue(codec.silence_end(left))
    state.tokens.broadcast(codec.user_silenced(user_id))
    log.info("silence user=%d seconds=%d reason=%r", user_id, seconds, reason)
    return end


async def reload_stats(state: State, token: Token) -> None:
    """Re-read the token's stats for its current mode and relax/autopilot state (schema.md §2.5)."""
    assert state.repo is not None
    stats = await state.repo.stats(token.user_id, token.mode, token.relax, token.autopilot)
    token.set_stats(stats.ranked_score, stats.accuracy, stats.playcount, stats.total_score, stats.rank, stats.pp)


def send_own_status(token: Token) -> None:
    """Presence and stats of ``token`` to itself and its spectators (gamelogic.md §3.1 [K])."""
    data = token.presence_packet() + token.stats_packet()
    token.enqueue(data)
    for spectator in tuple(token.spectators.values()):
        spectator.enqueue(data)
