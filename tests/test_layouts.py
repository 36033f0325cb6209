"""Issue 15, unit level: the layout of every chio breakpoint build from b20121203 on, checked
against chio's own readers and writers of that build (``tests/client.py`` ``client_io``).

This covers the TCP-era builds (b20121203 .. b20130801) too: their transport is tested by the
TCP listener's tests, their layout here. Server bytes are decoded with the build's chio codec;
client bytes are written with it and read with ours.
"""

from __future__ import annotations

import chio
import pytest
from chio import io as cio
from chio.clients import ClientDict

from helpers import codec
from helpers.layout import BREAKPOINTS, LAYOUTS, MATCH, MESSAGE, MODERN, OLDEST_BUILD, layout_for_build
from objects.stream import fan_out_layouts
from objects.token import Token
from tests import client as C

CHIO_BREAKPOINTS = sorted({type(io).version for build, io in ClientDict.items() if build >= OLDEST_BUILD})


def io_of(build: int):
    """chio's codec of ``build`` speaking the protocol number our layout negotiates (75)."""
    return C.client_io(build, layout_for_build(build).protocol)


def decode_one(data: bytes, build: int):
    packets = C.decode_packets(data, io_of(build))
    assert len(packets) == 1, packets
    return packets[0]


def test_one_layout_per_chio_breakpoint():
    assert list(BREAKPOINTS) == CHIO_BREAKPOINTS
    for build, io in ClientDict.items():
        layout = layout_for_build(build)
        if build < OLDEST_BUILD:
            assert layout is None
        else:
            assert layout is not None and layout.build == type(io).version, build
    assert layout_for_build(20991231) is MODERN and MODERN.modern
    assert all(not layout.modern for layout in LAYOUTS[:-1])


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
def test_protocol_number_and_slot_count(build):
    layout = layout_for_build(build)
    chio_protocol = type(chio.select_client(build)).protocol_version
    assert layout.protocol == (19 if build >= 20140528 else chio_protocol)
    io = io_of(build)
    empty = C.make_match(host_id=5)
    io.write_match(empty)  # b20140528 picks its slot count from the negotiated protocol here
    assert layout.slots == io.slot_size
    assert decode_one(codec.protocol_version(layout.protocol), build).value == layout.protocol


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
@pytest.mark.parametrize("pp", [0, 1234, 32767, 32768, 40_000, 65_535, 70_000])
def test_stats_pp_never_negative(build, pp):
    layout = layout_for_build(build)
    token = Token(7, "x", "x", 3, version=build)
    assert token.layout is layout
    token.set_stats(1, 0.5, 2, 3, 4, pp)
    got = decode_one(token.stats_packet(layout), build).value
    want = min(pp, 0xFFFF) if build >= 20250306 else min(pp, 0x7FFF)
    assert got.pp == want and got.user_id == 7 and got.rank == 4
    if pp <= 0x7FFF:
        assert token.stats_packet(layout) is token.stats_packet(), "one encoding while pp fits an i16"


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
def test_messages_read_by_the_build(build):
    layout = layout_for_build(build)
    for data in (codec.message("alice", "hi there", "#osu", 42, layout),
                 codec.match_invite("alice", "come", "bob", 42, layout),
                 codec.dms_blocked("bob", layout) if build >= 20130131 else None,
                 codec.target_silenced("bob", layout) if build >= 20130209 else None):
        if data is None:
            continue
        value = decode_one(data, build).value  # the decoder asserts every byte is consumed
        assert value.sender_id == (None if build < 20121225 else value.sender_id)
        payload_len = len(data) - 7
        s = cio.MemoryStream(data[7:])
        io_of(build).read_message(s)
        assert s.available() == 0, f"{payload_len - s.available()} of {payload_len} bytes read"
    msg = decode_one(codec.message("alice", "hi there", "#osu", 42, layout), build).value
    assert (msg.sender, msg.content, msg.target) == ("alice", "hi there", "#osu")
    linked = decode_one(codec.message("bot", "play [https://osu.ppy.sh/b/1 A - B [Hard]]!", "#osu", 1, layout),
                        build).value
    assert linked.content == ("play (A - B [Hard])[https://osu.ppy.sh/b/1]!" if build < 20121212
                              else "play [https://osu.ppy.sh/b/1 A - B [Hard]]!")
    # what the build sends is read back by the server
    payload = C.message_payload("text", "#osu", io=io_of(build))
    assert codec.read_message(payload, layout)[1:3] == ("text", "#osu")


