"""Multiplayer matches: the match, its 16 slots, and the match list with id allocation.

Data model of docs/rules.md §1.1; wire layout of docs/protocol.md §4.6 (written by
:func:`helpers.codec.write_match`). This module holds state and encodes it; the rules that change
it live in :mod:`services.multiplayer` (one implementation shared by the packet handlers and the
referee commands).

Invariants kept by :mod:`services.multiplayer` (and checked by ``tests/test_match_random.py``):

* a slot has a token exactly when its status has a "has player" bit (124), so the user-id list
  of the struct always agrees with the status bytes (docs/rules.md §0.2 [FIX]);
* a token seated in match M has ``token.match_id == M.id`` and sits in exactly one slot;
* ``host`` is None or a token seated in the match;
* ``slot.playing`` is only set while ``in_progress``.

Times (``created``, ``empty_since``, ``round_started``, ``first_complete``) are
:func:`time.monotonic` seconds.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator

from helpers import codec
from helpers.layout import MATCH as MATCH_KIND, Layout
from objects.snapshot import SnapshotError, records

if TYPE_CHECKING:
    from objects.token import Token

SLOTS = 16
MAX_ID = 65535  # the id is a u16 in the struct (docs/rules.md §0.2)
MAX_NAME = 50  # characters (docs/rules.md §1.3 [FIX])

# slot statuses (docs/rules.md §1.1, docs/protocol.md §3.6)
OPEN = 1
LOCKED = 2
NOT_READY = 4
READY = 8
NO_MAP = 16
PLAYING = 32
COMPLETE = 64
QUIT = 128
HAS_PLAYER = NOT_READY | READY | NO_MAP | PLAYING | COMPLETE  # 124

# slot teams
NO_TEAM = 0
BLUE = 1
RED = 2

# team types
HEAD_TO_HEAD = 0
TAG_COOP = 1
TEAM_VS = 2
TAG_TEAM_VS = 3
TEAM_MODES = (TEAM_VS, TAG_TEAM_VS)
TAG_MODES = (TAG_COOP, TAG_TEAM_VS)

# scoring types
SCORE = 0
ACCURACY = 1
COMBO = 2
SCORE_V2 = 3

CHANNEL_PREFIX = "#multi_"


def parity_team(index: int) -> int:
    """Team of slot ``index`` in team modes: even slots red, odd slots blue (docs/rules.md §1.3 [K])."""
    return RED if index % 2 == 0 else BLUE


#: the hit counts of a slot before its first score frame
NO_HITS = (0, 0, 0, 0, 0, 0)


class Slot:
    """One of the 16 seats: status, team, mods, the seated token, and the per-round flags.

    ``mods`` is the slot's own mods (meaningful while free-mod is on). The round flags
    (``playing``, ``loaded``, ``skipped``, ``completed``, ``failed``, ``passed``, ``score``) are
    server-side only and never serialized.
    """

    __slots__ = ("status", "team", "mods", "token", "playing", "loaded", "skipped", "completed",
                 "failed", "passed", "score", "max_combo", "hits")

    def __init__(self) -> None:
        self.status = OPEN
        self.team = NO_TEAM
        self.mods = 0
        self.token: Token | None = None
        self.reset_round()

    def __repr__(self) -> str:
        who = self.token.username if self.token is not None else "-"
        return f"<Slot {self.status} team={self.team} mods={self.mods} {who}{' playing' if self.playing else ''}>"

    @property
    def occupied(self) -> bool:
        """Whether the status has a "has player" bit (and therefore a token)."""
        return bool(self.status & HAS_PLAYER)

    def reset_round(self) -> None:
        """Clear the per-round flags (start, finish, abort, leave)."""
        self.playing = False
        self.loaded = False
        self.skipped = False
        self.completed = False
        self.failed = False  # current HP 254 seen in a score frame
        self.passed = True  # False after MATCH_FAILED
        self.score = 0
        self.max_combo = 0  # of the last score frame
        self.hits = NO_HITS  # (300, 100, 50, geki, katu, miss) of the last score frame

    def accuracy(self, mode: int) -> float:
        """Accuracy in percent (0-100) of the last score frame in ``mode`` (0 std, 1 taiko,
        2 catch, 3 mania), by the client's formulas; 0.0 before any frame."""
        n300, n100, n50, geki, katu, miss = self.hits
        if mode == 1:
            total, hit = n300 + n100 + miss, n300 + n100 * 0.5
        elif mode == 2:
            total, hit = n300 + n100 + n50 + katu + miss, n300 + n100 + n50
        elif mode == 3:
            total = n300 + n100 + n50 + geki + katu + miss
            hit = (300 * (n300 + geki) + 200 * katu + 100 * n100 + 50 * n50) / 300
        else:
            total, hit = n300 + n100 + n50 + miss, (300 * n300 + 100 * n100 + 50 * n50) / 300
        return 100.0 * hit / total if total else 0.0

    def clear(self, status: int = OPEN) -> None:
        """Empty the slot: ``status`` (OPEN or LOCKED), no team, no mods, no token, no round flags."""
        self.status = status
        self.team = NO_TEAM
        self.mods = 0
        self.token = None
        self.reset_round()

    def seat(self, token: Token, team: int) -> None:
        """Put ``token`` here as NOT_READY with mods 0 and ``team``."""
        self.clear(NOT_READY)
        self.token = token
        self.team = team



