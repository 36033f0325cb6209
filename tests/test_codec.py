"""Tests of the packet codec ``helpers/codec.py`` (compiled and interpreted forms).

Every test runs against each form in ``tests/codec_forms.py`` that this checkout has
(``codec_forms.available``): the compiled Cython extension (built by ``scripts/setup.sh`` or
``python3 setup.py build_ext --inplace``), the interpreted ``.py`` loaded under another module
name, and the ``.py`` without Cython installed (built-in shim); without a build, the ``.py``
imported as ``helpers.codec`` takes the compiled form's place.

Reference: chio 1.1.21, ``chio.select_client(20250306)``.  Server packets must be
byte-identical to ``io.write_packet_to_bytes``; client payloads built with chio's
primitive writers must decode to what ``io.read_packet_from_bytes`` returns.

Known, deliberate differences from chio (everything else is byte-for-byte):

1. Match password "" (packets 26/27/36/46) is written ``0b 00`` - the lobby's "has a
   password" placeholder (docs/protocol.md §4.6), which chio's writer cannot produce (chio
   writes ``00`` for ""); our ``None`` is chio's "" (``00``).  Reading: ``00`` -> None,
   ``0b 00`` -> "" (chio returns "" for both).
2. ``write_match`` requires exactly 16 entries per slot list (chio pads with Locked
   slots / truncates) and raises ValueError for an occupied slot whose user id is None
   (chio would write its default -1).  Whether a slot carries a user id is decided from
   the *clamped* status byte that is written; chio uses the unclamped value, which can
   desynchronise for statuses outside 0..255 (we only compare inside 0..255).
3. Slot-index packets 48/57/81 raise ValueError for slots outside 0..15 (chio silently
   writes nothing for >= 16, and for negative slots writes -n (57) or 0 (81)).
4. Lists 72/96 longer than 65535 ids: we write count 65535 and the first 65535 ids; chio
   writes the clamped count followed by *all* ids (a corrupt packet).
5. ``protocol_version(0)`` writes 0; chio substitutes its default 19 for 0.
6. ``login_reply`` takes an int; chio special-cases the enum member
   ``LoginError.UserInactive`` (announcement + -1).  The int -4 is written as -4 by both.
7. ``user_presence`` writes the user id as given; chio writes ``abs(id)`` unless
   ``presence.is_irc`` (equal to ours with ``is_irc = id < 0``).
8. Strings with lone surrogates are encoded with "?" (chio raises UnicodeEncodeError).
9. ``match_score_update`` (48) and ``spectate_frames`` (15) relay the client's raw
   payload instead of re-encoding a decoded object; the bytes equal chio's encoding of
   the decoded frame/bundle (with the slot id replaced).
10. Readers are lenient where chio raises (unknown enum values are returned as ints,
    invalid UTF-8 is replaced) and strict where chio is lax (a string marker other than
    ``00``/``0b`` and a ULEB128 prefix longer than 9 bytes raise PacketError).
    ``read_frames`` ignores the compression byte (chio would gunzip) and never raises
    for unknown ids or oversized frames (chio raises).
"""

from __future__ import annotations

import importlib.machinery
import json
import logging
import os
import struct
import types

import chio
import pytest
from chio import PacketType as P
from chio.io import (MemoryStream, write_list_s16, write_s32, write_string, write_u8,
                     write_u32)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests import codec_forms

IO = chio.select_client(20250306)
logging.getLogger("chio.py").disabled = True  # chio logs every clamp it performs
assert IO.protocol_version == 19 and IO.slot_size == 16

# generated from the pinned chio by scripts/gen_vectors.py (tests/test_vectors_file.py checks
# that the committed file is what the generator produces)
VECTORS_PATH = os.path.join(codec_forms.REPO_ROOT, "tests", "vectors", "chio_b20250306.json")

# examples per property test; scripts/mutation.sh lowers it (tests/mutation_map.toml [env])
SETTINGS = settings(max_examples=int(os.environ.get("PEP_CODEC_EXAMPLES", "200")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _form(name):
    module = codec_forms.load(name)
    if module is None and name == "imported":
        pytest.skip("helpers.codec is the compiled extension here (the compiled form covers it)")
    if module is None:
        pytest.skip("compiled codec not built (run: python3 setup.py build_ext --inplace)")
    return module


@pytest.fixture(scope="session", params=codec_forms.available(("compiled", "interpreted", "imported")))
def codec(request):
    """The compiled extension and the interpreted .py (used by the property tests)."""
    return _form(request.param)


@pytest.fixture(scope="session", params=codec_forms.available())
def codec_all(request):
    """Both forms plus the .py with Cython absent (used by the example-based tests)."""
    return _form(request.param)


def chio_write(packet, *args) -> bytes:
    return IO.write_packet_to_bytes(packet, *args)


def chio_read(packet_id: int, payload: bytes):
    packet, value = IO.read_packet_from_bytes(struct.pack("<HBI", packet_id, 0, len(payload))
                                              + payload)
    assert int(packet) == packet_id
    return value


def framed(packet_id: int, payload: bytes) -> bytes:
    return struct.pack("<HBI", packet_id, 0, len(payload)) + payload


# --------------------------------------------------------------------------- strategies

S32 = (-2**31, 2**31 - 1)
U32 = (0, 2**32 - 1)


def ints(lo: int, hi: int):
    """Mostly in-range integers, sometimes outside (to exercise chio's clamping)."""
    return st.one_of(st.integers(lo, hi), st.integers(lo, hi), st.integers(lo, hi),
                     st.sampled_from([lo - 1, hi + 1, lo, hi, 0]), st.integers(-2**70, 2**70))


texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), max_size=8),
    st.text(min_size=100, max_size=300),
    st.just(""),
)
# (hypothesis never generates lone surrogates by default, so all of these encode)
f32_floats = st.one_of(st.floats(width=32), st.floats())


# --------------------------------------------------------------------------- vectors

MD5 = "0123456789abcdef0123456789abcdef"
MAP = "Artist - Title [Insane]"


def _md(**fields):
    """A :class:`helpers.codec.MatchData` from keyword fields (write_match takes the record)."""
    from helpers import codec

    return codec.MatchData(**fields)


def vector_match_args(freemod=False, password="secret"):
    """The README's ``match`` input as MatchData fields."""
    return dict(
        match_id=5, in_progress=False, match_type=0, mods=64 if freemod else 0,
        name="test match", password=password, beatmap_name=MAP, beatmap_id=12345,
        beatmap_md5=MD5, slot_status=[4, 8] + [1] * 6 + [2] * 8, slot_team=[0] * 16,
        slot_user_ids=[1000, 1001] + [None] * 14, host_id=1000, mode=0, scoring_type=0,
        team_type=0, freemod=freemod,
        slot_mods=([8, 16] + [0] * 14) if freemod else [0] * 16, seed=0,
    )


def _presence(c):
    return c.user_presence(1000, "TestUser", 1, 56, 5, 0, 13.5, 52.5, 123)


def _stats(c):
    return c.user_stats(1000, 2, MAP, MD5, 24, 0, 12345, 1234567890, 0.98765, 4321,
                        9876543210, 123, 4567)


def _score_payload(vector_hex: str, client_id: int = 0) -> bytes:
    """A server 48 vector's payload turned back into what a client sends (slot byte 0)."""
    payload = bytearray(bytes.fromhex(vector_hex)[7:])
    payload[4] = client_id
    return bytes(payload)


