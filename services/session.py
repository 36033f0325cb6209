"""Session procedures shared by several events: logout, kick, timeout sweep, silence, stats,
and the Redis keys of the online sessions.

Sources: docs/rules.md §7.2–7.3, docs/rules.md §3.7. Memory changes happen at once; Redis
updates are scheduled in the background; a silence is written to MySQL before anyone is told.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from constants import game
from helpers import codec
from helpers.layout import QUIT
from objects.token import REPLY_STATS, REPLY_STATUS
from services import channels, multiplayer, spectate

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.session")

KICK_NOTICE = "You have been kicked from the server. Please login again."
SILENCE_NOTICE = "You have been silenced: {reason}"
SAVE_FAILED_NOTICE = "The server could not save this change ({what}); nothing was changed. Please try again later."


def save_failed(token: Token, what: str) -> None:
    """Tell the client that a change that must be persisted was refused (MySQL unavailable)."""
    token.enqueue(codec.notification(SAVE_FAILED_NOTICE.format(what=what)))


def logout(state: State, token: Token, broadcast: bool = True, next_ip: str = "") -> None:
    """The logout procedure (docs/rules.md §7.2): leave everything and forget the token.

    Broadcasts user-logout (12) to everyone when the user is not restricted and has no other
    session left (docs/rules.md §3.7 [FIX]). ``next_ip``: the address of the session replacing
    this one (a re-login), which keeps its place in ``peppy:sessions:<id>`` (no SREM then SADD
    of the same member: one Redis round trip less per re-login). Safe to call twice.
    """
    if token.logged_out:
        return
    spectate.stop_spectating(state, token)
    spectate.detach_spectators(state, token)
    multiplayer.leave_match(state, token)
    for listener in state.chat_listeners:  # the IRC gateway (docs/irc.md)
        listener.logged_out(token)
    token.logged_out = True
    for name in list(token.channels):
        channel = state.channels.get(name)
        if channel is not None:
            channels.part_channel(state, token, channel)
    token.channels.clear()  # names of channels that no longer exist
    state.lobby.remove(token)
    state.tokens.remove(token)
    others = state.tokens.user_tokens(token.user_id)
    if broadcast and not token.restricted and not others:
        state.tokens.broadcast_layouts(token.quit_packet, QUIT)
    if token.ip and token.ip != next_ip and not any(t.ip == token.ip for t in others):
        state.spawn(state.redis.remove_session_ip(token.user_id, token.ip), "session ip removal")
    if not token.is_bot:  # a rename deferred while playing (docs/rules.md §7.2)
        state.spawn(state.redis.republish_pending_rename(token.user_id), "pending rename check")
    log.info("logout user=%d name=%s", token.user_id, token.username)


def kick(state: State, token: Token, reason: str = KICK_NOTICE, reply: int = -1) -> None:
    """Kick a session: queue the reason (a notification, none when empty) and login reply
    ``reply`` (-1; maintenance uses -5), log it out, and keep its final packets until its next
    poll (or the next timeout sweep). The one kick of the server (docs/rules.md §7.3).
    A session of another cluster node is kicked by that node (docs/cluster.md)."""
    if token.node is not None and state.cluster is not None:
        state.cluster.control(token, "kick", {"reason": reason, "reply": reply})
        return
    if reason:
        token.enqueue(codec.notification(reason))
    token.enqueue(codec.login_reply(reply))
    logout(state, token)
    token.kicked = True
    state.kicked[token.token] = (token, time.monotonic())
    log.info("kick user=%d name=%s reason=%r", token.user_id, token.username, reason)


def sweep_timeouts(state: State, now: float | None = None) -> int:
    """Log out every token idle for longer than ``[sessions] timeout``; returns how many.

    Only the bot is exempt; tournament clients time out like game clients (they poll like
    them; docs/security.md, "Hardening II: in game"). A token whose queue overflowed
    (``[limits] max_queue``) is logged out whatever its kind. Kicked tokens that never
    came back for their final packets are forgotten after the same delay.
    """
    now = time.monotonic() if now is None else now
    limit = state.cfg.sessions.timeout
    dropped = 0
    state.tokens.trim_log()  # sessions whose unread broadcasts passed the cap overflow here
    for token in state.tokens:
        if token.is_bot or (not token.overflowed and now - token.last_seen <= limit):
            continue
        logout(state, token)  # the client learns it on its next poll: unknown token → restart
        log.info("timeout user=%d name=%s", token.user_id, token.username)
        dropped += 1
    for key, (_, kicked_at) in list(state.kicked.items()):
        if now - kicked_at > limit:
            del state.kicked[key]
    return dropped


async def silence(state: State, user_id: int, seconds: int, reason: str) -> int:
    """Silence ``user_id`` for ``seconds`` (0 removes it): MySQL first, then
    :func:`apply_silence`. Returns the absolute end time (unix seconds). Raises
    :class:`common.db.DatabaseError` when the write fails; nothing is changed in memory then.
    """
    end = await state.repo.set_silence(user_id, seconds, reason)
    apply_silence(state, user_id, end)
    log.info("silence user=%d seconds=%d reason=%r", user_id, seconds, reason)
    return end


def apply_silence(state: State, user_id: int, end: int, reason: str = "", always: bool = True) -> int:
    """Apply a silence already stored in MySQL (``users.silence_end`` = ``end``, unix seconds;
    ``reason`` from ``users.silence_reason``): the user's sessions get 92 with the seconds left
    (and, for a running silence with a reason, a notification naming it), everyone gets 94
    (docs/integration.md §1 "silence"; also when it was lifted). Memory only; returns the seconds
    left.

    With ``always=False`` nothing is sent when every session already has this end (the
    ``peppy:ban`` path, which must not announce an unchanged silence; docs/security.md,
    "Hardening II: in game").
    """
    left = max(0, end - int(time.time()))
    tokens = [t for t in state.tokens.user_tokens(user_id) if not t.kicked and not t.is_bot]
    if not always and all(t.silence_end == end for t in tokens):
        return left
    packet = codec.silence_end(left)
    if left and reason:
        packet += codec.notification(SILENCE_NOTICE.format(reason=reason[:127]))
    for token in tokens:
        token.silence_end = end
        token.enqueue(packet)  # a session of another cluster node: relayed there
        if token.node is not None and state.cluster is not None:
            state.cluster.control(token, "silence", {"end": end})
    silenced = codec.user_silenced(user_id)
    state.tokens.broadcast(silenced)
    if state.cluster is not None:  # docs/cluster.md: everyone on the other nodes too
        state.cluster.broadcast(silenced)
        for token in tokens:
            state.cluster.changed(token)
    if reason:
        log.info("silence user=%d applied: %d s left reason=%r", user_id, left, reason)
    return left


async def reload_stats(state: State, token: Token) -> None:
    """Re-read the token's stats for its current mode and relax/autopilot state (docs/schema.md §2.5)."""
    stats = await state.repo.stats(token.user_id, token.mode, token.relax, token.autopilot)
    token.set_stats(stats.ranked_score, stats.accuracy, stats.playcount, stats.total_score, stats.rank, stats.pp)
    if state.cluster is not None:
        state.cluster.changed(token)


