"""Multiplayer: the one implementation of the match rules, for packets, logout and referees.

Sources: docs/rules.md §1 (with the [FIX] items), docs/protocol.md §4.6, §7.6, docs/integration.md §2
(``api:mp_complete_match``) and docs/rules.md §8.4 (what the ``!mp`` referee commands need). Choices where the
rulebook leaves one are in docs/multiplayer.md.

Every function here is memory-only and never awaits; the only outside effect, the Redis publish
of a finished round, is scheduled with :meth:`objects.state.State.spawn`.

Referee API
-----------
The packet handlers in ``events/`` and the future ``!mp`` bot commands call the same functions,
so there is no second implementation of a rule. All take the :class:`~objects.state.State`
first. Refusals that a referee should hear about raise :class:`MatchError` (its text is meant for
a chat reply); operations that are simply "nothing to do" return False.

==========================  ==============================================================
function                    what it does
==========================  ==============================================================
``create_match``            new match; with a host token it is seated in slot 0, with None it
                            is a host-less tournament match (``!mp make``)
``join``                    seat a token (password checked unless ``password=None``)
``leave``                   unseat a token (PART_MATCH, kicks); host transfer, dispose
``leave_match``             the logout hook: leave, stop observing, leave the lobby
``dispose``                 close a match (``!mp close``), every member removed cleanly
``set_host``                give host to a seated token, or None to clear it
``lock_slot``/``unlock_slot``  lock (kicking the occupant) or unlock one slot
``set_size``                unlock slots below n, lock (and kick) slots n and up
``move``                    move a seated token to an OPEN slot
``kick``                    remove a seated token (slot stays OPEN)
``start``                   start a round (NOT_READY players play too)
``abort``                   abort the running round (MATCH_ABORT)
``set_map``                 beatmap id, md5, name and optionally the mode
``set_mods``                match mods and the free-mod flag
``set_teams``               team type and/or scoring type
``set_team``                one player's team (team modes only)
``set_password``            password, announced with 91 to members
``set_referee_lock``        the referee lock flag (no slot or team changes by players)
``invite``                  MATCH_INVITE (88) from a player or the bot to a user
==========================  ==============================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from typing import TYPE_CHECKING, Iterable

from constants import game, privileges as privs
from helpers import codec
from helpers.codec import MatchData
from helpers.layout import MATCH as MATCH_KIND, SCORE as SCORE_KIND
from objects import match as m
from objects.channel import Channel
from objects import ratelimit
from objects.match import Match
from objects.stream import enqueue_layouts
from objects.token import POLL_LOBBY_LIST
from services import channels, spectate

if TYPE_CHECKING:
    from objects.state import State
    from objects.token import Token

log = logging.getLogger("pep.multiplayer")

SPEED_MODS = game.SPEED_MODS  # DT 64 | HT 256 | NC 512: match-wide even under free-mod (§1.7)
CLIENT_CHANNEL = "#multiplayer"
COMPLETE_CHANNEL = "api:mp_complete_match"  # docs/integration.md §2

NOTICE_RESTRICTED = "You can't play multiplayer while your account is restricted."
NOTICE_SILENCED = "You can't create or join multiplayer matches while you are silenced ({seconds} s left)."
NOTICE_TOURNEY = "You are now in a tournament match."
NOTICE_CREATE_RATE = "You are creating matches too quickly; wait a minute and try again."
NOTICE_START_RATE = "You are starting rounds too quickly; wait a minute and try again."
BOT_BUSY = "I would love to join your match, but I'm busy keeping this server up and running. Sorry. Beep Boop."

class MatchError(Exception):
    """A refused match operation; ``str(error)`` is a short text fit for a chat reply."""


# ==================================================================================== helpers
def _seated(state: State, token: Token) -> tuple[Match, int] | None:
    """(match, slot index) of the token's seat, or None (also repairs a dangling pointer)."""
    match = state.matches.get(token.match_id)
    if match is None:
        token.match_id = None
        return None
    index = match.slot_of(token)
    if index is None:
        token.match_id = None
        return None
    return match, index


def _channel(state: State, match: Match) -> Channel | None:
    return state.channels.get(match.channel_name)


def _join_channel(state: State, token: Token, match: Match) -> None:
    """Force-join the match channel (64 ``#multiplayer``)."""
    channel = _channel(state, match)
    if channel is not None:
        channels.join_channel(state, token, channel)


def _part_channel(state: State, token: Token, match: Match, kick: bool = True) -> None:
    """Leave the match channel; with ``kick`` the client gets 66 ``#multiplayer``."""
    channel = _channel(state, match)
    if channel is not None and channel.name in token.channels:
        channels.part_channel(state, token, channel, kick=kick)
    elif kick:
        token.enqueue(codec.channel_kicked(CLIENT_CHANNEL))


def _unready_all(match: Match) -> None:
    """READY → NOT_READY everywhere (NO_MAP stays NO_MAP; docs/rules.md §1.6)."""
    for slot in match.slots:
        if slot.status == m.READY:
            slot.status = m.NOT_READY


def _clean_name(name: str | None) -> str:
    return (name or "").strip()[: m.MAX_NAME]


def _clean_mode(mode: int) -> int:
    """Mode 0..3: relax/autopilot values (4+) fold back to their vanilla mode (§0.2)."""
    return mode if 0 <= mode <= 3 else mode & 3


def _mp_refusal(token: Token) -> str | None:
    """Notification text when ``token`` may not play multiplayer (restricted, silenced), else None."""
    if token.restricted:
        return NOTICE_RESTRICTED
    if token.is_silenced():
        return NOTICE_SILENCED.format(seconds=token.silence_left())
    return None


def is_tourney_staff(token: Token) -> bool:
    """Whether ``token`` may use the tournament packets 93/108/109 (docs/rules.md §1.10 [FIX]).

    A tournament client (``tourney`` in the version) of a user who is tournament staff,
    supporter (bancho.py's rule) or admin.
    """
    if not token.tournament or token.restricted:
        return False
    allowed = privs.USER_TOURNAMENT_STAFF | privs.USER_DONOR
    return bool(token.privileges & allowed) or token.admin