# label -> function(codec, vector_bytes) returning our bytes for that server vector
SERVER_VECTORS = {
    "login reply, user id 1000": lambda c, v: c.login_reply(1000),
    "login reply, -1 (authentication failed)": lambda c, v: c.login_reply(-1),
    "login reply, -8 (verification required)": lambda c, v: c.login_reply(-8),
    "notification 'hello'": lambda c, v: c.notification("hello"),
    "notification '' (empty string)": lambda c, v: c.notification(""),
    "notification 'héllo ✓' (UTF-8, 10 bytes)": lambda c, v: c.notification("héllo ✓"),
    "notification of 200 x 'a' (ULEB128 length c8 01)": lambda c, v: c.notification("a" * 200),
    "channel message BanchoBot -> #osu":
        lambda c, v: c.message("BanchoBot", "Hello, World!", "#osu", 1),
    "private message peppy -> cmyui": lambda c, v: c.message("peppy", "hi", "cmyui", 2),
    "ping": lambda c, v: c.ping(),
    "user presence, id 1000 'TestUser' (chio appends 1 extra mode byte)":
        lambda c, v: _presence(c),
    "user stats, id 1000 playing": lambda c, v: _stats(c),
    "user stats, id 1000 idle, all zero":
        lambda c, v: c.user_stats(1000, 0, "", "", 0, 0, -1, 0, 0.0, 0, 0, 0, 0),
    "user quit, id 1000, state Gone": lambda c, v: c.user_logout(1000),
    "spectator joined 1001": lambda c, v: c.spectator_joined(1001),
    "fellow spectator joined 1002": lambda c, v: c.fellow_spectator_joined(1002),
    "spectate frames: 2 frames, action Standard, score frame, seq 7":
        lambda c, v: c.spectate_frames(v[7:]),
    "match score update (scorev2 off)":
        lambda c, v: c.match_score_update(_score_payload(v.hex(), 3), 0),
    "match score update (scorev2 on)":
        lambda c, v: c.match_score_update(_score_payload(v.hex(), 0), 1),
    "match update, id 5, 16 slots, pw 'secret', no freemod":
        lambda c, v: c.match_update(_md(**vector_match_args())),
    "match new (lobby copy, pw left empty here)":
        lambda c, v: c.new_match(_md(**vector_match_args(password=None))),
    "match join success, freemod on with per-slot mods":
        lambda c, v: c.match_join_success(_md(**vector_match_args(freemod=True))),
    "match start (same struct as 26, id 46)": lambda c, v: c.match_start(_md(**vector_match_args())),
    "match disband 5": lambda c, v: c.match_dispose(5),
    "match join fail": lambda c, v: c.match_join_fail(),
    "match transfer host": lambda c, v: c.match_transfer_host(),
    "match all players loaded": lambda c, v: c.match_all_players_loaded(),
    "match player failed, slot 1": lambda c, v: c.match_player_failed(1),
    "match complete": lambda c, v: c.match_complete(),
    "match skip": lambda c, v: c.match_skip(),
    "match player skipped 1": lambda c, v: c.match_player_skipped(1),
    "match change password 'newpass'": lambda c, v: c.match_change_password("newpass"),
    "match abort": lambda c, v: c.match_abort(),
    "channel join success '#osu'": lambda c, v: c.channel_join_success("#osu"),
    "channel available '#osu' topic 'Main channel' 42 users":
        lambda c, v: c.channel_info("#osu", "Main channel", 42),
    "channel available autojoin '#announce'":
        lambda c, v: c.channel_info_autojoin("#announce", "Announcements", 7),
    "channel revoked '#lobby'": lambda c, v: c.channel_kicked("#lobby"),
    "channel info complete": lambda c, v: c.channel_info_end(),
    "login permissions Regular|Supporter (5)": lambda c, v: c.privileges(5),
    "friends list [2, 3, 1000]": lambda c, v: c.friends_list([2, 3, 1000]),
    "protocol negotiation 19": lambda c, v: c.protocol_version(19),
    "title update / main menu icon":
        lambda c, v: c.main_menu_icon("https://a.example/logo.png|https://example.com"),
    "restart 0 ms": lambda c, v: c.restart(0),
    "restart 5000 ms": lambda c, v: c.restart(5000),
    "silence info 0 s": lambda c, v: c.silence_end(0),
    "silence info 60 s": lambda c, v: c.silence_end(60),
    "user silenced 1000": lambda c, v: c.user_silenced(1000),
    "user presence single 1000": lambda c, v: c.user_presence_single(1000),
    "user presence bundle [1, 1000, 1001]": lambda c, v: c.presence_bundle([1, 1000, 1001]),
    "user DMs blocked 'cmyui'": lambda c, v: c.dms_blocked("cmyui"),
    "target is silenced 'cmyui'": lambda c, v: c.target_silenced("cmyui"),
    "invite": lambda c, v: c.match_invite("peppy", "Come join my game: [osump://5/ test match]",
                                          "cmyui", 2),
    "switch server after 3600 s idle": lambda c, v: c.switch_server(3600),
    "switch tournament server '127.0.0.1'": lambda c, v: c.switch_tournament_server("127.0.0.1"),
    "version update": lambda c, v: c.version_update(),
    "version update forced": lambda c, v: c.version_update_forced(),
    "account restricted": lambda c, v: c.account_restricted(),
    "get attention": lambda c, v: c.get_attention(),
    "minimal successful login response body (75,5,71,83,11,64,65,89,72,92)":
        lambda c, v: b"".join([
            c.protocol_version(19), c.login_reply(1000), c.privileges(5), _presence(c),
            _stats(c), c.channel_join_success("#osu"), c.channel_info("#osu", "Main channel", 1),
            c.channel_info_end(), c.friends_list([]), c.silence_end(0)]),
    # derived vector: chio's presence minus its trailing mode byte (we write chio's form)
    "user presence, canonical 29-byte payload (no trailing byte; equals bancho.py output)":
        lambda c, v: c.frame(83, _presence(c)[7:-1]),
    "match update, lobby copy with password hidden as 0b 00 (bancho.py style)":
        lambda c, v: c.match_update(_md(**vector_match_args(password=""))),
}

# server vectors whose packet we do not write, with the reason
SERVER_VECTORS_NOT_WRITTEN = {
    "beatmap info reply, 1 entry": "packet 69 is not implemented (legacy, docs/protocol.md §4.9)",
    "pep.py-emulated notification 'héllo ✓' (BROKEN: prefix 7, 6 bytes follow)":
        "deliberately broken pep.py output; we write the correct form (checked below)",
}


def _load_vectors():
    # a missing file is an error, never a skip: it is part of the repository
    with open(VECTORS_PATH, encoding="utf-8") as f:
        return json.load(f)["vectors"]


VECTORS = _load_vectors()


def needs_vectors(test):
    """Marks the tests that read the vectors file (kept as a marker for readability)."""
    return test


def _vectors(direction):
    return [v for v in VECTORS or [] if v["direction"] == direction]


@needs_vectors
def test_every_server_vector_is_accounted_for():
    labels = {v["label"] for v in _vectors("server_to_client")}
    unknown = labels - set(SERVER_VECTORS) - set(SERVER_VECTORS_NOT_WRITTEN)
    assert not unknown, f"new server vectors without a test mapping: {sorted(unknown)}"


@needs_vectors
@pytest.mark.parametrize("label", sorted(SERVER_VECTORS))
def test_server_vector(codec_all, label):
    codec = codec_all
    vector = next((v for v in _vectors("server_to_client") if v["label"] == label), None)
    assert vector is not None, f"vector {label!r} is not in {VECTORS_PATH}"
    expected = bytes.fromhex(vector["hex"])
    ours = SERVER_VECTORS[label](codec, expected)
    assert type(ours) is bytes
    assert ours.hex(" ") == expected.hex(" ")


@needs_vectors
def test_pep_py_broken_string_vector_is_not_reproduced(codec_all):
    codec = codec_all
    vector = next(v for v in _vectors("server_to_client") if v["label"].startswith("pep.py"))
    ours = codec.notification("héllo ✓")
    assert ours != bytes.fromhex(vector["hex"])
    assert ours == bytes.fromhex("18 00 00 0c 00 00 00 0b 0a 68 c3 a9 6c 6c 6f 20 e2 9c 93")


def _status_tuple(s):
    return (int(s.action), s.text, s.beatmap_checksum, int(s.mods), int(s.mode), s.beatmap_id)


def _message_tuple(m):
    return (m.sender, m.content, m.target, m.sender_id)


def _chio_match_fields(m):
    """chio's Match as MatchData.as_tuple(), password normalised (None -> "")."""
    slots = m.slots
    return (m.id, bool(m.in_progress), int(m.type), int(m.mods), m.name, m.password,
            m.beatmap_text, m.beatmap_id, m.beatmap_checksum,
            [int(s.status) for s in slots], [int(s.team) for s in slots],
            [s.user_id if s.has_player else None for s in slots],
            m.host_id, int(m.mode), int(m.scoring_type), int(m.team_type), bool(m.freemod),
            [int(s.mods) for s in slots] if m.freemod else [0] * 16, m.seed)


def _our_match_fields(md):
    t = list(md.as_tuple())
    t[5] = t[5] or ""  # password: None (wire 00) compares equal to chio's ""
    return tuple(t)


def _decode_client(c, packet_id, payload):
    """(ours, chio's) normalised decoded values of one client packet."""
    theirs = chio_read(packet_id, payload)
    if packet_id == 0:
        return c.read_status(payload).as_tuple(), _status_tuple(theirs)
    if packet_id in (1, 25, 82):
        return c.read_message(payload), _message_tuple(theirs)
    if packet_id in (2, 99):  # chio: i32 == 1
        return c.read_i32(payload) == 1, theirs
    if packet_id in (3, 4, 17, 21, 29, 30, 33, 39, 44, 49, 52, 54, 55, 56, 59, 60, 77):
        assert theirs is None  # empty packets
        return payload, b""
    if packet_id == 98:  # chio ignores the i32 body
        return None if c.read_i32(payload) == 0 else "nonzero", theirs
    if packet_id in (85, 97):
        return c.read_i32_list(payload), list(theirs)
    if packet_id == 32:
        return c.read_join_match(payload), (theirs.match_id, theirs.password)
    if packet_id in (31, 41, 90):
        return _our_match_fields(c.read_match(payload)), _chio_match_fields(theirs)
    if packet_id in (20, 63, 78):
        return c.read_str(payload), theirs
    if packet_id in (16, 38, 40, 51, 70, 73, 74, 79, 87, 93, 108, 109):
        return c.read_i32(payload), int(theirs)
    if packet_id == 47:  # relayed as 48, compare with chio's encoding of the decoded frame
        theirs.id = 5
        return c.match_score_update(payload, 5), chio_write(P.BanchoMatchScoreUpdate, theirs)
    if packet_id == 18:  # relayed as 15
        return c.spectate_frames(payload), chio_write(P.BanchoSpectateFrames, theirs)
    if packet_id == 68:  # not decoded by the server (legacy, docs/protocol.md §4.9)
        return None, None
    raise AssertionError(f"no decoder mapping for client packet {packet_id}")


@needs_vectors
@pytest.mark.parametrize("index", range(len(_vectors("client_to_server"))))
def test_client_vector(codec_all, index):
    codec = codec_all
    vector = _vectors("client_to_server")[index]
    body = bytes.fromhex(vector["hex"])
    frames, problems = codec.read_frames(body)
    assert problems == 0
    if vector["packet_id"] == -1:  # stacked body
        theirs = list(IO.read_many_packets_from_bytes(body))
        assert [pid for pid, _ in frames] == [int(p) for p, _ in theirs]
        for (pid, payload), (_, value) in zip(frames, theirs):
            ours, ref = _decode_client(codec, pid, payload)
            assert ours == ref
        return
    assert len(frames) == 1 and frames[0][0] == vector["packet_id"]
    ours, theirs = _decode_client(codec, vector["packet_id"], frames[0][1])
    assert ours == theirs


@needs_vectors
def test_lobby_password_vector_reads_as_empty_not_none(codec_all):
    codec = codec_all
    vector = next(v for v in _vectors("server_to_client") if "0b 00" in v["label"])
    md = codec.read_match(bytes.fromhex(vector["hex"])[7:])
    assert md.password == ""
    md = codec.read_match(codec.new_match(_md(**vector_match_args(password=None)))[7:])
    assert md.password is None


# --------------------------------------------------------------------------- (a) writers == chio