#: bounds of a scrim (bancho.py's ``!mp scrim bo<1-15>``) and of what a snapshot may hold
MAX_WINNING_POINTS = 8
MAX_SCRIM_WINNERS = 64  # rounds remembered for !mp rematch (the oldest are forgotten)
MAX_SCRIM_ENTRIES = 256  # players or teams that ever took a point in one scrim
MAX_BANS = 128  # a mappool has at most 128 picks (docs/decisions.md)
MAX_POOL_NAME = 16


def scrim_key_team(team: int) -> str:
    """The :class:`Scrim` key of a team (``BLUE`` or ``RED``): ``team:1`` / ``team:2``."""
    return f"team:{team}"


def scrim_key_user(user_id: int) -> str:
    """The :class:`Scrim` key of a player: ``user:<id>``."""
    return f"user:{user_id}"


def _scrim_key_ok(key: Any) -> bool:
    if type(key) is not str:
        return False
    kind, _, rest = key.partition(":")
    if kind == "team":
        return rest in ("1", "2")
    return kind == "user" and rest.isdigit() and len(rest) <= 10 and rest[0] != "0"


class Scrim:
    """bancho.py's scrim of one match (``Match.scrim``): the bot gives a point to the winner of
    each round, the first to ``winning_points`` wins (services/commands/banchopy.py).

    ``active`` is bancho.py's ``is_scrimming``: False after the match was won or ``!mp
    endscrim`` (``winning_points`` is kept for ``!mp rematch``). ``points`` and ``names`` are
    keyed by :func:`scrim_key_user` / :func:`scrim_key_team`; ``winners`` lists the key of each
    round's winner, None for a tie, oldest first (at most :data:`MAX_SCRIM_WINNERS`).
    """

    __slots__ = ("winning_points", "active", "points", "names", "winners")

    def __init__(self, winning_points: int) -> None:
        self.winning_points = winning_points
        self.active = True
        self.points: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.winners: list[str | None] = []

    def reset(self) -> None:
        """bancho.py's ``reset_scrim``: no points, no winners (the match's bans are the
        caller's)."""
        self.points.clear()
        self.names.clear()
        self.winners.clear()

    def record(self, winner: str | None) -> None:
        """Remember a round's winner (None: a tie), forgetting the oldest beyond the bound."""
        self.winners.append(winner)
        del self.winners[:-MAX_SCRIM_WINNERS]

    def to_snapshot(self) -> dict:
        """JSON-ready: ``winning_points``, ``active``, ``points`` as ``[key, points, name]``
        triples, ``winners``."""
        return {"winning_points": self.winning_points, "active": self.active,
                "points": [[key, value, self.names.get(key, "")] for key, value in self.points.items()],
                "winners": list(self.winners)}

    @classmethod
    def from_snapshot(cls, rec: Any) -> "Scrim":
        """Read a :meth:`to_snapshot` record (:class:`objects.snapshot.Record`); raises
        :class:`objects.snapshot.SnapshotError` on a bad field: points 0-15 per key, keys of
        the two forms, each winner a key with points (or null), at most
        :data:`MAX_SCRIM_ENTRIES` keys."""
        scrim = cls(rec.int("winning_points", 1, MAX_WINNING_POINTS))
        scrim.active = rec.bool("active")
        for index, item in enumerate(rec.list("points", MAX_SCRIM_ENTRIES)):
            if (type(item) is not list or len(item) != 3 or not _scrim_key_ok(item[0]) or type(item[1]) is not int
                    or not 0 <= item[1] <= 15 or type(item[2]) is not str or len(item[2]) > 64
                    or item[0] in scrim.points):
                raise rec.fail(f"points[{index}]", "expected [key, points 0-15, name], each key once")
            scrim.points[item[0]] = item[1]
            if item[2]:
                scrim.names[item[0]] = item[2]
        for item in rec.list("winners", MAX_SCRIM_WINNERS):
            if item is not None and (type(item) is not str or item not in scrim.points):
                raise rec.fail("winners", "a winner without points")
            scrim.winners.append(item)
        return scrim