def send_updates(state: State, match: Match, extra: Iterable[Token] = ()) -> None:
    """Tell everyone about a change (docs/rules.md §1.2): two encodings, many receivers.

    Members (and ``extra``, e.g. a kicked player who must see the slot without them) get
    MATCH_UPDATE with the real password at once; tournament observers that are not members get
    the censored copy at once. The lobby gets the censored copy once per match at the end of
    the current event-loop step (:func:`flush_lobby`), so a poll that changes a match many
    times costs the lobby one update (docs/security.md, "Hardening II: in game"). A session
    seated in the match gets only the member copy.
    """
    if match.disposed:
        return
    for listener in state.match_listeners:  # match-event lines (services/match_events.py)
        listener.match_changed(match)
    match.invalidate()
    got: set[str] = set()
    members = match.members()
    receivers = members + [t for t in extra if t not in members]
    if receivers:
        enqueue_layouts(receivers, lambda lay: match.view(codec.MATCH_UPDATE, False, lay), MATCH_KIND)
        got.update(token.token for token in receivers)
    if match.observers:
        observers = [token for key, token in match.observers.items() if key not in got]
        enqueue_layouts(observers, lambda lay: match.view(codec.MATCH_UPDATE, True, lay), MATCH_KIND)
        got.update(token.token for token in observers)
    _lobby_changed(state, match)


def _lobby_changed(state: State, match: Match) -> None:
    """Queue ``match`` for :func:`flush_lobby`, scheduled once per loop step (at once when no
    event loop runs, e.g. in unit tests)."""
    pending = state.lobby_pending
    if pending.get(match.id) is match:
        return
    pending[match.id] = match
    if len(pending) > 1:
        return  # already scheduled
    try:
        asyncio.get_running_loop().call_soon(flush_lobby, state)
    except RuntimeError:
        flush_lobby(state)


def flush_lobby(state: State) -> None:
    """Send each pending match's censored MATCH_UPDATE to the lobby members that are neither
    seated in it nor watching it (they had their copy); disposed matches are skipped."""
    pending = state.lobby_pending
    if not pending:
        return
    state.lobby_pending = {}
    lobby = state.lobby.members
    cluster = state.cluster
    for match in pending.values():
        if cluster is not None and not match.disposed:
            cluster.lobby_changed(match)  # the lobbies of the other nodes (docs/cluster.md)
        if match.disposed or not lobby:
            continue
        skip = {t.token for t in match.members()}
        skip.update(match.observers)
        enqueue_layouts([token for key, token in lobby.items() if key not in skip],
                        lambda lay: match.view(codec.MATCH_UPDATE, True, lay), MATCH_KIND)
        match.announced = True


def _results(match: Match) -> dict:
    """The ``api:mp_complete_match`` summary of the current round (docs/integration.md §2)."""
    scores = {}
    for _, slot in match.playing_slots():
        assert slot.token is not None
        scores[str(slot.token.user_id)] = {
            "score": slot.score, "mods": slot.mods, "failed": slot.failed, "pass": slot.passed,
            "team": slot.team,
        }
    return {"id": match.id, "name": match.name, "beatmap_id": match.beatmap_id, "mods": match.mods,
            "game_mode": match.mode, "scores": scores}


def _reset_round(match: Match) -> None:
    """Round over: not in progress; started slots back to NOT_READY; flags cleared (§1.8)."""
    match.in_progress = False
    match.loaded_sent = False
    match.skip_sent = False
    match.first_complete = None
    for slot in match.slots:
        if slot.playing and slot.token is not None:
            slot.status = m.NOT_READY
        slot.reset_round()


# ==================================================================================== lifecycle
def create_match(state: State, host: Token | None, name: str, password: str | None = "", *,
                 beatmap_name: str = "", beatmap_id: int = 0, beatmap_md5: str = "", mode: int = 0,
                 slot_statuses: Iterable[int] | None = None, seed: int = 0,
                 tourney: bool | None = None, creator: Token | None = None) -> Match:
    """Create a match (docs/rules.md §1.3 "Create") and announce it; returns it.

    ``host``: the creator, seated in slot 0 as host (it first leaves its current match and
    stops spectating); None makes a host-less match (a referee's ``!mp make``). ``tourney``
    defaults to ``host is None``: tourney matches survive being empty until the cleanup loop or
    :func:`dispose`. ``creator`` (default: ``host``) is counted against
    ``[limits] max_matches_per_user`` open matches. ``slot_statuses``: the statuses of slots 0..15 from a create packet; only
    LOCKED is taken (max players), everything else becomes OPEN (docs/rules.md §1.12). ``mode`` is folded
    into 0..3. Settings start as Kawata's: mods 0, score, head-to-head, free-mod off.

    The creator gets 64 ``#multiplayer``, 36 (real password), 50 and 91 (docs/rules.md §1.3).
    Raises :class:`MatchError` for an empty name, a name over 50 characters, a tournament
    client as host, a creator over the per-user limit, or when all 65535 ids are in use.
    """
    name = (name or "").strip()
    if not name:
        raise MatchError("Match name must not be empty!")
    if len(name) > m.MAX_NAME:
        raise MatchError(f"Match name must be at most {m.MAX_NAME} characters long!")
    if host is not None and host.tournament:
        raise MatchError("Tournament clients cannot play in matches.")
    creator = creator if creator is not None else host
    if creator is not None:
        limit = state.cfg.limits.max_matches_per_user
        owned = sum(1 for other in state.matches if other.creator_id == creator.user_id and not other.disposed
                    and (other.host is not creator))  # the host's own match is left just below
        if owned >= limit:
            raise MatchError(f"You already have {owned} open matches; close one first.")
    match_id = state.matches.allocate_id()
    if match_id is None:
        raise MatchError("There are too many matches; try again later.")
    if host is not None:
        if host.spectating is not None:
            spectate.stop_spectating(state, host)
        if host.match_id is not None:
            leave(state, host)
    match = Match(match_id, name, password or "", beatmap_name=beatmap_name or "",
                  beatmap_id=beatmap_id, beatmap_md5=beatmap_md5 or "", mode=_clean_mode(mode),
                  seed=seed, tourney=(host is None) if tourney is None else tourney)
    match.creator_id = creator.user_id if creator is not None else None
    if slot_statuses is not None:
        for index, status in enumerate(list(slot_statuses)[: m.SLOTS]):
            if index > 0 and status == m.LOCKED:
                match.slots[index].status = m.LOCKED
    channel = Channel(match.channel_name, f"Multiplayer match #{match.id}", hidden=True)
    state.channels.remove(channel.name)  # a stale channel of a long-gone match with this id
    state.channels.add(channel)
    if state.bot is not None:
        channel.members.add(state.bot)
        state.bot.channels.add(channel.name)
    state.matches.add(match)
    if host is not None:
        match.slots[0].seat(host, m.NO_TEAM)  # a new match is head-to-head (Kawata's defaults)
        match.host = host
        match.empty_since = None
        host.match_id = match.id
        _join_channel(state, host, match)
        host.enqueue(match.packet(codec.MATCH_JOIN_SUCCESS, censored=False, layout=host.layout))
        host.enqueue(codec.match_transfer_host())
        host.enqueue(codec.match_change_password(match.password))
    send_updates(state, match)
    log.info("match %d %r created by %s%s", match.id, match.name,
             host.username if host is not None else "a referee", " (tourney)" if match.tourney else "")
    return match


