"""Self-check of the test client (tests/client.py) against chio itself; needs no server.

Server packets are written with chio's server writers and must read back through our decoder;
client frames built by our builders must read back through chio's client-packet readers.
"""

from __future__ import annotations

import json
import math
import os

import pytest
from chio.constants import (
    Mode,
    Mods,
    PacketType,
    Permissions,
    ReplayAction,
    SlotStatus,
    Status,
)
from chio.types import (
    Channel,
    Match,
    MatchSlot,
    Message,
    ReplayFrame,
    ReplayFrameBundle,
    ScoreFrame,
    UserInfo,
    UserPresence,
    UserQuit,
    UserStats,
    UserStatus,
)

from tests import client as C

IO = C.IO


def roundtrip(packet: PacketType, *args) -> C.Packet:
    data = IO.write_packet_to_bytes(packet, *args)
    packets = C.decode_packets(data)
    assert len(packets) == 1, packets
    assert packets[0].id == packet.value
    return packets[0]


def make_user() -> UserInfo:
    return UserInfo(
        id=1000,
        name="TestUser",
        presence=UserPresence(timezone=1, country_index=56, permissions=Permissions(5), longitude=13.5, latitude=52.5),
        status=UserStatus(
            action=Status.Playing,
            text="Artist - Title [Insane]",
            mods=Mods(24),
            mode=Mode.Taiko,
            beatmap_checksum="0123456789abcdef0123456789abcdef",
            beatmap_id=12345,
        ),
        stats=UserStats(rank=123, rscore=1234567890, tscore=9876543210, accuracy=0.98765, playcount=4321, pp=45678),
    )


# --------------------------------------------------------------------------------------------
# server -> client decoding
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [1000, -1, -2, -8, 2**31 - 1])
def test_login_reply(value):
    p = roundtrip(PacketType.BanchoLoginReply, value)
    assert p.value == value
    assert p.name == "BanchoLoginReply"


def test_message():
    m = Message(sender="peppy", content="héllo ✓ world", target="#osu", sender_id=2)
    p = roundtrip(PacketType.BanchoMessage, m)
    assert (p.value.sender, p.value.content, p.value.target, p.value.sender_id) == ("peppy", "héllo ✓ world", "#osu", 2)


def test_stats():
    u = make_user()
    p = roundtrip(PacketType.BanchoUserStats, u)
    s = p.value
    assert isinstance(s, C.Stats)
    assert s.user_id == 1000
    assert s.action == 2 and s.text == "Artist - Title [Insane]"
    assert s.beatmap_md5 == "0123456789abcdef0123456789abcdef"
    assert s.mods == 24 and s.mode == 1 and s.beatmap_id == 12345
    assert s.ranked_score == 1234567890 and s.total_score == 9876543210
    assert math.isclose(s.accuracy, 0.98765, rel_tol=1e-6)
    assert s.playcount == 4321 and s.rank == 123
    assert s.pp == 45678  # u16 in b20250306: above the signed 16-bit range


def test_presence():
    u = make_user()
    p = roundtrip(PacketType.BanchoUserPresence, u)
    pr = p.value
    assert isinstance(pr, C.Presence)
    assert (pr.user_id, pr.username, pr.utc_offset, pr.country) == (1000, "TestUser", 1, 56)
    assert pr.privileges == 5 and pr.mode == 1
    assert (pr.longitude, pr.latitude, pr.rank) == (13.5, 52.5, 123)


def test_presence_canonical_29_bytes():
    # vector X02: the canonical layout without chio's trailing mode byte must decode as well
    u = make_user()
    data = IO.write_packet_to_bytes(PacketType.BanchoUserPresence, u)
    payload = data[7:-1]
    pr = C.decode_packets(C.frame(83, payload))[0].value
    assert pr.username == "TestUser" and pr.rank == 123


def test_user_quit():
    p = roundtrip(PacketType.BanchoUserQuit, UserQuit(info=UserInfo(id=1234), state=0))
    assert p.value == C.UserQuit(1234, 0)


@pytest.mark.parametrize(
    "packet,arg",
    [
        (PacketType.BanchoAnnounce, "hello"),
        (PacketType.BanchoAnnounce, ""),
        (PacketType.BanchoAnnounce, "a" * 300),
        (PacketType.BanchoChannelJoinSuccess, "#osu"),
        (PacketType.BanchoChannelRevoked, "#lobby"),
        (PacketType.BanchoMatchChangePassword, "newpass"),
        (PacketType.BanchoSwitchTournamentServer, "127.0.0.1"),
    ],
)
def test_strings(packet, arg):
    assert roundtrip(packet, arg).value == arg