INT_PACKETS = [
    # (our function, chio packet, range used by chio, chio argument builder)
    ("login_reply", P.BanchoLoginReply, S32, lambda v: v),
    ("spectator_joined", P.BanchoSpectatorJoined, U32, lambda v: v),
    ("spectator_left", P.BanchoSpectatorLeft, U32, lambda v: v),
    ("spectator_cant_spectate", P.BanchoSpectatorCantSpectate, U32, lambda v: v),
    ("match_dispose", P.BanchoMatchDisband, S32, lambda v: v),
    ("fellow_spectator_joined", P.BanchoFellowSpectatorJoined, S32, lambda v: v),
    ("fellow_spectator_left", P.BanchoFellowSpectatorLeft, S32, lambda v: v),
    ("privileges", P.BanchoLoginPermissions, S32, lambda v: types.SimpleNamespace(value=v)),
    ("protocol_version", P.BanchoProtocolNegotiation, S32, lambda v: v),
    ("restart", P.BanchoRestart, U32, lambda v: v),
    ("silence_end", P.BanchoSilenceInfo, S32, lambda v: v),
    ("user_silenced", P.BanchoUserSilenced, S32, lambda v: v),
    ("user_presence_single", P.BanchoUserPresenceSingle, S32, lambda v: chio.UserInfo(id=v)),
    ("switch_server", P.BanchoSwitchServer, S32, lambda v: v),
    ("user_logout", P.BanchoUserQuit, S32,
     lambda v: chio.UserQuit(info=chio.UserInfo(id=v), state=chio.QuitState.Gone)),
]


@SETTINGS
@given(data=st.data())
def test_int_packet_matches_chio(codec, data):
    name, packet, bounds, arg = data.draw(st.sampled_from(INT_PACKETS))
    v = data.draw(ints(*bounds))
    if name == "protocol_version":
        assume(v != 0)  # deviation 5
    assert getattr(codec, name)(v) == chio_write(packet, arg(v))


@pytest.mark.parametrize("name,packet,bounds,arg", INT_PACKETS, ids=[p[0] for p in INT_PACKETS])
def test_int_packet_bounds_match_chio(codec_all, name, packet, bounds, arg):
    """Every integer packet at and beyond the edges of its range (clamped as chio does)."""
    lo, hi = bounds
    for v in (lo - 1, lo, lo + 1, -1, 0, 1, 1000, hi - 1, hi, hi + 1):
        if name == "protocol_version" and v == 0:
            continue  # deviation 5
        assert getattr(codec_all, name)(v) == chio_write(packet, arg(v)), v


@pytest.mark.parametrize("name,packet", [("match_player_failed", P.BanchoMatchPlayerFailed),
                                         ("match_player_skipped", P.BanchoMatchPlayerSkipped)])
def test_slot_packets_match_chio(codec_all, name, packet):
    codec = codec_all
    for slot in range(16):
        assert getattr(codec, name)(slot) == chio_write(packet, slot)
    for bad in (-1, 16, 2**40, -2**40):
        with pytest.raises(ValueError):
            getattr(codec, name)(bad)


STR_PACKETS = [
    ("notification", P.BanchoAnnounce, lambda s: s),
    ("channel_join_success", P.BanchoChannelJoinSuccess, lambda s: s),
    ("channel_kicked", P.BanchoChannelRevoked, lambda s: s),
    ("match_change_password", P.BanchoMatchChangePassword, lambda s: s),
    ("rtx", P.BanchoRTX, lambda s: s),
    ("switch_tournament_server", P.BanchoSwitchTournamentServer, lambda s: s),
    ("dms_blocked", P.BanchoUserDmsBlocked, lambda s: s),
    ("target_silenced", P.BanchoTargetIsSilenced, lambda s: s),
]


@SETTINGS
@given(packet=st.sampled_from(STR_PACKETS), s=texts)
def test_string_packet_matches_chio(codec, packet, s):
    name, packet, arg = packet
    assert getattr(codec, name)(s) == chio_write(packet, arg(s))


@SETTINGS
@given(image=texts, url=texts)
def test_main_menu_icon_matches_chio(codec, image, url):
    assert (codec.main_menu_icon(f"{image}|{url}")
            == chio_write(P.BanchoTitleUpdate, chio.TitleUpdate(image_url=image, redirect_url=url)))


EMPTY_PACKETS = [
    ("ping", P.BanchoPing), ("version_update", P.BanchoVersionUpdate),
    ("get_attention", P.BanchoGetAttention), ("match_join_fail", P.BanchoMatchJoinFail),
    ("match_transfer_host", P.BanchoMatchTransferHost),
    ("match_all_players_loaded", P.BanchoMatchAllPlayersLoaded),
    ("match_complete", P.BanchoMatchComplete), ("match_skip", P.BanchoMatchSkip),
    ("channel_info_end", P.BanchoChannelInfoComplete),
    ("version_update_forced", P.BanchoVersionUpdateForced),
    ("account_restricted", P.BanchoAccountRestricted), ("match_abort", P.BanchoMatchAbort),
]


@pytest.mark.parametrize("name,packet", EMPTY_PACKETS, ids=[p[0] for p in EMPTY_PACKETS])
def test_empty_packet_matches_chio(codec_all, name, packet):
    codec = codec_all
    ours = getattr(codec, name)()
    assert ours == chio_write(packet) and len(ours) == 7 and ours[0] == int(packet)


@SETTINGS
@given(packet=st.sampled_from([("message", P.BanchoMessage), ("match_invite", P.BanchoInvite)]),
       sender=texts, content=texts, target=texts, sender_id=ints(*S32))
def test_message_matches_chio(codec, packet, sender, content, target, sender_id):
    name, packet = packet
    ours = getattr(codec, name)(sender, content, target, sender_id)
    assert ours == chio_write(packet, chio.Message(sender, content, target, sender_id))


@SETTINGS
@given(user_id=ints(*S32), action=ints(0, 255), text=texts, md5=texts, mods=ints(*U32),
       mode=ints(0, 255), beatmap_id=ints(*S32), ranked=ints(0, 2**64 - 1),
       accuracy=f32_floats, playcount=ints(*U32), total=ints(0, 2**64 - 1), rank=ints(*U32),
       pp=ints(0, 65535))
def test_user_stats_matches_chio(codec, user_id, action, text, md5, mods, mode, beatmap_id,
                                 ranked, accuracy, playcount, total, rank, pp):
    info = chio.UserInfo(
        id=user_id,
        status=chio.UserStatus(action=action, text=text, mods=mods, mode=mode,
                               beatmap_checksum=md5, beatmap_id=beatmap_id),
        stats=chio.UserStats(rank=rank, rscore=ranked, tscore=total, accuracy=accuracy,
                             playcount=playcount, pp=pp))
    try:
        theirs = chio_write(P.BanchoUserStats, info)
    except OverflowError:  # finite accuracy beyond the f32 range: both refuse
        with pytest.raises(OverflowError):
            codec.user_stats(user_id, action, text, md5, mods, mode, beatmap_id, ranked,
                             accuracy, playcount, total, rank, pp)
        return
    assert codec.user_stats(user_id, action, text, md5, mods, mode, beatmap_id, ranked,
                            accuracy, playcount, total, rank, pp) == theirs


@SETTINGS
@given(user_id=ints(*S32), name=texts, utc=ints(-24, 24), country=ints(0, 255),
       privs=ints(0, 31), mode=ints(0, 7), lon=f32_floats, lat=f32_floats, rank=ints(*S32))
def test_user_presence_matches_chio(codec, user_id, name, utc, country, privs, mode, lon, lat,
                                    rank):
    info = chio.UserInfo(
        id=user_id, name=name,
        presence=chio.UserPresence(is_irc=user_id < 0, timezone=utc, country_index=country,
                                   permissions=privs, longitude=lon, latitude=lat),
        status=chio.UserStatus(mode=mode), stats=chio.UserStats(rank=rank))
    args = (user_id, name, utc, country, privs, mode, lon, lat, rank)
    try:
        theirs = chio_write(P.BanchoUserPresence, info)
    except OverflowError:
        with pytest.raises(OverflowError):
            codec.user_presence(*args)
        return
    assert codec.user_presence(*args) == theirs


@SETTINGS
@given(packet=st.sampled_from([("channel_info", P.BanchoChannelAvailable),
                               ("channel_info_autojoin", P.BanchoChannelAvailableAutojoin)]),
       channel=texts, topic=texts, count=ints(-2**15, 2**15 - 1))
def test_channel_info_matches_chio(codec, packet, channel, topic, count):
    name, packet = packet
    assert (getattr(codec, name)(channel, topic, count)
            == chio_write(packet, chio.Channel(name=channel, topic=topic, user_count=count)))


@SETTINGS
@given(ids=st.lists(ints(*S32), max_size=40))
def test_id_lists_match_chio(codec, ids):
    assert codec.friends_list(ids) == chio_write(P.BanchoFriendsList, ids)
    assert codec.friends_list(tuple(ids)) == codec.friends_list(iter(ids))
    assert (codec.presence_bundle(ids)
            == chio_write(P.BanchoUserPresenceBundle, [chio.UserInfo(id=i) for i in ids]))


@st.composite
def chio_matches(draw, client_valid=False):
    """A chio Match.  ``client_valid``: only values chio's reader accepts (enum members)."""
    if client_valid:
        u8 = lambda hi: st.integers(0, hi)  # noqa: E731
        status_values = st.integers(0, 255)
        team = st.integers(0, 2)
        int_range = lambda lo, hi: st.integers(lo, hi)  # noqa: E731
    else:
        u8 = lambda hi: ints(0, 255)  # noqa: E731
        status_values = st.integers(0, 255)  # see deviation 2
        team = ints(0, 255)
        int_range = ints
    freemod = draw(st.booleans())
    slots = []
    for _ in range(16):
        status = chio.SlotStatus(draw(status_values))
        slots.append(chio.MatchSlot(
            user_id=draw(int_range(*S32)) if status & 0x7C else -1,
            status=status, team=draw(team), mods=draw(int_range(*U32)) if freemod else 0))
    mods = draw(int_range(*U32))
    return chio.Match(
        id=draw(int_range(0, 0xFFFF)), in_progress=draw(st.booleans()),
        type=draw(u8(1)), mods=chio.Mods(mods) if client_valid
        else types.SimpleNamespace(value=mods),
        name=draw(texts), password=draw(texts), beatmap_text=draw(texts),
        beatmap_id=draw(int_range(*S32)), beatmap_checksum=draw(texts), slots=slots,
        host_id=draw(int_range(*S32)), mode=draw(u8(3)), scoring_type=draw(u8(3)),
        team_type=draw(u8(3)), freemod=freemod, seed=draw(int_range(*U32)))