class Match:
    """One multiplayer match (docs/rules.md §1.1).

    ``password`` is plain text, "" when there is none. ``host`` is the host's token or None
    (no host, e.g. a referee-made tournament match; serialized as host id -1). ``tourney``
    matches are not disposed when they become empty (only by the cleanup loop or a referee).
    ``observers`` are tournament-client tokens watching the match channel (packets 108/109),
    keyed by token string; they are never seated.
    """

    __slots__ = (
        "id", "name", "password", "beatmap_name", "beatmap_id", "beatmap_md5", "mode", "mods",
        "scoring_type", "team_type", "freemod", "seed", "host", "in_progress", "tourney", "creator_id",
        "referee_locked", "starting", "referees", "countdown", "countdown_meta", "created", "empty_since", "slots", "observers",
        "loaded_sent", "skip_sent", "round_started", "first_complete", "disposed", "announced",
        "scrim", "pool", "bans",
        "_lobby_update", "_lobby_new", "_old_views",
    )

    def __init__(self, match_id: int, name: str, password: str = "", *, beatmap_name: str = "",
                 beatmap_id: int = 0, beatmap_md5: str = "", mode: int = 0, seed: int = 0,
                 tourney: bool = False) -> None:
        self.id = match_id
        self.name = name
        self.password = password
        self.beatmap_name = beatmap_name
        self.beatmap_id = beatmap_id
        self.beatmap_md5 = beatmap_md5
        self.mode = mode
        self.mods = 0  # match-wide mods (only the speed mods while free-mod is on)
        self.scoring_type = SCORE
        self.team_type = HEAD_TO_HEAD
        self.freemod = False
        self.seed = seed
        self.host: Token | None = None
        self.in_progress = False
        self.tourney = tourney
        self.creator_id: int | None = None  # user who created it ([limits] max_matches_per_user)
        self.referee_locked = False  # !mp lock: players cannot change slot or team
        self.starting = False  # a referee countdown runs: no ready, slot or team changes
        self.referees: set[int] = set()  # user ids added by !mp make / !mp addref
        self.countdown: Any = None  # the asyncio.Task of a running !mp start countdown, or None
        # (monotonic end, force, referee token) of that countdown (kept by the restart snapshot)
        self.countdown_meta: Any = None
        # bancho.py's !mp scrim (a Scrim; None when none was started or after !mp scrim bo0),
        # the mappool loaded with !mp loadpool ((pool id, name), None when none) and the picks
        # banned with !mp ban ((mods, slot) pairs of that pool); all kept by the restart snapshot
        self.scrim: Scrim | None = None
        self.pool: tuple[int, str] | None = None
        self.bans: set[tuple[int, int]] = set()
        now = time.monotonic()
        self.created = now
        self.empty_since: float | None = now  # since when nobody is seated (None: someone is)
        self.slots = [Slot() for _ in range(SLOTS)]
        self.observers: dict[str, Token] = {}
        self.loaded_sent = False  # ALL_PLAYERS_LOADED went out this round
        self.skip_sent = False  # MATCH_SKIP went out this round
        self.round_started = 0.0
        self.first_complete: float | None = None  # when the first player completed this round
        self.disposed = False
        # whether the lobby may know this match (an update or NEW_MATCH reached it); a match
        # created and disposed within one poll never reaches the lobby (docs/security.md)
        self.announced = False
        self._lobby_update: bytes | None = None
        self._lobby_new: bytes | None = None
        #: encodings for older client layouts (issue 15): (packet id, censored, variant) -> bytes
        self._old_views: dict[tuple[int, bool, int], bytes] = {}

    def __repr__(self) -> str:
        return f"<Match {self.id} {self.name!r} host={self.host_id} {self.occupied_count()}/16>"

    # ---------------------------------------------------------------- queries
    @property
    def host_id(self) -> int:
        """The host's user id, -1 when there is no host."""
        return self.host.user_id if self.host is not None else -1

    @property
    def channel_name(self) -> str:
        """Internal name of the match chat channel (clients see ``#multiplayer``)."""
        return f"{CHANNEL_PREFIX}{self.id}"

    def slot_of(self, token: Token) -> int | None:
        """Index of the slot ``token`` sits in, or None."""
        for index, slot in enumerate(self.slots):
            if slot.token is token:
                return index
        return None

    def members(self) -> list[Token]:
        """The seated tokens, in slot order (the "members(M)" audience)."""
        return [slot.token for slot in self.slots if slot.token is not None]

    def playing_slots(self) -> list[tuple[int, Slot]]:
        """(index, slot) of the slots started in the current round (the "playing(M)" audience)."""
        return [(i, slot) for i, slot in enumerate(self.slots) if slot.playing and slot.token is not None]

    def playing_tokens(self) -> list[Token]:
        """Tokens of the slots that play the current round."""
        return [slot.token for _, slot in self.playing_slots()]  # type: ignore[misc]

    def occupied_count(self) -> int:
        """Number of slots with a player (status & 0x7C)."""
        return sum(1 for slot in self.slots if slot.token is not None)

    def lowest_open(self) -> int | None:
        """Index of the lowest OPEN slot, or None when the match is full."""
        for index, slot in enumerate(self.slots):
            if slot.status == OPEN:
                return index
        return None

    def __iter__(self) -> Iterator[Slot]:
        return iter(self.slots)

    # ---------------------------------------------------------------- encoding
    def packet(self, packet_id: int, censored: bool, layout: Layout | None = None) -> bytes:
        """The match struct framed as ``packet_id`` (26, 27, 36 or 46; docs/protocol.md §4.6).

        ``censored`` (the lobby copy, tourney info): a password-protected match shows an
        empty-but-present password (``0b 00``, bancho.py's form), never the real one; a match
        without a password shows ``00``. Uncensored (members): the real password.

        ``layout`` (None = modern): the receiver's build layout (8 slots before b20140528, fewer
        fields before b20130418; helpers/layout.py).
        """
        if censored:
            password: str | None = "" if self.password else None
        else:
            password = self.password or None
        slots = self.slots
        return codec.write_match(packet_id, codec.MatchData(
            self.id, self.in_progress, 0, self.mods, self.name, password,
            self.beatmap_name, self.beatmap_id, self.beatmap_md5,
            [s.status for s in slots], [s.team for s in slots],
            [s.token.user_id if s.token is not None else None for s in slots],
            self.host_id, self.mode, self.scoring_type, self.team_type, self.freemod,
            [s.mods for s in slots], self.seed,
        ), layout)

    def view(self, packet_id: int, censored: bool, layout: Layout | None) -> bytes:
        """:meth:`packet` for a receiver of ``layout``; the modern encoding (variant 0) is
        encoded anew each call like :meth:`packet`, older variants are cached until the next
        :meth:`invalidate` (a handful of variants at most)."""
        if layout is None or not layout.v[MATCH_KIND]:
            if censored and packet_id == codec.MATCH_UPDATE:
                return self.lobby_update()
            if censored and packet_id == codec.NEW_MATCH:
                return self.lobby_new()
            return self.packet(packet_id, censored)
        key = (packet_id, censored, layout.v[MATCH_KIND])
        data = self._old_views.get(key)
        if data is None:
            data = self._old_views[key] = self.packet(packet_id, censored, layout)
        return data

    def invalidate(self) -> None:
        """Drop the cached lobby packets after a change."""
        self._lobby_update = None
        self._lobby_new = None
        if self._old_views:
            self._old_views = {}

    def eight_slot_members(self) -> bool:
        """Whether a seated player uses an 8-slot build (before b20140528; docs/multiplayer.md
        "Old and new builds in one match"): slots 9-16 then stay locked."""
        return any(slot.token is not None and slot.token.layout.slots < 16 for slot in self.slots)

    def fits_eight(self) -> bool:
        """Whether no player sits in slots 9-16 (an 8-slot build may join)."""
        return all(slot.token is None for slot in self.slots[8:])

    def lobby_update(self) -> bytes:
        """Censored MATCH_UPDATE (26), cached until the next change (lobby, tourney info 93)."""
        if self._lobby_update is None:
            self._lobby_update = self.packet(codec.MATCH_UPDATE, censored=True)
        return self._lobby_update

    def lobby_new(self) -> bytes:
        """Censored NEW_MATCH (27), cached until the next change (sent on JOIN_LOBBY)."""
        if self._lobby_new is None:
            self._lobby_new = self.packet(codec.NEW_MATCH, censored=True)
        return self._lobby_new