def join(state: State, token: Token, match: Match, password: str | None = "") -> None:
    """Seat ``token`` in the lowest OPEN slot of ``match`` (docs/rules.md §1.3 "Join").

    ``password=None`` skips the password check (``!mp join``). Every check runs before any
    side effect; then the token stops spectating and leaves its previous match, takes the slot
    as NOT_READY (parity team in team modes) and gets 64 ``#multiplayer`` and 36.
    Raises :class:`MatchError` for a tournament client, a match the token is already in, a
    wrong password or a full match (the caller answers 37).
    """
    if match.disposed:
        raise MatchError("That match does not exist anymore.")
    if token.tournament:
        raise MatchError("Tournament clients cannot play in matches.")
    if token.match_id == match.id and match.slot_of(token) is not None:
        raise MatchError("You are already in this match.")
    if password is not None and match.password and password != match.password:
        raise MatchError("Wrong password.")
    eight = token.layout.slots < 16
    if eight and not match.fits_eight():
        raise MatchError("Players sit in slots 9-16 of this match, which your osu! version cannot show.")
    index = match.lowest_open()
    if index is None or (eight and index >= 8):
        raise MatchError("The match is full.")
    if token.spectating is not None:
        spectate.stop_spectating(state, token)
    if token.match_id is not None:
        leave(state, token)
    if match.disposed or match.slots[index].status != m.OPEN:  # defensive: nothing above touches it
        raise MatchError("The match changed; try again.")
    team = m.parity_team(index) if match.team_type in m.TEAM_MODES else m.NO_TEAM
    match.slots[index].seat(token, team)
    if eight:
        _lock_upper_slots(match)
    match.empty_since = None
    token.match_id = match.id
    _join_channel(state, token, match)
    token.enqueue(match.packet(codec.MATCH_JOIN_SUCCESS, censored=False, layout=token.layout))
    if match.tourney:
        token.enqueue(codec.notification(NOTICE_TOURNEY))
    send_updates(state, match)
    log.debug("match %d: %s joined slot %d", match.id, token.username, index)


def leave(state: State, token: Token, *, lock: bool = False, notify: bool = False) -> bool:
    """Unseat ``token`` from its match (docs/rules.md §1.3 "Leave"); False when not seated.

    The slot becomes OPEN (LOCKED with ``lock``: a host lock or ``!mp size``), the token gets
    66 ``#multiplayer``, the round barriers are re-checked so no round waits on it, an empty
    non-tourney match is disposed, a leaving host passes host to the lowest occupied slot (50),
    and updates go out. ``notify`` also sends the kicked token the member update that no longer
    shows it, so its client returns to the lobby.
    """
    seat = _seated(state, token)
    token.match_id = None
    if seat is None:
        return False
    vacate(state, seat[0], seat[1], lock=lock, notify=notify)
    return True


def vacate(state: State, match: Match, index: int, *, lock: bool = False, notify: bool = False) -> None:
    """Empty slot ``index`` and run the rest of :func:`leave` for its token (used by
    :func:`leave` and by the cleanup loop to repair a seat whose session is gone)."""
    slot = match.slots[index]
    token = slot.token
    if token is None:
        return
    if token.match_id == match.id:
        token.match_id = None
    was_playing = slot.playing
    slot.clear(m.LOCKED if lock else m.OPEN)
    _part_channel(state, token, match)
    if match.in_progress and was_playing:
        check_round(state, match)
    if match.occupied_count() == 0:
        match.empty_since = time.monotonic()
        if not match.tourney:
            if match.host is token:
                match.host = None
            dispose(state, match)
            return
    if match.host is token:
        match.host = None
        for other in match.slots:
            if other.token is not None:
                match.host = other.token
                other.token.enqueue(codec.match_transfer_host())
                break
    send_updates(state, match, extra=(token,) if notify else ())
    log.debug("match %d: %s left slot %d", match.id, token.username, index)


def leave_match(state: State, token: Token) -> None:
    """The logout hook (docs/rules.md §3.7): leave the seated match, stop observing any
    match channel (tournament clients), and leave the lobby. No-op for a token in none."""
    leave(state, token)
    stop_observing_all(state, token)
    state.lobby.remove(token)
    token.in_lobby = False


def dispose(state: State, match: Match) -> None:
    """Close ``match`` (docs/rules.md §1.3 "Disband / dispose"); safe to call twice.

    Members and tournament observers get MATCH_DISPOSE + 66 ``#multiplayer`` (one encoding)
    and are detached (pointer cleared, channel left); the lobby gets MATCH_DISPOSE; the channel
    is removed. Later joins of the id fail. A match whose existence never reached the lobby
    (created and disposed within one loop step) sends the lobby nothing.
    """
    if match.disposed:
        return
    match.disposed = True
    state.matches.remove(match.id)
    dispose_packet = codec.match_dispose(match.id)
    member_packet = dispose_packet + codec.channel_kicked(CLIENT_CHANNEL)
    told: set[str] = set()
    for slot in match.slots:
        token = slot.token
        if token is not None:
            if token.match_id == match.id:
                token.match_id = None
            token.enqueue(member_packet)
            told.add(token.token)
        slot.clear(m.LOCKED if slot.status == m.LOCKED else m.OPEN)
    for key, token in tuple(match.observers.items()):
        if key not in told:
            token.enqueue(member_packet)
            told.add(key)
        if token.tourney_match_id == match.id:
            token.tourney_match_id = None
    match.observers.clear()
    match.host = None
    match.in_progress = False
    channel = state.channels.remove(match.channel_name)
    if channel is not None:
        for member in channel.members:
            member.channels.discard(channel.name)
            channel.members.remove(member)
    if state.lobby_pending.get(match.id) is match:
        del state.lobby_pending[match.id]
    if state.cluster is not None:
        state.cluster.lobby_gone(match.id)
    if match.announced:  # a match the lobby never heard of needs no dispose (docs/security.md)
        for key, token in state.lobby.members.items():
            if key not in told:
                token.enqueue(dispose_packet)
    log.info("match %d %r disposed", match.id, match.name)


