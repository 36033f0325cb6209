"""HTTP edge cases of the Bancho endpoint ``POST /``, which is answered below ``tornado.web`` by
the server's own connection delegate (docs/architecture.md, "The path of a poll").

Raw sockets, so that what a client library would smooth over (pipelining, chunked bodies, lying
``Content-Length`` headers, half-sent requests) reaches the server as written. After each abuse
the server must still be alive and the sessions involved must still work.
"""

from __future__ import annotations

import gzip
import secrets
import socket
import time

import pytest
import requests

from tests import client as C
from tests.waiting import wait_until

TIMEOUT = 5.0


# ---------------------------------------------------------------------------------------------
# a minimal HTTP/1.x reader on a raw socket
# ---------------------------------------------------------------------------------------------
class Raw:
    """One TCP connection to the server; ``send`` raw bytes, ``response()`` reads one reply."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names; repeated names joined by ", "), body."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before a complete header block: {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers[name] = f"{headers[name]}, {value.strip()}" if name in headers else value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._fill():
                raise ConnectionError("closed in the middle of a body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed_by_server(self) -> bool:
        """True when the server closes the connection (EOF) within the timeout."""
        try:
            while self._fill():
                pass
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Raw":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def request(body: bytes, token: str | None = None, extra: str = "", length: int | None = None,
            path: str = "/", version: str = "HTTP/1.1") -> bytes:
    """A raw POST with ``Content-Length`` (``length`` overrides the true length)."""
    head = f"POST {path} {version}\r\nHost: x\r\n"
    if token is not None:
        head += f"osu-token: {token}\r\n"
    head += f"Content-Length: {len(body) if length is None else length}\r\n{extra}\r\n"
    return head.encode() + body


def packets(body: bytes, headers: dict[str, str]) -> list[C.Packet]:
    if headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return C.decode_packets(body)


def assert_alive(server) -> None:
    assert server.proc.alive(), "the server process died"
    assert requests.get(server.url, timeout=TIMEOUT).status_code == 200


def assert_works(server, a) -> None:
    """``a``'s session still answers and its public message reaches a fresh client."""
    b = server.connect()
    text = f"edge {secrets.token_hex(4)}"
    a.send(C.public_message("#osu", text))
    C.wait_for(b, lambda p: C.is_message(p, content=text))
    b.close()


# ---------------------------------------------------------------------------------------------
# the reply itself
# ---------------------------------------------------------------------------------------------
def test_poll_reply_headers(server):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(request(C.ping(), a.token))
        status, headers, body = raw.response()
        assert status == 200
        assert headers["cho-protocol"] == "19"
        assert headers["content-type"].startswith("text/html")
        assert "date" in headers
        assert "connection" not in headers  # HTTP/1.1 keep-alive is implicit
        assert "content-encoding" not in headers
        packets(body, headers)


def test_login_reply_has_cho_token(server):
    user = server.new_user()
    with Raw(server) as raw:
        raw.send(request(C.login_body(user.name, user.password)))
        status, headers, body = raw.response()
        assert status == 200
        assert headers["cho-protocol"] == "19"
        assert len(headers["cho-token"]) >= 32
        replies = packets(body, headers)
        assert C.of(replies, C.LOGIN_REPLY)[0].value == user.id
        # the new token polls on the same connection
        raw.send(request(C.ping(), headers["cho-token"]))
        status, headers, body = raw.response()
        assert status == 200 and not C.of(packets(body, headers), C.RESTART)
        # a wrong password answers login-failed
        raw.send(request(C.login_body(user.name, "wrong password")))
        status, headers, body = raw.response()
        assert headers["cho-token"] == "login-failed"
        assert C.of(packets(body, headers), C.LOGIN_REPLY)[0].value == -1


def test_unknown_token_gets_restart(server):
    with Raw(server) as raw:
        raw.send(request(C.ping(), "00000000-0000-4000-8000-000000000000"))
        status, headers, body = raw.response()
        assert status == 200
        assert C.of(packets(body, headers), C.RESTART)