class MatchList:
    """Every live match by id, with id allocation in 1..65535.

    Ids increase from 1 like Kawata's counter, wrap after 65535 and skip ids in use
    (docs/rules.md §1.3, §1.12), so an id is not reused soon after its match ended.
    """

    def __init__(self) -> None:
        self._matches: dict[int, Match] = {}
        self._next = 1
        # a cluster node allocates only ids with id % stride == offset, so that the nodes never
        # pick the same id (services/cluster.py sets them; 1 and 0 on one node)
        self.stride = 1
        self.offset = 0

    def __len__(self) -> int:
        return len(self._matches)

    def __iter__(self) -> Iterator[Match]:
        return iter(tuple(self._matches.values()))

    def __contains__(self, match_id: object) -> bool:
        return match_id in self._matches

    def get(self, match_id: int | None) -> Match | None:
        """The match with id ``match_id`` (int or None), or None."""
        return self._matches.get(match_id) if match_id is not None else None  # type: ignore[arg-type]

    def allocate_id(self) -> int | None:
        """The next free id in 1..65535, or None when all 65535 are in use."""
        if len(self._matches) >= MAX_ID:
            return None
        candidate = self._next
        stride, offset = self.stride, self.offset
        for _ in range(MAX_ID):
            if candidate > MAX_ID:
                candidate = 1
            if candidate not in self._matches and (stride == 1 or candidate % stride == offset):
                self._next = candidate + 1
                return candidate
            candidate += 1
        return None

    def add(self, match: Match) -> None:
        """Register ``match`` under its id."""
        if match.id in self._matches:
            raise ValueError(f"match id {match.id} is in use")
        self._matches[match.id] = match

    def remove(self, match_id: int) -> Match | None:
        """Forget the match with ``match_id``; returns it, or None."""
        return self._matches.pop(match_id, None)

    @property
    def next_id(self) -> int:
        """Where :meth:`allocate_id` looks first (kept by the restart snapshot)."""
        return self._next

    @next_id.setter
    def next_id(self, value: int) -> None:
        self._next = value