# ==================================================================================== host & slots
def set_host(state: State, match: Match, token: Token | None) -> bool:
    """Make the seated ``token`` host (it gets 50) or clear the host with None (``!mp clearhost``).

    Returns False when ``token`` is not seated in ``match``; True otherwise (also when it
    already was host, in which case nothing is sent). Only tournament (referee-made) matches
    can be without a host: clearing the host of a player-made match raises :class:`MatchError`,
    since nobody could change its settings or start it any more.
    """
    if token is None:
        if not match.tourney and match.occupied_count():
            raise MatchError("Only tournament matches (!mp make) can be without a host.")
        if match.host is not None:
            match.host = None
            send_updates(state, match)
        return True
    if match.slot_of(token) is None:
        return False
    if match.host is token:
        return True
    match.host = token
    token.enqueue(codec.match_transfer_host())
    send_updates(state, match)
    return True


def lock_slot(state: State, match: Match, index: int) -> bool:
    """Lock slot ``index``, kicking its occupant (docs/rules.md §1.5 [FIX]: detached at once).

    Returns False for an index outside 0..15 or a slot already LOCKED.
    """
    if not 0 <= index < m.SLOTS:
        return False
    slot = match.slots[index]
    if slot.status == m.LOCKED:
        return False
    if slot.token is not None:
        vacate(state, match, index, lock=True, notify=True)
        return True
    slot.clear(m.LOCKED)
    send_updates(state, match)
    return True


def _lock_upper_slots(match: Match) -> None:
    """Lock the empty slots 9-16 (indices 8..15): an 8-slot build sits in the match
    (docs/multiplayer.md "Old and new builds in one match"). No update is sent here."""
    for slot in match.slots[8:]:
        if slot.token is None and slot.status != m.LOCKED:
            slot.clear(m.LOCKED)


def unlock_slot(state: State, match: Match, index: int) -> bool:
    """LOCKED → OPEN; False for an index outside 0..15 or a slot that is not LOCKED, and for
    slots 9-16 while an 8-slot build sits in the match."""
    if not 0 <= index < m.SLOTS or match.slots[index].status != m.LOCKED:
        return False
    if index >= 8 and match.eight_slot_members():
        return False
    match.slots[index].clear(m.OPEN)
    send_updates(state, match)
    return True


def toggle_lock(state: State, token: Token, index: int) -> bool:
    """MATCH_LOCK (40) from ``token``: host only, never the host's own slot (§1.5)."""
    seat = _seated(state, token)
    if seat is None or not 0 <= index < m.SLOTS:
        return False
    match, own = seat
    if match.host is not token or index == own:
        return False
    if match.slots[index].status == m.LOCKED:
        return unlock_slot(state, match, index)
    return lock_slot(state, match, index)


def set_size(state: State, match: Match, size: int) -> None:
    """``!mp size``: slots below ``size`` (1..16) LOCKED → OPEN, slots from ``size`` on LOCKED
    with their occupants kicked. Raises :class:`MatchError` for a size outside 1..16."""
    if not 1 <= size <= m.SLOTS:
        raise MatchError(f"Size must be between 1 and {m.SLOTS}.")
    for index in range(size, m.SLOTS):
        slot = match.slots[index]
        if slot.token is not None:
            vacate(state, match, index, lock=True, notify=True)
            if match.disposed:
                return
        elif slot.status != m.LOCKED:
            slot.clear(m.LOCKED)
    upper = 8 if match.eight_slot_members() else size  # slots 9-16 stay locked for 8-slot builds
    for index in range(min(size, upper)):
        if match.slots[index].status == m.LOCKED:
            match.slots[index].clear(m.OPEN)
    send_updates(state, match)


def move(state: State, match: Match, token: Token, index: int, *, referee: bool = False) -> bool:
    """Move the seated ``token`` to OPEN slot ``index`` (MATCH_CHANGE_SLOT 38, ``!mp move``).

    Status, team and mods travel with the player. Refused (False) for an index outside 0..15,
    a target that is not OPEN, a running round or countdown, and, unless ``referee``, a
    referee-locked match (§1.5).
    """
    if not 0 <= index < m.SLOTS:
        return False
    own = match.slot_of(token)
    if own is None or own == index:
        return False
    if match.in_progress or match.starting or (match.referee_locked and not referee):
        return False
    target = match.slots[index]
    if target.status != m.OPEN:
        return False
    source = match.slots[own]
    target.status, target.team, target.mods, target.token = source.status, source.team, source.mods, token
    source.clear(m.OPEN)
    send_updates(state, match)
    return True


def kick(state: State, match: Match, token: Token) -> bool:
    """``!mp kick``: remove the seated ``token``; its slot stays OPEN and its client returns to
    the lobby (it gets the update without itself). False when it is not seated in ``match``."""
    index = match.slot_of(token)
    if index is None:
        return False
    vacate(state, match, index, notify=True)
    return True


# ==================================================================================== player state
def set_ready(state: State, token: Token, ready: bool) -> bool:
    """MATCH_READY (39) / MATCH_NOT_READY (55): set, never toggle (§1.5 [FIX]).

    READY only from NOT_READY and not during a countdown; NOT_READY only from READY.
    """
    seat = _seated(state, token)
    if seat is None:
        return False
    match, index = seat
    slot = match.slots[index]
    if ready:
        if slot.status != m.NOT_READY or match.starting:
            return False
        slot.status = m.READY
    else:
        if slot.status != m.READY:
            return False
        slot.status = m.NOT_READY
    send_updates(state, match)
    return True


def set_has_map(state: State, token: Token, has_map: bool) -> bool:
    """MATCH_NO_BEATMAP (54) → NO_MAP / MATCH_HAS_BEATMAP (59) → NOT_READY; never while the
    player is in the round (§1.5). Sends updates only when the status changed."""
    seat = _seated(state, token)
    if seat is None:
        return False
    match, index = seat
    slot = match.slots[index]
    if slot.playing or slot.status not in (m.NOT_READY, m.READY, m.NO_MAP):
        return False
    new = m.NOT_READY if has_map else m.NO_MAP
    if has_map and slot.status == m.NOT_READY or not has_map and slot.status == m.NO_MAP:
        return False
    slot.status = new
    send_updates(state, match)
    return True