def our_match_args(m, password):
    return dict(
        match_id=m.id, in_progress=m.in_progress, match_type=m.type, mods=m.mods.value,
        name=m.name, password=password, beatmap_name=m.beatmap_text, beatmap_id=m.beatmap_id,
        beatmap_md5=m.beatmap_checksum, slot_status=[int(s.status) for s in m.slots],
        slot_team=[s.team for s in m.slots],
        slot_user_ids=[s.user_id if s.has_player else None for s in m.slots],
        host_id=m.host_id, mode=m.mode, scoring_type=m.scoring_type, team_type=m.team_type,
        freemod=m.freemod, slot_mods=[s.mods for s in m.slots] if m.freemod else None,
        seed=m.seed)


MATCH_PACKETS = [("match_update", P.BanchoMatchUpdate), ("new_match", P.BanchoMatchNew),
                 ("match_join_success", P.BanchoMatchJoinSuccess),
                 ("match_start", P.BanchoMatchStart)]


@SETTINGS
@given(packet=st.sampled_from(MATCH_PACKETS), m=chio_matches())
def test_match_matches_chio(codec, packet, m):
    name, packet = packet
    theirs = chio_write(packet, m)
    ours = getattr(codec, name)(_md(**our_match_args(m, m.password or None)))
    assert ours == theirs
    assert codec.write_match(int(packet), _md(**our_match_args(m, m.password or None))) == theirs
    if not m.password:  # deviation 1: "" is the 0b 00 placeholder
        hidden = getattr(codec, name)(_md(**our_match_args(m, "")))
        assert len(hidden) == len(theirs) + 1
        assert codec.read_match(hidden[7:]).password == ""


@SETTINGS
@given(frame=st.builds(
    chio.ScoreFrame, time=ints(*S32), id=st.integers(0, 255), total_300=ints(0, 65535),
    total_100=ints(0, 65535), total_50=ints(0, 65535), total_geki=ints(0, 65535),
    total_katu=ints(0, 65535), total_miss=ints(0, 65535), total_score=ints(*U32),
    max_combo=ints(0, 65535), current_combo=ints(0, 65535), perfect=st.booleans(),
    hp=ints(0, 255), tag_byte=ints(0, 255), using_scorev2=st.booleans(),
    combo_portion=st.floats(), bonus_portion=st.floats()), slot=st.integers(0, 15))
def test_match_score_update_matches_chio(codec, frame, slot):
    stream = MemoryStream()
    IO.write_score_frame(stream, frame)  # what the client sends in 47
    payload = stream.data
    frame.id = slot
    assert codec.match_score_update(payload, slot) == chio_write(P.BanchoMatchScoreUpdate, frame)


replay_frames = st.builds(chio.ReplayFrame, button_state=st.integers(0, 31),
                          legacy_byte=st.just(0), mouse_x=st.floats(width=32),
                          mouse_y=st.floats(width=32), time=ints(*S32))


@SETTINGS
@given(frames=st.lists(replay_frames, max_size=20), action=st.integers(0, 8),
       extra=ints(*S32), sequence=st.integers(0, 65535))
def test_spectate_frames_matches_chio(codec, frames, action, extra, sequence):
    bundle = chio.ReplayFrameBundle(action=action, frames=frames, frame=None, extra=extra,
                                    sequence=sequence)
    theirs = chio_write(P.BanchoSpectateFrames, bundle)
    assert codec.spectate_frames(theirs[7:]) == theirs
    assert codec.spectate_frames(bytearray(theirs[7:])) == theirs


# --------------------------------------------------------------------------- (b) readers == chio


@SETTINGS
@given(action=st.integers(0, 13), text=texts, md5=texts, mods=st.integers(*U32),
       mode=st.integers(0, 3), beatmap_id=st.integers(*S32), surplus=st.binary(max_size=4))
def test_read_status_matches_chio(codec, action, text, md5, mods, mode, beatmap_id, surplus):
    s = MemoryStream()
    write_u8(s, action)
    write_string(s, text)
    write_string(s, md5)
    write_u32(s, mods)
    write_u8(s, mode)
    write_s32(s, beatmap_id)
    assert codec.read_status(s.data + surplus).as_tuple() == _status_tuple(chio_read(0, s.data))


@SETTINGS
@given(packet_id=st.sampled_from([1, 25, 82]), sender=texts, content=texts, target=texts,
       sender_id=st.integers(*S32))
def test_read_message_matches_chio(codec, packet_id, sender, content, target, sender_id):
    s = MemoryStream()
    for text in (sender, content, target):
        write_string(s, text)
    write_s32(s, sender_id)
    assert codec.read_message(s.data) == _message_tuple(chio_read(packet_id, s.data))


@SETTINGS
@given(packet_id=st.sampled_from([20, 63, 78]), text=texts)
def test_read_str_matches_chio(codec, packet_id, text):
    s = MemoryStream()
    write_string(s, text)
    assert codec.read_str(s.data) == chio_read(packet_id, s.data) == text
    assert codec.read_str(codec.string(text)) == text


@SETTINGS
@given(packet_id=st.sampled_from([85, 97]), ids=st.lists(st.integers(*S32), max_size=300),
       limit=st.integers(0, 400))
def test_read_i32_list_matches_chio(codec, packet_id, ids, limit):
    s = MemoryStream()
    write_list_s16(s, ids)
    theirs = chio_read(packet_id, s.data)
    assert codec.read_i32_list(s.data, limit=1000) == theirs
    assert codec.read_i32_list(s.data) == theirs[:256]
    assert codec.read_i32_list(s.data, limit) == theirs[:limit]


@SETTINGS
@given(match_id=st.integers(*S32), password=texts)
def test_read_join_match_matches_chio(codec, match_id, password):
    s = MemoryStream()
    write_s32(s, match_id)
    write_string(s, password)
    theirs = chio_read(32, s.data)
    assert codec.read_join_match(s.data) == (theirs.match_id, theirs.password)


@SETTINGS
@given(packet_id=st.sampled_from([31, 41, 90]), m=chio_matches(client_valid=True),
       surplus=st.binary(max_size=3))
def test_read_match_matches_chio(codec, packet_id, m, surplus):
    payload = IO.write_match(m)
    md = codec.read_match(payload + surplus)
    assert _our_match_fields(md) == _chio_match_fields(chio_read(packet_id, payload))
    assert (md.password is None) == (m.password == "")
    # our writer reproduces the client's struct from the decoded data
    assert codec.write_match(26, md) == framed(26, payload)


@SETTINGS
@given(packet_id=st.sampled_from([16, 38, 40, 70, 73, 74, 87, 93, 108, 109]),
       value=st.integers(*S32), surplus=st.binary(max_size=4))
def test_read_i32_matches_chio(codec, packet_id, value, surplus):
    s = MemoryStream()
    write_s32(s, value)
    assert codec.read_i32(s.data + surplus) == chio_read(packet_id, s.data) == value


@SETTINGS
@given(data=st.binary(min_size=4, max_size=8))
def test_read_u32_and_i32(codec, data):
    assert codec.read_u32(data) == struct.unpack_from("<I", data)[0]
    assert codec.read_i32(data) == struct.unpack_from("<i", data)[0]


# --------------------------------------------------------------------------- (c) robustness


def reference_read_frames(body, max_frames=1024, max_payload=1 << 20):
    """Straightforward re-statement of read_frames' documented behaviour."""
    frames, problems, pos = [], 0, 0
    while len(body) - pos >= 7:
        pid, _, length = struct.unpack_from("<HBI", body, pos)
        if length > len(body) - pos - 7:
            break
        pos += 7
        if length > max_payload or len(frames) >= max_frames:
            problems += 1
        else:
            frames.append((pid, body[pos:pos + length]))
        pos += length
    return frames, problems + len(body) - pos


frame_lists = st.lists(st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)), max_size=12)


@SETTINGS
@given(body=st.binary(max_size=400))
def test_read_frames_random_bytes_never_raise(codec, body):
    assert codec.read_frames(body) == reference_read_frames(body)


@SETTINGS
@given(frames=frame_lists, cut=st.integers(0, 600), garbage=st.binary(max_size=10),
       max_frames=st.integers(0, 15), max_payload=st.integers(0, 50))
def test_read_frames_stacked_bodies(codec, frames, cut, garbage, max_frames, max_payload):
    body = b"".join(framed(pid, payload) for pid, payload in frames)
    result, problems = codec.read_frames(body)
    assert result == frames and problems == 0
    for candidate in (body[:cut], body + garbage, bytearray(body), memoryview(body)):
        assert codec.read_frames(candidate) == reference_read_frames(bytes(candidate))
    got = codec.read_frames(body, max_frames, max_payload)
    assert got == reference_read_frames(body, max_frames, max_payload)
    for pid, payload in got[0]:
        assert 0 <= pid <= 0xFFFF and type(payload) is bytes and len(payload) <= max_payload
    assert len(got[0]) <= max_frames
    truncated = body[:cut]
    ok, problems = codec.read_frames(truncated)
    assert (problems == 0) == (truncated == b"".join(framed(*f) for f in ok))


READERS = ["read_i32", "read_u32", "read_str", "read_message", "read_status", "read_i32_list",
           "read_join_match", "read_match"]


