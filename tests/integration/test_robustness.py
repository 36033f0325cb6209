"""Robustness of the bancho endpoint: garbage bodies, truncated frames, unknown ids and tokens.

The rule (docs/protocol.md §2.1, §10.4): a malformed string, a truncated frame or an unknown packet id is
dropped and logged; the rest of the request and the session go on. Unknown tokens: docs/protocol.md §1.5.
"""

from __future__ import annotations

import random
import secrets
import uuid

import pytest
import requests

from tests import client as C

CLIENT_IDS = {
    0, 1, 2, 3, 4, 16, 17, 18, 20, 21, 25, 29, 30, 31, 32, 33, 38, 39, 40, 41, 44, 47, 49, 51, 52, 54, 55, 56, 59,
    60, 63, 68, 70, 73, 74, 77, 78, 79, 82, 85, 87, 90, 93, 97, 98, 99, 108, 109,
}


def assert_alive(server):
    assert server.proc.alive(), "the server process died"
    assert requests.get(server.url, timeout=5).status_code == 200


def assert_session_works(server, a, b):
    """A's session still answers and A's chat still reaches B."""
    packets = a.poll()
    assert not C.of(packets, C.RESTART), packets
    text = f"still alive {secrets.token_hex(4)}"
    a.send(C.public_message("#osu", text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def wait_own_stats(client):
    """The reply to a status request (may arrive on a later poll: stats reloads are async)."""
    return C.wait_for(
        client, lambda p: p.id == C.USER_STATS and p.value.user_id == client.user_id, description="own 11"
    ).value


def test_get_root(server):
    r = requests.get(server.url, timeout=5)
    assert r.status_code == 200
    assert "text/html" in r.headers.get("Content-Type", "")
    assert len(r.text) > 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_random_bytes_body(server, seed):
    a = server.connect()
    b = server.connect()
    rng = random.Random(seed)
    while True:
        body = rng.randbytes(rng.randint(1, 600))
        if len(body) < 2 or int.from_bytes(body[:2], "little") not in CLIENT_IDS:
            break
    resp = a.post(body, token=a.token)
    assert resp.status_code == 200
    C.decode_packets(resp.content)  # whatever comes back is well-formed
    assert_session_works(server, a, b)
    assert_alive(server)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fuzzed_frames(server, seed):
    """Well-framed packets with valid client ids and random payloads."""
    a = server.connect()
    b = server.connect()
    rng = random.Random(seed)
    allowed = sorted(CLIENT_IDS - {C.C_LOGOUT, C.C_CHANNEL_PART})
    body = b"".join(
        C.frame(rng.choice(allowed), rng.randbytes(rng.randint(0, 40))) for _ in range(30)
    )
    resp = a.post(body, token=a.token)
    assert resp.status_code == 200
    C.decode_packets(resp.content)
    assert_session_works(server, a, b)
    assert_alive(server)


def test_empty_body_with_token(server):
    a = server.connect()
    packets = a.send_raw(b"")
    assert not C.of(packets, C.RESTART)
    assert not C.of(a.poll(), C.RESTART)


def test_truncated_frame_after_valid_packets(server):
    a = server.connect()
    b = server.connect()
    # a complete ping and a status request, then half of a message frame
    body = C.ping() + C.request_status_update() + C.public_message("#osu", "truncated")[:12]
    a.send_raw(body)
    wait_own_stats(a)
    assert_session_works(server, a, b)
    assert "truncated" not in [m.content for m in C.values(b.received, C.SEND_MESSAGE)]


def test_truncated_header(server):
    a = server.connect()
    b = server.connect()
    a.send_raw(C.request_status_update() + b"\x01\x00\x00")
    wait_own_stats(a)
    assert_session_works(server, a, b)


def test_unknown_packet_id_skipped(server):
    a = server.connect()
    b = server.connect()
    text = f"after unknown {secrets.token_hex(4)}"
    body = C.frame(250, b"\x01\x02\x03\x04\x05") + C.frame(65000, b"") + C.public_message("#osu", text)
    body += C.request_status_update()
    a.send_raw(body)
    wait_own_stats(a)
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def test_server_only_packet_id_from_client_skipped(server):
    a = server.connect()
    b = server.connect()
    text = f"after server id {secrets.token_hex(4)}"
    # 5 and 83 are server->client ids: a client sending them must not break anything
    body = C.frame(5, b"\xe8\x03\x00\x00") + C.frame(83, b"\x00" * 10) + C.public_message("#osu", text)
    a.send_raw(body)
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def test_huge_declared_length(server):
    a = server.connect()
    b = server.connect()
    huge = C.frame(1, b"")[:3] + (0xFFFFFFF0).to_bytes(4, "little") + b"\x00\x0b\x05hello"
    a.send_raw(C.request_status_update() + huge)
    wait_own_stats(a)
    assert_session_works(server, a, b)
    assert_alive(server)


def test_short_payload_for_fixed_size_packet(server):
    a = server.connect()
    b = server.connect()
    # friend add needs 4 bytes; stats request declares 5 ids but carries 1
    body = C.frame(C.C_FRIEND_ADD, b"\x01") + C.frame(C.C_USER_STATS_REQUEST, b"\x05\x00\x01\x00\x00\x00")
    body += C.request_status_update()
    a.send_raw(body)
    wait_own_stats(a)
    assert_session_works(server, a, b)


def test_bad_string_marker_in_message(server):
    a = server.connect()
    b = server.connect()
    bad = b"\x00" + b"\x0c\x05hello" + b"\x0b\x04#osu" + b"\x00\x00\x00\x00"  # 0x0c is not a string marker
    text = f"after bad marker {secrets.token_hex(4)}"
    body = C.frame(C.C_PUBLIC_MESSAGE, bad) + C.public_message("#osu", text)
    a.send_raw(body)
    C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert "hello" not in [m.content for m in C.values(b.received, C.SEND_MESSAGE)]
    assert_alive(server)


def test_string_length_beyond_payload(server):
    a = server.connect()
    b = server.connect()
    bad = b"\x00" + b"\x0b\x7fshort" + b"\x0b\x04#osu" + b"\x00\x00\x00\x00"
    text = f"after long string {secrets.token_hex(4)}"
    a.send_raw(C.frame(C.C_PUBLIC_MESSAGE, bad) + C.public_message("#osu", text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))
    assert_alive(server)


def test_invalid_utf8_is_replaced(server):
    a = server.connect()
    b = server.connect()
    head = secrets.token_hex(3).encode()
    content = head + b"\xff\xfe ok"
    payload = b"\x00" + b"\x0b" + bytes([len(content)]) + content + b"\x0b\x04#osu" + b"\x00\x00\x00\x00"
    a.send_raw(C.frame(C.C_PUBLIC_MESSAGE, payload))
    p = C.wait_for(b, lambda p: p.id == C.SEND_MESSAGE and p.value.content.startswith(head.decode()))
    got = p.value.content  # our decoder is strict UTF-8: this already proves valid UTF-8 on the wire
    assert "\ufffd" in got
    assert got.endswith(" ok")
    assert_session_works(server, a, b)


@pytest.mark.parametrize(
    "token",
    ["definitely-not-a-token", str(uuid.uuid4()), "x" * 300],
    ids=["garbage", "uuid", "long"],
)
def test_unknown_token_gets_restart(server, token):
    c = server.client()
    resp = c.post(C.ping(), token=token)
    assert resp.status_code == 200
    packets = C.decode_packets(resp.content)
    assert C.of(packets, C.RESTART), packets
    restart = C.values(packets, C.RESTART)[0]
    assert 0 <= restart <= 60000
    assert C.of(packets, C.NOTIFICATION), "Kawata sends a notification with the restart"
    assert_alive(server)


def test_unknown_token_with_garbage_body(server):
    c = server.client()
    resp = c.post(b"\xff" * 50, token="nope-" + secrets.token_hex(4))
    assert resp.status_code == 200
    assert C.of(C.decode_packets(resp.content), C.RESTART)
    assert_alive(server)


def test_many_packets_in_one_body(server):
    a = server.connect()
    b = server.connect()
    texts = [f"batch {i} {secrets.token_hex(3)}" for i in range(5)]
    a.send(*[C.public_message("#osu", t) for t in texts], *[C.ping() for _ in range(50)])
    C.wait_for(b, lambda p: C.is_message(p, content=texts[-1]))
    got = [m.content for m in C.values(b.received, C.SEND_MESSAGE) if m.content in texts]
    assert got == texts, "messages are delivered in order"