def change_team(state: State, token: Token) -> bool:
    """MATCH_CHANGE_TEAM (77): RED → BLUE, anything else → RED; team modes only, not while the
    match is referee-locked, counting down or in progress (§1.5)."""
    seat = _seated(state, token)
    if seat is None:
        return False
    match, index = seat
    if match.team_type not in m.TEAM_MODES or match.referee_locked or match.starting or match.in_progress:
        return False
    slot = match.slots[index]
    slot.team = m.BLUE if slot.team == m.RED else m.RED
    send_updates(state, match)
    return True


def set_team(state: State, match: Match, token: Token, team: int) -> bool:
    """``!mp team``: put the seated ``token`` in ``team`` (1 blue, 2 red); team modes only and
    not while in progress. False otherwise."""
    index = match.slot_of(token)
    if index is None or team not in (m.BLUE, m.RED) or match.team_type not in m.TEAM_MODES:
        return False
    if match.in_progress:
        return False
    match.slots[index].team = team
    send_updates(state, match)
    return True


def transfer_host(state: State, token: Token, index: int) -> bool:
    """MATCH_TRANSFER_HOST (70): host only, 0 ≤ index < 16, the slot must have a user (§1.5)."""
    seat = _seated(state, token)
    if seat is None or not 0 <= index < m.SLOTS:
        return False
    match, _ = seat
    target = match.slots[index].token
    if match.host is not token or target is None or target is token:
        return False
    return set_host(state, match, target)


# ==================================================================================== settings
def _team_type_changed(match: Match, team_type: int) -> None:
    """Re-initialise teams for a new team type; tag modes force free-mod off (§1.6 [K])."""
    match.team_type = team_type
    for index, slot in enumerate(match.slots):
        slot.team = m.parity_team(index) if team_type in m.TEAM_MODES else m.NO_TEAM
    if team_type in m.TAG_MODES and match.freemod:
        _freemod_off(match)


def _freemod_on(match: Match) -> None:
    """normal → free-mod (§1.7): players get the non-speed match mods, the match keeps speed mods."""
    for slot in match.slots:
        slot.mods = match.mods & ~SPEED_MODS if slot.token is not None else 0
    match.mods &= SPEED_MODS
    match.freemod = True
    _unready_all(match)


def _freemod_off(match: Match) -> None:
    """free-mod → normal (§1.7): match = speed mods ∪ the host's mods; slot mods cleared."""
    host_mods = 0
    if match.host is not None:
        index = match.slot_of(match.host)
        if index is not None:
            host_mods = match.slots[index].mods
    match.mods = (match.mods & SPEED_MODS) | host_mods
    for slot in match.slots:
        slot.mods = 0
    match.freemod = False
    _unready_all(match)


def change_settings(state: State, token: Token, data: MatchData) -> bool:
    """MATCH_CHANGE_SETTINGS (41), host only; non-hosts are ignored silently (§1.6).

    Taken from the packet: name (trimmed, at most 50 characters; an empty name keeps the old
    one), password, beatmap (a new md5 or map id -1 un-readies READY players), mode (0..3),
    match mods (normal mode, un-ready on change), scoring type and team type (0..3; a new team
    type re-teams everyone), the free-mod flag (§1.7 transitions). Never taken: host id,
    in-progress, slots, match id. While a round runs only name and password change.
    """
    seat = _seated(state, token)
    if seat is None:
        return False
    match, _ = seat
    if match.host is not token:
        return False
    name = _clean_name(data.name)
    if name:
        match.name = name
    match.password = data.password or ""
    if match.in_progress:
        send_updates(state, match)
        return True
    md5 = data.beatmap_md5 or ""
    if md5 != match.beatmap_md5 or data.beatmap_id == -1:
        _unready_all(match)
    match.beatmap_id = data.beatmap_id
    match.beatmap_md5 = md5
    match.beatmap_name = data.beatmap_name or ""
    match.mode = _clean_mode(data.mode)
    if 0 <= data.scoring_type <= 3:
        match.scoring_type = data.scoring_type
    was_freemod = match.freemod
    if 0 <= data.team_type <= 3 and data.team_type != match.team_type:
        _team_type_changed(match, data.team_type)  # a tag mode turns free-mod off
    freemod = bool(data.freemod) and match.team_type not in m.TAG_MODES
    if freemod and not match.freemod:
        _freemod_on(match)
    elif not freemod and match.freemod:
        _freemod_off(match)
    elif not match.freemod and not was_freemod and data.mods != match.mods:
        match.mods = data.mods & 0xFFFFFFFF
        _unready_all(match)
    send_updates(state, match)
    return True


def change_password(state: State, token: Token, password: str | None) -> bool:
    """MATCH_CHANGE_PASSWORD (90), host only: see :func:`set_password`."""
    seat = _seated(state, token)
    if seat is None or seat[0].host is not token:
        return False
    set_password(state, seat[0], password)
    return True


def set_password(state: State, match: Match, password: str | None) -> None:
    """New password ("" or None: public); members get 91 with it, everyone the update (§1.6)."""
    match.password = password or ""
    data = codec.match_change_password(match.password)
    for member in match.members():
        member.enqueue(data)
    send_updates(state, match)


def change_mods(state: State, token: Token, mods: int) -> bool:
    """MATCH_CHANGE_MODS (51), §1.7: normal mode host only (others ignored [FIX]); free-mod:
    the sender's slot gets the non-speed part, the host also sets the match speed mods.
    Ignored while a round runs."""
    seat = _seated(state, token)
    if seat is None:
        return False
    match, index = seat
    if match.in_progress:
        return False
    mods &= 0xFFFFFFFF
    is_host = match.host is token
    if not match.freemod:
        if not is_host:
            return False
        if mods != match.mods:
            match.mods = mods
            _unready_all(match)
    else:
        match.slots[index].mods = mods & ~SPEED_MODS
        if is_host:
            match.mods = mods & SPEED_MODS
    send_updates(state, match)
    return True