def request_stats_reload(state: State, token: Token, reply: int = REPLY_STATS) -> None:
    """Re-read the token's stats in the background, then send ``reply`` (``REPLY_STATS``: its
    own 11; ``REPLY_STATUS``: 83 + 11 to it and its spectators, :func:`send_own_status`).

    Coalesced per token (docs/security.md, "Hardening II: in game"): at most one reload is in
    flight; requests arriving meanwhile mark one more reload to run after it (so the answer
    reflects the last request) and add their reply bits. A poll of 1,024 requests therefore
    costs at most two stats reads.
    """
    token.stats_reply |= reply
    if token.stats_reloading:
        token.stats_reload_again = True
        return
    token.stats_reloading = True
    state.spawn(_reload_loop(state, token), f"stats reload of {token.user_id}")


async def _reload_loop(state: State, token: Token) -> None:
    try:
        while True:
            token.stats_reload_again = False
            await reload_stats(state, token)
            if not token.stats_reload_again or token.logged_out:
                break
    finally:
        token.stats_reloading = False
        token.stats_reload_again = False
        _send_stats_reply(token)  # after a failed read the cached stats answer


def _send_stats_reply(token: Token) -> None:
    reply, token.stats_reply = token.stats_reply, 0
    if reply & REPLY_STATUS:
        send_own_status(token)
    elif reply & REPLY_STATS:
        token.enqueue(token.stats_packet(token.layout))


def prefixed_action_text(token: Token, action: int, text: str) -> str:
    """The status text shown on Kawata and RealistikOsu (docs/rules.md §3.3): ``[RX]``, ``[AP]``
    or ``[VN]`` (the token's relax/autopilot state), then the client's text; idle and AFK show
    the prefix alone, after the user's ``!status`` text when one is enabled (RealistikOsu:
    ``({status}) [VN]``)."""
    prefix = "[RX]" if token.relax else "[AP]" if token.autopilot else "[VN]"
    if action in (game.IDLE, game.AFK):
        return f"({token.status_text}) {prefix}" if token.status_text else prefix
    return f"{prefix} {text}"


def send_own_status(token: Token, presence: bool = True) -> None:
    """Presence (unless ``presence`` is False) and stats of ``token`` to itself and its
    spectators (docs/rules.md §3.1 [K]; after a stats reload, stats only)."""
    head = token.presence_packet() if presence else b""
    joined: dict[int, bytes] = {}  # one joined part per distinct stats object (layouts, issue 15)
    for receiver in (token, *token.spectators.values()):
        stats = token.stats_packet(receiver.layout)
        data = joined.get(id(stats))
        if data is None:
            data = joined[id(stats)] = head + stats if head else stats
        receiver.enqueue(data)


async def resync_redis(state: State) -> None:
    """Write the online count, the version and the session IPs of every online token
    (:meth:`common.redis.Redis.resync`; after a Redis outage, by the health check of
    :mod:`services.loops` and by the pub/sub listener after a reconnect)."""
    await state.redis.resync(len(state.tokens), [(t.user_id, t.ip) for t in state.tokens if t.ip])