def test_large_reply_is_gzipped_only_when_accepted(server):
    a = server.connect()
    b = server.connect()
    # enough queued chat for a reply of well over GZIP_MIN_LENGTH (1,200 bytes)
    texts = [f"gzip {secrets.token_hex(200)}" for _ in range(4)]  # under the spam limit
    for text in texts:
        b.send(C.public_message("#osu", text))
    with Raw(server) as raw:
        raw.send(request(C.ping(), a.token, "Accept-Encoding: gzip, deflate\r\n"))
        status, headers, body = raw.response()
        assert headers.get("content-encoding") == "gzip"
        assert "Accept-Encoding" in headers.get("vary", "")
        received = [p.value.content for p in packets(body, headers) if p.id == C.SEND_MESSAGE]
        assert [t for t in received if t in texts] == texts
        for text in texts:
            b.send(C.public_message("#osu", text))
        raw.send(request(C.ping(), a.token))  # no Accept-Encoding
        status, headers, body = raw.response()
        assert "content-encoding" not in headers and len(body) >= 1200
        received = [p.value.content for p in C.decode_packets(body) if p.id == C.SEND_MESSAGE]
        assert [t for t in received if t in texts] == texts


def test_query_string_and_other_paths(server):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(request(C.ping(), a.token, path="/?x=1"))
        status, headers, body = raw.response()
        assert status == 200 and headers["cho-protocol"] == "19"
        # other paths and methods still go through the application
        raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = raw.response()
        assert status == 200 and b"pep.py" in body
        raw.send(request(b"", path="/api/v1/isOnline"))
        status, headers, body = raw.response()
        assert status == 405
        raw.send(b"GET /api/v1/onlineUsers HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = raw.response()
        assert status == 200 and b"result" in body


# ---------------------------------------------------------------------------------------------
# keep-alive, pipelining, Connection: close, HTTP/1.0
# ---------------------------------------------------------------------------------------------
def test_pipelined_requests_answered_in_order(server):
    a = server.connect()
    b = server.connect()
    text = f"pipelined {secrets.token_hex(4)}"
    with Raw(server) as raw:
        # four requests in one write: a's message, b's poll (gets it), a GET, an unknown token
        raw.send(request(C.public_message("#osu", text), a.token)
                 + request(C.ping(), b.token)
                 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                 + request(C.ping(), "not-a-token"))
        s1, h1, body1 = raw.response()
        s2, h2, body2 = raw.response()
        s3, h3, body3 = raw.response()
        s4, h4, body4 = raw.response()
        assert (s1, s2, s3, s4) == (200, 200, 200, 200)
        assert any(C.is_message(p, content=text) for p in packets(body2, h2))
        assert b"pep.py" in body3
        assert C.of(packets(body4, h4), C.RESTART)
        raw.send(request(C.ping(), a.token))  # the connection is still open
        assert raw.response()[0] == 200
    assert_works(server, a)


def test_connection_close(server):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(request(C.ping(), a.token, "Connection: close\r\n"))
        status, headers, body = raw.response()
        assert status == 200
        assert headers.get("connection", "").lower() == "close"
        assert raw.closed_by_server()
    assert_works(server, a)


def test_http10_keep_alive_only_when_asked(server):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(request(C.ping(), a.token, "Connection: keep-alive\r\n", version="HTTP/1.0"))
        status, headers, _ = raw.response()
        assert status == 200 and headers.get("connection") == "Keep-Alive"
        raw.send(request(C.ping(), a.token, version="HTTP/1.0"))
        status, headers, _ = raw.response()
        assert status == 200 and "connection" not in headers
        assert raw.closed_by_server()


# ---------------------------------------------------------------------------------------------
# bodies: chunked, missing / wrong Content-Length, Expect: 100-continue, limits
# ---------------------------------------------------------------------------------------------
def test_chunked_body(server):
    a = server.connect()
    b = server.connect()
    text = f"chunked {secrets.token_hex(4)}"
    body = C.ping() + C.public_message("#osu", text)
    pieces = [body[:3], body[3:10], body[10:]]  # frames split across chunks
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    with Raw(server) as raw:
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
                 .encode() + chunked)
        status, _, _ = raw.response()
        assert status == 200
    C.wait_for(b, lambda p: C.is_message(p, content=text))


def test_missing_content_length(server):
    """Without ``Content-Length`` (and not chunked) the body is empty; what follows is read as the
    next request, which is not HTTP: 400 and the connection is closed."""
    a = server.connect()
    with Raw(server) as raw:
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\n\r\n".encode())
        status, _, body = raw.response()
        assert status == 200
        packets(body, {})
        raw.send(C.public_message("#osu", "never delivered") + b"\r\n\r\n")
        status, _, _ = raw.response()
        assert status == 400
        assert raw.closed_by_server()
    assert_works(server, a)


@pytest.mark.parametrize("value", ["abc", "-1", "1, 2"])
def test_malformed_content_length(server, value):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\nContent-Length: {value}\r\n\r\n".encode()
                 + C.ping())
        status, _, _ = raw.response()
        assert status == 400
        assert raw.closed_by_server()
    assert_works(server, a)