@pytest.mark.parametrize(
    "packet,arg",
    [
        (PacketType.BanchoProtocolNegotiation, 19),
        (PacketType.BanchoLoginPermissions, Permissions(5)),
        (PacketType.BanchoRestart, 1),
        (PacketType.BanchoSilenceInfo, 1800),
        (PacketType.BanchoUserSilenced, 1005),
        (PacketType.BanchoSpectatorJoined, 1001),
        (PacketType.BanchoSpectatorLeft, 1001),
        (PacketType.BanchoFellowSpectatorJoined, 1002),
        (PacketType.BanchoMatchDisband, 5),
        (PacketType.BanchoMatchPlayerFailed, 1),
        (PacketType.BanchoMatchPlayerSkipped, 1),
        (PacketType.BanchoSpectatorCantSpectate, 1001),
    ],
)
def test_ints(packet, arg):
    assert roundtrip(packet, arg).value == int(arg)


def test_protocol_without_version_arg():
    assert roundtrip(PacketType.BanchoProtocolNegotiation).value == 19


@pytest.mark.parametrize(
    "packet",
    [
        PacketType.BanchoPing,
        PacketType.BanchoChannelInfoComplete,
        PacketType.BanchoAccountRestricted,
        PacketType.BanchoMatchJoinFail,
        PacketType.BanchoMatchTransferHost,
        PacketType.BanchoMatchAllPlayersLoaded,
        PacketType.BanchoMatchComplete,
        PacketType.BanchoMatchSkip,
        PacketType.BanchoMatchAbort,
        PacketType.BanchoVersionUpdate,
    ],
)
def test_empty(packet):
    p = roundtrip(packet)
    assert p.value is None and p.raw == b""


def test_channel_info():
    p = roundtrip(PacketType.BanchoChannelAvailable, Channel(name="#osu", topic="Main channel", user_count=42))
    assert p.value == C.ChannelInfo("#osu", "Main channel", 42)
    p = roundtrip(PacketType.BanchoChannelAvailableAutojoin, Channel(name="#announce", topic="", user_count=0))
    assert p.value == C.ChannelInfo("#announce", "", 0)


def test_friends_and_bundle():
    assert roundtrip(PacketType.BanchoFriendsList, [2, 3, 1000]).value == [2, 3, 1000]
    assert roundtrip(PacketType.BanchoFriendsList, []).value == []
    infos = [UserInfo(id=i) for i in (1, 1000, 1001)]
    assert roundtrip(PacketType.BanchoUserPresenceBundle, infos).value == [1, 1000, 1001]
    assert roundtrip(PacketType.BanchoUserPresenceSingle, UserInfo(id=1000)).value == 1000


def test_dm_blocked_and_target_silenced():
    p = roundtrip(PacketType.BanchoUserDmsBlocked, "cmyui")
    assert p.value.target == "cmyui"
    p = roundtrip(PacketType.BanchoTargetIsSilenced, "cmyui")
    assert p.value.target == "cmyui"


def make_match(freemod: bool = False) -> Match:
    slots = [MatchSlot(user_id=1000, status=SlotStatus.NotReady), MatchSlot(user_id=1001, status=SlotStatus.Ready)]
    slots += [MatchSlot(status=SlotStatus.Open) for _ in range(6)]
    slots += [MatchSlot(status=SlotStatus.Locked) for _ in range(8)]
    if freemod:
        slots[0].mods = Mods.Hidden
        slots[1].mods = Mods.HardRock
    return Match(
        id=5,
        name="test match",
        password="secret",
        beatmap_text="Artist - Title [Insane]",
        beatmap_id=12345,
        beatmap_checksum="0123456789abcdef0123456789abcdef",
        slots=slots,
        host_id=1000,
        freemod=freemod,
        mods=Mods.DoubleTime if freemod else Mods.NoMod,
    )


@pytest.mark.parametrize("packet", [PacketType.BanchoMatchUpdate, PacketType.BanchoMatchNew,
                                    PacketType.BanchoMatchJoinSuccess, PacketType.BanchoMatchStart])
@pytest.mark.parametrize("freemod", [False, True])
def test_match(packet, freemod):
    m = roundtrip(packet, make_match(freemod)).value
    assert m.id == 5 and m.name == "test match" and m.password == "secret"
    assert [s.user_id for s in m.slots if s.has_player] == [1000, 1001]
    assert m.slots[1].status == SlotStatus.Ready and m.slots[8].status == SlotStatus.Locked
    assert m.host_id == 1000 and m.freemod == freemod
    if freemod:
        assert m.slots[0].mods == Mods.Hidden and m.slots[1].mods == Mods.HardRock and m.mods == Mods.DoubleTime