def _match_data(freemod: bool) -> codec.MatchData:
    statuses = [4, 1, 1, 8, 1, 1, 1, 1] + [2] * 8
    users = [11, None, None, 22] + [None] * 12
    return codec.MatchData(9, False, 0, 64, "room", None, "A - B [C]", 77, "ab" * 16, statuses,
                           [0, 0, 0, 0] + [0] * 12, users, 11, 0, 0, 0, freemod,
                           [8, 0, 0, 16] + [0] * 12 if freemod else [0] * 16, 1234)


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
@pytest.mark.parametrize("freemod", [False, True])
def test_match_struct_both_ways(build, freemod):
    layout = layout_for_build(build)
    data = codec.match_update(_match_data(freemod), layout)
    s = cio.MemoryStream(data[7:])
    io = io_of(build)
    got = io.read_match(s)
    assert s.available() == 0, "the build reads exactly the struct"
    assert len(got.slots) == layout.slots
    assert [int(slot.status) for slot in got.slots] == _match_data(freemod).slot_status[:layout.slots]
    assert (got.id, got.name, got.beatmap_id, got.host_id, int(got.mods)) == (9, "room", 77, 11, 64)
    assert C.slot_of(got, 22) == 3
    if layout.match_freemod:
        assert got.freemod == freemod
    if layout.match_slot_mods and freemod:
        assert [int(slot.mods) for slot in got.slots[:4]] == [8, 0, 0, 16]
    if layout.match_seed:
        assert got.seed == 1234
    # the build's own struct (create / settings) is read back as 16 slots, the rest locked
    back = codec.read_match(io.write_match(got), layout)
    assert len(back.slot_status) == 16
    assert back.slot_status[:layout.slots] == _match_data(freemod).slot_status[:layout.slots]
    assert back.slot_status[layout.slots:] == [2] * (16 - layout.slots)
    assert back.slot_user_ids[3] == 22 and back.name == "room"
    assert back.freemod == (freemod and layout.match_freemod)


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
@pytest.mark.parametrize("scorev2", [False, True])
def test_score_frames_relayed_between_layouts(build, scorev2):
    layout = layout_for_build(build)
    old_io, new_io = io_of(build), C.client_io()
    frame = C.score_frame(score=987_654, slot_id=0, scorev2=scorev2 and layout.score_v2)
    sent = C.score_frame_payload(frame, io=old_io)
    got = decode_one(codec.match_score_update(sent, 3, MODERN, layout), C.MODERN_BUILD).value
    assert (got.id, got.total_score, got.max_combo, got.hp) == (3, 987_654, 12, 200)
    modern = C.score_frame_payload(C.score_frame(score=5, scorev2=scorev2), io=new_io)
    got = decode_one(codec.match_score_update(modern, 1, layout, MODERN), build).value
    assert (got.id, got.total_score, got.total_300) == (1, 5, 10)
    s = cio.MemoryStream(codec.match_score_update(modern, 1, layout, MODERN)[7:])
    old_io.read_score_frame(s)
    assert s.available() == 0


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
@pytest.mark.parametrize("with_score", [False, True])
def test_frame_bundles_relayed_between_layouts(build, with_score):
    layout = layout_for_build(build)
    old_io, new_io = io_of(build), C.client_io()
    bundle = C.replay_bundle(seed=4, frames=5, with_score=with_score)
    if bundle.frame is not None:
        bundle.frame.using_scorev2 = layout.score_v2

    def same(got, sent) -> None:
        assert [(f.mouse_x, f.mouse_y, f.time) for f in got.frames] == \
            [(f.mouse_x, f.mouse_y, f.time) for f in sent.frames]
        assert got.action == sent.action
        assert (got.frame is None) == (sent.frame is None)
        if sent.frame is not None:
            assert got.frame.total_score == sent.frame.total_score

    old_payload = C.spectate_frames_payload(bundle, io=old_io)
    got = decode_one(codec.spectate_frames(old_payload, MODERN, layout, sequence=77), C.MODERN_BUILD).value
    same(got, bundle)
    if not layout.frames_sequence:
        assert got.sequence == 77, "the relaying host's counter stands in for the missing sequence"
    new_payload = C.spectate_frames_payload(bundle, io=new_io)
    out = codec.spectate_frames(new_payload, layout, MODERN)
    same(decode_one(out, build).value, bundle)
    s = cio.MemoryStream(out[7:])
    old_io.read_spectate_frames(s)
    assert s.available() == 0
    if layout.v[4] == MODERN.v[4]:
        assert out[7:] == new_payload, "same layout: relayed byte for byte"


@pytest.mark.parametrize("payload", [b"", b"\x01\x00", b"\x05\x00\x00\x00\xff\xff", b"\x00" * 19])
def test_bad_bundles_raise_packet_error(payload):
    with pytest.raises(codec.PacketError):
        codec.convert_frame_bundle(payload, MODERN, LAYOUTS[0])
    with pytest.raises(codec.PacketError):
        codec.convert_frame_bundle(payload, LAYOUTS[0], MODERN)


@pytest.mark.parametrize("build", CHIO_BREAKPOINTS)
def test_user_quit_and_title(build):
    layout = layout_for_build(build)
    token = Token(9, "quitter", "quitter", 3, version=20250306)
    token.set_stats(1, 0.5, 2, 3, 4, 5)
    value = decode_one(token.quit_packet(layout), build).value
    assert value.user_id == 9
    if build < 20121224:
        assert value.rank == 4, "a stats struct before b20121224"
    data = codec.main_menu_icon("https://i/img.png|https://click", layout)
    got = decode_one(data, build).value
    assert got == ("https://i/img.png|https://click" if build >= 20121221 else "https://i/img.png")
    assert codec.main_menu_icon("|https://click", layout) == (b"" if build < 20121221 else
                                                              codec.main_menu_icon("|https://click"))


def test_fan_out_encodes_once_per_variant_present():
    tokens = [Token(i, f"u{i}", f"u{i}", 3, version=v)
              for i, v in enumerate([20250306, 20250306, 20160404, 20121203, 20121203])]
    calls = []

    def encode(layout):
        calls.append(layout.v[MESSAGE])
        return codec.message("a", "b", "#osu", 1, layout)

    fan_out_layouts(tokens, encode, MESSAGE)
    assert len(calls) == 2 and 0 in calls, "b20160404 shares the modern message; b20121203 has its own"
    assert tokens[0].queue[0] is tokens[1].queue[0] is tokens[2].queue[0]
    assert tokens[3].queue[0] is tokens[4].queue[0] and tokens[3].queue[0] != tokens[0].queue[0]
    calls.clear()
    fan_out_layouts(tokens[:2], encode, MESSAGE, but=tokens[0])
    assert calls == [0] and len(tokens[1].queue) == 2 and len(tokens[0].queue) == 1
    calls.clear()
    fan_out_layouts([], encode, MATCH)
    assert calls == [], "nothing is encoded without a receiver"