# ------------------------------------------------------------------------------------ snapshot
_SLOT_FLAGS = ("playing", "loaded", "skipped", "completed", "failed", "passed")


def match_to_snapshot(match: Match, now: float) -> dict:
    """``match`` as a JSON-ready dict for the restart snapshot (docs/operations.md): settings,
    host and seated tokens by token string, the 16 slots with their round flags, monotonic
    times as ages (seconds before ``now``), bancho.py's scrim (:meth:`Scrim.to_snapshot`), the
    loaded mappool (``{"id", "name"}``) and its banned picks (``[mods, slot]`` pairs)."""
    return {
        "id": match.id, "name": match.name, "password": match.password, "beatmap_name": match.beatmap_name,
        "beatmap_id": match.beatmap_id, "beatmap_md5": match.beatmap_md5, "mode": match.mode,
        "mods": match.mods, "scoring_type": match.scoring_type, "team_type": match.team_type,
        "freemod": match.freemod, "seed": match.seed,
        "host": match.host.token if match.host is not None else None,
        "in_progress": match.in_progress, "tourney": match.tourney, "creator_id": match.creator_id,
        "referee_locked": match.referee_locked, "created_age": max(0.0, now - match.created),
        "empty_age": None if match.empty_since is None else max(0.0, now - match.empty_since),
        "loaded_sent": match.loaded_sent, "skip_sent": match.skip_sent,
        "round_age": max(0.0, now - match.round_started) if match.round_started else None,
        "first_complete_age": None if match.first_complete is None else max(0.0, now - match.first_complete),
        "observers": list(match.observers),
        "scrim": None if match.scrim is None else match.scrim.to_snapshot(),
        "pool": None if match.pool is None else {"id": match.pool[0], "name": match.pool[1]},
        "bans": sorted([mods, slot] for mods, slot in match.bans),
        "slots": [{"status": s.status, "team": s.team, "mods": s.mods,
                   "token": s.token.token if s.token is not None else None, "score": s.score,
                   **{flag: getattr(s, flag) for flag in _SLOT_FLAGS}} for s in match.slots],
    }