def make_score(v2: bool = False) -> ScoreFrame:
    return ScoreFrame(
        time=12345, id=0, total_300=100, total_100=5, total_50=1, total_geki=20, total_katu=3, total_miss=2,
        total_score=1000000, max_combo=250, current_combo=120, perfect=False, hp=200, tag_byte=0,
        using_scorev2=v2, combo_portion=0.5 if v2 else 0.0, bonus_portion=0.25 if v2 else 0.0,
    )


@pytest.mark.parametrize("v2", [False, True])
def test_score_frame(v2):
    f = roundtrip(PacketType.BanchoMatchScoreUpdate, make_score(v2)).value
    assert f == make_score(v2)


def make_bundle() -> ReplayFrameBundle:
    return ReplayFrameBundle(
        action=ReplayAction.Standard,
        frames=[ReplayFrame(mouse_x=256.0, mouse_y=192.0, time=12300), ReplayFrame(mouse_x=260.5, mouse_y=190.25, time=12316)],
        frame=make_score(),
        extra=0,
        sequence=7,
    )


def test_spectate_frames():
    b = roundtrip(PacketType.BanchoSpectateFrames, make_bundle()).value
    assert len(b.frames) == 2 and b.frames[1].mouse_x == 260.5 and b.sequence == 7 and b.frame.total_score == 1000000


def test_many_packets_and_unknown_id():
    data = IO.write_many_packets_to_bytes(
        [
            (PacketType.BanchoProtocolNegotiation, 19),
            (PacketType.BanchoLoginReply, 1000),
            (PacketType.BanchoChannelInfoComplete,),
        ]
    ) + C.frame(250, b"\x01\x02\x03")
    packets = C.decode_packets(data)
    assert C.ids(packets) == [75, 5, 89, 250]
    assert packets[-1].value == b"\x01\x02\x03" and packets[-1].name == "Unknown250"
    assert C.of(packets, 5)[0].value == 1000


def test_decoder_rejects_broken_bodies():
    with pytest.raises(C.PacketDecodeError):
        C.decode_packets(C.frame(5, b"\x01\x02"))  # i32 too short
    with pytest.raises(C.PacketDecodeError):
        C.decode_packets(b"\x05\x00\x00\x10\x00\x00\x00\x01")  # declared length beyond the body
    with pytest.raises(C.PacketDecodeError):
        C.decode_packets(C.frame(24, b"\x0b\x05ab"))  # string shorter than its length
    with pytest.raises(C.PacketDecodeError):
        C.decode_packets(C.frame(7, b"\x0b\x02\xff\xfe\x00\x00\x00\x00\x00\x00"))  # invalid UTF-8
    with pytest.raises(C.PacketDecodeError):
        C.decode_packets(b"\x08\x00\x00")  # partial header


