"""Bancho packet codec (osu! stable, protocol 19, builds b2014xxxx-b2025xxxx).

Everything here is pure and I/O free: functions take Python values and return the
bytes of one framed packet, or take the payload of one client packet and return
Python values.  The wire format is described in ``docs/protocol.md`` (sections 2
"Framing", 3 "Enumerations", 4 "Structures" and 6 "Packet catalogue"); section numbers
below refer to that page.

The module is written in Cython *pure Python mode*: the same source runs
interpreted and is compiled by ``setup.py`` (``python3 setup.py build_ext --inplace``)
into ``helpers/codec.*.so``, which Python imports in preference to this file.  When
Cython is not installed at all a tiny shim stands in for the ``cython`` module.

Compatibility contract
----------------------
Every writer produces exactly the bytes chio 1.1.21 produces for
``chio.select_client(20250306)`` (``io.write_packet_to_bytes``), including chio's
quirks, except for the few deviations listed in ``tests/test_codec.py``.  In
particular, like chio, **integer arguments are clamped to the range of the wire
type chio uses** (e.g. ``pp`` to 0..65535, a user count to -32768..32767, a u32
field to 0..4294967295); they never raise OverflowError.  Non-integers given for
integer fields raise TypeError, non-numbers for float fields TypeError (or
``struct.error`` in the interpreted form).  Slot indices outside 0..15 raise
ValueError.  Strings are encoded as UTF-8 (lone surrogates become ``?``).

Readers never trust the input: anything short or malformed raises
:class:`PacketError` (a ValueError); trailing surplus bytes are ignored (section 2.1).
"""

import operator
import re
import struct

try:
    import cython
except ImportError:  # pragma: no cover - exercised by the tests with cython blocked
    # Cython is absent: provide the few names used at import time as no-ops.
    def _cython_passthrough(*args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):
            return args[0]  # used as a decorator: return the function/class itself
        return _cython_passthrough  # a type, or a decorator factory like exceptval(-1)

    class _CythonShim:
        compiled = False

        @staticmethod
        def cast(type_, value, *args, **kwargs):
            return value

        @staticmethod
        def declare(type_=None, value=None, **kwargs):
            return value

        def __getattr__(self, name):
            return _cython_passthrough

    cython = _CythonShim()


__all__ = [
    "PacketError", "MatchData", "Status", "uleb128", "string", "frame", "read_frames",
    "read_i32", "read_u32", "read_str", "read_message", "read_status", "read_i32_list",
    "read_join_match", "read_match",
    "login_reply", "message", "ping", "user_stats", "user_logout", "spectator_joined",
    "spectator_left", "spectate_frames", "version_update", "spectator_cant_spectate",
    "get_attention", "notification", "write_match", "match_update", "new_match",
    "match_dispose", "match_join_success", "match_join_fail", "fellow_spectator_joined",
    "fellow_spectator_left", "match_start", "match_score_update", "match_transfer_host",
    "match_all_players_loaded", "match_player_failed", "match_complete", "match_skip",
    "channel_join_success", "channel_info", "channel_kicked", "channel_info_autojoin",
    "privileges", "friends_list", "protocol_version", "main_menu_icon",
    "match_player_skipped", "user_presence", "restart", "match_invite", "channel_info_end",
    "match_change_password", "silence_end", "user_silenced", "user_presence_single",
    "presence_bundle", "dms_blocked", "user_quit_stats", "convert_score_frame",
    "convert_frame_bundle", "legacy_links", "target_silenced", "version_update_forced",
    "switch_server", "account_restricted", "rtx", "match_abort", "switch_tournament_server",
]

# Server packet ids (docs/protocol.md §6.2) from constants/packets.py, under the names used here.
from constants.packets import (  # noqa: E402
    S_LOGIN_REPLY as LOGIN_REPLY,
    S_SEND_MESSAGE as SEND_MESSAGE,
    S_PING as PING,
    S_USER_STATS as USER_STATS,
    S_USER_LOGOUT as USER_LOGOUT,
    S_SPECTATOR_JOINED as SPECTATOR_JOINED,
    S_SPECTATOR_LEFT as SPECTATOR_LEFT,
    S_SPECTATE_FRAMES as SPECTATE_FRAMES,
    S_VERSION_UPDATE as VERSION_UPDATE,
    S_SPECTATOR_CANT_SPECTATE as SPECTATOR_CANT_SPECTATE,
    S_GET_ATTENTION as GET_ATTENTION,
    S_NOTIFICATION as NOTIFICATION,
    S_UPDATE_MATCH as MATCH_UPDATE,
    S_NEW_MATCH as NEW_MATCH,
    S_DISPOSE_MATCH as MATCH_DISPOSE,
    S_MATCH_JOIN_SUCCESS as MATCH_JOIN_SUCCESS,
    S_MATCH_JOIN_FAIL as MATCH_JOIN_FAIL,
    S_FELLOW_SPECTATOR_JOINED as FELLOW_SPECTATOR_JOINED,
    S_FELLOW_SPECTATOR_LEFT as FELLOW_SPECTATOR_LEFT,
    S_MATCH_START as MATCH_START,
    S_MATCH_SCORE_UPDATE as MATCH_SCORE_UPDATE,
    S_MATCH_TRANSFER_HOST as MATCH_TRANSFER_HOST,
    S_MATCH_ALL_PLAYERS_LOADED as MATCH_ALL_PLAYERS_LOADED,
    S_MATCH_PLAYER_FAILED as MATCH_PLAYER_FAILED,
    S_MATCH_COMPLETE as MATCH_COMPLETE,
    S_MATCH_SKIP as MATCH_SKIP,
    S_CHANNEL_JOIN_SUCCESS as CHANNEL_JOIN_SUCCESS,
    S_CHANNEL_INFO as CHANNEL_INFO,
    S_CHANNEL_KICKED as CHANNEL_KICKED,
    S_CHANNEL_AUTO_JOIN as CHANNEL_INFO_AUTOJOIN,
    S_PRIVILEGES as PRIVILEGES,
    S_FRIENDS_LIST as FRIENDS_LIST,
    S_PROTOCOL_VERSION as PROTOCOL_VERSION,
    S_MAIN_MENU_ICON as MAIN_MENU_ICON,
    S_MATCH_PLAYER_SKIPPED as MATCH_PLAYER_SKIPPED,
    S_USER_PRESENCE as USER_PRESENCE,
    S_RESTART as RESTART,
    S_MATCH_INVITE as MATCH_INVITE,
    S_CHANNEL_INFO_END as CHANNEL_INFO_END,
    S_MATCH_CHANGE_PASSWORD as MATCH_CHANGE_PASSWORD,
    S_SILENCE_END as SILENCE_END,
    S_USER_SILENCED as USER_SILENCED,
    S_USER_PRESENCE_SINGLE as USER_PRESENCE_SINGLE,
    S_USER_PRESENCE_BUNDLE as USER_PRESENCE_BUNDLE,
    S_USER_DM_BLOCKED as USER_DMS_BLOCKED,
    S_TARGET_IS_SILENCED as TARGET_SILENCED,
    S_VERSION_UPDATE_FORCED as VERSION_UPDATE_FORCED,
    S_SWITCH_SERVER as SWITCH_SERVER,
    S_ACCOUNT_RESTRICTED as ACCOUNT_RESTRICTED,
    S_RTX as RTX,
    S_MATCH_ABORT as MATCH_ABORT,
    S_SWITCH_TOURNAMENT_SERVER as SWITCH_TOURNAMENT_SERVER,
)

