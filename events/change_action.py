"""Packet 0, change action: the user's status (action, text, beatmap, mods, mode).

Rules (docs/rules.md §3.1, §3.3): the mode selects the cached stats; on Kawata and
RealistikOsu a non-AFK status with Relax (and on RealistikOsu Autopilot) switches the stats to
the relax/autopilot tables and the text gets a ``[RX]``/``[AP]``/``[VN]`` prefix (idle and AFK
show the prefix alone, after RealistikOsu's ``!status`` text when one is enabled: ``(text) [VN]``).
The user and its spectators then get the new presence and stats.
Stats are re-read from MySQL (in the background) only when the mode or relax state changed;
otherwise the cache answers at once. Reloads are coalesced per session (at most one in flight
and one after it: docs/security.md, "Hardening II: in game").
"""

from __future__ import annotations

from constants import game, packets
from helpers import codec
from objects.token import REPLY_STATUS
from services import session
from helpers.codec import PacketError

MAX_TEXT = 512


def handle(state, token, payload: bytes) -> None:
    """Store the status; reply with own 83 + 11 (after a stats reload when needed)."""
    action, text, md5, mods, mode, beatmap_id = codec.read_status(payload).as_tuple()
    if not 0 <= mode <= 3:
        raise PacketError(f"game mode {mode} out of range")
    if not 0 <= action <= game.OSU_DIRECT:
        action = game.UNKNOWN
    reload = mode != token.mode
    token.mode = mode
    token.action = action
    token.beatmap_md5 = md5[:64]
    token.mods = mods
    token.beatmap_id = beatmap_id
    flavour = state.repo.flavour
    text = text[:MAX_TEXT]
    if flavour.relax_prefix:
        if action != game.AFK:
            relax = bool(mods & game.MOD_RELAX)
            autopilot = not relax and bool(mods & game.MOD_AUTOPILOT) and flavour.stats_autopilot is not None
            if (relax, autopilot) != (token.relax, token.autopilot):
                token.relax, token.autopilot = relax, autopilot
                reload = True
        text = session.prefixed_action_text(token, action, text)
    token.action_text = text
    token.invalidate()
    if state.cluster is not None:  # the other nodes' replica (docs/cluster.md)
        state.cluster.changed(token)
    if reload or token.stats_reloading:
        # coalesced per session (docs/security.md): a reload in flight sends the status when done
        session.request_stats_reload(state, token, REPLY_STATUS)
    else:
        session.send_own_status(token)
