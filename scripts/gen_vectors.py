#!/usr/bin/env python3
"""Generate the codec test vectors from the pinned PyPI library ``chio``.

chio is an independent implementation of the Bancho packet format; its output is the
reference our codec (``helpers/codec.py``) is compared with, byte for byte, in
``tests/test_codec.py``. The vectors are committed in ``tests/vectors/chio_b20250306.json`` so
that the tests need nothing but the repository; ``tests/test_vectors_file.py`` regenerates them
and fails when the committed file and chio (as pinned in ``requirements-test.txt``) disagree.

    python scripts/gen_vectors.py            # rewrite tests/vectors/chio_b20250306.json
    python scripts/gen_vectors.py --check    # exit 1 if the committed file is out of date
    python scripts/gen_vectors.py --stdout   # print the JSON instead of writing it

Each vector is ``{direction, packet_id, chio_name, label, hex, note}``. ``label`` is the key the
tests look vectors up by, so keep labels stable. Server vectors are chio's own encoding of a
server packet; client vectors are payloads written with chio's primitive writers and checked to
decode with chio's client-packet reader (the decoded value is recorded in ``note``). A few
vectors are derived (documented in their note): packet id -1 marks a body of several packets.
See docs/protocol.md §2 for the format itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import struct
import sys
from typing import Any, Callable

import chio
from chio import PacketType as P
from chio.io import (MemoryStream, write_list_s16, write_s32, write_string, write_u8,
                     write_u32)

CHIO_VERSION = "1.1.21"
CLIENT_BUILD = 20250306
OUTPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "tests", "vectors", f"chio_b{CLIENT_BUILD}.json")
MD5 = "0123456789abcdef0123456789abcdef"
SONG = "Artist - Title [Insane]"

logging.getLogger("chio.py").disabled = True  # chio logs each value it clamps


def header(packet_id: int, payload: bytes) -> bytes:
    """One frame: u16 id, u8 compression flag (0), u32 payload length, payload."""
    return struct.pack("<HBI", packet_id, 0, len(payload)) + payload


def built(*writes: tuple[Callable[..., Any], Any]) -> bytes:
    """Payload made of chio primitive writes, e.g. ``built((write_s32, 5), (write_string, "x"))``."""
    stream = MemoryStream()
    for writer, value in writes:
        writer(stream, value)
    return stream.data


# ------------------------------------------------------------------------------- sample objects

def sample_user() -> "chio.UserInfo":
    presence = chio.UserPresence(
        is_irc=False, timezone=1, country_index=chio.resolve_country_index("DE"),
        permissions=chio.Permissions.Regular | chio.Permissions.Supporter,
        longitude=13.5, latitude=52.5, city="")
    status = chio.UserStatus(action=chio.Status.Playing, text=SONG,
                             mods=chio.Mods.Hidden | chio.Mods.HardRock, mode=chio.Mode.Osu,
                             beatmap_checksum=MD5, beatmap_id=12345)
    stats = chio.UserStats(rank=123, rscore=1234567890, tscore=9876543210, accuracy=0.98765,
                           playcount=4321, pp=4567)
    return chio.UserInfo(id=1000, name="TestUser", presence=presence, status=status, stats=stats)


def idle_user() -> "chio.UserInfo":
    user = sample_user()
    return chio.UserInfo(id=1000, name="TestUser", presence=user.presence,
                         status=chio.UserStatus(),
                         stats=chio.UserStats(rank=0, rscore=0, tscore=0, accuracy=0.0,
                                              playcount=0, pp=0))


def score_frame(scorev2: bool) -> "chio.ScoreFrame":
    extra = {"combo_portion": 0.5, "bonus_portion": 0.25} if scorev2 else {}
    return chio.ScoreFrame(time=12345, id=1 if scorev2 else 0, total_300=100, total_100=5,
                           total_50=1, total_geki=20, total_katu=3, total_miss=2,
                           total_score=1000000, max_combo=250, current_combo=120, perfect=False,
                           hp=200, tag_byte=0, using_scorev2=scorev2, **extra)


def frame_bundle() -> "chio.ReplayFrameBundle":
    frames = [
        chio.ReplayFrame(button_state=chio.ButtonState.Left1, legacy_byte=0, mouse_x=256.0,
                         mouse_y=192.0, time=12300),
        chio.ReplayFrame(button_state=chio.ButtonState.NoButton, legacy_byte=0, mouse_x=260.5,
                         mouse_y=190.25, time=12316),
    ]
    return chio.ReplayFrameBundle(action=chio.ReplayAction.Standard, frames=frames,
                                  frame=score_frame(False), extra=0, sequence=7)


def sample_match(freemod: bool = False, password: str = "secret") -> "chio.Match":
    """Match 5: users 1000 (host) and 1001 in slots 0-1, slots 2-7 open, 8-15 locked."""
    def player(user_id: int, status: "chio.SlotStatus", mods: "chio.Mods") -> "chio.MatchSlot":
        return chio.MatchSlot(user_id=user_id, status=status, team=chio.SlotTeam.Neutral,
                              mods=mods if freemod else chio.Mods.NoMod)

    slots = [player(1000, chio.SlotStatus.NotReady, chio.Mods.Hidden),
             player(1001, chio.SlotStatus.Ready, chio.Mods.HardRock)]
    slots.extend(chio.MatchSlot() for _ in range(6))
    slots.extend(chio.MatchSlot(status=chio.SlotStatus.Locked) for _ in range(8))
    return chio.Match(id=5, in_progress=False, type=chio.MatchType.Standard,
                      mods=chio.Mods.DoubleTime if freemod else chio.Mods.NoMod,
                      name="test match", password=password, beatmap_text=SONG, beatmap_id=12345,
                      beatmap_checksum=MD5, slots=slots, host_id=1000, mode=chio.Mode.Osu,
                      scoring_type=chio.ScoringType.Score, team_type=chio.TeamType.HeadToHead,
                      freemod=freemod, seed=0)


# ------------------------------------------------------------------------------- the vectors

def server_vectors(io) -> list[tuple[str, "P", tuple]]:
    """(label, packet, arguments for chio's writer)."""
    user = sample_user()
    regular_supporter = chio.Permissions.Regular | chio.Permissions.Supporter
    invite = chio.Message(sender="peppy", content="Come join my game: [osump://5/ test match]",
                          target="cmyui", sender_id=2)
    beatmap = chio.BeatmapInfo(index=0, beatmap_id=12345, beatmapset_id=678, thread_id=0,
                               ranked_status=chio.RankedStatus.Ranked, checksum=MD5,
                               osu_rank=chio.Rank.S, taiko_rank=chio.Rank.N,
                               fruits_rank=chio.Rank.N, mania_rank=chio.Rank.N)
    return [
        ("login reply, user id 1000", P.BanchoLoginReply, (1000,)),
        ("login reply, -1 (authentication failed)", P.BanchoLoginReply,
         (chio.LoginError.InvalidLogin,)),
        ("login reply, -8 (verification required)", P.BanchoLoginReply,
         (chio.LoginError.VerificationRequired,)),
        ("notification 'hello'", P.BanchoAnnounce, ("hello",)),
        ("notification '' (empty string)", P.BanchoAnnounce, ("",)),
        ("notification 'héllo ✓' (UTF-8, 10 bytes)", P.BanchoAnnounce, ("héllo ✓",)),
        ("notification of 200 x 'a' (ULEB128 length c8 01)", P.BanchoAnnounce, ("a" * 200,)),
        ("channel message BanchoBot -> #osu", P.BanchoMessage,
         (chio.Message(sender="BanchoBot", content="Hello, World!", target="#osu", sender_id=1),)),
        ("private message peppy -> cmyui", P.BanchoMessage,
         (chio.Message(sender="peppy", content="hi", target="cmyui", sender_id=2),)),
        ("ping", P.BanchoPing, ()),
        ("user presence, id 1000 'TestUser' (chio appends 1 extra mode byte)",
         P.BanchoUserPresence, (user,)),
        ("user stats, id 1000 playing", P.BanchoUserStats, (user,)),
        ("user stats, id 1000 idle, all zero", P.BanchoUserStats, (idle_user(),)),
        ("user quit, id 1000, state Gone", P.BanchoUserQuit,
         (chio.UserQuit(info=user, state=chio.QuitState.Gone),)),
        ("spectator joined 1001", P.BanchoSpectatorJoined, (1001,)),
        ("fellow spectator joined 1002", P.BanchoFellowSpectatorJoined, (1002,)),
        ("spectate frames: 2 frames, action Standard, score frame, seq 7",
         P.BanchoSpectateFrames, (frame_bundle(),)),
        ("match score update (scorev2 off)", P.BanchoMatchScoreUpdate, (score_frame(False),)),
        ("match score update (scorev2 on)", P.BanchoMatchScoreUpdate, (score_frame(True),)),
        ("match update, id 5, 16 slots, pw 'secret', no freemod", P.BanchoMatchUpdate,
         (sample_match(),)),
        ("match new (lobby copy, pw left empty here)", P.BanchoMatchNew,
         (sample_match(password=""),)),
        ("match join success, freemod on with per-slot mods", P.BanchoMatchJoinSuccess,
         (sample_match(freemod=True),)),
        ("match start (same struct as 26, id 46)", P.BanchoMatchStart, (sample_match(),)),
        ("match disband 5", P.BanchoMatchDisband, (5,)),
        ("match join fail", P.BanchoMatchJoinFail, ()),
        ("match transfer host", P.BanchoMatchTransferHost, ()),
        ("match all players loaded", P.BanchoMatchAllPlayersLoaded, ()),
        ("match player failed, slot 1", P.BanchoMatchPlayerFailed, (1,)),
        ("match complete", P.BanchoMatchComplete, ()),
        ("match skip", P.BanchoMatchSkip, ()),
        ("match player skipped 1", P.BanchoMatchPlayerSkipped, (1,)),
        ("match change password 'newpass'", P.BanchoMatchChangePassword, ("newpass",)),
        ("match abort", P.BanchoMatchAbort, ()),
        ("channel join success '#osu'", P.BanchoChannelJoinSuccess, ("#osu",)),
        ("channel available '#osu' topic 'Main channel' 42 users", P.BanchoChannelAvailable,
         (chio.Channel(name="#osu", topic="Main channel", owner="BanchoBot", user_count=42),)),
        ("channel available autojoin '#announce'", P.BanchoChannelAvailableAutojoin,
         (chio.Channel(name="#announce", topic="Announcements", owner="BanchoBot",
                       user_count=7),)),
        ("channel revoked '#lobby'", P.BanchoChannelRevoked, ("#lobby",)),
        ("channel info complete", P.BanchoChannelInfoComplete, ()),
        ("login permissions Regular|Supporter (5)", P.BanchoLoginPermissions,
         (regular_supporter,)),
        ("friends list [2, 3, 1000]", P.BanchoFriendsList, ([2, 3, 1000],)),
        ("protocol negotiation 19", P.BanchoProtocolNegotiation, (19,)),
        ("title update / main menu icon", P.BanchoTitleUpdate,
         (chio.TitleUpdate(image_url="https://a.example/logo.png",
                           redirect_url="https://example.com"),)),
        ("restart 0 ms", P.BanchoRestart, (0,)),
        ("restart 5000 ms", P.BanchoRestart, (5000,)),
        ("silence info 0 s", P.BanchoSilenceInfo, (0,)),
        ("silence info 60 s", P.BanchoSilenceInfo, (60,)),
        ("user silenced 1000", P.BanchoUserSilenced, (1000,)),
        ("user presence single 1000", P.BanchoUserPresenceSingle, (user,)),
        ("user presence bundle [1, 1000, 1001]", P.BanchoUserPresenceBundle,
         ([chio.UserInfo(id=i) for i in (1, 1000, 1001)],)),
        ("user DMs blocked 'cmyui'", P.BanchoUserDmsBlocked, ("cmyui",)),
        ("target is silenced 'cmyui'", P.BanchoTargetIsSilenced, ("cmyui",)),
        ("invite", P.BanchoInvite, (invite,)),
        ("switch server after 3600 s idle", P.BanchoSwitchServer, (3600,)),
        ("switch tournament server '127.0.0.1'", P.BanchoSwitchTournamentServer,
         ("127.0.0.1",)),
        ("version update", P.BanchoVersionUpdate, ()),
        ("version update forced", P.BanchoVersionUpdateForced, ()),
        ("account restricted", P.BanchoAccountRestricted, ()),
        ("get attention", P.BanchoGetAttention, ()),
        ("beatmap info reply, 1 entry", P.BanchoBeatmapInfoReply,
         (chio.BeatmapInfoReply(beatmaps=[beatmap]),)),
    ]


def client_vectors(io) -> list[tuple[str, "P", bytes]]:
    """(label, packet, payload) of packets a client sends."""
    def message(text: str, target: str) -> bytes:
        return built((write_string, ""), (write_string, text), (write_string, target),
                     (write_s32, 0))

    hd_hr = int(chio.Mods.Hidden | chio.Mods.HardRock)
    score = MemoryStream()
    io.write_score_frame(score, score_frame(False))
    return [
        ("change action / user status: Playing, HD|HR, std, map 12345", P.OsuUserStatus,
         built((write_u8, chio.Status.Playing), (write_string, SONG), (write_string, MD5),
               (write_u32, hd_hr), (write_u8, 0), (write_s32, 12345))),
        ("public message 'hello' to #osu (sender left empty)", P.OsuMessage,
         message("hello", "#osu")),
        ("private message 'hi' to peppy", P.OsuPrivateMessage, message("hi", "peppy")),
        ("exit / logout (i32 0)", P.OsuExit, built((write_s32, 0))),
        ("pong / ping (empty)", P.OsuPong, b""),
        ("request status update (empty)", P.OsuStatusUpdateRequest, b""),
        ("user stats request [1000, 1001]", P.OsuUserStatsRequest,
         built((write_list_s16, [1000, 1001]))),
        ("presence request [1000]", P.OsuPresenceRequest, built((write_list_s16, [1000]))),
        ("presence request all (i32 0; chio ignores the body)", P.OsuPresenceRequestAll,
         built((write_s32, 0))),
        ("join match 5 with password 'secret'", P.OsuMatchJoin,
         built((write_s32, 5), (write_string, "secret"))),
        ("create match (client sends the full 16-slot struct)", P.OsuMatchCreate,
         io.write_match(sample_match())),
        ("start spectating 1000", P.OsuStartSpectating, built((write_s32, 1000))),
        ("channel join '#osu'", P.OsuChannelJoin, built((write_string, "#osu"))),
        ("receive updates = 1 (all)", P.OsuReceiveUpdates, built((write_s32, 1))),
        ("toggle block non-friend DMs = 1", P.OsuChangeFriendOnlyDms, built((write_s32, 1))),
        ("match score update (client -> server)", P.OsuMatchScoreUpdate, score.data),
        ("spectate frames (client -> server), same payload as server 15", P.OsuSpectateFrames,
         io.write_packet_to_bytes(P.BanchoSpectateFrames, frame_bundle())[7:]),
        ("beatmap info request: 1 filename, 1 id", P.OsuBeatmapInfoRequest,
         built((write_s32, 1), (write_string, "a.osu"), (write_s32, 1), (write_s32, 12345))),
        ("match change slot 2", P.OsuMatchChangeSlot, built((write_s32, 2))),
        ("match change mods HD|HR", P.OsuMatchChangeMods, built((write_s32, hd_hr))),
    ]


def pep_py_string(text: str) -> bytes:
    """The string form old pep.py writers produced: length in characters, bytes in latin-1
    with unencodable characters dropped. Used for a vector our codec must NOT reproduce."""
    count, prefix = len(text), bytearray()
    while True:
        low, count = count & 0x7F, count >> 7
        prefix.append(low | (0x80 if count else 0))
        if not count:
            break
    return b"\x0b" + bytes(prefix) + text.encode("latin_1", "ignore") if text else b"\x00"


def entry(direction: str, packet_id: int, name: str, label: str, data: bytes,
          note: str = "") -> dict[str, Any]:
    return {"direction": direction, "packet_id": packet_id, "chio_name": name, "label": label,
            "hex": data.hex(), "note": note}


def generate() -> dict[str, Any]:
    installed = getattr(chio, "__version__", None)
    if installed is not None and installed != CHIO_VERSION:
        raise SystemExit(f"chio {installed} is installed; the vectors are made with "
                         f"chio=={CHIO_VERSION} (requirements-test.txt)")
    io = chio.select_client(CLIENT_BUILD)
    if (io.protocol_version, io.slot_size) != (19, 16):
        raise SystemExit("unexpected chio client layout for b%d" % CLIENT_BUILD)

    vectors = []
    user = sample_user()
    for label, packet, args in server_vectors(io):
        vectors.append(entry("server_to_client", int(packet), packet.name, label,
                             io.write_packet_to_bytes(packet, *args)))

    for label, packet, payload in client_vectors(io):
        data = header(int(packet), payload)
        decoded_packet, value = io.read_packet_from_bytes(data)
        if decoded_packet != packet:
            raise SystemExit(f"chio reads {label!r} as {decoded_packet!r}")
        vectors.append(entry("client_to_server", int(packet), packet.name, label, data,
                             f"chio decodes -> {value!r}"))

    stacked = header(4, b"") + header(3, b"") + header(85, built((write_list_s16, [1000])))
    decoded = [(p.name, v) for p, v in io.read_many_packets_from_bytes(stacked)]
    vectors.append(entry("client_to_server", -1, "stack",
                         "stacked POST body: pong + status request + stats request [1000]",
                         stacked, f"chio decodes -> {decoded!r}"))

    login = io.write_many_packets_to_bytes([
        (P.BanchoProtocolNegotiation, 19),
        (P.BanchoLoginReply, 1000),
        (P.BanchoLoginPermissions, chio.Permissions.Regular | chio.Permissions.Supporter),
        (P.BanchoUserPresence, user),
        (P.BanchoUserStats, user),
        (P.BanchoChannelJoinSuccess, "#osu"),
        (P.BanchoChannelAvailable, chio.Channel(name="#osu", topic="Main channel", user_count=1)),
        (P.BanchoChannelInfoComplete,),
        (P.BanchoFriendsList, []),
        (P.BanchoSilenceInfo, 0),
    ])
    vectors.append(entry("server_to_client", -1, "stack",
                         "minimal successful login response body (75,5,71,83,11,64,65,89,72,92)",
                         login))

    presence = io.write_packet_to_bytes(P.BanchoUserPresence, user)[7:]
    vectors.append(entry(
        "server_to_client", 83, "BanchoUserPresence",
        "user presence, canonical 29-byte payload (no trailing byte; equals bancho.py output)",
        header(83, presence[:-1]), "derived: chio's payload without its last byte"))

    match = io.write_match(sample_match(password="secret"))
    password_field = bytes([0x0B, 6]) + b"secret"
    if match.count(password_field) != 1:
        raise SystemExit("the password field is not unique in the match bytes")
    vectors.append(entry(
        "server_to_client", 26, "BanchoMatchUpdate",
        "match update, lobby copy with password hidden as 0b 00 (bancho.py style)",
        header(26, match.replace(password_field, b"\x0b\x00")),
        "derived: chio's match bytes with the password written as an empty present string"))

    vectors.append(entry(
        "server_to_client", 24, "BanchoAnnounce",
        "pep.py-emulated notification 'héllo ✓' (BROKEN: prefix 7, 6 bytes follow)",
        header(24, pep_py_string("héllo ✓")),
        "derived: the character-count string writer of old pep.py servers (wrong on purpose)"))

    return {
        "source": f"generated by scripts/gen_vectors.py with chio=={CHIO_VERSION}, "
                  f"chio.select_client({CLIENT_BUILD}) (protocol 19)",
        "vectors": vectors,
    }


def render() -> str:
    return json.dumps(generate(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare with the committed file")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        try:
            with open(OUTPUT, encoding="utf-8") as fh:
                current = fh.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{os.path.relpath(OUTPUT)} is out of date: run python scripts/gen_vectors.py")
            return 1
        print(f"{os.path.relpath(OUTPUT)} is up to date")
        return 0
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {os.path.relpath(OUTPUT)} ({len(generate()['vectors'])} vectors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