HEADER_SIZE = 7  # u16 id, u8 compression, u32 length (section 2.1)
SLOTS = 16  # protocol 19 matches always have 16 slots (sections 4.6, 9.2)
HAS_PLAYER = 0x7C  # NotReady|Ready|NoMap|Playing|Complete (section 3.6)

# C-level copies of the constants above for the compiled form (plain globals otherwise).
_HDR = cython.declare(cython.Py_ssize_t, 7)
_NSLOTS = cython.declare(cython.int, 16)
_HASP = cython.declare(cython.int, 0x7C)
_FLT_MAX = cython.declare(cython.double, 3.4028234663852886e38)  # largest finite f32
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_F32_STRUCT = struct.Struct("<f")  # interpreted form only
_F32Bits = cython.union(f=cython.float, u=cython.uint)  # compiled form only


class PacketError(ValueError):
    """A client payload (or frame) is truncated or malformed."""


# --------------------------------------------------------------------------- helpers


@cython.cfunc
def _clamp(v, lo: cython.longlong, hi: cython.longlong) -> cython.longlong:
    """Clamp the Python integer ``v`` to ``lo..hi`` (chio's ``clamp``)."""
    x: cython.longlong
    if not isinstance(v, int):
        v = operator.index(v)
    try:
        x = v
    except OverflowError:  # compiled form only: beyond the C range
        return lo if v < 0 else hi
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@cython.cfunc
def _clamp_u64(v) -> cython.ulonglong:
    """Clamp the Python integer ``v`` to 0..2**64-1 (chio's ``write_u64``)."""
    x: cython.ulonglong
    if not isinstance(v, int):
        v = operator.index(v)
    if cython.compiled:
        try:
            x = v
        except OverflowError:  # negative or beyond 64 bits
            return 0 if v < 0 else _U64_MAX
        return x
    else:
        return 0 if v < 0 else min(v, _U64_MAX)


@cython.cfunc
def _utf8(s) -> bytes:
    """UTF-8 bytes of ``s``; unencodable lone surrogates become ``?``."""
    try:
        if type(s) is str:  # typed: a direct C call when compiled
            return cython.cast(str, s).encode("utf-8")
        return s.encode("utf-8")
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace")


@cython.cfunc
def _as_bytes(data) -> bytes:
    """``data`` as an exact ``bytes`` object (accepts any bytes-like object)."""
    if type(data) is bytes:
        return data
    return bytes(memoryview(data))


# --------------------------------------------------------------------------- writer


@cython.final
@cython.cclass
class _Writer:
    """Growable output buffer.  ``p`` aliases ``buf`` (a raw pointer when compiled)."""

    buf: bytearray
    p: cython.p_uchar
    n: cython.Py_ssize_t  # bytes used
    cap: cython.Py_ssize_t  # bytes allocated
    framed: cython.bint

    @cython.cfunc
    def reserve(self, k: cython.Py_ssize_t) -> cython.void:
        """Make room for ``k`` more bytes (re-acquiring the pointer after growth)."""
        if self.n + k > self.cap:
            grow: cython.Py_ssize_t = max(self.cap, self.n + k - self.cap)
            self.buf.extend(bytes(grow))
            self.cap += grow
            self.p = self.buf

    # -- raw stores: the value is already in range (or wraps as two's complement)
    @cython.cfunc
    def put8(self, x: cython.uint) -> cython.void:
        self.reserve(1)
        self.p[self.n] = x & 0xFF
        self.n += 1

    @cython.cfunc
    def put16(self, x: cython.uint) -> cython.void:
        self.reserve(2)
        i: cython.Py_ssize_t = self.n
        self.p[i] = x & 0xFF
        self.p[i + 1] = (x >> 8) & 0xFF
        self.n = i + 2

    @cython.cfunc
    def put32(self, x: cython.uint) -> cython.void:
        self.reserve(4)
        i: cython.Py_ssize_t = self.n
        self.p[i] = x & 0xFF
        self.p[i + 1] = (x >> 8) & 0xFF
        self.p[i + 2] = (x >> 16) & 0xFF
        self.p[i + 3] = (x >> 24) & 0xFF
        self.n = i + 4

    @cython.cfunc
    def put64(self, x: cython.ulonglong) -> cython.void:
        self.put32(x & 0xFFFFFFFF)
        self.put32((x >> 32) & 0xFFFFFFFF)

    @cython.cfunc
    def uleb(self, x: cython.Py_ssize_t) -> cython.void:
        """ULEB128 of a non-negative length (section 2.3)."""
        while x >= 0x80:
            self.put8((x & 0x7F) | 0x80)
            x >>= 7
        self.put8(x)

    # -- clamped stores of Python values (chio semantics)
    @cython.cfunc
    def u8(self, v) -> cython.void:
        self.put8(_clamp(v, 0, 0xFF))

    @cython.cfunc
    def boolean(self, v) -> cython.void:
        self.put8(1 if v else 0)

    @cython.cfunc
    def i16(self, v) -> cython.void:
        self.put16(_clamp(v, -0x8000, 0x7FFF))

    @cython.cfunc
    def u16(self, v) -> cython.void:
        self.put16(_clamp(v, 0, 0xFFFF))

    @cython.cfunc
    def i32(self, v) -> cython.void:
        self.put32(_clamp(v, -0x80000000, 0x7FFFFFFF))

    @cython.cfunc
    def u32(self, v) -> cython.void:
        self.put32(_clamp(v, 0, 0xFFFFFFFF))

    @cython.cfunc
    def u64(self, v) -> cython.void:
        self.put64(_clamp_u64(v))

    @cython.cfunc
    def f32(self, v) -> cython.void:
        """IEEE-754 single; OverflowError for finite values beyond the f32 range
        (what ``struct.pack('<f')`` and therefore chio do)."""
        if cython.compiled:
            d: cython.double = v
            bits: _F32Bits
            bits.f = d
            if (bits.f > _FLT_MAX or bits.f < -_FLT_MAX) and d - d == 0.0:
                raise OverflowError("float too large to pack with f format")
            self.put32(bits.u)
        else:
            self.put32(int.from_bytes(_F32_STRUCT.pack(v), "little"))

    @cython.cfunc
    def string(self, s) -> cython.void:
        """osu! string: ``00`` for ""/None, else ``0b``, ULEB128 byte length, UTF-8."""
        if not s:
            self.put8(0)
            return
        data: bytes = _utf8(s)
        self.put8(0x0B)
        self.uleb(len(data))
        self.blob(data)

    @cython.cfunc
    def blob(self, data: bytes) -> cython.void:
        """Append ``data`` verbatim."""
        k: cython.Py_ssize_t = len(data)
        i: cython.Py_ssize_t
        if k:
            self.reserve(k)
            if cython.compiled:
                src: cython.p_uchar = data
                dst: cython.p_uchar = self.p + self.n
                for i in range(k):
                    dst[i] = src[i]
            else:
                self.buf[self.n:self.n + k] = data
            self.n += k

    @cython.cfunc
    def finish(self) -> bytes:
        """Patch the frame length (if framed) and return the bytes written."""
        if self.framed:
            length: cython.Py_ssize_t = self.n - _HDR
            if length > 0xFFFFFFFF:
                raise ValueError("packet payload longer than 4 GiB")
            self.p[3] = length & 0xFF
            self.p[4] = (length >> 8) & 0xFF
            self.p[5] = (length >> 16) & 0xFF
            self.p[6] = (length >> 24) & 0xFF
        if cython.compiled:
            return self.p[:self.n]
        else:
            return bytes(self.buf[:self.n])


