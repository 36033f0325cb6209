"""Match-event lines: the bot announces what happens in a match in its channel, in the official
server's words, so referee tools written for it work unchanged (docs/irc.md, "Referees").

On with ``[bot] mp_style = official`` (docs/decisions.md, "IRC gateway"). :class:`MatchEvents`,
a service of ``state.services``, is a :class:`objects.state.MatchListener` that compares each match with what it was at the previous update (players per slot, teams,
host, beatmap, readiness, round) and sends one bot message per change into the match channel
through the chat pipeline, so game players (``#multiplayer``) and IRC referees (``#mp_<id>``)
read the same lines. Slots are numbered 1–16 as on the official server.

Lines (docs/irc.md lists them): ``{name} joined in slot {n}.`` (``... for team red.`` in team
modes), ``{name} left the game.``, ``{name} moved to slot {n}``, ``{name} changed to Red``,
``{name} became the host.``, ``Host is changing map...``, ``Beatmap changed to: {name}
(https://osu.ppy.sh/b/{id})``, ``All players are ready``, ``The match has started!``,
``{name} finished playing (Score: {score}, PASSED).`` and ``The match has finished!``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from objects import match as m
from objects.state import MatchListener
from services import chat

if TYPE_CHECKING:
    from objects.match import Match
    from objects.state import State

BEATMAP_URL = "https://osu.ppy.sh/b/{id}"
TEAM_NAMES = {m.RED: "Red", m.BLUE: "Blue"}


class _Snapshot:
    __slots__ = ("match", "slots", "host", "beatmap", "in_progress", "all_ready", "team_type")

    def __init__(self, match: Match) -> None:
        self.match = match
        self.slots = [(s.token.user_id, s.token.username, s.team) if s.token is not None else None
                      for s in match.slots]
        self.host = match.host.user_id if match.host is not None else None
        self.beatmap = (match.beatmap_id, match.beatmap_md5)
        self.in_progress = match.in_progress
        seated = [s for s in match.slots if s.token is not None]
        self.all_ready = bool(seated) and all(s.status == m.READY for s in seated)
        self.team_type = match.team_type


def changes(before: _Snapshot, after: _Snapshot, match: Match) -> list[str]:
    """The official lines for what changed from ``before`` to ``after`` (pure; module docstring)."""
    lines: list[str] = []
    was = {entry[0]: (index, entry) for index, entry in enumerate(before.slots) if entry is not None}
    now = {entry[0]: (index, entry) for index, entry in enumerate(after.slots) if entry is not None}
    teams = match.team_type in m.TEAM_MODES
    for user_id, (index, (_, name, team)) in now.items():
        old = was.get(user_id)
        if old is None:
            if teams and team in TEAM_NAMES:
                lines.append(f"{name} joined in slot {index + 1} for team {TEAM_NAMES[team].lower()}.")
            else:
                lines.append(f"{name} joined in slot {index + 1}.")
            continue
        if old[0] != index:
            lines.append(f"{name} moved to slot {index + 1}")
        if teams and before.team_type == after.team_type and old[1][2] != team and team in TEAM_NAMES:
            lines.append(f"{name} changed to {TEAM_NAMES[team]}")
    for user_id, (_, (_, name, _)) in was.items():
        if user_id not in now:
            lines.append(f"{name} left the game.")
    if after.host is not None and after.host != before.host and after.host in now:
        lines.append(f"{now[after.host][1][1]} became the host.")
    if after.beatmap != before.beatmap:
        beatmap_id, md5 = after.beatmap
        if beatmap_id <= 0 or not md5:
            lines.append("Host is changing map...")
        else:
            lines.append(f"Beatmap changed to: {match.beatmap_name} ({BEATMAP_URL.format(id=beatmap_id)})")
    if after.all_ready and not before.all_ready and not after.in_progress:
        lines.append("All players are ready")
    if after.in_progress and not before.in_progress:
        lines.append("The match has started!")
    return lines


class MatchEvents(MatchListener):
    """The listener, a service of ``state.services`` (built by ``pep.py``): one snapshot per
    live match (dropped when the match is disposed). Listens only with ``[bot] mp_style =
    official``."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.snapshots: dict[int, _Snapshot] = {}

    async def start(self) -> None:
        """Hear the matches when ``[bot] mp_style = official``."""
        if self.state.cfg.bot.mp_style == "official":
            self.state.match_listeners.append(self)

    async def stop(self) -> None:
        """Stop hearing the matches."""
        if self in self.state.match_listeners:
            self.state.match_listeners.remove(self)
        self.snapshots.clear()

    def _say(self, match: Match, lines: list[str]) -> None:
        for text in lines:
            chat.bot_message(self.state, match.channel_name, text)

    def match_changed(self, match: Any) -> None:
        after = _Snapshot(match)
        before = self.snapshots.get(match.id)
        self.snapshots[match.id] = after
        if len(self.snapshots) > 64 and len(self.snapshots) > 2 * len(self.state.matches):
            self._prune()
        if before is None or before.match is not match:
            return
        self._say(match, changes(before, after, match))

    def round_finished(self, match: Any) -> None:
        lines = [f"{slot.token.username} finished playing (Score: {slot.score}, "
                 f"{'PASSED' if slot.passed else 'FAILED'})."
                 for slot in match.slots if slot.token is not None and slot.playing and slot.completed]
        lines.append("The match has finished!")
        self._say(match, lines)

    def _prune(self) -> None:
        for match_id, snap in list(self.snapshots.items()):
            if snap.match.disposed or self.state.matches.get(match_id) is not snap.match:
                del self.snapshots[match_id]
