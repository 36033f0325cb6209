"""helpers/httphead.py: the one-pass reading of a request head gives what Tornado's own parser
gives, for every head; it is taken for the heads clients send and left to Tornado otherwise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tornado.httputil import HTTPHeaders, HTTPInputError

from helpers import httphead


def outcome(parse, data: bytes):
    """``("ok", start line, header lines)`` or ``("error", message)`` of one parser."""
    try:
        start, headers = parse(data)
    except HTTPInputError as exc:
        return ("error", str(exc))
    return ("ok", start, list(headers.get_all()), dict(headers))


OSU_POLL = (b"POST / HTTP/1.1\r\nHost: c.ppy.sh\r\nosu-token: 00000000-0000-4000-8000-000000000001\r\n"
            b"User-Agent: osu!\r\nAccept-Encoding: gzip\r\nContent-Length: 7\r\nConnection: Keep-Alive\r\n\r\n")

STRICT = [
    OSU_POLL,
    b"GET / HTTP/1.1\r\n\r\n",  # no header at all
    b"\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\n\r\n",  # empty lines before the request (RFC 9112 §2.2)
    b"POST / HTTP/1.1\r\nX-Empty:\r\nX-Spaces:   \t  \r\nX-Inner: a \t b\r\n\r\n",
    b"POST / HTTP/1.1\r\nX-Obs: caf\xe9\xff\r\nX-Colon: a:b:c\r\nx-lower: 1\r\n\r\n",
    b"POST / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nExpect: 100-continue\r\n\r\n",
]

FALLBACK = [
    b"POST / HTTP/1.1\nHost: x\n\n",  # bare LF line ends (Tornado still accepts them)
    b"POST / HTTP/1.1\r\nHost: x\n\r\n",
    b"POST / HTTP/1.1\r\nSet-Cookie: a\r\nSet-Cookie: b\r\n\r\n",  # a name twice: combined
    b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  # folding: refused
    b"POST / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"POST / HTTP/1.1\r\nBad Name: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nX: a\x01b\r\n\r\n",  # a control character
    b"POST / HTTP/1.1\r\nX: a\rb\r\n\r\n",
    b"POST / HTTP/1.1\r\n: no name\r\n\r\n",
]


@pytest.mark.parametrize("data", STRICT)
def test_the_heads_clients_send_are_read_in_one_pass_as_tornado_reads_them(data):
    assert httphead.strict_head(data) is not None
    assert outcome(httphead.parse_head, data) == outcome(httphead.tornado_parse, data)


@pytest.mark.parametrize("data", FALLBACK)
def test_every_other_head_is_left_to_tornado(data):
    assert httphead.strict_head(data) is None
    assert outcome(httphead.parse_head, data) == outcome(httphead.tornado_parse, data)


def test_the_osu_poll_head_reads_as_expected():
    start, headers = httphead.parse_head(OSU_POLL)
    assert start == "POST / HTTP/1.1"
    assert headers["osu-token"] == "00000000-0000-4000-8000-000000000001"
    assert headers.get("Accept-Encoding") == "gzip" and headers["content-length"] == "7"
    assert headers.get_list("Connection") == ["Keep-Alive"]


# pieces of header lines, valid and not, so that generated heads hit both readings
_NAMES = st.sampled_from(["Host", "osu-token", "X-A", "x-a", "Content-Length", "Bad Name", "", "a@b", "Ü"])
_VALUES = st.text(alphabet=st.sampled_from(list("ab :\t,=\x7f\x01\r\n\xe9\xff")), max_size=8)
_ENDS = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, st.sampled_from([":", ": ", ":\t", " :", ""]), _VALUES, _ENDS), max_size=6),
       st.sampled_from(["", "\r\n", "\n"]), _ENDS)
def test_generated_heads_read_the_same_both_ways(lines, before, last):
    head = before + "POST / HTTP/1.1\r\n" + "".join(n + c + v + e for n, c, v, e in lines) + last
    data = head.encode("latin1", "replace")
    assert outcome(httphead.parse_head, data) == outcome(httphead.tornado_parse, data)


@pytest.mark.parametrize("lines, expected", [
    ({"Content-Length": "12"}, 12), ({"Content-Length": "0"}, 0),
    ({"Content-Length": "9" * 18}, int("9" * 18)), ({"Content-Length": "9" * 19}, None),
    ({}, None), ({"Content-Length": "+2"}, None), ({"Content-Length": "1, 2"}, None),
    ({"Content-Length": "\u00b2"}, None), ({"Content-Length": "2", "Transfer-Encoding": "chunked"}, None),
])
def test_plain_length_takes_only_one_plain_length(lines, expected):
    assert httphead.plain_length(HTTPHeaders(lines)) == expected


@pytest.mark.parametrize("version, connection, expected", [
    ("HTTP/1.1", None, (True, b"")), ("HTTP/1.1", "Close", (False, b"Connection: close\r\n")),
    ("HTTP/1.1", "keep-alive", (True, b"")), ("HTTP/1.0", None, (False, b"")),
    ("HTTP/1.0", "Keep-Alive", (True, b"Connection: Keep-Alive\r\n")), ("HTTP/1.0", "close", (False, b"")),
])
def test_keep_alive_follows_the_version_and_the_connection_header(version, connection, expected):
    headers = HTTPHeaders({"Connection": connection} if connection else {})
    assert httphead.keep_alive(version, headers) == expected