def test_chio_vectors_decode():
    """Every server->client vector of tests/vectors decodes without error (ids preserved)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "vectors", "chio_b20250306.json")
    with open(path, encoding="utf-8") as fh:
        vectors = json.load(fh)["vectors"]
    n = 0
    for v in vectors:
        if v["direction"] != "server_to_client":
            continue
        data = bytes.fromhex(v["hex"])
        if "BROKEN" in v["label"]:  # pep.py's broken string writer must be rejected
            with pytest.raises(C.PacketDecodeError):
                C.decode_packets(data)
            continue
        packets = C.decode_packets(data)
        assert packets, v["label"]
        if v["packet_id"] >= 0:  # -1 marks multi-packet bodies (login response)
            assert packets[0].id == v["packet_id"], v["label"]
        n += 1
    assert n > 40


# --------------------------------------------------------------------------------------------
# client -> server frames, read back with chio's client-packet readers
# --------------------------------------------------------------------------------------------
def read_back(data: bytes):
    packet, value = IO.read_packet_from_bytes(data)
    return packet, value


def test_ping_frame():
    assert C.ping() == bytes.fromhex("04 00 00 00 00 00 00")
    assert read_back(C.ping()) == (PacketType.OsuPong, None)


def test_change_action_frame_matches_vector_c01():
    data = C.change_action(2, "Artist - Title [Insane]", "0123456789abcdef0123456789abcdef", 24, 0, 12345)
    packet, status = read_back(data)
    assert packet == PacketType.OsuUserStatus
    assert status.action == Status.Playing and status.text == "Artist - Title [Insane]"
    assert status.mods == Mods(24) and status.mode == Mode.Osu and status.beatmap_id == 12345
    assert status.beatmap_checksum == "0123456789abcdef0123456789abcdef"
    vector = bytes.fromhex(
        "00 00 00 45 00 00 00 02 0b 17 41 72 74 69 73 74 20 2d 20 54 69 74 6c 65 20 5b 49 6e 73 61 6e 65"
        " 5d 0b 20 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 30 31 32 33 34 35 36 37 38 39 61 62 63"
        " 64 65 66 18 00 00 00 00 39 30 00 00"
    )
    assert data == vector


def test_message_frames():
    assert C.public_message("#osu", "hello") == bytes.fromhex(
        "01 00 00 12 00 00 00 00 0b 05 68 65 6c 6c 6f 0b 04 23 6f 73 75 00 00 00 00"
    )
    packet, m = read_back(C.public_message("#osu", "héllo ✓"))
    assert packet == PacketType.OsuMessage and m.content == "héllo ✓" and m.target == "#osu"
    packet, m = read_back(C.private_message("peppy", "hi"))
    assert packet == PacketType.OsuPrivateMessage and m.content == "hi" and m.target == "peppy"
    packet, m = read_back(C.set_away_message("brb"))
    assert packet == PacketType.OsuSetIrcAwayMessage and m.content == "brb"


def test_misc_frames():
    assert read_back(C.logout()) == (PacketType.OsuExit, False)
    assert C.logout() == bytes.fromhex("02 00 00 04 00 00 00 00 00 00 00")
    assert read_back(C.request_status_update()) == (PacketType.OsuStatusUpdateRequest, None)
    assert read_back(C.channel_join("#osu")) == (PacketType.OsuChannelJoin, "#osu")
    assert read_back(C.channel_part("#lobby")) == (PacketType.OsuChannelLeave, "#lobby")
    assert read_back(C.friend_add(1001)) == (PacketType.OsuFriendsAdd, 1001)
    assert read_back(C.friend_remove(1001)) == (PacketType.OsuFriendsRemove, 1001)
    packet, ids = read_back(C.stats_request([1000, 1001]))
    assert packet == PacketType.OsuUserStatsRequest and list(ids) == [1000, 1001]
    assert C.stats_request([1000, 1001]) == bytes.fromhex("55 00 00 0a 00 00 00 02 00 e8 03 00 00 e9 03 00 00")
    assert read_back(C.presence_request([1000])) == (PacketType.OsuPresenceRequest, [1000])
    assert C.presence_request_all() == bytes.fromhex("62 00 00 04 00 00 00 00 00 00 00")
    assert read_back(C.presence_request_all())[0] == PacketType.OsuPresenceRequestAll
    assert read_back(C.receive_updates(1))[1] == 1
    assert read_back(C.toggle_block_dms(True)) == (PacketType.OsuChangeFriendOnlyDms, True)
    assert read_back(C.toggle_block_dms(0)) == (PacketType.OsuChangeFriendOnlyDms, False)
    assert read_back(C.error_report("boom")) == (PacketType.OsuErrorReport, "boom")
    assert read_back(C.start_spectating(1000)) == (PacketType.OsuStartSpectating, 1000)
    assert read_back(C.stop_spectating())[0] == PacketType.OsuStopSpectating
    assert read_back(C.match_join(5, "secret"))[1].match_id == 5
    assert read_back(C.match_change_slot(3)) == (PacketType.OsuMatchChangeSlot, 3)
    assert read_back(C.match_lock(3)) == (PacketType.OsuMatchLock, 3)
    assert read_back(C.match_transfer_host(1)) == (PacketType.OsuMatchTransferHost, 1)
    assert read_back(C.match_change_mods(72))[1] == Mods(72)
    assert read_back(C.tournament_match_info(5)) == (PacketType.OsuTournamentMatchInfo, 5)


def test_match_and_frames_frames():
    packet, m = read_back(C.match_create(make_match()))
    assert packet == PacketType.OsuMatchCreate and m.name == "test match" and m.password == "secret"
    packet, f = read_back(C.match_score_update(make_score()))
    assert packet == PacketType.OsuMatchScoreUpdate and f == make_score()
    packet, b = read_back(C.spectate_frames(make_bundle()))
    assert packet == PacketType.OsuSpectateFrames and b.sequence == 7 and len(b.frames) == 2


def test_frame_header():
    data = C.frame(250, b"xyz")
    assert data == b"\xfa\x00\x00\x03\x00\x00\x00xyz"


def test_login_body_layout():
    body = C.login_body("Test User", "password", utc_offset=-5, block_nonfriend_pm=True)
    lines = body.decode().split("\n")
    assert lines[-1] == "" and len(lines) == 4
    assert lines[0] == "Test User"
    assert lines[1] == "5f4dcc3b5aa765d61d8327deb882cf99"
    version, offset, city, hashes, block = lines[2].split("|")
    assert (version, offset, city, block) == ("b20250306.2", "-5", "1", "1")
    parts = hashes.split(":")
    assert len(parts) == 6 and parts[-1] == ""
    assert parts[1].endswith(".")
    assert all(len(x) == 32 for x in (parts[0], parts[2], parts[3], parts[4]))
    assert C.md5hex(parts[1]) == parts[2]
    # different users never share hardware hashes
    assert C.default_hashes("a") != C.default_hashes("b")