def set_map(state: State, match: Match, beatmap_id: int, beatmap_md5: str, beatmap_name: str,
            mode: int | None = None) -> None:
    """``!mp map``: set the beatmap (and mode, folded into 0..3); everyone is un-readied.
    Raises :class:`MatchError` while a round runs."""
    if match.in_progress:
        raise MatchError("The match is in progress.")
    match.beatmap_id = beatmap_id
    match.beatmap_md5 = beatmap_md5 or ""
    match.beatmap_name = beatmap_name or ""
    if mode is not None:
        match.mode = _clean_mode(mode)
    _unready_all(match)
    send_updates(state, match)


def set_mods(state: State, match: Match, mods: int, freemod: bool | None = None) -> None:
    """``!mp mods``: set the free-mod flag (None keeps it; tag modes force it off) and the match
    mods. Under free-mod only the speed mods stay on the match (§1.11 [FIX]); slot mods are
    cleared either way and everyone is un-readied. Raises :class:`MatchError` while a round runs."""
    if match.in_progress:
        raise MatchError("The match is in progress.")
    if freemod is not None:
        match.freemod = bool(freemod) and match.team_type not in m.TAG_MODES
    mods &= 0xFFFFFFFF
    match.mods = mods & SPEED_MODS if match.freemod else mods
    for slot in match.slots:
        slot.mods = 0
    _unready_all(match)
    send_updates(state, match)


def set_teams(state: State, match: Match, team_type: int | None = None, scoring_type: int | None = None) -> None:
    """``!mp set`` / ``!mp scorev``: team type and/or scoring type (0..3 each). A new team type
    re-teams every slot (parity in team modes, none otherwise) and tag modes force free-mod off.
    Raises :class:`MatchError` for values outside 0..3 or while a round runs."""
    if match.in_progress:
        raise MatchError("The match is in progress.")
    if team_type is not None and not 0 <= team_type <= 3:
        raise MatchError("Match team type must be between 0 and 3")
    if scoring_type is not None and not 0 <= scoring_type <= 3:
        raise MatchError("Match scoring type must be between 0 and 3")
    if scoring_type is not None:
        match.scoring_type = scoring_type
    if team_type is not None and team_type != match.team_type:
        _team_type_changed(match, team_type)
    send_updates(state, match)


def set_referee_lock(match: Match, locked: bool) -> None:
    """``!mp lock`` / ``unlock``: while locked players cannot change slot or team (not visible
    in the struct, so no update is sent)."""
    match.referee_locked = bool(locked)


# ==================================================================================== rounds
def start(state: State, match: Match) -> bool:
    """Start a round (MATCH_START 44 from the host, ``!mp start``); §1.8.

    Every eligible player plays, ready or not (the host's start is a force start [K]; ``!mp
    start`` checks readiness itself before calling this). Refused (False, nothing sent) while a
    round runs, without any eligible player (occupied and not NO_MAP), and, with
    ``[multiplayer] strict_start``, with fewer than 2 players or (team modes) only one team.
    Eligible slots become PLAYING with cleared round flags; they get MATCH_START (46) and
    everyone the update.
    """
    if match.in_progress or match.disposed:
        return False
    eligible = [slot for slot in match.slots if slot.token is not None and slot.status != m.NO_MAP]
    if not eligible:
        return False
    if state.cfg.multiplayer.strict_start:
        if len(eligible) < 2:
            return False
        if match.team_type in m.TEAM_MODES and len({slot.team for slot in eligible}) < 2:
            return False
    for slot in eligible:
        slot.reset_round()
        slot.status = m.PLAYING
        slot.playing = True
    match.in_progress = True
    match.starting = False
    match.loaded_sent = False
    match.skip_sent = False
    match.first_complete = None
    match.round_started = time.monotonic()
    enqueue_layouts([slot.token for slot in eligible], lambda lay: match.view(codec.MATCH_START, False, lay),
                    MATCH_KIND)
    send_updates(state, match)
    log.info("match %d: round started with %d player(s)", match.id, len(eligible))
    return True


def request_start(state: State, token: Token) -> bool:
    """MATCH_START (44): the host force-starts (NOT_READY players play too [K]).

    At most ``[limits] round_starts`` starts per ``round_start_window`` seconds per session:
    every finished round is published on Redis and broadcast to the lobby (docs/security.md,
    "Hardening II: in game"); past the limit the packet is dropped with a notification.
    """
    seat = _seated(state, token)
    if seat is None or seat[0].host is not token or seat[0].in_progress:
        return False
    limits = state.cfg.limits
    if not ratelimit.allow(token, token.round_start_limit, "round start", limits.round_starts,
                           limits.round_start_window):
        if token.round_start_limit.refused == 1:
            token.enqueue(codec.notification(NOTICE_START_RATE))
        return False
    return start(state, seat[0])


def abort(state: State, match: Match) -> bool:
    """Abort the running round (``!mp abort``; §1.8): players and tournament observers get
    MATCH_ABORT (106), slots are reset as at the end of a round, everyone gets the update.
    False when no round runs."""
    if not match.in_progress:
        return False
    players = match.playing_tokens()
    _reset_round(match)
    data = codec.match_abort()
    for token in players:
        token.enqueue(data)
    for key, token in match.observers.items():
        if token not in players:
            token.enqueue(data)
    send_updates(state, match)
    log.info("match %d: round aborted", match.id)
    return True


def finish(state: State, match: Match) -> None:
    """Finish the round (§1.8 "Finish the round"): reset, update, MATCH_COMPLETE (58) to the
    players, and publish the results on ``api:mp_complete_match``: after every finished round,
    also one that nobody completed (its ``scores`` then holds who was still playing, possibly
    nobody), as the original pep.py does (docs/integration.md)."""
    if not match.in_progress:
        return
    results = _results(match)
    players = match.playing_tokens()
    for listener in state.match_listeners:  # match-event lines (services/match_events.py)
        listener.round_finished(match)
    _reset_round(match)
    send_updates(state, match)
    data = codec.match_complete()
    for token in players:
        token.enqueue(data)
    state.spawn(state.redis.publish(COMPLETE_CHANNEL, json.dumps(results)), f"match {match.id} results")
    log.info("match %d: round complete (%d player(s))", match.id, len(players))


