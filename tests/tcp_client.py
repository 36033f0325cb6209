"""A TCP-era osu! client (builds b20121203 to b20130815) for integration tests, on ``chio``.

Those builds open one TCP connection, write three login lines ending in ``\\r\\n`` and then
exchange framed packets both ways (docs/protocol.md §1.9). This client speaks that over a real
socket. Payloads are encoded and decoded with chio's class for the client's build
(``chio.select_client(build)``: its message, status and spectator-frame layouts) and chio's
primitives for the rest, the same way as :mod:`tests.client`; the server's own codec is never
used here.
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable

import pytest
from chio import io as cio
from chio.types import Message, UserStatus

from tests import client as http_client
from tests.client import Packet, default_hashes, frame, md5hex, packet_name

if TYPE_CHECKING:
    from tests.conftest import TestServer

#: the oldest and the newest TCP build chio knows (its classes b20121203 and b20130801)
OLDEST = 20121203
NEWEST = 20130801


class TcpClient:
    """One simulated TCP-era client of ``build`` (an int like 20121203) connected to
    ``host:port``. ``received`` holds every decoded packet, ``inbox`` those not yet consumed by
    :meth:`wait_for`."""

    def __init__(self, host: str, port: int, build: int = OLDEST, timeout: float = 10.0,
                 source: str | None = None) -> None:
        self.build = build
        self.io = http_client.client_io(build)
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = bytearray()
        self.received: list[Packet] = []
        self.inbox: list[Packet] = []
        self.eof = False
        self.user_id: int | None = None
        self.username: str | None = None

    # ------------------------------------------------------------------ encoding
    def client_info(self, hashes: str, utc_offset: int = 1) -> str:
        """``version|utc_offset|display_city|hashes`` (+ ``|block_nonfriend_pm`` from b20130131,
        the build that introduced the toggle: chio b20130131)."""
        info = f"b{self.build}|{utc_offset}|1|{hashes}"
        if self.build >= 20130131:
            info += "|0"
        return info

    def login_lines(self, username: str, password: str, hashes: str | None = None) -> bytes:
        hashes = hashes if hashes is not None else default_hashes(username)
        return f"{username}\r\n{md5hex(password)}\r\n{self.client_info(hashes)}\r\n".encode()

    def message_frame(self, packet_id: int, target: str, content: str) -> bytes:
        """Packet 1 (public) or 25 (private) in this build's message layout (chio's
        ``write_message``: ``sender_id`` only from b20121225)."""
        msg = Message(sender=self.username or "", content=content, target=target, sender_id=self.user_id or 0)
        (_, payload), = list(self.io.write_message(msg))
        return frame(packet_id, payload)

    def status_frame(self, status: UserStatus) -> bytes:
        """Packet 0 in this build's status layout (chio's ``write_status_update``)."""
        return frame(http_client.C_CHANGE_ACTION, self.io.write_status_update(status))

    # ------------------------------------------------------------------ decoding
    def decode(self, packet_id: int, payload: bytes) -> Any:
        """A server packet as this build reads it (:func:`tests.client.decode_payload` with
        chio's class of the build: messages, stats, quits, matches, score frames, spectator
        frames in the build's own layout)."""
        return http_client.decode_payload(packet_id, payload, self.io)

    def _cut(self) -> None:
        buf = self.buf
        while len(buf) >= 7:
            stream = cio.MemoryStream(bytes(buf[:7]))
            packet_id = cio.read_u16(stream)
            cio.read_u8(stream)
            length = cio.read_u32(stream)
            if len(buf) < 7 + length:
                return
            payload = bytes(buf[7:7 + length])
            del buf[:7 + length]
            packet = Packet(packet_id, packet_name(packet_id), self.decode(packet_id, payload), payload)
            self.received.append(packet)
            self.inbox.append(packet)

    def read(self, wait: float = 0.2) -> int:
        """Read what arrives within ``wait`` seconds; returns the bytes read (0 also at EOF)."""
        if self.eof:
            return 0
        self.sock.settimeout(wait)
        total = 0
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.eof = True
                    break
                total += len(data)
                self.buf += data
                self.sock.settimeout(0.01)
        except (socket.timeout, BlockingIOError):
            pass
        except (ConnectionResetError, BrokenPipeError):
            self.eof = True
        self._cut()
        return total

    # ------------------------------------------------------------------ actions
    def send(self, *frames: bytes) -> None:
        self.sock.sendall(b"".join(frames))

    def login(self, username: str, password: str = "password", timeout: float = 15.0) -> int | None:
        """Write the login lines and wait for the login reply (5); returns its value (the user
        id, or a negative code)."""
        self.send(self.login_lines(username, password))
        reply = self.wait_for(lambda p: p.id == http_client.LOGIN_REPLY, timeout=timeout, consume=False,
                              description="login reply")
        value = reply.value
        if value is not None and value > 0:
            self.user_id = value
            self.username = username
        return value

    def wait_for(self, predicate: Callable[[Packet], bool], timeout: float = 10.0, consume: bool = True,
                 description: str = "") -> Packet:
        """The first unconsumed packet matching ``predicate``, reading until it arrives."""
        deadline = time.monotonic() + timeout
        while True:
            for i, p in enumerate(self.inbox):
                if predicate(p):
                    if consume:
                        del self.inbox[i]
                    return p
            if time.monotonic() >= deadline or self.eof:
                raise AssertionError(f"b{self.build} client: no packet matching {description or predicate} "
                                     f"within {timeout}s (eof={self.eof}); unconsumed: {self.inbox!r}")
            self.read(0.1)

    def wait_closed(self, timeout: float = 10.0) -> bool:
        """Read (and decode) until the server closes the connection; True when it did."""
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self.read(0.2)
        return self.eof

    def drain(self, rounds: int = 1, pause: float = 0.05) -> list[Packet]:
        """Read what is there now and empty the inbox (``rounds`` reads of ``pause`` + 0.25 s;
        the signature of :meth:`tests.client.BanchoClient.drain`)."""
        for _ in range(max(1, rounds)):
            self.read(0.25 + pause)
        out = list(self.inbox)
        self.inbox.clear()
        return out

    def poll(self) -> list[Packet]:
        """What arrived meanwhile (a short read): with :meth:`send`, :attr:`inbox`,
        :meth:`drain`, ``build``, ``io``, ``user_id`` and ``username`` this client can be driven
        by the helpers written for :class:`tests.client.BanchoClient` (``tests.client.wait_for``,
        the build matrix's match round and spectating)."""
        before = len(self.received)
        self.read(0.05)
        return self.received[before:]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> TcpClient:
        """``with TcpClient(...) as c``: the client, closed when the block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture(scope="module")
def tcp_server_factory(_test_world):
    """Module-scoped: ``factory(env) -> TestServer`` with the TCP listener on a free port
    (``srv.tcp_port``), on the run's database (tests/conftest.py ``extra_servers``, once per
    module instead of once per test). Import it into a test module to use it."""
    from tests.conftest import extra_servers, free_port

    with extra_servers(_test_world, "tcp") as make:
        def factory(env: dict[str, str]) -> TestServer:
            srv = make({"PEP_SERVER_TCP_PORT": str(free_port()), **env})
            srv.tcp_port = int(srv.proc.env["PEP_SERVER_TCP_PORT"])  # a retried start may have moved it
            return srv

        yield factory


def of(packets: Iterable[Packet], packet_id: int) -> list[Packet]:
    return [p for p in packets if p.id == packet_id]


__all__ = ["TcpClient", "OLDEST", "NEWEST", "UserStatus", "of", "tcp_server_factory"]