@SETTINGS
@given(data=st.binary(max_size=300))
def test_readers_raise_only_packet_error(codec, data):
    for name in READERS:
        try:
            getattr(codec, name)(data)
        except codec.PacketError:
            pass


@SETTINGS
@given(m=chio_matches(client_valid=True), cut=st.integers(0, 10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_truncated_or_corrupted_match_raises_packet_error(codec, m, cut, flips):
    payload = IO.write_match(m)
    cut %= len(payload)
    with pytest.raises(codec.PacketError):
        codec.read_match(payload[:cut])
    corrupted = bytearray(payload)
    for index, value in flips:
        corrupted[index % len(corrupted)] = value
    try:
        md = codec.read_match(bytes(corrupted))
    except codec.PacketError:
        return
    assert len(md.slot_status) == len(md.slot_team) == len(md.slot_user_ids) == 16


# --------------------------------------------------------------------------- unit tests


def test_form_is_what_it_claims(codec_all):
    codec = codec_all
    if codec.__name__ == "helpers.codec" and codec_forms.compiled_extension_path() is None:
        assert codec.__file__.endswith(".py") and not codec.cython.compiled  # the imported form
    elif codec.__name__ == "helpers.codec":
        assert codec.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    elif codec.__name__ == "codec_nocython":
        assert type(codec.cython).__name__ == "_CythonShim" and not codec.cython.compiled
    else:
        assert codec.__file__.endswith(".py") and not codec.cython.compiled


def test_uleb128(codec_all):
    codec = codec_all
    cases = {0: "00", 127: "7f", 128: "80 01", 200: "c8 01", 300: "ac 02", 16384: "80 80 01"}
    for n, expected in cases.items():
        assert codec.uleb128(n).hex(" ") == expected
    assert codec.uleb128(2**70) == bytes.fromhex("80" * 10 + "01")
    with pytest.raises(ValueError):
        codec.uleb128(-1)
    with pytest.raises(TypeError):
        codec.uleb128(1.5)


def test_string(codec_all):
    codec = codec_all
    assert codec.string("hello") == b"\x0b\x05hello"
    assert codec.string("") == b"\x00"
    assert codec.string(None) == b"\x00"
    assert codec.string("héllo ✓") == bytes.fromhex("0b 0a 68 c3 a9 6c 6c 6f 20 e2 9c 93")
    assert codec.string("a" * 200) == b"\x0b\xc8\x01" + b"a" * 200
    assert codec.string("\U0001F600") == b"\x0b\x04\xf0\x9f\x98\x80"
    assert codec.string("a\ud800b") == b"\x0b\x03a?b"  # deviation 8


def test_frame(codec_all):
    codec = codec_all
    assert codec.frame(8, b"") == bytes.fromhex("08 00 00 00 00 00 00")
    assert codec.frame(5, bytearray(b"\xe8\x03\x00\x00")) == bytes.fromhex(
        "05 00 00 04 00 00 00 e8 03 00 00")
    assert codec.frame(0xFFFF, b"x" * 300)[:7] == bytes.fromhex("ff ff 00 2c 01 00 00")
    for bad in (-1, 0x10000):
        with pytest.raises(ValueError):
            codec.frame(bad, b"")


def test_read_str_edge_cases(codec_all):
    codec = codec_all
    assert codec.read_str(b"\x00") == ""
    assert codec.read_str(b"\x0b\x00") == ""
    assert codec.read_str(b"\x0b\x02hi-surplus") == "hi"
    assert codec.read_str(b"\x0b\x02\xff\xfe") == "\ufffd\ufffd"
    for bad in (b"", b"\x01", b"\x0c\x00", b"\x0b", b"\x0b\x05abc", b"\x0b\x80",
                b"\x0b" + b"\xff" * 9 + b"\x01", b"\x0b\xff\xff\xff\xff\x0f"):
        with pytest.raises(codec.PacketError):
            codec.read_str(bad)
    assert issubclass(codec.PacketError, ValueError)


BOUNDARY_LENGTHS = (1, 127, 128, 129, 255, 256, 16383, 16384, 16385)


def test_string_length_prefix_boundaries(codec_all):
    """The ULEB128 length prefix where it grows a byte (128, 16384): ordinary chat lines are
    128..2048 bytes long, so a wrong prefix there would corrupt everyday traffic."""
    codec = codec_all
    for n in BOUNDARY_LENGTHS:
        for text in ("a" * n, "\u00e9" * (n // 2) + "a" * (n % 2)):  # 1-byte and 2-byte characters
            theirs = MemoryStream()
            write_string(theirs, text)
            assert codec.string(text) == theirs.data, (n, text[:2])
            assert codec.uleb128(len(text.encode())) == theirs.data[1:len(theirs.data) - len(text.encode())]
            assert codec.notification(text) == chio_write(P.BanchoAnnounce, text)
            assert codec.read_str(theirs.data) == text
            assert codec.read_message(codec.message("s", text, "t", 1)[7:]) == ("s", text, "t", 1)


def test_read_str_refuses_bad_length_prefixes(codec_all):
    codec = codec_all
    for n in (0, 1, 127, 128, 16384):
        exact = b"\x0b" + codec.uleb128(n) + b"x" * n
        assert codec.read_str(exact) == "x" * n
        with pytest.raises(codec.PacketError):  # one byte more announced than present
            codec.read_str(b"\x0b" + codec.uleb128(n + 1) + b"x" * n)
    # non-minimal prefixes up to 9 bytes are still a number; a 10th byte is refused
    assert codec.read_str(b"\x0b" + b"\x80" * 8 + b"\x00") == ""
    assert codec.read_str(b"\x0b" + b"\x81" + b"\x80" * 7 + b"\x00" + b"x") == "x"
    with pytest.raises(codec.PacketError):
        codec.read_str(b"\x0b" + b"\x80" * 9 + b"\x00")
    with pytest.raises(codec.PacketError):
        codec.read_str(b"\x0b" + b"\x81" + b"\x80" * 8 + b"\x00" + b"x")
    # a prefix beyond any payload (2**63) is refused, not allocated
    with pytest.raises(codec.PacketError):
        codec.read_str(b"\x0b" + b"\xff" * 8 + b"\x7f")


def test_id_list_announcing_more_ids_than_held_is_refused(codec_all):
    codec = codec_all
    for count in (1, 2, 3, 256, 65535):
        held = min(count, 4) - 1
        payload = struct.pack("<H", count) + struct.pack(f"<{held}i", *range(held))
        with pytest.raises(codec.PacketError):
            codec.read_i32_list(payload)
        with pytest.raises(codec.PacketError):
            codec.read_i32_list(payload, limit=0)
    exact = struct.pack("<H2i", 2, 7, -8)
    assert codec.read_i32_list(exact) == [7, -8]
    assert codec.read_i32_list(exact, limit=-1) == []
    assert codec.read_i32_list(struct.pack("<H", 300) + struct.pack("<300i", *range(300))) == list(range(256))


def test_error_messages(codec_all):
    """The texts of the refusals (they end up in the server log for a bad client packet)."""
    codec = codec_all
    cases = [
        (lambda: codec.read_str(b"\x0c\x00"), codec.PacketError, "bad string marker 0x0c at offset 0"),
        (lambda: codec.read_message(b"\x00\x0b\x01"), codec.PacketError,
         "string length 1 exceeds the remaining 0 bytes"),
        (lambda: codec.read_str(b"\x0b" + b"\x80" * 9 + b"\x00"), codec.PacketError,
         "ULEB128 length prefix longer than 9 bytes"),
        (lambda: codec.read_i32_list(struct.pack("<Hi", 3, 1)), codec.PacketError,
         "id list announces 3 ids but only 4 bytes follow"),
        (lambda: codec.read_i32(b"\x01\x02"), codec.PacketError, "payload truncated: need 4 bytes at offset 0, have 2"),
        (lambda: codec.match_player_failed(16), ValueError, "slot index out of range 0..15: 16"),
        (lambda: codec.frame(-1, b""), ValueError, "packet id out of range 0..65535: -1"),
        (lambda: codec.uleb128(-1), ValueError, "uleb128 of a negative number"),
    ]
    for call, kind, text in cases:
        with pytest.raises(kind) as info:
            call()
        assert str(info.value) == text
    assert str(codec.PacketError("x")) == "x"


def test_frame_lengths_use_all_four_bytes(codec_all):
    codec = codec_all
    for n in (255, 256, 300, 65535, 65536, 70000):
        body = framed(4, b"y" * n) + framed(3, b"")
        assert codec.read_frames(body, max_payload=1 << 20) == ([(4, b"y" * n), (3, b"")], 0), n
    huge = struct.pack("<HBI", 4, 0, 1 << 24) + b"z" * 100  # announces 16 MiB, holds 100 bytes
    assert codec.read_frames(huge) == ([], len(huge))
    assert codec.read_frames(struct.pack("<HBI", 4, 0, 1 << 31) + b"z") == ([], 8)
    big = bytes(0x01020304)  # about 16 MiB: every length byte differs (04 03 02 01)
    assert codec.read_frames(framed(4, big) + framed(3, b""), max_payload=len(big)) == ([(4, big), (3, b"")], 0)
    text = "x" * (0x01020304 - 5)  # 0b, a 4-byte ULEB128 length, the text
    packet = codec.notification(text)  # the writer patches all four length bytes
    assert packet[3:7] == b"\x04\x03\x02\x01"
    assert packet == chio_write(P.BanchoAnnounce, text)


def test_u64_fields_refuse_non_integers(codec_all):
    codec = codec_all
    args = [1, 0, "", "", 0, 0, 0, 5, 0.5, 0, 7, 0, 0]
    assert codec.user_stats(*args) == codec.user_stats(*args[:7], True * 5, 0.5, 0, 7, 0, 0)
    for index in (7, 10):  # ranked_score, total_score
        bad = list(args)
        bad[index] = 1.5
        with pytest.raises(TypeError):
            codec.user_stats(*bad)
    for value, wire in ((2**70, b"\xff" * 8), (2**64 - 1, b"\xff" * 8), (-1, bytes(8)), (0, bytes(8)),
                        (1, b"\x01" + bytes(7))):
        clamped = list(args)
        clamped[7] = value
        assert codec.user_stats(*clamped)[7 + 16:7 + 24] == wire, value  # ranked_score after 16 bytes


def test_frame_ids_and_short_score_frames(codec_all):
    codec = codec_all
    assert codec.frame(0, b"x") == b"\x00\x00\x00\x01\x00\x00\x00x"
    assert codec.frame(True, b"") == codec.frame(1, b"")  # any integer type
    with pytest.raises(TypeError):
        codec.frame(1.5, b"")
    assert codec.match_score_update(b"\x00" * 5, 3) == codec.frame(48, b"\x00\x00\x00\x00\x03")
    with pytest.raises(codec.PacketError) as info:
        codec.match_score_update(b"\x00" * 4, 3)
    assert str(info.value) == "score frame too short: 4 bytes"


def test_read_i32_list_edge_cases(codec_all):
    codec = codec_all
    payload = struct.pack("<H3i", 3, 1, -2, 3)
    assert codec.read_i32_list(payload) == [1, -2, 3]
    assert codec.read_i32_list(payload + b"junk") == [1, -2, 3]
    assert codec.read_i32_list(payload, 2) == [1, -2]
    assert codec.read_i32_list(payload, 0) == []
    assert codec.read_i32_list(b"\x00\x00") == []
    with pytest.raises(codec.PacketError):
        codec.read_i32_list(payload[:-1])
    with pytest.raises(codec.PacketError):
        codec.read_i32_list(b"\xff\xff" + b"\x00" * 100, limit=1)
    with pytest.raises(codec.PacketError):
        codec.read_i32_list(b"\x01")


def test_short_payloads(codec_all):
    codec = codec_all
    for name in ("read_i32", "read_u32"):
        with pytest.raises(codec.PacketError):
            getattr(codec, name)(b"\x01\x02\x03")
    assert codec.read_i32(b"\xff\xff\xff\xff\x00") == -1
    assert codec.read_u32(b"\xff\xff\xff\xff") == 0xFFFFFFFF
    with pytest.raises(codec.PacketError):
        codec.read_message(b"\x00\x00\x00\x01\x02\x03")
    with pytest.raises(codec.PacketError):
        codec.read_status(b"\x02\x00\x00")
    with pytest.raises(codec.PacketError):
        codec.read_join_match(b"\x05\x00\x00\x00")


def test_read_frames_limits(codec_all):
    codec = codec_all
    body = framed(4, b"") + framed(85, b"x" * 10) + framed(3, b"")
    assert codec.read_frames(body) == ([(4, b""), (85, b"x" * 10), (3, b"")], 0)
    assert codec.read_frames(body, max_frames=2) == ([(4, b""), (85, b"x" * 10)], 1)
    assert codec.read_frames(body, max_payload=5) == ([(4, b""), (3, b"")], 1)
    assert codec.read_frames(body + b"\x01\x02") == (codec.read_frames(body)[0], 2)
    truncated = body + framed(1, b"abcdef")[:-1]
    assert codec.read_frames(truncated) == (codec.read_frames(body)[0], 12)
    assert codec.read_frames(b"") == ([], 0)
    assert codec.read_frames(b"\xff" * 7) == ([], 7)
    compressed_flag = b"\x04\x00\x01\x00\x00\x00\x00"  # compression byte ignored
    assert codec.read_frames(compressed_flag) == ([(4, b"")], 0)
    # the defaults: 1 MiB payload cap, 1024 frames
    assert codec.read_frames(framed(4, bytes((1 << 20) + 1))) == ([], 1)
    many = framed(4, b"") * 1030
    frames, problems = codec.read_frames(many)
    assert len(frames) == 1024 and problems == 6


def test_write_match_validation(codec_all):
    codec = codec_all
    args = vector_match_args()
    bad_ids = dict(args, slot_user_ids=[None] * 16)
    with pytest.raises(ValueError, match="slot 0"):
        codec.match_update(_md(**bad_ids))
    for key in ("slot_status", "slot_team", "slot_user_ids"):
        with pytest.raises(ValueError):
            codec.match_update(_md(**dict(args, **{key: args[key][:15]})))
    with pytest.raises(ValueError):
        codec.match_update(_md(**dict(args, freemod=True, slot_mods=[0] * 17)))
    # freemod off: slot_mods ignored (None allowed); ids of empty slots are not written
    plain = codec.match_update(_md(**args))
    assert codec.match_update(_md(**dict(args, slot_mods=None))) == plain
    assert codec.match_update(_md(**dict(args, slot_user_ids=[1000, 1001] + [7] * 14))) == plain
    # tuples / generators are accepted as slot lists
    assert codec.match_update(_md(**dict(args, slot_status=tuple(args["slot_status"]),
                                     slot_team=iter(args["slot_team"])))) == plain
    # Quit (128) and Open/Locked slots carry no user id; NoMap..Complete do
    statuses = [128, 16, 32, 64] + [1] * 12
    md = codec.read_match(codec.match_update(_md(**dict(
        args, slot_status=statuses, slot_user_ids=[None, 2, 3, 4] + [None] * 12)))[7:])
    assert md.slot_user_ids == [None, 2, 3, 4] + [None] * 12
    assert md.slot_status == statuses and md.slot_mods == [0] * 16


def test_match_data(codec_all):
    codec = codec_all
    md = codec.read_match(codec.match_join_success(_md(**vector_match_args(freemod=True)))[7:])
    assert md.match_id == 5 and md.in_progress is False and md.freemod is True
    assert md.password == "secret" and md.beatmap_name == MAP and md.beatmap_md5 == MD5
    assert md.slot_user_ids == [1000, 1001] + [None] * 14
    assert md.slot_mods == [8, 16] + [0] * 14 and md.mods == 64 and md.seed == 0
    assert md == codec.read_match(codec.match_join_success(_md(**vector_match_args(freemod=True)))[7:])
    assert md != codec.read_match(codec.match_update(_md(**vector_match_args()))[7:])
    assert repr(md).startswith("MatchData(match_id=5, in_progress=False, match_type=0, mods=64, name='test match', ")
    assert not hasattr(md, "__dict__")
    assert codec.write_match(36, md) == codec.match_join_success(
        codec.MatchData(**vector_match_args(freemod=True)))


def test_clamping_and_errors(codec_all):
    codec = codec_all
    def stats(**kw):
        base = dict(user_id=1, action=0, info_text="", beatmap_md5="", mods=0, mode=0,
                    beatmap_id=0, ranked_score=0, accuracy=0.5, playcount=0, total_score=0,
                    rank=0, pp=0)
        base.update(kw)
        return codec.user_stats(*base.values())
    assert stats(pp=70000)[-2:] == b"\xff\xff"
    assert stats(pp=-5)[-2:] == b"\x00\x00"
    assert stats(pp=2**100)[-2:] == b"\xff\xff"
    assert stats(ranked_score=-1) == stats(ranked_score=0)
    assert stats(accuracy=1) == stats(accuracy=1.0)
    with pytest.raises(OverflowError):
        stats(accuracy=1e300)
    assert stats(accuracy=float("inf"))  # inf is representable
    with pytest.raises(TypeError):
        stats(pp=1.5)
    with pytest.raises(TypeError):
        codec.user_logout(None)
    assert codec.channel_info("#a", "", 40000)[-2:] == b"\xff\x7f"
    assert codec.channel_info("#a", "", -40000)[-2:] == b"\x00\x80"
    assert codec.login_reply(2**40) == codec.login_reply(2**31 - 1)
    assert codec.login_reply(-4)[7:] == struct.pack("<i", -4)  # deviation 6
    assert codec.protocol_version(0)[7:] == b"\x00\x00\x00\x00"  # deviation 5
    assert codec.spectator_joined(-5)[7:] == b"\x00\x00\x00\x00"  # chio's u32
    assert codec.restart(-1)[7:] == b"\x00\x00\x00\x00"


def test_big_id_list_is_truncated(codec_all):
    codec = codec_all
    ids = list(range(70000))
    packet = codec.friends_list(ids)
    assert packet[7:9] == b"\xff\xff" and len(packet) == 7 + 2 + 4 * 65535  # deviation 4
    assert codec.read_i32_list(packet[7:], limit=10**6) == ids[:65535]


def test_match_score_update_relay(codec_all):
    codec = codec_all
    payload = bytes(range(29))
    out = codec.match_score_update(payload, 7)
    assert out[:7] == bytes.fromhex("30 00 00 1d 00 00 00")
    assert out[7:] == payload[:4] + b"\x07" + payload[5:]
    assert codec.match_score_update(bytearray(payload), 0)[11] == 0
    with pytest.raises(codec.PacketError):
        codec.match_score_update(b"\x00" * 4, 0)
    for bad in (-1, 16, 255):
        with pytest.raises(ValueError):
            codec.match_score_update(payload, bad)


def test_user_presence_layout(codec_all):
    codec = codec_all
    packet = codec.user_presence(-7, "irc", -5, 300, 5, 3, 0.0, 0.0, 1)
    assert packet[7:11] == struct.pack("<i", -7)
    payload = packet[7 + 4 + 5:]
    assert payload[0] == 19  # utc -5 + 24
    assert payload[1] == 255  # country clamped
    assert payload[2] == 5 | (3 << 5)
    assert payload[-1] == 3 and len(payload) == 3 + 4 + 4 + 4 + 1


def test_compiled_module_is_preferred_after_build():
    path = codec_forms.compiled_extension_path()
    if path is None:
        pytest.skip("compiled codec not built (run: python3 setup.py build_ext --inplace)")
    module = codec_forms.load("compiled")
    assert module is not None and module.__file__ == path
    assert os.path.getmtime(path) >= os.path.getmtime(codec_forms.CODEC_PY), (
        "the compiled codec is older than helpers/codec.py: rebuild it with "
        "python3 setup.py build_ext --inplace")


# --------------------------------------------------------------------------- (d) per-build layouts == chio
# The layout-dependent writers and readers, on every form, against chio's class of each build
# (tests/client.py ``client_io`` with the protocol number our layout negotiates); the same
# comparison through the server is in tests/test_layouts.py, on the compiled form only.

def _io_of(build: int):
    from helpers.layout import layout_for_build
    from tests.client import client_io

    return client_io(build, layout_for_build(build).protocol)


def _layouts():
    from helpers.layout import LAYOUTS

    return [pytest.param(layout, id=layout.name) for layout in LAYOUTS]


def _slot_match(freemod: bool, password: str = "pw") -> "chio.Match":
    """A chio Match whose 16 slots differ from each other in every field: occupied slots in
    both halves (so an 8-slot layout drops some), every team, per-slot mods."""
    statuses = [4, 8, 16, 32, 64, 1, 2, 128, 4, 1, 8, 2, 32, 1, 2, 4]
    slots = [chio.MatchSlot(user_id=1000 + i if st & 0x7C else -1, status=chio.SlotStatus(st),
                            team=i % 3, mods=chio.Mods(1 << i if freemod else 0))
             for i, st in enumerate(statuses)]
    return chio.Match(id=0x1234, in_progress=True, type=1, mods=chio.Mods(64 | 8), name="room",
                      password=password, beatmap_text=MAP, beatmap_id=4242, beatmap_checksum=MD5,
                      slots=slots, host_id=1003, mode=2, scoring_type=3, team_type=2,
                      freemod=freemod, seed=0xDEADBEEF)


@pytest.mark.parametrize("layout", _layouts())
@pytest.mark.parametrize("freemod", [False, True])
def test_match_struct_per_layout_matches_chio(codec_all, layout, freemod):
    codec = codec_all
    io = _io_of(layout.build)
    for password in ("pw", ""):
        m = _slot_match(freemod, password)
        md = _md(**our_match_args(m, password or None))
        for name, packet in MATCH_PACKETS:
            assert getattr(codec, name)(md, layout) == framed(int(packet), io.write_match(m)), name
        # chio's reader of the build consumes exactly the struct
        s = MemoryStream(codec.match_update(md, layout)[7:])
        io.read_match(s)
        assert s.available() == 0
        # read back: the layout's slots as sent, the others Locked
        back = codec.read_match(io.write_match(m), layout)
        n = layout.slots
        sent = our_match_args(m, password or None)
        pad = 16 - n
        assert back.slot_status == sent["slot_status"][:n] + [2] * pad
        assert back.slot_team == sent["slot_team"][:n] + [0] * pad
        assert back.slot_user_ids == sent["slot_user_ids"][:n] + [None] * pad
        assert back.freemod is (freemod and layout.match_freemod)
        assert back.slot_mods == ([1 << i for i in range(n)] if freemod and layout.match_slot_mods
                                  else [0] * n) + [0] * pad
        assert back.seed == (0xDEADBEEF if layout.match_seed else 0)
        assert (back.match_id, back.in_progress, back.match_type, back.mods, back.name,
                back.beatmap_name, back.beatmap_id, back.beatmap_md5, back.host_id, back.mode,
                back.scoring_type, back.team_type) == (0x1234, True, 1, 72, "room", MAP, 4242, MD5,
                                                       1003, 2, 3, 2)
        assert back.password == (password or None)
    # the "has a password" placeholder is written in every layout
    hidden = codec.new_match(_md(**our_match_args(_slot_match(freemod, ""), "")), layout)
    plain = codec.new_match(_md(**our_match_args(_slot_match(freemod, ""), None)), layout)
    name_end = 7 + 8 + 6  # u16 id, u8, u8, u32 mods, then the name (0b 04 "room")
    assert plain[name_end] == 0
    assert hidden == plain[:3] + struct.pack("<I", len(plain) - 6) + plain[7:name_end] + b"\x0b" + plain[name_end:]
    assert codec.read_match(hidden[7:], layout).password == ""


@pytest.mark.parametrize("layout", _layouts())
def test_match_struct_checks_only_the_slots_of_the_layout(codec_all, layout):
    codec = codec_all
    args = vector_match_args()
    # slot 12 occupied without a user id: refused where 16 slots are written, else not written
    statuses = args["slot_status"][:12] + [4] + args["slot_status"][13:]
    md = _md(**dict(args, slot_status=statuses))
    if layout.slots == 16:
        with pytest.raises(ValueError, match="slot 12 is occupied"):
            codec.match_update(md, layout)
    else:
        assert codec.match_update(md, layout) == codec.match_update(_md(**args), layout)
    with pytest.raises(ValueError, match="slot 1 is occupied"):
        codec.match_update(_md(**dict(args, slot_user_ids=[1000] + [None] * 15)), layout)


def _frames_layouts():
    """One layout per spectator-bundle variant (``v[FRAMES]``), and None (= modern)."""
    from helpers.layout import FRAMES, LAYOUTS

    seen, out = set(), [pytest.param(None, id="None")]
    for layout in LAYOUTS:
        if layout.v[FRAMES] not in seen:
            seen.add(layout.v[FRAMES])
            out.append(pytest.param(layout, id=layout.name))
    return out


def _bundle(with_score: bool, scorev2: bool) -> "chio.ReplayFrameBundle":
    """300 replay frames (a count above 255), an extra and a sequence with every byte set."""
    frames = [chio.ReplayFrame(button_state=i % 32, legacy_byte=0, mouse_x=i * 1.5, mouse_y=-i * 0.25,
                               time=-1000 + 17 * i) for i in range(300)]
    score = None
    if with_score:
        score = chio.ScoreFrame(time=123456, id=0, total_300=300, total_100=20, total_50=3,
                                total_geki=40, total_katu=5, total_miss=6, total_score=987654321,
                                max_combo=700, current_combo=650, perfect=False, hp=180, tag_byte=0,
                                using_scorev2=scorev2, combo_portion=0.75, bonus_portion=0.125)
    return chio.ReplayFrameBundle(action=6, frames=frames, frame=score, extra=-0x12345679,
                                  sequence=0xBEEF)


def _bundle_bytes(bundle, layout) -> bytes:
    from helpers.layout import MODERN

    (_, payload), = list(_io_of((layout or MODERN).build).write_spectate_frames(bundle))
    return payload


@pytest.mark.parametrize("source", _frames_layouts())
@pytest.mark.parametrize("target", _frames_layouts())
def test_frame_bundle_per_layout_matches_chio(codec_all, source, target):
    codec = codec_all
    src_v2 = source is None or source.score_v2
    for with_score, scorev2 in ((False, False), (True, False), (True, True)):
        sent = _bundle(with_score, scorev2 and src_v2)
        payload = _bundle_bytes(sent, source)
        want = _bundle(with_score, scorev2 and src_v2)
        if source is not None and not source.frames_extra:
            want.extra = 0  # a missing extra is written as 0
        if source is not None and not source.frames_sequence:
            want.sequence = 77  # the relaying host's counter stands in
        expected = _bundle_bytes(want, target)
        assert codec.convert_frame_bundle(payload, source, target, 77) == expected
        assert codec.spectate_frames(payload, target, source, 77) == framed(15, expected)
        assert codec.spectate_frames(bytearray(payload), target, source, 77) == framed(15, expected)
        if source is not None and not source.frames_sequence and (target is None or target.frames_sequence):
            # the host's counter defaults to 0
            assert codec.spectate_frames(payload, target, source)[-2:] == b"\x00\x00"
            assert codec.convert_frame_bundle(payload, source, target)[-2:] == b"\x00\x00"
        if (source is None) == (target is None) and (source is None or source.v == target.v):
            assert expected == payload


def test_every_layout_with_a_sequence_has_the_other_bundle_fields():
    """convert_frame_bundle relies on it: a source with the u16 sequence never differs from a
    target that also has one (helpers/layout.py)."""
    from helpers.layout import LAYOUTS

    for layout in LAYOUTS:
        if layout.frames_sequence:
            assert layout.frames_extra and layout.score_v2, layout


def test_frame_bundle_bounds(codec_all):
    codec = codec_all
    from helpers.layout import LAYOUTS, MODERN

    oldest = LAYOUTS[0]  # no extra, no sequence, 28-byte score frames
    # the shortest bundle: u16 count 0 and the action byte
    assert codec.convert_frame_bundle(b"\x00\x00\x05", oldest, MODERN, 0x0102) == \
        b"\x00" * 4 + b"\x00\x00\x05" + b"\x02\x01"
    assert codec.convert_frame_bundle(b"\x00" * 4 + b"\x00\x00\x05" + b"\x02\x01", MODERN, oldest) == \
        b"\x00\x00\x05"
    # the host's counter is written as u16, modulo 65536
    assert codec.convert_frame_bundle(b"\x00\x00\x05", oldest, MODERN, 0x1BEEF)[-2:] == b"\xef\xbe"
    cases = [
        (b"\x00\x05", oldest, MODERN, "frame bundle too short: 2 bytes"),
        (b"\x00" * 4 + b"\x00\x05" + b"\x01\x00", MODERN, oldest, "frame bundle too short: 8 bytes"),
        (b"\x01\x00\x05", oldest, MODERN, "frame bundle announces 1 frames in 3 bytes"),
        (b"\x00\x01" + b"\x00" * 300, oldest, MODERN, "frame bundle announces 256 frames in 302 bytes"),
        (b"\x00\x00\x05" + b"\x00" * 27, oldest, MODERN, "score frame in the bundle truncated"),
        # a score-v2 sender: flag byte missing, or flag set and the two f64 missing
        (b"\x00" * 4 + b"\x00\x00\x05" + b"\x00" * 28 + b"\x00\x00", MODERN, oldest, "score frame truncated"),
        (b"\x00" * 4 + b"\x00\x00\x05" + b"\x00" * 28 + b"\x01" + b"\x00" * 15 + b"\x00\x00", MODERN,
         oldest, "score frame in the bundle truncated"),
    ]
    for payload, source, target, text in cases:
        with pytest.raises(codec.PacketError) as info:
            codec.convert_frame_bundle(payload, source, target)
        assert str(info.value) == text, payload
    # exactly one score frame with flag 0 (29 bytes) is whole
    v2_frame = bytes(range(28)) + b"\x00"
    assert codec.convert_frame_bundle(b"\x00" * 4 + b"\x00\x00\x05" + v2_frame + b"\x00\x00", MODERN, oldest) == \
        b"\x00\x00\x05" + v2_frame[:28]
    with pytest.raises(codec.PacketError, match="^score frame too short: 27 bytes$"):
        codec.convert_score_frame(b"\x00" * 27, MODERN, oldest)


def test_score_frame_between_layouts_of_one_variant(codec_all):
    """Two distinct layouts with score v2 relay the frame unchanged, whatever follows it."""
    codec = codec_all
    from helpers.layout import LAYOUTS, MODERN

    v2_old = next(layout for layout in LAYOUTS if layout.score_v2)
    frame = bytes(range(28)) + b"\x01" + bytes(range(100, 116)) + b"tail"
    for source, target in ((MODERN, v2_old), (None, v2_old), (v2_old, None), (LAYOUTS[0], LAYOUTS[1])):
        assert codec.convert_score_frame(frame, source, target) == frame
    assert codec.convert_score_frame(frame, MODERN, LAYOUTS[0]) == frame[:28]
    assert codec.convert_score_frame(frame[:28], LAYOUTS[0], None) == frame[:28] + b"\x00"
    assert codec.match_score_update(frame, 9, v2_old, MODERN)[7:] == frame[:4] + b"\x09" + frame[5:]


@pytest.mark.parametrize("name,packet,arg", STR_PACKETS, ids=[p[0] for p in STR_PACKETS])
def test_each_string_packet_matches_chio(codec_all, name, packet, arg):
    """Every string packet once on every form (the property test samples the packets)."""
    for s in ("", "x", "pipe|text é \U0001F600"):
        assert getattr(codec_all, name)(s) == chio_write(packet, arg(s))


@pytest.mark.parametrize("layout", _layouts())
def test_main_menu_icon_per_layout(codec_all, layout):
    codec = codec_all
    io = _io_of(layout.build)
    for text in ("https://i/a.png|https://c/1|x", "https://i/a.png", "|https://c"):
        image, _, url = text.partition("|")
        want = io.write_packet_to_bytes(P.BanchoTitleUpdate, chio.TitleUpdate(image_url=image, redirect_url=url))
        if layout.title_pair:
            assert codec.main_menu_icon(text, layout) == codec.main_menu_icon(text) == framed(76, string_bytes(text))
            if "|" in text:  # (chio adds the "|" of an empty click URL)
                assert codec.main_menu_icon(text, layout) == want
        else:
            assert codec.main_menu_icon(text, layout) == (framed(76, string_bytes(image)) if image else b"")
            if image:
                assert codec.main_menu_icon(text, layout) == want
    for nothing in ("", None):
        assert codec.main_menu_icon(nothing, layout) == (b"" if not layout.title_pair else framed(76, b"\x00"))


def string_bytes(s: str) -> bytes:
    stream = MemoryStream()
    write_string(stream, s)
    return stream.data


def test_user_quit_stats_is_the_old_stats_struct(codec_all):
    codec = codec_all
    from helpers.layout import LAYOUTS

    args = (7, 2, "editing", MD5, 24, 1, 4242, 123, 0.5, 9, 456, 3, 40000)
    quit_packet = codec.user_quit_stats(*args)
    assert quit_packet[:2] == b"\x0c\x00"
    assert quit_packet[2:] == codec.user_stats(*args, layout=LAYOUTS[0])[2:]
    assert quit_packet[-2:] == b"\xff\x7f", "pp as i16 (clamped to 32767)"
    value = C_decode_one(quit_packet, LAYOUTS[0].build)
    assert (value.user_id, value.text, value.beatmap_md5, value.beatmap_id, value.rank, value.pp) == \
        (7, "editing", MD5, 4242, 3, 32767)


def C_decode_one(data: bytes, build: int):
    from tests import client as C

    packets = C.decode_packets(data, _io_of(build))
    assert len(packets) == 1
    return packets[0].value


def test_read_message_without_sender_id(codec_all):
    codec = codec_all
    from helpers.layout import LAYOUTS

    old = LAYOUTS[0]
    payload = string_bytes("a") + string_bytes("hi") + string_bytes("#osu")
    assert codec.read_message(payload, old) == ("a", "hi", "#osu", 0)
    assert codec.read_message(payload + struct.pack("<i", 5)) == ("a", "hi", "#osu", 5)


def test_status_record(codec_all):
    codec = codec_all
    payload = bytes([2]) + string_bytes("text") + string_bytes(MD5) + struct.pack("<IBi", 24, 1, 4242)
    status = codec.read_status(payload)
    assert status == codec.read_status(payload)
    assert status != codec.read_status(bytes([3]) + payload[1:])
    assert status != status.as_tuple() and (status == status.as_tuple()) is False
    assert status.as_tuple() == (2, "text", MD5, 24, 1, 4242)
    assert repr(status) == f"Status(action=2, info_text='text', beatmap_md5='{MD5}', mods=24, mode=1, beatmap_id=4242)"


def test_slot_list_length_message(codec_all):
    codec = codec_all
    args = vector_match_args()
    for key in ("slot_status", "slot_team", "slot_user_ids"):
        with pytest.raises(ValueError) as info:
            codec.match_update(_md(**dict(args, **{key: args[key][:15]})))
        assert str(info.value) == f"{key} must have exactly 16 entries, got 15"
    with pytest.raises(ValueError) as info:
        codec.match_update(_md(**dict(args, freemod=True, slot_mods=[0] * 17)))
    assert str(info.value) == "slot_mods must have exactly 16 entries, got 17"


def test_slot_status_is_clamped_before_the_player_test(codec_all):
    """A status above 255 is written as 255, which has player bits: its user id is written."""
    codec = codec_all
    args = vector_match_args()
    for big in (256, 300, 2**40):
        statuses = [big] + args["slot_status"][1:]
        assert codec.match_update(_md(**dict(args, slot_status=statuses))) == \
            codec.match_update(_md(**dict(args, slot_status=[255] + args["slot_status"][1:])))
    with pytest.raises(ValueError, match="slot 0 is occupied"):
        codec.match_update(_md(**dict(args, slot_status=[256] + args["slot_status"][1:],
                                      slot_user_ids=[None] * 16)))


@pytest.mark.parametrize("layout", _layouts())
def test_message_structs_per_layout(codec_all, layout):
    """The message struct of 7 / 88 / 100 / 101 in each layout: the sender id only from
    b20121225 (chio's classes), the same struct for the two notices (empty sender and text)."""
    codec = codec_all
    tail = struct.pack("<i", -1) if layout.message_sender_id else b""
    for name, packet_id in (("dms_blocked", 100), ("target_silenced", 101)):
        assert getattr(codec, name)("bob", layout) == \
            framed(packet_id, b"\x00\x00" + string_bytes("bob") + tail), name
    io = _io_of(layout.build)
    msg = chio.Message(sender="alice", content="hi", target="#osu", sender_id=42)
    assert codec.message("alice", "hi", "#osu", 42, layout) == io.write_packet_to_bytes(P.BanchoMessage, msg)


def test_writers_and_readers_take_subclasses_and_buffers(codec_all):
    """A str subclass is written as its text; bytes-like payloads are read, and what comes back
    is ``bytes`` (never the caller's buffer)."""
    codec = codec_all

    class Name(str):
        pass

    assert codec.notification(Name("é x")) == codec.notification("é x") == chio_write(P.BanchoAnnounce, "é x")
    body = framed(4, b"abc") + framed(3, b"")
    frames, problems = codec.read_frames(bytearray(body))
    assert frames == [(4, b"abc"), (3, b"")] and problems == 0
    assert all(type(payload) is bytes for _, payload in frames)
    from helpers.layout import MODERN

    bundle = b"\x00" * 4 + b"\x00\x00\x05" + b"\x01\x00"
    same = codec.convert_frame_bundle(bytearray(bundle), MODERN, None)
    assert same == bundle and type(same) is bytes
    frame = codec.convert_score_frame(bytearray(range(29)), MODERN, None)
    assert frame == bytes(range(29)) and type(frame) is bytes


def test_reader_edges(codec_all):
    codec = codec_all
    assert codec.read_i32(b"\x00\x00\x00\x80") == -0x80000000
    assert codec.read_i32(b"\xff\xff\xff\x7f") == 0x7FFFFFFF
    assert codec.read_u32(b"\x00\x00\x00\x80") == 0x80000000
    with pytest.raises(codec.PacketError) as info:
        codec.read_message(string_bytes("a") * 3 + b"\x01\x02")
    assert str(info.value) == "payload truncated: need 4 bytes at offset 9, have 2"


class _Index:
    """An integer that is not an ``int`` (like numpy's): only ``__index__``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_integer_arguments_accept_index_objects(codec_all):
    """Every integer argument is taken through ``operator.index``: an object with ``__index__``
    writes what its int writes, clamped the same way."""
    codec = codec_all
    assert codec.uleb128(_Index(300)) == codec.uleb128(300) == b"\xac\x02"
    assert codec.frame(_Index(5), b"x") == codec.frame(5, b"x")
    with pytest.raises(ValueError):
        codec.frame(_Index(70000), b"")
    for value in (7, -1, 2**40):
        assert codec.user_logout(_Index(value)) == codec.user_logout(value)  # i32, clamped
    args = [1, 0, "", "", 0, 0, 0, 5, 0.5, 0, 7, 0, 0]
    for value in (5, -1, 2**70):  # u64 ranked_score, clamped
        assert codec.user_stats(*args[:7], _Index(value), *args[8:]) == codec.user_stats(*args[:7], value, *args[8:])