def check_round(state: State, match: Match) -> None:
    """Re-check every round barrier (§1.3 "Leave" step 4 [FIX]); called after each round packet
    and whenever a player leaves, drops or is kicked, so no round waits on a missing player.

    No players left → finish; all loaded → ALL_PLAYERS_LOADED (once); all skipped →
    MATCH_SKIP (once); all completed → finish.
    """
    if not match.in_progress:
        return
    playing = [slot for _, slot in match.playing_slots()]
    if not playing:
        finish(state, match)
        return
    if not match.loaded_sent and all(slot.loaded for slot in playing):
        match.loaded_sent = True
        _to_players(match, codec.match_all_players_loaded())
    if not match.skip_sent and all(slot.skipped for slot in playing):
        match.skip_sent = True
        _to_players(match, codec.match_skip())
    if all(slot.completed for slot in playing):
        finish(state, match)


def _to_players(match: Match, data: bytes) -> None:
    for token in match.playing_tokens():
        token.enqueue(data)


def _playing_seat(state: State, token: Token) -> tuple[Match, int] | None:
    """(match, slot index) when ``token`` plays in the running round, else None (§1.8: round
    packets from anyone else are ignored [FIX])."""
    seat = _seated(state, token)
    if seat is None:
        return None
    match, index = seat
    if not match.in_progress or not match.slots[index].playing:
        return None
    return seat


def player_loaded(state: State, token: Token) -> None:
    """MATCH_LOAD_COMPLETE (52)."""
    seat = _playing_seat(state, token)
    if seat is not None:
        seat[0].slots[seat[1]].loaded = True
        check_round(state, seat[0])


def player_skipped(state: State, token: Token) -> None:
    """MATCH_SKIP_REQUEST (60): players get MATCH_PLAYER_SKIPPED(slot id) once per player."""
    seat = _playing_seat(state, token)
    if seat is None:
        return
    match, index = seat
    slot = match.slots[index]
    if slot.skipped:
        return
    slot.skipped = True
    _to_players(match, codec.match_player_skipped(index))
    check_round(state, match)


_SCORE = struct.Struct("<i")
_HITS = struct.Struct("<6H")  # count300, 100, 50, geki, katu, miss at offset 5 (docs/protocol.md §4.7)
_COMBO = struct.Struct("<H")  # max combo at offset 21
SCORE_FRAME_MIN = 28  # up to tag_byte: the shortest frame of a supported build (docs/protocol.md §4.7)
SCORE_FRAME_V2 = 45  # with using_scorev2 = 1 and the two f64 portions


def score_update(state: State, token: Token, payload: bytes) -> None:
    """MATCH_SCORE_UPDATE (47): relay as 48 to the players (sender included [K]) with the
    slot id patched in and every other byte untouched; remember the total score and whether
    HP is 254 (failed). Raises :class:`helpers.codec.PacketError` for a frame too short to be
    one (under 28 bytes, or under 45 with the score-v2 flag): relaying it would make every
    player's client misread it."""
    seat = _playing_seat(state, token)
    if seat is None:
        return
    if len(payload) < SCORE_FRAME_MIN or (len(payload) > SCORE_FRAME_MIN and payload[SCORE_FRAME_MIN]
                                          and len(payload) < SCORE_FRAME_V2):
        raise codec.PacketError(f"score frame of {len(payload)} bytes")
    match, index = seat
    source = token.layout
    enqueue_layouts(match.playing_tokens(),
                    lambda lay: codec.match_score_update(payload, index, lay, source), SCORE_KIND)
    slot = match.slots[index]
    slot.score = _SCORE.unpack_from(payload, 17)[0]
    slot.hits = _HITS.unpack_from(payload, 5)
    slot.max_combo = _COMBO.unpack_from(payload, 21)[0]
    slot.failed = payload[26] == 254


def player_failed(state: State, token: Token) -> None:
    """MATCH_FAILED (56): players get MATCH_PLAYER_FAILED(slot id), once per player and round."""
    seat = _playing_seat(state, token)
    if seat is None:
        return
    match, index = seat
    slot = match.slots[index]
    if not slot.passed:
        return
    slot.passed = False
    _to_players(match, codec.match_player_failed(index))


def player_completed(state: State, token: Token) -> None:
    """MATCH_COMPLETE (49): the round finishes when every player has completed."""
    seat = _playing_seat(state, token)
    if seat is None:
        return
    match, index = seat
    slot = match.slots[index]
    if slot.completed:
        return
    slot.completed = True
    if match.first_complete is None:
        match.first_complete = time.monotonic()
    check_round(state, match)


def check_timeouts(state: State, match: Match, now: float | None = None) -> None:
    """Round timeouts ([OPT] of §1.8): ALL_PLAYERS_LOADED is forced ``load_timeout`` s after the
    start, the round is finished ``complete_timeout`` s after the first MATCH_COMPLETE, and a
    round still running ``round_timeout`` s after its start is aborted (:func:`abort`), whether
    or not anyone completed (docs/security.md, "Hardening II: in game").
    Called by the cleanup loop (``services.match_cleanup``)."""
    if not match.in_progress:
        return
    now = time.monotonic() if now is None else now
    if not match.loaded_sent and now - match.round_started >= state.cfg.multiplayer.load_timeout:
        match.loaded_sent = True
        _to_players(match, codec.match_all_players_loaded())
        log.info("match %d: load timeout, players started without the missing ones", match.id)
    if match.first_complete is not None and now - match.first_complete >= state.cfg.multiplayer.complete_timeout:
        log.info("match %d: completion timeout, finishing the round", match.id)
        finish(state, match)
        return
    if now - match.round_started >= state.cfg.multiplayer.round_timeout:
        # nobody completed (or the completions never came): abort cleanly, players back to
        # NOT_READY, MATCH_ABORT and the update out (docs/security.md, "Hardening II: in game")
        log.info("match %d: round running for %.0f s, aborting it", match.id, now - match.round_started)
        abort(state, match)


# ==================================================================================== lobby
def join_lobby(state: State, token: Token) -> None:
    """JOIN_LOBBY (30): enter the lobby audience and get NEW_MATCH (censored) for every match.

    The list costs O(matches), so it is sent at most once per poll however many 30s the poll
    carries (docs/security.md, "Hardening II: in game")."""
    state.lobby.add(token)
    token.in_lobby = True
    if token.poll_flags & POLL_LOBBY_LIST:
        return
    token.poll_flags |= POLL_LOBBY_LIST
    for match in state.matches:
        token.enqueue(match.view(codec.NEW_MATCH, True, token.layout))
        match.announced = True
    if state.cluster is not None:  # the matches of the other nodes (docs/cluster.md)
        state.cluster.lobby_list(token)