def match_from_snapshot(rec, now: float, tokens: dict) -> Match:
    """Rebuild a match from its record (:class:`objects.snapshot.Record`); ``tokens`` maps token
    strings to the restored tokens. Checks the invariants of the module docstring (a slot has a
    token exactly when its status says so, each token in one slot and pointing at this match,
    the host seated). Raises :class:`objects.snapshot.SnapshotError`."""
    u32 = 2**31 - 1
    match = Match(rec.int("id", 1, MAX_ID), rec.str("name", 256), rec.str("password", 256),
                  beatmap_name=rec.str("beatmap_name", 1024), beatmap_id=rec.int("beatmap_id", -u32, u32),
                  beatmap_md5=rec.str("beatmap_md5", 64), mode=rec.int("mode", 0, 3),
                  seed=rec.int("seed", -(2**31), u32), tourney=rec.bool("tourney"))
    match.mods = rec.int("mods", 0, u32)
    match.scoring_type = rec.int("scoring_type", 0, 3)
    match.team_type = rec.int("team_type", 0, 3)
    match.freemod = rec.bool("freemod")
    match.in_progress = rec.bool("in_progress")
    match.creator_id = rec.opt_int("creator_id", 0, u32)
    match.referee_locked = rec.bool("referee_locked")
    match.announced = True  # it may have been: a dispose the lobby never needed is harmless
    match.created = now - rec.age("created_age")
    empty = rec.opt_age("empty_age")
    match.empty_since = None if empty is None else now - empty
    match.loaded_sent = rec.bool("loaded_sent")
    match.skip_sent = rec.bool("skip_sent")
    round_age = rec.opt_age("round_age")
    match.round_started = 0.0 if round_age is None else now - round_age
    first = rec.opt_age("first_complete_age")
    match.first_complete = None if first is None else now - first
    slots = rec.list("slots", SLOTS)
    if len(slots) != SLOTS:
        raise rec.fail("slots", f"expected {SLOTS} slots")
    seated: set[str] = set()
    for index, srec in enumerate(records(slots, f"{rec.where}.slots")):
        slot = match.slots[index]
        slot.status = srec.int("status", 0, 255)
        if slot.status not in (OPEN, LOCKED, NOT_READY, READY, NO_MAP, PLAYING, COMPLETE, QUIT):
            raise srec.fail("status", "not a slot status")
        slot.team = srec.int("team", 0, 2)
        slot.mods = srec.int("mods", 0, u32)
        slot.score = srec.int("score", -(2**63), 2**63 - 1)
        for flag in _SLOT_FLAGS:
            setattr(slot, flag, srec.bool(flag))
        ref = srec.token_ref("token")
        if ref is None:
            if slot.occupied:
                raise srec.fail("token", "an occupied slot needs a token")
            continue
        token = tokens.get(ref)
        if token is None or not slot.occupied or ref in seated or token.match_id != match.id:
            raise srec.fail("token", "unknown session, empty status, seated twice or in another match")
        seated.add(ref)
        slot.token = token
    host = rec.token_ref("host")
    if host is not None:
        if host not in seated:
            raise rec.fail("host", "the host is not seated in the match")
        match.host = tokens[host]
    if not match.in_progress and any(s.playing for s in match.slots):
        raise SnapshotError(f"{rec.where}: a slot plays while the match is not in progress")
    for ref in rec.token_refs("observers", 4096):
        token = tokens.get(ref)
        if token is None:
            raise rec.fail("observers", "unknown session")
        match.observers[ref] = token
    if rec.data.get("scrim") is not None:
        match.scrim = Scrim.from_snapshot(rec.record("scrim"))
    if rec.data.get("pool") is not None:
        pool = rec.record("pool")
        name = pool.str("name", MAX_POOL_NAME)
        if not name:
            raise pool.fail("name", "empty")
        match.pool = (pool.int("id", 1, 2**31 - 1), name)
    for index, item in enumerate(rec.list("bans", MAX_BANS)):
        if (type(item) is not list or len(item) != 2 or type(item[0]) is not int or not 0 <= item[0] <= u32
                or type(item[1]) is not int or not 0 <= item[1] <= 99 or (item[0], item[1]) in match.bans):
            raise rec.fail(f"bans[{index}]", "expected [mods, slot 0-99], each pick once")
        match.bans.add((item[0], item[1]))
    if match.bans and match.pool is None:
        raise rec.fail("bans", "banned picks without a loaded mappool")
    return match