@cython.cfunc
def _writer(packet_id: cython.int, hint: cython.Py_ssize_t) -> _Writer:
    """A writer with room for ``hint`` payload bytes; ``packet_id < 0`` = no header."""
    w: _Writer = _Writer.__new__(_Writer)
    w.framed = packet_id >= 0
    w.cap = hint + _HDR if w.framed else hint
    w.buf = bytearray(w.cap)
    w.p = w.buf
    w.n = 0
    if w.framed:
        w.put16(packet_id)
        w.put8(0)  # compression flag, always 0 (section 2.1)
        w.put32(0)  # length, patched by finish()
    return w


@cython.cfunc
def _empty(packet_id: cython.int) -> bytes:
    return _writer(packet_id, 0).finish()


@cython.cfunc
def _int_packet(packet_id: cython.int, v, lo: cython.longlong, hi: cython.longlong) -> bytes:
    w: _Writer = _writer(packet_id, 4)
    w.put32(_clamp(v, lo, hi))
    return w.finish()


@cython.cfunc
def _str_packet(packet_id: cython.int, s) -> bytes:
    w: _Writer = _writer(packet_id, 32)
    w.string(s)
    return w.finish()


@cython.cfunc
def _message_packet(packet_id: cython.int, sender, content, target, sender_id,
                    layout=None) -> bytes:
    w: _Writer = _writer(packet_id, 64)
    w.string(sender)
    w.string(content)
    w.string(target)
    if layout is None or layout.message_sender_id:
        w.i32(sender_id)
    return w.finish()


@cython.cfunc
def _id_list_packet(packet_id: cython.int, ids) -> bytes:
    seq = ids if type(ids) is list or type(ids) is tuple else list(ids)
    count: cython.Py_ssize_t = min(len(seq), 0xFFFF)
    w: _Writer = _writer(packet_id, 2 + 4 * count)
    w.put16(count)
    i: cython.Py_ssize_t
    for i in range(count):
        w.i32(seq[i])
    return w.finish()


@cython.cfunc
def _slot(slot_id) -> cython.int:
    """Validate a match slot index (0..15)."""
    s: cython.longlong = _clamp(slot_id, -1, _NSLOTS)
    if s < 0 or s >= _NSLOTS:
        raise ValueError(f"slot index out of range 0..15: {slot_id!r}")
    return s


@cython.cfunc
def _sixteen(values, what: str) -> list:
    """``values`` as a list of exactly 16 entries (one per match slot)."""
    lst: list = values if type(values) is list else list(values)
    if len(lst) != _NSLOTS:
        raise ValueError(f"{what} must have exactly 16 entries, got {len(lst)}")
    return lst


# --------------------------------------------------------------------------- primitives


def uleb128(n) -> bytes:
    """ULEB128 encoding of the non-negative integer ``n`` (section 2.3).

    7 bits per byte, least significant group first, high bit set on every byte but
    the last: 0 -> ``00``, 127 -> ``7f``, 128 -> ``80 01``, 300 -> ``ac 02``.
    Raises ValueError for negative ``n``, TypeError for non-integers.
    """
    if not isinstance(n, int):
        n = operator.index(n)
    if n < 0:
        raise ValueError("uleb128 of a negative number")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def string(s) -> bytes:
    """The osu! string encoding of ``s`` (section 2.3).

    ``""`` (or None) -> ``00``; otherwise ``0b``, ULEB128(UTF-8 byte length), UTF-8
    bytes.  Lone surrogates are written as ``?``.
    """
    w: _Writer = _writer(-1, 16)
    w.string(s)
    return w.finish()


def frame(packet_id, payload) -> bytes:
    """Frame ``payload``: ``u16 packet_id, u8 0, u32 len(payload), payload`` (section 2.1).

    ``payload`` is any bytes-like object.  Raises ValueError if ``packet_id`` is not
    0..65535.
    """
    if not isinstance(packet_id, int):
        packet_id = operator.index(packet_id)
    if packet_id < 0 or packet_id > 0xFFFF:
        raise ValueError(f"packet id out of range 0..65535: {packet_id}")
    data: bytes = _as_bytes(payload)
    w: _Writer = _writer(packet_id, len(data))
    w.blob(data)
    return w.finish()


# --------------------------------------------------------------------------- reading


def read_frames(body, max_frames: cython.Py_ssize_t = 1024,
                max_payload: cython.Py_ssize_t = 1 << 20):
    """Split a stacked client request body into ``(packet_id, payload)`` frames (section 2.1).

    Frames are ``u16 id, u8 compression (ignored), u32 length, payload`` and are
    returned in order.  Reading stops at a frame whose declared length exceeds the
    remaining bytes (truncated tail).  A frame whose payload is longer than
    ``max_payload`` is skipped (not returned) and reading continues after it; so are
    frames beyond the first ``max_frames``.

    Returns ``(frames, problems)``: ``problems`` is 0 for a clean body, otherwise the
    number of skipped frames plus the number of bytes of an incomplete tail (any
    positive value means "something was dropped, log it").  Never raises for a
    bytes-like ``body`` (TypeError for anything else).
    """
    data: bytes = _as_bytes(body)
    p: cython.p_uchar = data
    n: cython.Py_ssize_t = len(data)
    pos: cython.Py_ssize_t = 0
    count: cython.Py_ssize_t = 0
    problems: cython.Py_ssize_t = 0
    packet_id: cython.uint
    length: cython.Py_ssize_t
    b3: cython.Py_ssize_t
    frames: list = []
    while n - pos >= _HDR:
        packet_id = p[pos] | (p[pos + 1] << 8)
        b3 = p[pos + 6]
        length = p[pos + 3] | (p[pos + 4] << 8) | (p[pos + 5] << 16) | (b3 << 24)
        if length > n - pos - _HDR:
            break  # truncated tail: counted below
        pos += _HDR
        if length > max_payload or count >= max_frames:
            problems += 1
        else:
            frames.append((packet_id, data[pos:pos + length]))
            count += 1
        pos += length
    problems += n - pos
    return frames, problems


