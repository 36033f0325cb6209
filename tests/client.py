"""A minimal osu! *client* for integration tests, built on the PyPI library ``chio``.

chio is written for servers: it reads client packets and writes server packets. This module
does the opposite direction with chio's primitives (``chio.io`` read/write functions,
``MemoryStream``) and its direction-free (de)serialisers (status, message, match, score frame,
spectator frames), so the tests never share code with the server's own codec
(``helpers.codec`` must never be imported here).

Usage::

    c = BanchoClient(url)
    res = c.login("alice", "password")
    assert res.user_id > 0
    c.send(public_message("#osu", "hello"))
    pkt = wait_for(c, lambda p: p.id == 7)
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from typing import Any, Callable, Iterable

import chio
import requests
from chio import io as cio
from chio.constants import Mode, Mods, PacketType, Status
from chio.types import Match, Message, ReplayFrameBundle, ScoreFrame, UserStatus

# The client codec chio selects for the newest stable build (protocol 19, 16 slots).
IO = chio.select_client(20250306)
MODERN_BUILD = 20250306


def client_io(build: int = MODERN_BUILD, protocol: int | None = None) -> Any:
    """chio's codec class of client build ``build`` (``chio.select_client``), as a private
    subclass whose ``protocol_version`` is ``protocol`` (the value the server sent in packet 75,
    which is what a real client adopts; None keeps chio's default). A subclass, so that chio's
    class attributes (b20140528 sets ``slot_size`` from the protocol) never leak between
    clients of different builds."""
    base = type(chio.select_client(build))
    attrs: dict[str, Any] = {}
    if protocol is not None:
        attrs["protocol_version"] = protocol
    return type(f"{base.__name__}_test", (base,), attrs)

DEFAULT_VERSION = "b20250306.2"
BOT_ID = 999

# ---------------------------------------------------------------------------------------------
# Server -> client packet ids (docs/protocol.md §6.2), as plain ints for readable assertions; the
# ids are chio's (PacketType), not ours: the test client stays independent of constants/packets.py
# ---------------------------------------------------------------------------------------------
LOGIN_REPLY = int(PacketType.BanchoLoginReply)
SEND_MESSAGE = int(PacketType.BanchoMessage)
PING = int(PacketType.BanchoPing)
USER_STATS = int(PacketType.BanchoUserStats)
USER_LOGOUT = int(PacketType.BanchoUserQuit)
SPECTATOR_JOINED = int(PacketType.BanchoSpectatorJoined)
SPECTATOR_LEFT = int(PacketType.BanchoSpectatorLeft)
SPECTATE_FRAMES = int(PacketType.BanchoSpectateFrames)
VERSION_UPDATE = int(PacketType.BanchoVersionUpdate)
SPECTATOR_CANT_SPECTATE = int(PacketType.BanchoSpectatorCantSpectate)
GET_ATTENTION = int(PacketType.BanchoGetAttention)
NOTIFICATION = int(PacketType.BanchoAnnounce)
MATCH_UPDATE = int(PacketType.BanchoMatchUpdate)
MATCH_NEW = int(PacketType.BanchoMatchNew)
MATCH_DISPOSE = int(PacketType.BanchoMatchDisband)
MATCH_JOIN_SUCCESS = int(PacketType.BanchoMatchJoinSuccess)
MATCH_JOIN_FAIL = int(PacketType.BanchoMatchJoinFail)
FELLOW_SPECTATOR_JOINED = int(PacketType.BanchoFellowSpectatorJoined)
FELLOW_SPECTATOR_LEFT = int(PacketType.BanchoFellowSpectatorLeft)
MATCH_START = int(PacketType.BanchoMatchStart)
MATCH_SCORE_UPDATE = int(PacketType.BanchoMatchScoreUpdate)
MATCH_TRANSFER_HOST = int(PacketType.BanchoMatchTransferHost)
MATCH_ALL_PLAYERS_LOADED = int(PacketType.BanchoMatchAllPlayersLoaded)
MATCH_PLAYER_FAILED = int(PacketType.BanchoMatchPlayerFailed)
MATCH_COMPLETE = int(PacketType.BanchoMatchComplete)
MATCH_SKIP = int(PacketType.BanchoMatchSkip)
CHANNEL_JOIN_SUCCESS = int(PacketType.BanchoChannelJoinSuccess)
CHANNEL_INFO = int(PacketType.BanchoChannelAvailable)
CHANNEL_KICKED = int(PacketType.BanchoChannelRevoked)
CHANNEL_AUTOJOIN = int(PacketType.BanchoChannelAvailableAutojoin)
PRIVILEGES = int(PacketType.BanchoLoginPermissions)
FRIENDS_LIST = int(PacketType.BanchoFriendsList)
PROTOCOL_VERSION = int(PacketType.BanchoProtocolNegotiation)
MAIN_MENU_ICON = int(PacketType.BanchoTitleUpdate)
MATCH_PLAYER_SKIPPED = int(PacketType.BanchoMatchPlayerSkipped)
USER_PRESENCE = int(PacketType.BanchoUserPresence)
RESTART = int(PacketType.BanchoRestart)
MATCH_INVITE = int(PacketType.BanchoInvite)
CHANNEL_INFO_END = int(PacketType.BanchoChannelInfoComplete)
MATCH_CHANGE_PASSWORD = int(PacketType.BanchoMatchChangePassword)
SILENCE_END = int(PacketType.BanchoSilenceInfo)
USER_SILENCED = int(PacketType.BanchoUserSilenced)
USER_PRESENCE_SINGLE = int(PacketType.BanchoUserPresenceSingle)
USER_PRESENCE_BUNDLE = int(PacketType.BanchoUserPresenceBundle)
USER_DM_BLOCKED = int(PacketType.BanchoUserDmsBlocked)
TARGET_IS_SILENCED = int(PacketType.BanchoTargetIsSilenced)
VERSION_UPDATE_FORCED = int(PacketType.BanchoVersionUpdateForced)
SWITCH_SERVER = int(PacketType.BanchoSwitchServer)
ACCOUNT_RESTRICTED = int(PacketType.BanchoAccountRestricted)
RTX = int(PacketType.BanchoRTX)
MATCH_ABORT = int(PacketType.BanchoMatchAbort)
SWITCH_TOURNAMENT_SERVER = int(PacketType.BanchoSwitchTournamentServer)

# Client -> server ids (docs/protocol.md §6.1)
C_CHANGE_ACTION = int(PacketType.OsuUserStatus)
C_PUBLIC_MESSAGE = int(PacketType.OsuMessage)
C_LOGOUT = int(PacketType.OsuExit)
C_REQUEST_STATUS_UPDATE = int(PacketType.OsuStatusUpdateRequest)
C_PING = int(PacketType.OsuPong)
C_START_SPECTATING = int(PacketType.OsuStartSpectating)
C_STOP_SPECTATING = int(PacketType.OsuStopSpectating)
C_SPECTATE_FRAMES = int(PacketType.OsuSpectateFrames)
C_ERROR_REPORT = int(PacketType.OsuErrorReport)
C_CANT_SPECTATE = int(PacketType.OsuCantSpectate)
C_PRIVATE_MESSAGE = int(PacketType.OsuPrivateMessage)
C_PART_LOBBY = int(PacketType.OsuLobbyPart)
C_JOIN_LOBBY = int(PacketType.OsuLobbyJoin)
C_CREATE_MATCH = int(PacketType.OsuMatchCreate)
C_JOIN_MATCH = int(PacketType.OsuMatchJoin)
C_PART_MATCH = int(PacketType.OsuMatchPart)
C_MATCH_CHANGE_SLOT = int(PacketType.OsuMatchChangeSlot)
C_MATCH_READY = int(PacketType.OsuMatchReady)
C_MATCH_LOCK = int(PacketType.OsuMatchLock)
C_MATCH_CHANGE_SETTINGS = int(PacketType.OsuMatchChangeSettings)
C_MATCH_START = int(PacketType.OsuMatchStart)
C_MATCH_SCORE_UPDATE = int(PacketType.OsuMatchScoreUpdate)
C_MATCH_COMPLETE = int(PacketType.OsuMatchComplete)
C_MATCH_CHANGE_MODS = int(PacketType.OsuMatchChangeMods)
C_MATCH_LOAD_COMPLETE = int(PacketType.OsuMatchLoadComplete)
C_MATCH_NO_BEATMAP = int(PacketType.OsuMatchNoBeatmap)
C_MATCH_NOT_READY = int(PacketType.OsuMatchNotReady)
C_MATCH_FAILED = int(PacketType.OsuMatchFailed)
C_MATCH_HAS_BEATMAP = int(PacketType.OsuMatchHasBeatmap)
C_MATCH_SKIP_REQUEST = int(PacketType.OsuMatchSkipRequest)
C_CHANNEL_JOIN = int(PacketType.OsuChannelJoin)
C_MATCH_TRANSFER_HOST = int(PacketType.OsuMatchTransferHost)
C_FRIEND_ADD = int(PacketType.OsuFriendsAdd)
C_FRIEND_REMOVE = int(PacketType.OsuFriendsRemove)
C_MATCH_CHANGE_TEAM = int(PacketType.OsuMatchChangeTeam)
C_CHANNEL_PART = int(PacketType.OsuChannelLeave)
C_RECEIVE_UPDATES = int(PacketType.OsuReceiveUpdates)
C_SET_AWAY_MESSAGE = int(PacketType.OsuSetIrcAwayMessage)
C_USER_STATS_REQUEST = int(PacketType.OsuUserStatsRequest)
C_MATCH_INVITE = int(PacketType.OsuInvite)
C_MATCH_CHANGE_PASSWORD = int(PacketType.OsuMatchChangePassword)
C_TOURNAMENT_MATCH_INFO = int(PacketType.OsuTournamentMatchInfo)
C_PRESENCE_REQUEST = int(PacketType.OsuPresenceRequest)
C_PRESENCE_REQUEST_ALL = int(PacketType.OsuPresenceRequestAll)
C_TOGGLE_BLOCK_DMS = int(PacketType.OsuChangeFriendOnlyDms)
C_TOURNAMENT_JOIN_MATCH_CHANNEL = int(PacketType.OsuTournamentJoinMatchChannel)
C_TOURNAMENT_LEAVE_MATCH_CHANNEL = int(PacketType.OsuTournamentLeaveMatchChannel)


# ---------------------------------------------------------------------------------------------
# Decoded values
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Presence:
    """Packet 83 (docs/protocol.md §4.3)."""

    user_id: int
    username: str
    utc_offset: int  # the wire byte minus 24
    country: int
    privileges: int  # low 5 bits of the privilege byte
    mode: int  # bits 5-7 of the privilege byte
    longitude: float
    latitude: float
    rank: int

    @property
    def raw_privilege_byte(self) -> int:
        return self.privileges | (self.mode << 5)


@dataclasses.dataclass(frozen=True)
class Stats:
    """Packet 11 (docs/protocol.md §4.2; pp is u16 for b20250306+)."""

    user_id: int
    action: int
    text: str
    beatmap_md5: str
    mods: int
    mode: int
    beatmap_id: int
    ranked_score: int
    accuracy: float
    playcount: int
    total_score: int
    rank: int
    pp: int


@dataclasses.dataclass(frozen=True)
class UserQuit:
    """Packet 12."""

    user_id: int
    state: int


@dataclasses.dataclass(frozen=True)
class ChannelInfo:
    """Packets 65 / 67 (docs/protocol.md §4.5)."""

    name: str
    topic: str
    user_count: int


@dataclasses.dataclass
class Packet:
    id: int
    name: str
    value: Any
    raw: bytes

    def __repr__(self) -> str:  # compact, readable in assertion messages
        val = self.value
        if isinstance(val, bytes) and len(val) > 48:
            val = val[:48] + b"..."
        if isinstance(val, str) and len(val) > 120:
            val = val[:120] + "..."
        return f"<{self.id} {self.name} {val!r}>"


class PacketDecodeError(AssertionError):
    """The server sent a packet our (chio based) decoder cannot read: a test failure."""


def packet_name(packet_id: int) -> str:
    try:
        return PacketType(packet_id).name
    except ValueError:
        return f"Unknown{packet_id}"


# ---------------------------------------------------------------------------------------------
# Payload decoders (server -> client), with chio primitives only
# ---------------------------------------------------------------------------------------------
def _empty(_s: cio.MemoryStream, io: Any = IO) -> None:
    return None


def _i32(s: cio.MemoryStream, io: Any = IO) -> int:
    return cio.read_s32(s)


def _u32(s: cio.MemoryStream, io: Any = IO) -> int:
    return cio.read_u32(s)


def _string(s: cio.MemoryStream, io: Any = IO) -> str:
    return cio.read_string(s)


def _message(s: cio.MemoryStream, io: Any = IO) -> Message:
    message = io.read_message(s)
    if io.version < 20121225:  # no sender id on the wire (chio b320); None, never a guess
        message.sender_id = None
    return message


def _status_fields(s: cio.MemoryStream) -> dict:
    # chio's direction-free status reader (b20120818.read_user_status) would coerce the action
    # into chio's Status enum; read the same layout with primitives so that an out-of-range value
    # surfaces as a wrong number in an assertion instead of a decoder crash.
    return dict(
        action=cio.read_u8(s),
        text=cio.read_string(s),
        beatmap_md5=cio.read_string(s),
        mods=cio.read_u32(s),
        mode=cio.read_u8(s),
        beatmap_id=cio.read_s32(s),
    )


def _stats(s: cio.MemoryStream, io: Any = IO) -> Stats:
    user_id = cio.read_s32(s)
    status = _status_fields(s)
    return Stats(
        user_id=user_id,
        **status,
        ranked_score=cio.read_u64(s),
        accuracy=cio.read_f32(s),
        playcount=cio.read_u32(s),
        total_score=cio.read_u64(s),
        rank=cio.read_u32(s),
        # pp: u16 from b20250306, i16 before (chio b20120723 / b20250306)
        pp=cio.read_u16(s) if io.version >= 20250306 else cio.read_s16(s),
    )


def _quit(s: cio.MemoryStream, io: Any = IO) -> UserQuit | Stats:
    if io.version < 20121224:  # a stats struct before b20121224 (chio b282)
        return _stats(s, io)
    return UserQuit(user_id=cio.read_s32(s), state=cio.read_u8(s))


def _channel(s: cio.MemoryStream, io: Any = IO) -> ChannelInfo:
    return ChannelInfo(name=cio.read_string(s), topic=cio.read_string(s), user_count=cio.read_s16(s))


def _id_list(s: cio.MemoryStream, io: Any = IO) -> list[int]:
    return cio.read_list_s16(s)  # u16 count + i32 elements


def _presence(s: cio.MemoryStream, io: Any = IO) -> Presence:
    user_id = cio.read_s32(s)
    username = cio.read_string(s)
    offset = cio.read_u8(s) - 24
    country = cio.read_u8(s)
    priv = cio.read_u8(s)
    longitude = cio.read_f32(s)
    latitude = cio.read_f32(s)
    rank = cio.read_s32(s)
    return Presence(user_id, username, offset, country, priv & 0x1F, priv >> 5, longitude, latitude, rank)


def _match(s: cio.MemoryStream, io: Any = IO) -> Match:
    return io.read_match(s)


def _score_frame(s: cio.MemoryStream, io: Any = IO) -> ScoreFrame:
    return io.read_score_frame(s)


def _spectate_frames(s: cio.MemoryStream, io: Any = IO) -> ReplayFrameBundle:
    return io.read_spectate_frames(s)


DECODERS: dict[int, Callable[..., Any]] = {
    LOGIN_REPLY: _i32,
    SEND_MESSAGE: _message,
    PING: _empty,
    USER_STATS: _stats,
    USER_LOGOUT: _quit,
    SPECTATOR_JOINED: _i32,
    SPECTATOR_LEFT: _i32,
    SPECTATE_FRAMES: _spectate_frames,
    VERSION_UPDATE: _empty,
    SPECTATOR_CANT_SPECTATE: _i32,
    GET_ATTENTION: _empty,
    NOTIFICATION: _string,
    MATCH_UPDATE: _match,
    MATCH_NEW: _match,
    MATCH_DISPOSE: _i32,
    MATCH_JOIN_SUCCESS: _match,
    MATCH_JOIN_FAIL: _empty,
    FELLOW_SPECTATOR_JOINED: _i32,
    FELLOW_SPECTATOR_LEFT: _i32,
    MATCH_START: _match,
    MATCH_SCORE_UPDATE: _score_frame,
    MATCH_TRANSFER_HOST: _empty,
    MATCH_ALL_PLAYERS_LOADED: _empty,
    MATCH_PLAYER_FAILED: _i32,
    MATCH_COMPLETE: _empty,
    MATCH_SKIP: _empty,
    CHANNEL_JOIN_SUCCESS: _string,
    CHANNEL_INFO: _channel,
    CHANNEL_KICKED: _string,
    CHANNEL_AUTOJOIN: _channel,
    PRIVILEGES: _i32,
    FRIENDS_LIST: _id_list,
    PROTOCOL_VERSION: _i32,
    MAIN_MENU_ICON: _string,
    MATCH_PLAYER_SKIPPED: _i32,
    USER_PRESENCE: _presence,
    RESTART: _i32,
    MATCH_INVITE: _message,
    CHANNEL_INFO_END: _empty,
    MATCH_CHANGE_PASSWORD: _string,
    SILENCE_END: _i32,
    USER_SILENCED: _i32,
    USER_PRESENCE_SINGLE: _i32,
    USER_PRESENCE_BUNDLE: _id_list,
    USER_DM_BLOCKED: _message,
    TARGET_IS_SILENCED: _message,
    VERSION_UPDATE_FORCED: _empty,
    SWITCH_SERVER: _i32,
    ACCOUNT_RESTRICTED: _empty,
    RTX: _string,
    MATCH_ABORT: _empty,
    SWITCH_TOURNAMENT_SERVER: _string,
}


def decode_payload(packet_id: int, payload: bytes, io: Any = IO) -> Any:
    """Decode one payload; unknown ids come back as the raw bytes.

    Trailing bytes inside a payload are tolerated (the real client ignores them, docs/protocol.md
    §2.1); a payload that is too short or malformed raises :class:`PacketDecodeError`.
    ``io``: the chio codec class of the client's build (:func:`client_io`).
    """
    decoder = DECODERS.get(packet_id)
    if decoder is None:
        return payload
    stream = cio.MemoryStream(payload)
    try:
        value = decoder(stream, io)
    except Exception as exc:  # struct.error, IndexError, UnicodeDecodeError, ValueError
        raise PacketDecodeError(
            f"cannot decode packet {packet_id} ({packet_name(packet_id)}) payload {payload.hex(' ')}: {exc!r}"
        ) from exc
    if stream.position > len(payload):
        raise PacketDecodeError(
            f"packet {packet_id} ({packet_name(packet_id)}) payload too short: {payload.hex(' ')}"
        )
    return value


def decode_packets(body: bytes, io: Any = IO) -> list[Packet]:
    """Split a response body into frames (u16 id, u8 compression, u32 length) and decode them."""
    stream = cio.MemoryStream(body)
    packets: list[Packet] = []
    while stream.available() > 0:
        if stream.available() < 7:
            raise PacketDecodeError(f"trailing {stream.available()} bytes after the last frame: {body[-16:].hex(' ')}")
        packet_id = cio.read_u16(stream)
        compressed = cio.read_u8(stream)
        length = cio.read_u32(stream)
        if length > stream.available():
            raise PacketDecodeError(
                f"frame {packet_id} declares {length} bytes but only {stream.available()} remain"
            )
        payload = stream.read(length)
        if compressed:
            raise PacketDecodeError(f"frame {packet_id} has the per-packet compression flag set ({compressed})")
        packets.append(Packet(packet_id, packet_name(packet_id), decode_payload(packet_id, payload, io), payload))
    return packets


# ---------------------------------------------------------------------------------------------
# Frame builders (client -> server)
# ---------------------------------------------------------------------------------------------
def frame(packet_id: int, payload: bytes = b"") -> bytes:
    """Frame a payload: u16 id, u8 0, u32 length, payload."""
    s = cio.MemoryStream()
    cio.write_u16(s, packet_id)
    cio.write_u8(s, 0)
    cio.write_u32(s, len(payload))
    s.write(payload)
    return s.data


def _payload(*writers: Callable[[cio.MemoryStream], None]) -> bytes:
    s = cio.MemoryStream()
    for w in writers:
        w(s)
    return s.data


def _i32_frame(packet_id: int, value: int) -> bytes:
    return frame(packet_id, _payload(lambda s: cio.write_s32(s, value)))


def _str_frame(packet_id: int, value: str) -> bytes:
    return frame(packet_id, _payload(lambda s: cio.write_string(s, value)))


def message_payload(content: str, target: str, sender: str = "", sender_id: int = 0, io: Any = IO) -> bytes:
    s = cio.MemoryStream()
    cio.write_string(s, sender)
    cio.write_string(s, content)
    cio.write_string(s, target)
    if io.version >= 20121225:  # chio b20121225: the sender id exists from this build on
        cio.write_s32(s, sender_id)
    return s.data


def ping() -> bytes:
    return frame(C_PING)


def change_action(
    action: int = 0,
    text: str = "",
    md5: str = "",
    mods: int = 0,
    mode: int = 0,
    beatmap_id: int = 0,
    io: Any = IO,
) -> bytes:
    status = UserStatus(
        action=Status(action), text=text, mods=Mods(mods), mode=Mode(mode), beatmap_checksum=md5, beatmap_id=beatmap_id
    )
    return frame(C_CHANGE_ACTION, io.write_status_update(status))


def public_message(target: str, text: str, io: Any = IO) -> bytes:
    return frame(C_PUBLIC_MESSAGE, message_payload(text, target, io=io))


def private_message(target: str, text: str, io: Any = IO) -> bytes:
    return frame(C_PRIVATE_MESSAGE, message_payload(text, target, io=io))


def logout() -> bytes:
    return _i32_frame(C_LOGOUT, 0)


def request_status_update() -> bytes:
    return frame(C_REQUEST_STATUS_UPDATE)


def channel_join(name: str) -> bytes:
    return _str_frame(C_CHANNEL_JOIN, name)


def channel_part(name: str) -> bytes:
    return _str_frame(C_CHANNEL_PART, name)


def friend_add(user_id: int) -> bytes:
    return _i32_frame(C_FRIEND_ADD, user_id)


def friend_remove(user_id: int) -> bytes:
    return _i32_frame(C_FRIEND_REMOVE, user_id)


def stats_request(ids: Iterable[int]) -> bytes:
    ids = list(ids)
    return frame(C_USER_STATS_REQUEST, _payload(lambda s: cio.write_list_s16(s, ids)))


def presence_request(ids: Iterable[int]) -> bytes:
    ids = list(ids)
    return frame(C_PRESENCE_REQUEST, _payload(lambda s: cio.write_list_s16(s, ids)))


def presence_request_all() -> bytes:
    return _i32_frame(C_PRESENCE_REQUEST_ALL, 0)


def receive_updates(value: int) -> bytes:
    return _i32_frame(C_RECEIVE_UPDATES, value)


def set_away_message(text: str) -> bytes:
    return frame(C_SET_AWAY_MESSAGE, message_payload(text, ""))


def toggle_block_dms(flag: bool | int) -> bytes:
    return _i32_frame(C_TOGGLE_BLOCK_DMS, int(flag))


def error_report(text: str) -> bytes:
    return _str_frame(C_ERROR_REPORT, text)


# --- spectating (for later test modules) ---
def start_spectating(host_id: int) -> bytes:
    return _i32_frame(C_START_SPECTATING, host_id)


def stop_spectating() -> bytes:
    return frame(C_STOP_SPECTATING)


def cant_spectate() -> bytes:
    return frame(C_CANT_SPECTATE)


def spectate_frames(bundle: ReplayFrameBundle, io: Any = IO) -> bytes:
    # chio's frame-bundle writer is direction-free: the client sends the same payload (vector C17)
    (_, payload), = list(io.write_spectate_frames(bundle))
    return frame(C_SPECTATE_FRAMES, payload)


# --- lobby and multiplayer (for later test modules) ---
def lobby_join() -> bytes:
    return frame(C_JOIN_LOBBY)


def lobby_part() -> bytes:
    return frame(C_PART_LOBBY)


def match_payload(match: Match, io: Any = IO) -> bytes:
    return io.write_match(match)


def match_create(match: Match, io: Any = IO) -> bytes:
    return frame(C_CREATE_MATCH, match_payload(match, io))


def match_join(match_id: int, password: str = "") -> bytes:
    def w(s: cio.MemoryStream) -> None:
        cio.write_s32(s, match_id)
        cio.write_string(s, password)

    return frame(C_JOIN_MATCH, _payload(w))


def match_part() -> bytes:
    return frame(C_PART_MATCH)


def match_change_slot(slot: int) -> bytes:
    return _i32_frame(C_MATCH_CHANGE_SLOT, slot)


def match_ready() -> bytes:
    return frame(C_MATCH_READY)


def match_not_ready() -> bytes:
    return frame(C_MATCH_NOT_READY)


def match_lock(slot: int) -> bytes:
    return _i32_frame(C_MATCH_LOCK, slot)


def match_change_settings(match: Match, io: Any = IO) -> bytes:
    return frame(C_MATCH_CHANGE_SETTINGS, match_payload(match, io))


def match_change_password(match: Match) -> bytes:
    return frame(C_MATCH_CHANGE_PASSWORD, match_payload(match))


def match_start() -> bytes:
    return frame(C_MATCH_START)


def match_score_update(score: ScoreFrame, io: Any = IO) -> bytes:
    s = cio.MemoryStream()
    io.write_score_frame(s, score)
    return frame(C_MATCH_SCORE_UPDATE, s.data)


def match_complete() -> bytes:
    return frame(C_MATCH_COMPLETE)


def match_change_mods(mods: int) -> bytes:
    return _i32_frame(C_MATCH_CHANGE_MODS, mods)


def match_load_complete() -> bytes:
    return frame(C_MATCH_LOAD_COMPLETE)


def match_no_beatmap() -> bytes:
    return frame(C_MATCH_NO_BEATMAP)


def match_has_beatmap() -> bytes:
    return frame(C_MATCH_HAS_BEATMAP)


def match_failed() -> bytes:
    return frame(C_MATCH_FAILED)


def match_skip_request() -> bytes:
    return frame(C_MATCH_SKIP_REQUEST)


def match_transfer_host(slot: int) -> bytes:
    return _i32_frame(C_MATCH_TRANSFER_HOST, slot)


def match_change_team() -> bytes:
    return frame(C_MATCH_CHANGE_TEAM)


def match_invite(user_id: int) -> bytes:
    return _i32_frame(C_MATCH_INVITE, user_id)


def tournament_match_info(match_id: int) -> bytes:
    return _i32_frame(C_TOURNAMENT_MATCH_INFO, match_id)


def tournament_join_match_channel(match_id: int) -> bytes:
    return _i32_frame(C_TOURNAMENT_JOIN_MATCH_CHANNEL, match_id)


def tournament_leave_match_channel(match_id: int) -> bytes:
    return _i32_frame(C_TOURNAMENT_LEAVE_MATCH_CHANNEL, match_id)


# ---------------------------------------------------------------------------------------------
# Login body
# ---------------------------------------------------------------------------------------------
def md5hex(text: str | bytes) -> str:
    if isinstance(text, str):
        text = text.encode()
    return hashlib.md5(text).hexdigest()


def default_hashes(seed: str) -> str:
    """A plausible, per-user ``client_hashes`` field (trailing colon included).

    Derived from ``seed`` (the username) so that different test users never share hardware
    (HWID verification would otherwise ban a pending account as a multi-account).
    """
    digest = hashlib.md5(seed.encode()).digest()
    macs = ["-".join(f"{b:02X}" for b in digest[i : i + 6]) for i in (0, 6)]
    adapters = ".".join(macs) + "."
    return ":".join(
        [
            md5hex("osu!.exe"),
            adapters,
            md5hex(adapters),
            md5hex("uninstall-" + seed),
            md5hex("disk-" + seed),
        ]
    ) + ":"


def login_body(
    username: str,
    password: str | None = None,
    version: str = DEFAULT_VERSION,
    utc_offset: int = 1,
    block_nonfriend_pm: bool = False,
    hashes: str | None = None,
    password_md5: str | None = None,
) -> bytes:
    pw = password_md5 if password_md5 is not None else md5hex(password or "")
    if hashes is None:
        hashes = default_hashes(username)
    client_info = f"{version}|{utc_offset}|1|{hashes}|{1 if block_nonfriend_pm else 0}"
    return f"{username}\n{pw}\n{client_info}\n".encode()


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LoginResult:
    user_id: int | None  # value of the first packet 5, None when absent
    token: str | None  # cho-token header
    packets: list[Packet]
    response: requests.Response

    def of(self, packet_id: int) -> list[Packet]:
        return of(self.packets, packet_id)

    def values(self, packet_id: int) -> list[Any]:
        return [p.value for p in of(self.packets, packet_id)]


class BanchoClient:
    """One simulated osu! client (one ``requests.Session``, keep-alive)."""

    def __init__(self, base_url: str, timeout: float = 10.0, build: int = MODERN_BUILD) -> None:
        #: the client build this client plays (a date, e.g. 20130816): its login version string
        #: and the chio codec (``self.io``) it reads and writes packets with
        self.build = build
        self.io: Any = client_io(build)
        self.base_url = base_url.rstrip("/") + "/"
        self.http = requests.Session()
        self.http.headers.update({"User-Agent": "osu!", "Accept-Encoding": "gzip"})
        self.timeout = timeout
        self.token: str | None = None
        self.user_id: int | None = None
        self.username: str | None = None
        self.received: list[Packet] = []  # every packet this client ever got, in order
        # packets not yet consumed by wait_for()/drain()/collect(): a packet that came back in the
        # reply to send() can still be waited for afterwards
        self.inbox: list[Packet] = []
        self.login_result: LoginResult | None = None
        self.logged_in_at = 0.0  # time.monotonic() when the last login answer arrived
        self.user: Any = None  # set by the fixtures (conftest.TestUser)
        self.last_response: requests.Response | None = None

    # --- HTTP ---
    def post(self, body: bytes, token: str | None = None, headers: dict | None = None) -> requests.Response:
        h = {}
        if token is not None:
            h["osu-token"] = token
        if headers:
            h.update(headers)
        resp = self.http.post(self.base_url, data=body, headers=h, timeout=self.timeout)
        self.last_response = resp
        return resp

    def login_raw(self, body: bytes, headers: dict | None = None) -> LoginResult:
        """POST an arbitrary login body (no osu-token) and decode the answer."""
        resp = self.post(body, headers=headers)
        assert resp.status_code == 200, f"login answered HTTP {resp.status_code}: {resp.text[:200]!r}"
        body = resp.content
        protocol = _protocol_in(body)
        if protocol is not None:  # the client adopts the protocol number of packet 75
            self.io = client_io(self.build, protocol)
        packets = decode_packets(body, self.io)
        self._record(packets)
        replies = of(packets, LOGIN_REPLY)
        user_id = replies[0].value if replies else None
        token = resp.headers.get("cho-token")
        self.token = token
        self.user_id = user_id if user_id is not None and user_id > 0 else None
        self.login_result = LoginResult(user_id, token, packets, resp)
        self.logged_in_at = time.monotonic()
        return self.login_result

    def login(
        self,
        username: str,
        password: str = "password",
        version: str | None = None,
        utc_offset: int = 1,
        block_nonfriend_pm: bool = False,
        hashes: str | None = None,
        headers: dict | None = None,
    ) -> LoginResult:
        if version is None:
            version = DEFAULT_VERSION if self.build == MODERN_BUILD else f"b{self.build}"
        body = login_body(username, password, version, utc_offset, block_nonfriend_pm, hashes)
        result = self.login_raw(body, headers=headers)
        if result.user_id is not None and result.user_id > 0:
            self.username = username
        return result

    def send_raw(self, body: bytes, token: str | None = None) -> list[Packet]:
        """POST ``body`` with ``osu-token`` (the client's token unless given) and decode the answer."""
        tok = token if token is not None else self.token
        assert tok is not None, "not logged in (no token)"
        resp = self.post(body, token=tok)
        assert resp.status_code == 200, f"poll answered HTTP {resp.status_code}: {resp.text[:200]!r}"
        packets = decode_packets(resp.content, self.io)
        self._record(packets)
        return packets

    def _record(self, packets: list[Packet]) -> None:
        self.received.extend(packets)
        self.inbox.extend(packets)

    def send(self, *frames: bytes) -> list[Packet]:
        return self.send_raw(b"".join(frames))

    def poll(self) -> list[Packet]:
        return self.send(ping())

    def drain(self, rounds: int = 2, pause: float = 0.05) -> list[Packet]:
        """Poll a few times and return everything received by these polls.

        Empties the server-side queue and the local inbox (nothing before this point can satisfy a
        later ``wait_for``).
        """
        out: list[Packet] = []
        for i in range(rounds):
            if i:
                time.sleep(pause)
            out.extend(self.poll())
        self.inbox.clear()
        return out

    @staticmethod
    def of(packets: Iterable[Packet], packet_id: int) -> list[Packet]:
        """The packets with this id, in order (same as the module function ``of``)."""
        return of(packets, packet_id)

    def close(self) -> None:
        self.http.close()

    def __repr__(self) -> str:
        return f"<BanchoClient {self.username!r} id={self.user_id}>"


def _protocol_in(body: bytes) -> int | None:
    """The i32 of the first packet 75 in a response body, or None (frames read with chio)."""
    stream = cio.MemoryStream(body)
    while stream.available() >= 7:
        packet_id = cio.read_u16(stream)
        cio.read_u8(stream)
        length = cio.read_u32(stream)
        if length > stream.available():
            return None
        payload = stream.read(length)
        if packet_id == PROTOCOL_VERSION and length >= 4:
            return cio.read_s32(cio.MemoryStream(payload))
    return None


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def of(packets: Iterable[Packet], packet_id: int) -> list[Packet]:
    """The packets with this id, in order."""
    return [p for p in packets if p.id == packet_id]


def values(packets: Iterable[Packet], packet_id: int) -> list[Any]:
    return [p.value for p in packets if p.id == packet_id]


def ids(packets: Iterable[Packet]) -> list[int]:
    return [p.id for p in packets]


def is_message(p: Packet, *, sender: str | None = None, content: str | None = None, target: str | None = None,
               sender_id: int | None = None, packet_id: int = SEND_MESSAGE) -> bool:
    if p.id != packet_id:
        return False
    m = p.value
    return (
        (sender is None or m.sender == sender)
        and (content is None or m.content == content)
        and (target is None or m.target == target)
        and (sender_id is None or m.sender_id == sender_id)
    )


def wait_for(
    client: BanchoClient,
    predicate: Callable[[Packet], bool],
    timeout: float = 5.0,
    interval: float = 0.05,
    description: str = "",
) -> Packet:
    """Return the first unconsumed packet matching ``predicate``, polling until one arrives.

    Looks first at the client's inbox (packets already received, e.g. in the reply to a
    ``send``, and not yet consumed), then polls. The matching packet is removed from the inbox;
    everything stays in ``client.received``. Fails the test after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    first = True
    while True:
        for i, p in enumerate(client.inbox):
            if predicate(p):
                del client.inbox[i]
                return p
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{client!r}: no packet matching {description or predicate} within {timeout}s; "
                f"unconsumed: {client.inbox!r}"
            )
        if not first:
            time.sleep(interval)
        first = False
        client.poll()


def wait_for_id(client: BanchoClient, packet_id: int, timeout: float = 5.0, **kw) -> Packet:
    return wait_for(client, lambda p: p.id == packet_id, timeout=timeout, description=f"id {packet_id}", **kw)


def collect(client: BanchoClient, duration: float = 0.5, interval: float = 0.1) -> list[Packet]:
    """Poll for ``duration`` seconds; return every packet received (the inbox is emptied)."""
    out: list[Packet] = []
    deadline = time.monotonic() + duration
    while True:
        out.extend(client.poll())
        if time.monotonic() >= deadline:
            client.inbox.clear()
            return out
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Multiplayer and spectating helpers (multiplayer issue): match structs, score frames, frame
# bundles, and a raw look at the match password field
# ---------------------------------------------------------------------------------------------
def make_match(
    name: str = "m",
    password: str = "",
    beatmap_id: int = 100,
    beatmap_md5: str = "aaa",
    beatmap_name: str = "Artist - Song [Diff]",
    mode: int = 0,
    open_slots: int = 7,
    host_id: int = 0,
    mods: int = 0,
    freemod: bool = False,
    team_type: int = 0,
    scoring_type: int = 0,
    in_progress: bool = False,
    seed: int = 0,
    slot_statuses: Iterable[int] | None = None,
) -> Match:
    """A chio Match as the create dialog sends it (docs/rules.md §5 common setup): slot 0 the
    creator (NotReady, ``host_id``), slots 1..``open_slots`` Open, the rest Locked. Pass
    ``slot_statuses`` (16 values) to send arbitrary statuses (players get ``host_id``)."""
    from chio.constants import ScoringType, SlotStatus, TeamType
    from chio.types import MatchSlot

    if slot_statuses is None:
        statuses = [4] + [1 if i <= open_slots else 2 for i in range(1, 16)]
    else:
        statuses = list(slot_statuses)
    slots = [MatchSlot(user_id=host_id if s & 124 else -1, status=SlotStatus(s)) for s in statuses]
    return Match(
        id=0, in_progress=in_progress, mods=Mods(mods), name=name, password=password,
        beatmap_text=beatmap_name, beatmap_id=beatmap_id, beatmap_checksum=beatmap_md5, slots=slots,
        host_id=host_id, mode=Mode(mode), scoring_type=ScoringType(scoring_type),
        team_type=TeamType(team_type), freemod=freemod, seed=seed,
    )


def settings_from(match: Match, **changes: Any) -> Match:
    """A copy of a decoded match with some fields changed, for 41/90 (what the host's client
    sends: its current view plus the edit). ``mods`` and ``mode`` may be given as ints."""
    import copy

    new = copy.deepcopy(match)
    for key, value in changes.items():
        if key == "mods":
            value = Mods(value)
        elif key == "mode":
            value = Mode(value)
        elif key == "team_type":
            from chio.constants import TeamType

            value = TeamType(value)
        elif key == "scoring_type":
            from chio.constants import ScoringType

            value = ScoringType(value)
        setattr(new, key, value)
    return new


def match_wire_password(packet: Packet) -> str | None:
    """The password field of a match packet (26/27/36/46) as sent: None for ``00`` (absent),
    the string otherwise ("" for the lobby's empty-but-present ``0b 00``). chio's reader maps
    both forms to "", so read the raw payload."""
    s = cio.MemoryStream(packet.raw)
    cio.read_u16(s)  # id
    cio.read_u8(s)  # in progress
    cio.read_u8(s)  # type
    cio.read_u32(s)  # mods
    cio.read_string(s)  # name
    marker = s.read(1)
    if marker == b"\x00":
        return None
    if marker != b"\x0b":
        raise PacketDecodeError(f"bad string marker {marker!r} in match password")
    length = cio.read_uleb128(s)
    return s.read(length).decode()


def slot_statuses(match: Match) -> list[int]:
    return [int(slot.status) for slot in match.slots]


def slot_of(match: Match, user_id: int) -> int | None:
    """Index of the slot whose (occupied) user is ``user_id``."""
    for i, slot in enumerate(match.slots):
        if slot.has_player and slot.user_id == user_id:
            return i
    return None


def score_frame(score: int = 1000, hp: int = 200, time_ms: int = 1234, slot_id: int = 0,
                scorev2: bool = False) -> ScoreFrame:
    return ScoreFrame(
        time=time_ms, id=slot_id, total_300=10, total_100=2, total_50=1, total_geki=3, total_katu=1,
        total_miss=0, total_score=score, max_combo=12, current_combo=12, perfect=True, hp=hp, tag_byte=0,
        using_scorev2=scorev2, combo_portion=0.5 if scorev2 else 0.0, bonus_portion=0.25 if scorev2 else 0.0,
    )


def score_frame_payload(frame: ScoreFrame, io: Any = IO) -> bytes:
    s = cio.MemoryStream()
    io.write_score_frame(s, frame)
    return s.data


def replay_bundle(seed: int = 1, frames: int = 3, with_score: bool = True) -> ReplayFrameBundle:
    """A plausible spectator frame bundle (docs/protocol.md §4.8)."""
    from chio.constants import ButtonState, ReplayAction
    from chio.types import ReplayFrame

    items = [
        ReplayFrame(button_state=ButtonState(i % 4), legacy_byte=0, mouse_x=10.0 * i + seed,
                    mouse_y=20.0 * i, time=1000 * seed + 16 * i)
        for i in range(frames)
    ]
    return ReplayFrameBundle(action=ReplayAction.Standard, frames=items,
                             frame=score_frame(score=seed * 100) if with_score else None,
                             extra=seed, sequence=seed)


def spectate_frames_payload(bundle: ReplayFrameBundle, io: Any = IO) -> bytes:
    (_, payload), = list(io.write_spectate_frames(bundle))
    return payload