def part_lobby(state: State, token: Token) -> None:
    """PART_LOBBY (29): leave the lobby audience; a member of ``#lobby`` is kicked from it (66)."""
    state.lobby.remove(token)
    token.in_lobby = False
    channel = state.channels.get("#lobby")
    if channel is not None and channel.name in token.channels:
        channels.part_channel(state, token, channel, kick=True)


# ==================================================================================== invites
def invite_text(match: Match) -> str:
    """The invite line (docs/rules.md §1.9): ``osump://<id>/<password, spaces as _> <name>``."""
    return f"Come join my multiplayer match: [osump://{match.id}/{match.password.replace(' ', '_')} {match.name}]"


def invite(state: State, match: Match, inviter: Token, target: Token) -> bool:
    """Send MATCH_INVITE (88) from ``inviter`` (a player or the bot) to ``target``.

    Not delivered (False) to the bot, to oneself, to restricted users (unless the bot invites)
    or to a user blocking non-friend DMs who has not friended the inviter (the inviter gets 100).
    """
    if target.is_bot or target.user_id == inviter.user_id:
        return False
    if not inviter.is_bot:
        if target.restricted:
            return False
        if target.block_nonfriend_dms and inviter.user_id not in target.friends:
            inviter.enqueue(codec.dms_blocked(target.username, inviter.layout))
            return False
    target.enqueue(codec.match_invite(inviter.username, invite_text(match), target.username, inviter.user_id,
                                      target.layout))
    return True


def invite_user(state: State, token: Token, user_id: int) -> bool:
    """MATCH_INVITE (87): the sender must be seated; the target online and not restricted;
    inviting the bot gets its "busy" reply (§1.9). Returns whether it was delivered (the packet
    counts it against the spam limit: events/match_invite.py)."""
    seat = _seated(state, token)
    if seat is None:
        return False
    target = state.tokens.user(user_id)
    if target is None or target.kicked:
        return False
    if target.is_bot:
        token.enqueue(codec.message(target.username, BOT_BUSY, token.username, target.user_id, token.layout))
        return False
    return invite(state, seat[0], token, target)


# ==================================================================================== tournament
def tourney_match_info(state: State, token: Token, match_id: int) -> None:
    """TOURNAMENT_MATCH_INFO_REQUEST (93): staff tourney clients get the censored update."""
    if not is_tourney_staff(token):
        return
    match = state.matches.get(match_id)
    if match is not None:
        token.enqueue(match.view(codec.MATCH_UPDATE, True, token.layout))
    elif state.cluster is not None:
        state.cluster.tourney_info(token, match_id)  # a match of another node (docs/cluster.md)


def observe(state: State, token: Token, match_id: int) -> bool:
    """TOURNAMENT_JOIN_MATCH_CHANNEL (108): a staff tourney client joins ``#multi_<id>`` (64
    ``#multiplayer``) without a slot and without a match pointer (§1.10 [FIX])."""
    if not is_tourney_staff(token):
        return False
    match = state.matches.get(match_id)
    if match is None and state.cluster is not None:
        return state.cluster.observe(token, match_id, True)  # a match of another node (docs/cluster.md)
    if match is None or match.slot_of(token) is not None:
        return False
    match.observers[token.token] = token
    token.tourney_match_id = match.id
    _join_channel(state, token, match)
    return True


def stop_observing(state: State, token: Token, match_id: int) -> bool:
    """TOURNAMENT_LEAVE_MATCH_CHANNEL (109): leave the match channel (66 ``#multiplayer``).
    Harmless for a channel the token never joined."""
    match = state.matches.get(match_id)
    if match is None and state.cluster is not None:
        return state.cluster.observe(token, match_id, False)  # a match of another node (docs/cluster.md)
    if match is None or match.observers.pop(token.token, None) is None:
        return False
    if token.tourney_match_id == match.id:
        token.tourney_match_id = None
    _part_channel(state, token, match)
    return True


def stop_observing_all(state: State, token: Token) -> None:
    """Stop observing every match (logout of a tournament client)."""
    for name in tuple(token.channels):
        if name.startswith(m.CHANNEL_PREFIX):
            try:
                match_id = int(name[len(m.CHANNEL_PREFIX):])
            except ValueError:
                continue
            match = state.matches.get(match_id)
            if match is not None and token.token in match.observers:
                stop_observing(state, token, match_id)
    token.tourney_match_id = None


# ==================================================================================== packets
def create_from_packet(state: State, token: Token, data: MatchData) -> Match | None:
    """CREATE_MATCH (31): refuse restricted/silenced creators and bad names with 37 (+ a
    notification for the first two), and creators over ``[limits] match_creates`` per
    ``match_create_window`` seconds (docs/security.md, "Hardening II: in game"); otherwise
    :func:`create_match` with the packet's name, password, beatmap, mode, seed and LOCKED
    slots."""
    refusal = _mp_refusal(token)
    if refusal is not None:
        token.enqueue(codec.match_join_fail() + codec.notification(refusal))
        return None
    limits = state.cfg.limits
    if not ratelimit.allow(token, token.match_create_limit, "match creation", limits.match_creates,
                           limits.match_create_window):
        token.enqueue(codec.match_join_fail())
        if token.match_create_limit.refused == 1:
            token.enqueue(codec.notification(NOTICE_CREATE_RATE))
        return None
    try:
        return create_match(state, token, data.name, data.password, beatmap_name=data.beatmap_name,
                            beatmap_id=data.beatmap_id, beatmap_md5=data.beatmap_md5, mode=data.mode,
                            slot_statuses=data.slot_status, seed=data.seed)
    except MatchError as exc:
        log.debug("create refused for %s: %s", token.username, exc)
        token.enqueue(codec.match_join_fail())
        return None


def join_from_packet(state: State, token: Token, match_id: int, password: str) -> bool:
    """JOIN_MATCH (32): 37 for an unknown id [FIX], a restricted/silenced joiner (+ notification),
    a wrong password, a full match or the match one already sits in; else :func:`join`."""
    refusal = _mp_refusal(token)
    if refusal is not None:
        token.enqueue(codec.match_join_fail() + codec.notification(refusal))
        return False
    match = state.matches.get(match_id)
    if match is None:
        token.enqueue(codec.match_join_fail())
        return False
    try:
        join(state, token, match, password or "")
    except MatchError as exc:
        log.debug("join of match %d refused for %s: %s", match_id, token.username, exc)
        token.enqueue(codec.match_join_fail())
        return False
    return True