@cython.final
@cython.cclass
class _Reader:
    """Bounds-checked little-endian cursor over one payload."""

    data: bytes
    p: cython.p_uchar
    pos: cython.Py_ssize_t
    end: cython.Py_ssize_t

    @cython.cfunc
    @cython.exceptval(-1)
    def need(self, k: cython.Py_ssize_t) -> cython.Py_ssize_t:
        """Consume ``k`` bytes and return their offset; PacketError if short."""
        i: cython.Py_ssize_t = self.pos
        if k > self.end - i:
            raise PacketError(f"payload truncated: need {k} bytes at offset {i}, "
                              f"have {self.end - i}")
        self.pos = i + k
        return i

    @cython.cfunc
    @cython.exceptval(-1)
    def u8(self) -> cython.int:
        return self.p[self.need(1)]

    @cython.cfunc
    @cython.exceptval(-1)
    def u16(self) -> cython.int:
        i: cython.Py_ssize_t = self.need(2)
        return self.p[i] | (self.p[i + 1] << 8)

    @cython.cfunc
    @cython.exceptval(-1)
    def u32(self) -> cython.longlong:
        i: cython.Py_ssize_t = self.need(4)
        b3: cython.longlong = self.p[i + 3]
        return self.p[i] | (self.p[i + 1] << 8) | (self.p[i + 2] << 16) | (b3 << 24)

    @cython.cfunc
    def i32(self) -> cython.int:
        v: cython.longlong = self.u32()
        if v >= 0x80000000:
            v -= 0x100000000
        return v

    @cython.cfunc
    @cython.exceptval(-1)
    def uleb(self) -> cython.Py_ssize_t:
        """A ULEB128 string length; PacketError if it exceeds the remaining bytes."""
        result: cython.ulonglong = 0
        shift: cython.int = 0
        chunk: cython.ulonglong
        b: cython.int
        remaining: cython.ulonglong
        while True:
            if shift > 56:
                raise PacketError("ULEB128 length prefix longer than 9 bytes")
            b = self.u8()
            chunk = b & 0x7F
            result |= chunk << shift
            if not (b & 0x80):
                break
            shift += 7
        remaining = self.end - self.pos
        if result > remaining:
            raise PacketError(f"string length {result} exceeds the remaining "
                              f"{remaining} bytes")
        return result

    @cython.cfunc
    def str_or_none(self):
        """osu! string (section 2.3): None for ``00``, text for ``0b`` ..."""
        marker: cython.int = self.u8()
        if marker == 0:
            return None
        if marker != 0x0B:
            raise PacketError(f"bad string marker 0x{marker:02x} at offset {self.pos - 1}")
        k: cython.Py_ssize_t = self.uleb()
        i: cython.Py_ssize_t = self.need(k)
        if k == 0:
            return ""
        return self.data[i:i + k].decode("utf-8", "replace")

    @cython.cfunc
    def string(self) -> str:
        """osu! string with ``00`` read as ""."""
        s = self.str_or_none()
        return "" if s is None else s


@cython.cfunc
def _reader(payload) -> _Reader:
    r: _Reader = _Reader.__new__(_Reader)
    r.data = _as_bytes(payload)
    r.p = r.data
    r.pos = 0
    r.end = len(r.data)
    return r


def read_i32(payload) -> int:
    """First 4 bytes of ``payload`` as a signed 32-bit integer (section 2.2).

    Used for the many ``i32`` client packets (2, 16, 38, 40, 51, 70, 73, 74, 79, 87,
    93, 98, 99, 108, 109).  Raises PacketError if the payload is shorter than 4 bytes.
    """
    return _reader(payload).i32()


def read_u32(payload) -> int:
    """First 4 bytes of ``payload`` as an unsigned 32-bit integer (section 2.2).

    Raises PacketError if the payload is shorter than 4 bytes.
    """
    return _reader(payload).u32()


def read_str(payload) -> str:
    """A payload consisting of one osu! string (client packets 20, 63, 78; section 2.3).

    ``00`` reads as "".  Invalid UTF-8 is replaced (U+FFFD).  Raises PacketError for
    a marker other than ``00``/``0b`` or a length beyond the payload.
    """
    return _reader(payload).string()


def read_message(payload, layout=None):
    """Message (packets 1, 25, 82; section 4.4): ``str sender, str content, str target,
    i32 sender_id``.

    Returns ``(sender, content, target, sender_id)``; sender/sender_id are what the
    client sent (unreliable).  Raises PacketError if short or malformed.  ``layout``
    (None = modern): builds before b20121225 send no ``sender_id`` (read as 0).
    """
    r: _Reader = _reader(payload)
    sender = r.string()
    content = r.string()
    target = r.string()
    if layout is not None and not layout.message_sender_id:
        return sender, content, target, 0
    return sender, content, target, r.i32()


class Status:
    """A status change as sent by the client (packet 0; section 4.1): ``action`` (u8),
    ``info_text``, ``beatmap_md5``, ``mods`` (u32), ``mode`` (u8), ``beatmap_id`` (i32); raw
    wire values, not validated.  Compares equal to another Status with the same fields;
    :meth:`as_tuple` gives them in this order."""

    __slots__ = ("action", "info_text", "beatmap_md5", "mods", "mode", "beatmap_id")

    def __init__(self, action, info_text, beatmap_md5, mods, mode, beatmap_id):
        self.action = action
        self.info_text = info_text
        self.beatmap_md5 = beatmap_md5
        self.mods = mods
        self.mode = mode
        self.beatmap_id = beatmap_id

    def as_tuple(self) -> tuple:
        """``(action, info_text, beatmap_md5, mods, mode, beatmap_id)``."""
        return (self.action, self.info_text, self.beatmap_md5, self.mods, self.mode, self.beatmap_id)

    def __eq__(self, other):
        if not isinstance(other, Status):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    __hash__ = None

    def __repr__(self):
        return "Status(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__) + ")"


def read_status(payload) -> Status:
    """Status (packet 0; section 4.1): ``u8 action, str info_text, str beatmap_md5,
    u32 mods, u8 mode, i32 beatmap_id``.

    Returns a :class:`Status` with the raw integer values (no enum validation).  Raises
    PacketError if short or malformed.
    """
    r: _Reader = _reader(payload)
    action = r.u8()
    text = r.string()
    md5 = r.string()
    mods = r.u32()
    mode = r.u8()
    return Status(action, text, md5, mods, mode, r.i32())


def read_i32_list(payload, limit: cython.Py_ssize_t = 256) -> list:
    """Integer list (packets 85, 97; section 2.4): ``u16 count, i32 x count``.

    Returns at most the first ``limit`` ids.  Raises PacketError if the payload holds
    fewer than ``count`` ids (``count * 4`` > remaining bytes).
    """
    r: _Reader = _reader(payload)
    count: cython.Py_ssize_t = r.u16()
    if count * 4 > r.end - r.pos:
        raise PacketError(f"id list announces {count} ids but only "
                          f"{r.end - r.pos} bytes follow")
    take: cython.Py_ssize_t = min(count, max(limit, 0))
    out: list = []
    i: cython.Py_ssize_t
    for i in range(take):
        out.append(r.i32())
    return out


def read_join_match(payload):
    """JoinMatch (packet 32; section 6.1): ``i32 match_id, str password``.

    Returns ``(match_id, password)`` (``00`` reads as "").  Raises PacketError if short
    or malformed.
    """
    r: _Reader = _reader(payload)
    match_id = r.i32()
    return match_id, r.string()


