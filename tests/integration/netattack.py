"""Small loopback attack tools for the Hardening II tests and benchmarks (network and services).

Everything here talks to 127.0.0.0/8 only and is bounded by the counts and timeouts its caller
gives. Used by ``tests/integration/test_hardening_net.py`` and ``bench/attack_*.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Sequence

from tests import client as C


def raw_request(path: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    """An HTTP/1.1 request with ``Connection: close`` (bytes)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "User-Agent: osu!", "Connection: close",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(port: int, request: bytes, timeout: float = 30.0, source: str | None = None) -> tuple[int, dict, bytes]:
    """Send ``request`` on a new connection and read the whole answer (server closes it).

    Returns (HTTP status, headers with lower-case names, body); status 0 when the connection
    failed or was closed without an answer.
    """
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0) if source else None), timeout)
    except (OSError, asyncio.TimeoutError):
        return 0, {}, b""
    try:
        writer.write(request)
        data = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, asyncio.TimeoutError):
        return 0, {}, b""
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        return 0, {}, b""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


async def login_burst(port: int, bodies: list[tuple[bytes, dict[str, str]]], timeout: float = 60.0) -> list[int | None]:
    """Send every login body at once, each on its own connection; returns each login reply
    (packet 5 value, None when there was none)."""
    async def one(body: bytes, headers: dict[str, str]) -> int | None:
        status, _, data = await exchange(port, raw_request("/", body, headers), timeout)
        if status != 200:
            return None
        replies = [p.value for p in C.decode_packets(data) if p.id == 5]
        return replies[0] if replies else None

    return list(await asyncio.gather(*(one(b, h) for b, h in bodies)))


def login_timed(url: str, name: str, password: str = "password", headers: dict | None = None) -> tuple[int | None, float]:
    """Log ``name`` in with the test client; returns (login reply, seconds)."""
    started = time.monotonic()
    result = C.BanchoClient(url).login(name, password, headers=headers)
    return result.user_id, time.monotonic() - started


def open_idle(port: int, count: int, source: str | Sequence[str] = "127.0.0.2", partial: bytes = b"",
              timeout: float = 0.3, deadline: float = 10.0, partial_every: int = 1) -> list[socket.socket]:
    """Open up to ``count`` connections from ``source`` (one address, or several used in turn)
    within ``deadline`` seconds and leave them idle, after sending ``partial`` (e.g. half a
    header for a slowloris) on every ``partial_every``-th one (1: all). Connections that
    cannot be opened are skipped; returns the open sockets (the caller closes them)."""
    sources = [source] if isinstance(source, str) else list(source)
    socks = []
    stop_at = time.monotonic() + deadline
    for i in range(count):
        if time.monotonic() > stop_at:
            break
        s = socket.socket()
        s.settimeout(timeout)
        try:
            s.bind((sources[i % len(sources)], 0))
            s.connect(("127.0.0.1", port))
            if partial and i % partial_every == partial_every - 1:
                s.sendall(partial)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed (non-blocking peek)."""
    alive = 0
    for s in socks:
        try:
            data = s.recv(1, socket.MSG_PEEK)
            if data:
                alive += 1
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc), seconds."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` (Linux /proc), MiB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def slow_bodies(port: int, count: int, declared: int, sent: int, headers: dict[str, str] | None = None,
                source: str = "127.0.0.1") -> list[socket.socket]:
    """Open ``count`` connections that each declare a body of ``declared`` bytes on ``POST /``,
    send ``sent`` bytes of it and stop. Returns the sockets (the caller closes them)."""
    head = [f"POST / HTTP/1.1", "Host: 127.0.0.1", "User-Agent: osu!", f"Content-Length: {declared}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + b"\x00" * sent
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.settimeout(2.0)
        try:
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(request)
        except OSError:
            pass
        s.setblocking(False)
        socks.append(s)
    return socks
