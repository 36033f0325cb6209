"""The TCP listener's login-line and frame cutting (handlers/tcp.py), in process.

Frames are built with chio's primitives (tests/client.py ``frame``), never with our codec.
"""

from __future__ import annotations

import random

import pytest

from handlers.tcp import FrameBuffer, FrameError, LoginLineError, split_login
from services import login as login_service
from tests.client import frame

LINES = b"alice\r\n" + b"0" * 32 + b"\r\nb20121203|1|1|a:b.:c:d:e:\r\n"


def test_login_lines_with_crlf_and_the_packets_after_them():
    data = LINES + frame(4) + frame(3)
    lines, used = split_login(data)
    assert lines == LINES and used == len(LINES)
    assert data[used:] == frame(4) + frame(3)
    req = login_service.parse(lines, login_service.TCP_BUILDS)
    assert (req.username, req.password_md5, req.build) == ("alice", "0" * 32, 20121203)


def test_login_lines_with_plain_lf_are_accepted_too():
    lines, used = split_login(LINES.replace(b"\r\n", b"\n"))
    assert lines.count(b"\n") == 3 and used == len(LINES) - 3


@pytest.mark.parametrize("cut", [0, 1, 5, len(LINES) - 1])
def test_incomplete_login_lines_wait_for_more(cut):
    assert split_login(LINES[:cut]) is None


def test_login_lines_byte_by_byte():
    buf = bytearray()
    found = None
    for i, byte in enumerate(LINES):
        assert found is None, f"complete after {i} of {len(LINES)} bytes"
        buf.append(byte)
        found = split_login(buf)
    assert found == (LINES, len(LINES))


def test_garbage_without_newlines_is_refused_at_the_limit():
    assert split_login(b"x" * 100, limit=101) is None
    with pytest.raises(LoginLineError):
        split_login(b"x" * 101, limit=101)


def test_three_lines_longer_than_the_limit_are_refused():
    with pytest.raises(LoginLineError):
        split_login(b"a" * 60 + b"\n\n\n", limit=50)


def test_tcp_builds_only():
    body = b"alice\n" + b"0" * 32 + b"\n%s|1|1|a:b.:c:d:e:|0\n"
    for version, ok in (("b20121203", True), ("b20130815", True), ("b20130816", False),
                        ("b20250306", False), ("b20121202", False)):
        if ok:
            assert login_service.parse(body % version.encode(), login_service.TCP_BUILDS).build == int(version[1:])
        else:
            with pytest.raises(login_service.LoginError) as exc:
                login_service.parse(body % version.encode(), login_service.TCP_BUILDS)
            assert exc.value.code == -2, version


def test_frames_cut_at_any_boundary():
    frames = [frame(1, b"hello"), frame(4), frame(85, bytes(range(200))), frame(0, b"x" * 1000)]
    stream = b"".join(frames)
    rng = random.Random(15)
    for _ in range(50):
        fb = FrameBuffer(max_payload=4096, max_skip=65536)
        out = b""
        pos = 0
        while pos < len(stream):
            step = rng.randint(1, 300)
            got = fb.feed(stream[pos:pos + step])
            pos += step
            # only whole frames come out
            assert got == b"" or stream[len(out):].startswith(got)
            out += got
            assert fb.held < 4096 + 7
        assert out == stream and fb.held == 0 and fb.skipped == 0


def test_oversized_frame_is_skipped_without_being_held():
    big = frame(85, b"z" * 5000)
    fb = FrameBuffer(max_payload=1024, max_skip=65536)
    out = fb.feed(frame(4) + big[:3000])
    assert out == frame(4)
    assert fb.held == 0 and fb.skipped == 1  # nothing of the big frame is kept
    assert fb.feed(big[3000:4000]) == b""
    assert fb.feed(big[4000:] + frame(3)) == frame(3)
    assert fb.held == 0 and fb.skipped == 1


def test_frame_beyond_the_skip_limit_is_an_error():
    fb = FrameBuffer(max_payload=1024, max_skip=65536)
    header = frame(85, b"")[:3] + (70000).to_bytes(4, "little")
    with pytest.raises(FrameError):
        fb.feed(frame(4)[:0] + header)
    assert fb.held == 0


def test_partial_header_is_held():
    fb = FrameBuffer(max_payload=1024, max_skip=4096)
    data = frame(1, b"abc")
    assert fb.feed(data[:4]) == b"" and fb.held == 4
    assert fb.feed(data[4:]) == data and fb.held == 0