class MatchData:
    """A match struct as sent by the client (packets 31, 41, 90; section 4.6).

    Fields: ``match_id`` (u16), ``in_progress`` (bool), ``match_type``, ``mods`` (u32),
    ``name``, ``password`` (None when the wire had ``00``, "" for ``0b 00``),
    ``beatmap_name``, ``beatmap_id`` (i32), ``beatmap_md5``, ``slot_status`` /
    ``slot_team`` (16 ints each), ``slot_user_ids`` (16 entries: an int for slots whose
    ``status & 0x7C``, else None), ``host_id`` (i32), ``mode``, ``scoring_type``,
    ``team_type``, ``freemod`` (bool), ``slot_mods`` (16 ints, zeros without freemod)
    and ``seed`` (u32, as chio reads it).  Values are not validated beyond their wire
    types; take only host-editable fields from it (section 4.6).
    """

    __slots__ = ("match_id", "in_progress", "match_type", "mods", "name", "password",
                 "beatmap_name", "beatmap_id", "beatmap_md5", "slot_status", "slot_team",
                 "slot_user_ids", "host_id", "mode", "scoring_type", "team_type",
                 "freemod", "slot_mods", "seed")

    def __init__(self, match_id, in_progress, match_type, mods, name, password,
                 beatmap_name, beatmap_id, beatmap_md5, slot_status, slot_team,
                 slot_user_ids, host_id, mode, scoring_type, team_type, freemod,
                 slot_mods, seed):
        self.match_id = match_id
        self.in_progress = in_progress
        self.match_type = match_type
        self.mods = mods
        self.name = name
        self.password = password
        self.beatmap_name = beatmap_name
        self.beatmap_id = beatmap_id
        self.beatmap_md5 = beatmap_md5
        self.slot_status = slot_status
        self.slot_team = slot_team
        self.slot_user_ids = slot_user_ids
        self.host_id = host_id
        self.mode = mode
        self.scoring_type = scoring_type
        self.team_type = team_type
        self.freemod = freemod
        self.slot_mods = slot_mods
        self.seed = seed

    def as_tuple(self) -> tuple:
        """All fields in declaration order (the order of the constructor's arguments)."""
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if not isinstance(other, MatchData):
            return NotImplemented
        return self.as_tuple() == other.as_tuple()

    __hash__ = None

    def __repr__(self):
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"MatchData({fields})"


@cython.cfunc
def _match_fields(layout) -> tuple:
    """``(slots, freemod byte, per-slot mods, seed)`` of the match struct in ``layout``
    (None = modern: 16 slots and every field; helpers/layout.py for the older builds)."""
    if layout is None:
        return _NSLOTS, True, True, True
    return layout.slots, layout.match_freemod, layout.match_slot_mods, layout.match_seed


def read_match(payload, layout=None) -> MatchData:
    """Match struct (packets 31 create, 41 change settings, 90 change password; section 4.6).

    Streaming reader: ``u16 id, u8 in_progress, u8 type, u32 mods, str name,
    str password, str beatmap_name, i32 beatmap_id, str beatmap_md5, u8[16] status,
    u8[16] team, i32 user_id per slot with status & 0x7C, i32 host_id, u8 mode,
    u8 scoring_type, u8 team_type, u8 freemod, [u32[16] slot mods if freemod],
    u32 seed``.  Returns a :class:`MatchData`.  Raises PacketError if short or
    malformed.

    ``layout`` (None = modern): an older build's struct (8 slots before b20140528, no
    freemod byte before b20130118, no slot mods before b20130303, no seed before
    b20130418) is read and returned as 16 slots, the missing ones Locked (status 2,
    team 0, no user, mods 0); missing fields read as 0 / False.
    """
    nslots: cython.Py_ssize_t
    has_freemod: cython.bint
    has_slot_mods: cython.bint
    has_seed: cython.bint
    nslots, has_freemod, has_slot_mods, has_seed = _match_fields(layout)
    r: _Reader = _reader(payload)
    i: cython.Py_ssize_t
    match_id = r.u16()
    in_progress = r.u8() != 0
    match_type = r.u8()
    mods = r.u32()
    name = r.string()
    password = r.str_or_none()
    beatmap_name = r.string()
    beatmap_id = r.i32()
    beatmap_md5 = r.string()
    st: cython.int
    status: list = []
    occupied: cython.uint = 0
    for i in range(nslots):
        st = r.u8()
        status.append(st)
        if st & _HASP:
            occupied |= 1 << i
    team: list = []
    for i in range(nslots):
        team.append(r.u8())
    user_ids: list = []
    for i in range(nslots):
        user_ids.append(r.i32() if occupied & (1 << i) else None)
    host_id = r.i32()
    mode = r.u8()
    scoring_type = r.u8()
    team_type = r.u8()
    freemod: cython.bint = has_freemod and r.u8() != 0
    slot_mods: list = []
    for i in range(nslots):
        slot_mods.append(r.u32() if freemod and has_slot_mods else 0)
    seed = r.u32() if has_seed else 0
    for i in range(nslots, _NSLOTS):  # slots the layout lacks: Locked
        status.append(2)
        team.append(0)
        user_ids.append(None)
        slot_mods.append(0)
    return MatchData(match_id, in_progress, match_type, mods, name, password,
                     beatmap_name, beatmap_id, beatmap_md5, status, team, user_ids,
                     host_id, mode, scoring_type, team_type, freemod, slot_mods, seed)


# --------------------------------------------------------------------------- server packets


def login_reply(code) -> bytes:
    """LoginReply (packet 5; section 3.5): ``i32`` user id (> 0) or error code (< 0).

    Note chio turns ``LoginError.UserInactive`` (the enum member) into an
    announcement plus -1; this function always writes the number it is given.
    """
    return _int_packet(LOGIN_REPLY, code, -0x80000000, 0x7FFFFFFF)


def message(sender, content, target, sender_id, layout=None) -> bytes:
    """Chat message (packet 7; section 4.4): ``str sender, str content, str target,
    i32 sender_id``.  ``target`` is the channel name as the client knows it or, for a
    private message, the recipient's username.  ``layout`` (None = modern): builds before
    b20121225 get no ``sender_id``; builds before b20121212 get chat links as
    ``(text)[url]`` instead of ``[url text]`` (chio b282 / b20121212)."""
    if layout is not None and layout.legacy_links and content:
        content = legacy_links(content)
    return _message_packet(SEND_MESSAGE, sender, content, target, sender_id, layout)


_LINK = re.compile(r"\[(https?://[^\s\]]+)\s+((?:\[[^\[\]]*\]|[^\[\]])*)\]")  # one level of [] in the text


def legacy_links(text) -> str:
    """``text`` with every chat link ``[https://url text]`` rewritten ``(text)[https://url]``,
    the form of builds before b20121212."""
    return _LINK.sub(r"(\2)[\1]", str(text))


def ping() -> bytes:
    """Server ping (packet 8; section 6.2): empty payload."""
    return _empty(PING)


def user_stats(user_id, action, info_text, beatmap_md5, mods, mode, beatmap_id,
               ranked_score, accuracy, playcount, total_score, rank, pp, layout=None) -> bytes:
    """UserStats (packet 11; sections 4.1, 4.2).

    Layout (as chio writes it): ``i32 user_id, u8 action, str info_text,
    str beatmap_md5, u32 mods, u8 mode, i32 beatmap_id, u64 ranked_score,
    f32 accuracy (fraction 0..1), u32 playcount, u64 total_score, u32 rank,
    u16 pp``.  Every integer is clamped to its wire type, so ``pp`` > 65535 becomes
    65535 and a negative rank 0.  OverflowError only for a finite ``accuracy`` beyond
    the f32 range.

    ``layout`` (a :class:`helpers.layout.Layout`, None = modern): builds before b20250306
    read pp as ``i16``, so it is clamped to -32768..32767 there (chio's ``write_s16``):
    pp above 32767 arrives as 32767, never negative.
    """
    return _user_stats(USER_STATS, user_id, action, info_text, beatmap_md5, mods, mode,
                       beatmap_id, ranked_score, accuracy, playcount, total_score, rank, pp,
                       layout is None or layout.pp_unsigned)