def test_content_length_shorter_than_body(server):
    """The rest of the body is read as the next request: 400, connection closed, the poll made of
    the declared bytes was still answered."""
    a = server.connect()
    body = C.ping() + C.public_message("#osu", "cut")
    with Raw(server) as raw:
        raw.send(request(body + b"\r\n\r\n", a.token, length=len(C.ping())))
        status, _, _ = raw.response()
        assert status == 200
        status, _, _ = raw.response()
        assert status == 400
        assert raw.closed_by_server()
    assert_works(server, a)


def test_content_length_longer_than_body_then_disconnect(server):
    a = server.connect()
    raw = Raw(server)
    raw.send(request(C.ping(), a.token, length=1000))
    time.sleep(0.2)  # the behaviour: the server holds the partial body when the client leaves
    raw.close()  # the server was waiting for 993 more bytes
    assert_alive(server)
    assert_works(server, a)


def test_expect_100_continue(server):
    a = server.connect()
    with Raw(server) as raw:
        body = C.ping()
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\nContent-Length: {len(body)}\r\n"
                 "Expect: 100-continue\r\n\r\n".encode())
        status, _, _ = raw.response()
        assert status == 100
        raw.send(body)
        status, headers, body = raw.response()
        assert status == 200 and headers["cho-protocol"] == "19"
        packets(body, headers)


def test_oversized_headers(server):
    a = server.connect()
    with Raw(server) as raw:
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\n".encode())
        try:
            for _ in range(80):  # 80 x 1 KiB of one header: over Tornado's 64 KiB header limit
                raw.send(b"X-Filler: " + b"f" * 1014 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close while we are still writing
        assert raw.closed_by_server()
    assert_alive(server)
    assert_works(server, a)


def test_oversized_body(start_server):
    srv = start_server({"PEP_SERVER_MAX_BODY": "1024"})
    a = srv.connect()
    with Raw(srv) as raw:
        raw.send(request(C.ping() + b"\0" * 2000, a.token))
        status, _, _ = raw.response()
        assert status == 400
        assert raw.closed_by_server()
    # chunked: no length up front, the limit applies while reading
    with Raw(srv) as raw:
        raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\nTransfer-Encoding: chunked\r\n\r\n"
                 .encode())
        try:
            for _ in range(4):
                raw.send(b"200\r\n" + b"\0" * 512 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert raw.closed_by_server()
    # a body at the limit is still served
    with Raw(srv) as raw:
        raw.send(request(C.ping() + C.frame(C.C_PING, b"\0" * (1024 - 14)), a.token))
        status, _, _ = raw.response()
        assert status == 200
    assert_alive(srv)


# ---------------------------------------------------------------------------------------------
# clients that go away in the middle
# ---------------------------------------------------------------------------------------------
def test_disconnect_mid_headers_and_mid_body(server):
    a = server.connect()
    raw = Raw(server)
    raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-tok".encode())
    raw.close()
    raw = Raw(server)
    body = C.public_message("#osu", "half a message")
    raw.send(request(body, a.token)[:-5])
    time.sleep(0.1)  # the behaviour: the server has the partial body when the client leaves
    raw.close()
    # a chunked body cut in the middle of a chunk
    raw = Raw(server)
    raw.send(f"POST / HTTP/1.1\r\nHost: x\r\nosu-token: {a.token}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"
             .encode())
    time.sleep(0.1)  # the behaviour: the server is inside the chunk when the client leaves
    raw.close()
    assert_alive(server)
    assert_works(server, a)


def test_disconnect_during_login(server):
    """The client leaves while its login is being checked: the reply is dropped, nothing breaks,
    and the same account logs in again normally."""
    user = server.new_user()
    raw = Raw(server)
    raw.send(request(C.login_body(user.name, user.password)))
    raw.close()
    # the abandoned login runs to its end (its reply is dropped): wait for it in the log
    wait_until(lambda: f"login user={user.id} " in server.log_text(), timeout=15, what="the abandoned login")
    assert_alive(server)
    c = server.client()
    res = c.login(user.name, user.password)
    assert res.user_id == user.id
    assert_works(server, c)


def test_disconnect_before_reading_reply(server):
    """Many polls written and the socket closed at once (RST when unread data remains)."""
    a = server.connect()
    raw = Raw(server)
    raw.send(b"".join(request(C.ping(), a.token) for _ in range(50)))
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    raw.close()
    assert_alive(server)
    assert_works(server, a)
