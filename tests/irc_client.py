"""An IRC user for the integration tests, driven by the ``irc`` library from PyPI (jaraco/irc).

``IrcUser(server, user)`` gives ``user`` an IRC token (``pep.py irc-token``) and connects to the
server's IRC port. Everything the server sends is recorded as :class:`Event`s; ``wait(pred)``
processes the connection until an event satisfies ``pred`` (no sleeps).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from typing import Any, Callable

import irc.client
from jaraco.stream import buffer


@dataclasses.dataclass
class Event:
    type: str  # the library's name: "welcome", "pubmsg", "privmsg", "join", "part", "quit", "namreply", ...
    source: str  # nick (or server name)
    target: str
    args: list[str]
    raw: Any = None

    def text(self) -> str:
        return self.args[-1] if self.args else ""


class IrcUser:
    """One IRC connection (``irc.client.Reactor`` + ``ServerConnection``)."""

    def __init__(self, server: Any, name: str, token: str | None = None, nick: str | None = None,
                 connect: bool = True) -> None:
        self.server = server
        self.name = name
        self.nick = nick or name.replace(" ", "_")
        self.token = token if token is not None else server.irc_token(name)
        self.reactor = irc.client.Reactor()
        self.events: list[Event] = []
        self.seen = 0
        self.reactor.add_global_handler("all_events", self._record, -10)
        self.conn = self.reactor.server()
        self.conn.buffer_class = buffer.LenientDecodingLineBuffer
        if connect:
            self.conn.connect("127.0.0.1", server.irc_port, self.nick, password=self.token,
                              username=self.nick, ircname=self.nick)

    def _record(self, connection: Any, event: Any) -> None:
        source = event.source.nick if isinstance(event.source, irc.client.NickMask) and "!" in event.source \
            else str(event.source or "")
        self.events.append(Event(event.type, source, str(event.target or ""), [str(a) for a in event.arguments]))

    def pump(self, seconds: float = 0.05) -> None:
        self.reactor.process_once(seconds)

    def wait(self, pred: Callable[[Event], bool], timeout: float = 5.0, what: str = "an event",
             anywhere: bool = False) -> Event:
        """The first not-yet-consumed event with ``pred``; events before it are consumed.
        ``anywhere``: also look at consumed events (order does not matter)."""
        deadline = time.monotonic() + timeout
        while True:
            for index in range(0 if anywhere else self.seen, len(self.events)):
                event = self.events[index]
                if pred(event):
                    self.seen = max(self.seen, index + 1)
                    return event
            if time.monotonic() > deadline:
                tail = "\n".join(repr(e) for e in self.events[-25:])
                raise AssertionError(f"{self.nick}: no {what} within {timeout}s; last events:\n{tail}")
            self.pump()

    def wait_type(self, kind: str, pred: Callable[[Event], bool] = lambda e: True, timeout: float = 5.0) -> Event:
        return self.wait(lambda e: e.type == kind and pred(e), timeout, kind)

    def welcome(self) -> "IrcUser":
        self.wait_type("endofmotd", timeout=10)
        return self

    def privmsg(self, target: str, text: str) -> None:
        self.conn.privmsg(target, text)

    def join(self, channel: str) -> Event:
        self.conn.join(channel)
        return self.wait(lambda e: e.type == "endofnames" and e.args and e.args[0].lower() == channel.lower(),
                         what=f"NAMES end of {channel}")

    def close(self) -> None:
        try:
            if self.conn.is_connected():
                self.conn.quit("bye")
                self.pump(0.05)
            self.conn.close()
        except Exception:
            pass


class RawIrc:
    """A bare socket speaking IRC, for what a library would refuse to send (bad input)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def lines_until(self, pred: Callable[[str], bool], timeout: float = 5.0) -> list[str]:
        """Read lines until one satisfies ``pred``; returns all read. AssertionError on timeout or close."""
        deadline = time.monotonic() + timeout
        got: list[str] = []
        while True:
            while b"\n" in self.buf:
                raw, self.buf = self.buf.split(b"\n", 1)
                text = raw.rstrip(b"\r").decode("utf-8", "replace")
                got.append(text)
                if pred(text):
                    return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching line within {timeout}s; got {got[-20:]!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError(f"connection closed; got {got[-20:]!r}")
            self.buf += chunk

    def closed(self, timeout: float = 5.0) -> bool:
        """Read until the server closes the connection; True when it did within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