def user_quit_stats(user_id, action, info_text, beatmap_md5, mods, mode, beatmap_id,
                    ranked_score, accuracy, playcount, total_score, rank, pp) -> bytes:
    """UserQuit (packet 12) as builds before b20121224 read it: the quitting user's stats
    struct (the layout of :func:`user_stats` with i16 pp) framed as 12 (chio b282)."""
    return _user_stats(USER_LOGOUT, user_id, action, info_text, beatmap_md5, mods, mode,
                       beatmap_id, ranked_score, accuracy, playcount, total_score, rank, pp, False)


@cython.cfunc
def _user_stats(packet_id: cython.int, user_id, action, info_text, beatmap_md5, mods, mode,
                beatmap_id, ranked_score, accuracy, playcount, total_score, rank, pp,
                pp_unsigned: cython.bint) -> bytes:
    w: _Writer = _writer(packet_id, 48 + 40)
    w.i32(user_id)
    w.u8(action)
    w.string(info_text)
    w.string(beatmap_md5)
    w.u32(mods)
    w.u8(mode)
    w.i32(beatmap_id)
    w.u64(ranked_score)
    w.f32(accuracy)
    w.u32(playcount)
    w.u64(total_score)
    w.u32(rank)
    if pp_unsigned:
        w.u16(pp)
    else:
        w.i16(pp)
    return w.finish()


def user_logout(user_id) -> bytes:
    """UserQuit (packet 12; section 4.10): ``i32 user_id, u8 quit_state`` (always 0)."""
    w: _Writer = _writer(USER_LOGOUT, 5)
    w.i32(user_id)
    w.put8(0)
    return w.finish()


def spectator_joined(user_id) -> bytes:
    """SpectatorJoined (packet 13): the spectator's user id, to the host.

    chio writes it as ``u32`` (negative ids clamp to 0), so do we."""
    return _int_packet(SPECTATOR_JOINED, user_id, 0, 0xFFFFFFFF)


def spectator_left(user_id) -> bytes:
    """SpectatorLeft (packet 14): the spectator's user id as ``u32`` (like chio)."""
    return _int_packet(SPECTATOR_LEFT, user_id, 0, 0xFFFFFFFF)


def spectate_frames(payload, layout=None, source=None, sequence=0) -> bytes:
    """SpectateFrames (packet 15; section 4.8): the client's packet-18 payload,
    re-framed unchanged (a ReplayFrameBundle; opaque to the server) when the host's layout
    ``source`` and the spectator's ``layout`` agree (None = modern), else re-laid out by
    :func:`convert_frame_bundle` (``sequence`` for a receiver that expects one the host did
    not send)."""
    if layout is not source:
        payload = convert_frame_bundle(payload, source, layout, sequence)
    return frame(SPECTATE_FRAMES, payload)


def version_update() -> bytes:
    """VersionUpdate (packet 19): empty payload, "check for updates"."""
    return _empty(VERSION_UPDATE)


def spectator_cant_spectate(user_id) -> bytes:
    """SpectatorCantSpectate (packet 22): the spectator lacking the map, ``u32`` like chio."""
    return _int_packet(SPECTATOR_CANT_SPECTATE, user_id, 0, 0xFFFFFFFF)


def get_attention() -> bytes:
    """GetAttention (packet 23): empty payload, flashes the client window."""
    return _empty(GET_ATTENTION)


def notification(text) -> bytes:
    """Announce / notification popup (packet 24): one ``str``."""
    return _str_packet(NOTIFICATION, text)


def write_match(packet_id, match: MatchData, layout=None) -> bytes:
    """One framed match struct (packets 26, 27, 36, 46; section 4.6), from a
    :class:`MatchData` (the record :func:`read_match` returns).

    Layout: ``u16 match_id, u8 in_progress, u8 match_type, u32 mods, str name,
    str password, str beatmap_name, i32 beatmap_id, str beatmap_md5,
    u8 status x 16, u8 team x 16, i32 user_id for each slot whose status & 0x7C,
    i32 host_id, u8 mode, u8 scoring_type, u8 team_type, u8 freemod,
    u32 slot_mods x 16 (only when freemod), u32 seed``.

    ``password``: None -> ``00`` (no password); "" -> ``0b 00`` (the lobby's "has a
    password" placeholder, which chio cannot produce); text -> normal string.
    ``slot_status``, ``slot_team`` and ``slot_user_ids`` must have 16 entries;
    ``slot_mods`` too when ``freemod`` is true (ignored, may be None, otherwise).
    User ids are written for exactly the slots whose (clamped) status has a 0x7C bit.
    Integers are clamped to their wire types.  Raises ValueError for a wrong list
    length or an occupied slot (of those written) whose user id is None.

    ``layout`` (a :class:`helpers.layout.Layout`, None = modern): only its first
    ``layout.slots`` slots are written (8 before b20140528); the freemod byte only from
    b20130118, the per-slot mods only from b20130303, the seed only from b20130418
    (chio's classes of those builds).
    """
    nslots: cython.Py_ssize_t
    has_freemod: cython.bint
    has_slot_mods: cython.bint
    has_seed: cython.bint
    nslots, has_freemod, has_slot_mods, has_seed = _match_fields(layout)
    statuses: list = _sixteen(match.slot_status, "slot_status")
    teams: list = _sixteen(match.slot_team, "slot_team")
    user_ids: list = _sixteen(match.slot_user_ids, "slot_user_ids")
    fm: cython.bint = bool(match.freemod) and has_freemod
    mods16: list = _sixteen(match.slot_mods, "slot_mods") if fm and has_slot_mods else None
    password = match.password
    i: cython.Py_ssize_t
    st: cython.longlong
    occupied: cython.uint = 0
    for i in range(nslots):
        st = _clamp(statuses[i], 0, 0xFF)
        if st & _HASP:
            if user_ids[i] is None:
                raise ValueError(f"slot {i} is occupied (status {st}) but its user id is None")
            occupied |= 1 << i

    w: _Writer = _writer(packet_id, 160 + (64 if fm else 0))
    w.u16(match.match_id)
    w.boolean(match.in_progress)
    w.u8(match.match_type)
    w.u32(match.mods)
    w.string(match.name)
    if password is None:
        w.put8(0)
    elif not password:
        w.put8(0x0B)
        w.put8(0)
    else:
        w.string(password)
    w.string(match.beatmap_name)
    w.i32(match.beatmap_id)
    w.string(match.beatmap_md5)
    for i in range(nslots):
        w.u8(statuses[i])
    for i in range(nslots):
        w.u8(teams[i])
    for i in range(nslots):
        if occupied & (1 << i):
            w.i32(user_ids[i])
    w.i32(match.host_id)
    w.u8(match.mode)
    w.u8(match.scoring_type)
    w.u8(match.team_type)
    if has_freemod:
        w.put8(fm)
    if mods16 is not None:
        for i in range(nslots):
            w.u32(mods16[i])
    if has_seed:
        w.u32(match.seed)
    return w.finish()


def match_update(match: MatchData, layout=None) -> bytes:
    """MatchUpdate (packet 26): ``write_match(26, match, layout)``."""
    return write_match(MATCH_UPDATE, match, layout)


def new_match(match: MatchData, layout=None) -> bytes:
    """NewMatch (packet 27, lobby): ``write_match(27, match, layout)``; a ``match.password``
    of "" shows a padlock without disclosing it, None means no password."""
    return write_match(NEW_MATCH, match, layout)


def match_join_success(match: MatchData, layout=None) -> bytes:
    """MatchJoinSuccess (packet 36): ``write_match(36, match, layout)`` with the real password."""
    return write_match(MATCH_JOIN_SUCCESS, match, layout)


def match_start(match: MatchData, layout=None) -> bytes:
    """MatchStart (packet 46): ``write_match(46, match, layout)``."""
    return write_match(MATCH_START, match, layout)


def match_dispose(match_id) -> bytes:
    """MatchDisband (packet 28): ``i32 match_id``, removes the match from the lobby."""
    return _int_packet(MATCH_DISPOSE, match_id, -0x80000000, 0x7FFFFFFF)


def match_join_fail() -> bytes:
    """MatchJoinFail (packet 37): empty payload."""
    return _empty(MATCH_JOIN_FAIL)


def fellow_spectator_joined(user_id) -> bytes:
    """FellowSpectatorJoined (packet 42): ``i32 user_id``."""
    return _int_packet(FELLOW_SPECTATOR_JOINED, user_id, -0x80000000, 0x7FFFFFFF)


def fellow_spectator_left(user_id) -> bytes:
    """FellowSpectatorLeft (packet 43): ``i32 user_id``."""
    return _int_packet(FELLOW_SPECTATOR_LEFT, user_id, -0x80000000, 0x7FFFFFFF)


def match_score_update(payload, slot_id, layout=None, source=None) -> bytes:
    """MatchScoreUpdate (packet 48; section 4.7): relay of a client 47 ScoreFrame.

    The payload is copied with byte offset 4 (the frame's slot id) replaced by
    ``slot_id``.  Raises PacketError if the payload is shorter than 5 bytes and
    ValueError if ``slot_id`` is not 0..15 (chio writes nothing then).

    ``source`` / ``layout``: the layouts of the sender and of the receiver (None = modern);
    when they differ the frame is re-laid out first (:func:`convert_score_frame`).
    """
    slot: cython.int = _slot(slot_id)
    data: bytes = _as_bytes(payload)
    if layout is not source:
        data = convert_score_frame(data, source, layout)
    if len(data) < 5:
        raise PacketError(f"score frame too short: {len(data)} bytes")
    w: _Writer = _writer(MATCH_SCORE_UPDATE, len(data))
    w.blob(data)
    w.p[_HDR + 4] = slot
    return w.finish()


def match_transfer_host() -> bytes:
    """MatchTransferHost (packet 50): empty payload, "you are the host now"."""
    return _empty(MATCH_TRANSFER_HOST)


def match_all_players_loaded() -> bytes:
    """MatchAllPlayersLoaded (packet 53): empty payload."""
    return _empty(MATCH_ALL_PLAYERS_LOADED)


def match_player_failed(slot_id) -> bytes:
    """MatchPlayerFailed (packet 57): ``i32 slot_id``.  ValueError unless 0..15."""
    return _int_packet(MATCH_PLAYER_FAILED, _slot(slot_id), 0, 15)


def match_complete() -> bytes:
    """MatchComplete (packet 58): empty payload."""
    return _empty(MATCH_COMPLETE)


def match_skip() -> bytes:
    """MatchSkip (packet 61): empty payload, everybody skipped."""
    return _empty(MATCH_SKIP)


def channel_join_success(name) -> bytes:
    """ChannelJoinSuccess (packet 64): ``str`` channel name; opens the tab."""
    return _str_packet(CHANNEL_JOIN_SUCCESS, name)


@cython.cfunc
def _channel(packet_id: cython.int, name, topic, user_count) -> bytes:
    w: _Writer = _writer(packet_id, 48)
    w.string(name)
    w.string(topic)
    w.i16(user_count)
    return w.finish()


def channel_info(name, topic, user_count) -> bytes:
    """ChannelAvailable (packet 65; section 4.5): ``str name, str topic, i16 user_count``.

    ``user_count`` is clamped to -32768..32767 (like chio)."""
    return _channel(CHANNEL_INFO, name, topic, user_count)


def channel_kicked(name) -> bytes:
    """ChannelRevoked (packet 66): ``str`` channel name; closes the tab."""
    return _str_packet(CHANNEL_KICKED, name)


def channel_info_autojoin(name, topic, user_count) -> bytes:
    """ChannelAvailableAutojoin (packet 67; section 4.5): same layout as 65."""
    return _channel(CHANNEL_INFO_AUTOJOIN, name, topic, user_count)


def privileges(value) -> bytes:
    """LoginPermissions (packet 71; section 3.4): ``i32`` client privilege bits."""
    return _int_packet(PRIVILEGES, value, -0x80000000, 0x7FFFFFFF)


def friends_list(ids) -> bytes:
    """FriendsList (packet 72; section 2.4): ``u16 count, i32 id x count``.

    At most 65535 ids are written (chio would write the clamped count but all ids)."""
    return _id_list_packet(FRIENDS_LIST, ids)


def protocol_version(v) -> bytes:
    """ProtocolNegotiation (packet 75; section 9.2): ``i32``, 19 for modern clients.

    (chio replaces 0 by its default 19; this writes 0 when asked to.)"""
    return _int_packet(PROTOCOL_VERSION, v, -0x80000000, 0x7FFFFFFF)


def main_menu_icon(text, layout=None) -> bytes:
    """TitleUpdate / main menu icon (packet 76): one ``str``, ``"image_url|click_url"``.

    ``layout`` (None = modern): builds before b20121221 take the image URL alone (the part
    before ``|``); b"" (nothing to send) when it is empty (chio b1820)."""
    if layout is not None and not layout.title_pair:
        image = str(text or "").split("|", 1)[0]
        return _str_packet(MAIN_MENU_ICON, image) if image else b""
    return _str_packet(MAIN_MENU_ICON, text)


def match_player_skipped(slot_id) -> bytes:
    """MatchPlayerSkipped (packet 81; section 6.3): slot index, ``u32`` like chio.

    ValueError unless 0..15 (chio writes nothing then)."""
    return _int_packet(MATCH_PLAYER_SKIPPED, _slot(slot_id), 0, 15)


def user_presence(user_id, username, utc_offset, country_index, client_privileges,
                  mode, longitude, latitude, rank) -> bytes:
    """UserPresence (packet 83; section 4.3), chio's 30-byte-plus-name form.

    Layout: ``i32 user_id, str username, u8 utc_offset+24, u8 country_index,
    u8 client_privileges | mode << 5, f32 longitude, f32 latitude, i32 rank,
    u8 mode`` -- the trailing mode byte is chio's (clients ignore it).  ``utc_offset``
    is in hours; the u8 fields are clamped to 0..255 after the arithmetic (like
    chio).  OverflowError only for finite coordinates beyond the f32 range.
    """
    w: _Writer = _writer(USER_PRESENCE, 40)
    w.i32(user_id)
    w.string(username)
    w.u8(utc_offset + 24)
    w.u8(country_index)
    w.u8(client_privileges | (mode << 5))
    w.f32(longitude)
    w.f32(latitude)
    w.i32(rank)
    w.u8(mode)
    return w.finish()


def restart(ms) -> bytes:
    """Restart (packet 86; section 6.3): reconnect after ``ms`` milliseconds, written
    as ``u32`` like chio (negative values clamp to 0)."""
    return _int_packet(RESTART, ms, 0, 0xFFFFFFFF)


def match_invite(sender, content, target, sender_id, layout=None) -> bytes:
    """Invite (packet 88; sections 4.4, 6.3): Message layout, sender = inviter,
    target = invitee's username."""
    return _message_packet(MATCH_INVITE, sender, content, target, sender_id, layout)


def channel_info_end() -> bytes:
    """ChannelInfoComplete (packet 89): empty payload (not pep.py's 4 zero bytes)."""
    return _empty(CHANNEL_INFO_END)


def match_change_password(password) -> bytes:
    """MatchChangePassword (packet 91): one ``str``, the new password ("" -> ``00``)."""
    return _str_packet(MATCH_CHANGE_PASSWORD, password)


def silence_end(seconds) -> bytes:
    """SilenceInfo (packet 92; section 6.3): ``i32`` seconds of silence left (0 = none)."""
    return _int_packet(SILENCE_END, seconds, -0x80000000, 0x7FFFFFFF)


def user_silenced(user_id) -> bytes:
    """UserSilenced (packet 94): ``i32 user_id``."""
    return _int_packet(USER_SILENCED, user_id, -0x80000000, 0x7FFFFFFF)


def user_presence_single(user_id) -> bytes:
    """UserPresenceSingle (packet 95): ``i32 user_id``, "this user is online"."""
    return _int_packet(USER_PRESENCE_SINGLE, user_id, -0x80000000, 0x7FFFFFFF)


def presence_bundle(ids) -> bytes:
    """UserPresenceBundle (packet 96; section 2.4): ``u16 count, i32 id x count``
    (at most 65535 ids)."""
    return _id_list_packet(USER_PRESENCE_BUNDLE, ids)


def dms_blocked(target, layout=None) -> bytes:
    """UserDmsBlocked (packet 100; section 6.3): Message with empty sender and
    content, ``target`` = the user whose DMs are blocked, sender_id -1 (chio)."""
    return _message_packet(USER_DMS_BLOCKED, "", "", target, -1, layout)


def target_silenced(target, layout=None) -> bytes:
    """TargetIsSilenced (packet 101; section 6.3): Message with empty sender and
    content, ``target`` = the silenced user, sender_id -1 (chio)."""
    return _message_packet(TARGET_SILENCED, "", "", target, -1, layout)


def version_update_forced() -> bytes:
    """VersionUpdateForced (packet 102): empty payload; the client must update."""
    return _empty(VERSION_UPDATE_FORCED)


def switch_server(seconds) -> bytes:
    """SwitchServer (packet 103): ``i32`` idle seconds before switching."""
    return _int_packet(SWITCH_SERVER, seconds, -0x80000000, 0x7FFFFFFF)


def account_restricted() -> bytes:
    """AccountRestricted (packet 104): empty payload."""
    return _empty(ACCOUNT_RESTRICTED)


def rtx(text) -> bytes:
    """RTX (packet 105): one ``str``."""
    return _str_packet(RTX, text)


def match_abort() -> bytes:
    """MatchAbort (packet 106): empty payload."""
    return _empty(MATCH_ABORT)


def switch_tournament_server(address) -> bytes:
    """SwitchTournamentServer (packet 107): one ``str`` host/IP (tourney clients)."""
    return _str_packet(SWITCH_TOURNAMENT_SERVER, address)


# --------------------------------------------------------------------------- relayed frames

#: bytes of a score frame up to and including ``tag_byte`` (every layout; section 4.7)
SCORE_FRAME_BASE = 28
#: bytes of one replay frame inside a bundle (u8 buttons, u8 legacy, f32 x, f32 y, i32 time)
REPLAY_FRAME_SIZE = 14


def convert_score_frame(payload, source, target) -> bytes:
    """A client score frame (packet 47 payload, or the tail of a bundle) re-laid out from
    layout ``source`` to layout ``target`` (None = modern for either).

    Builds before b20151106 have 28 bytes; newer ones add ``bool using_scorev2`` and, when it
    is set, ``f64 combo_portion, f64 bonus_portion`` (chio b20151106).  Old -> new appends the
    flag 0; new -> old drops the tail.  The bytes are returned unchanged when both layouts
    agree.  A 28-byte frame from a score-v2 layout counts as flag 0 (what the server has always
    relayed).  Raises PacketError if the payload is shorter than 28 bytes.
    """
    data: bytes = _as_bytes(payload)
    src_v2 = source is None or source.score_v2
    dst_v2 = target is None or target.score_v2
    if len(data) < SCORE_FRAME_BASE:
        raise PacketError(f"score frame too short: {len(data)} bytes")
    if src_v2 == dst_v2:
        return data
    if dst_v2:
        return data[:SCORE_FRAME_BASE] + b"\x00"
    return data[:SCORE_FRAME_BASE]


def _score_frame_length(data: bytes, pos, end, v2) -> int:
    """Length of the score frame at ``pos`` of ``data`` (which ends at ``end``, before a
    bundle's sequence) in a layout with/without score v2."""
    if not v2:
        return SCORE_FRAME_BASE
    if end - pos < SCORE_FRAME_BASE + 1:
        raise PacketError("score frame truncated")
    return SCORE_FRAME_BASE + 1 + (16 if data[pos + SCORE_FRAME_BASE] else 0)


def convert_frame_bundle(payload, source, target, sequence=0) -> bytes:
    """A spectator frame bundle (packet 18 payload) re-laid out from layout ``source`` to
    layout ``target`` (None = modern for either) for relaying as packet 15.

    Layout (chio b20130418, b20160404): ``[i32 extra]`` (b20130418+), ``u16 count``,
    ``count`` replay frames of 14 bytes, ``u8 action``, an optional score frame (see
    :func:`convert_score_frame`), ``[u16 sequence]`` (b20160404+).  A missing ``extra`` is
    written as 0 and a missing ``sequence`` as ``sequence`` (the relaying host's counter).
    The bytes are returned unchanged when both layouts agree on all three fields.  Raises
    PacketError if the payload is shorter than its layout requires.
    """
    data: bytes = _as_bytes(payload)
    src_extra = source is None or source.frames_extra
    src_seq = source is None or source.frames_sequence
    src_v2 = source is None or source.score_v2
    dst_extra = target is None or target.frames_extra
    dst_seq = target is None or target.frames_sequence
    if (src_extra, src_seq, src_v2) == (dst_extra, dst_seq, target is None or target.score_v2):
        return data
    pos = 4 if src_extra else 0
    end = len(data) - (2 if src_seq else 0)
    if end < pos + 3:
        raise PacketError(f"frame bundle too short: {len(data)} bytes")
    count = data[pos] | (data[pos + 1] << 8)
    body_end = pos + 2 + count * REPLAY_FRAME_SIZE + 1  # frames and the action byte
    if body_end > end:
        raise PacketError(f"frame bundle announces {count} frames in {len(data)} bytes")
    out = bytearray()
    if dst_extra:
        out += data[:4] if src_extra else b"\x00\x00\x00\x00"
    out += data[pos:body_end]
    if end > body_end:  # a score frame follows
        length = _score_frame_length(data, body_end, end, src_v2)
        if body_end + length > end:
            raise PacketError("score frame in the bundle truncated")
        out += convert_score_frame(data[body_end:body_end + length], source, target)
    if dst_seq:  # the source has none: every layout with a sequence has every other field too
        out += struct.pack("<H", sequence & 0xFFFF)
    return bytes(out)
