#!/usr/bin/env python3
"""IRC benchmark (docs/irc.md): N IRC connections in ``#osu`` next to N game users.

One pep.py pinned to the server core, with its IRC gateway on a free port. N game users log in
over HTTP and join ``#osu``; the game's poll latency is measured (``--rounds`` sweeps polling
every game token once at concurrency 16: p50/p99 per request and CPU per poll). Then N IRC
clients (plain asyncio sockets in this process, each with its own token in ``irc_tokens``)
register and join ``#osu``; the server's RSS before and after gives the memory per IRC
connection. Then:

* a game user says a marked line in ``#osu``: the time until **every** IRC client has read it
  (each client's reader notes the arrival), and until every game client has it (one poll sweep
  started right after the send);
* an IRC client says a marked line: the same two times;
* the poll latency is measured again with the IRC clients connected (reading everything).

Figures only (no pass/fail target): ``irc_fanout_ms``, ``game_fanout_ms``, ``rss_per_irc_kib``,
``poll_p50_ms``/``poll_p99_ms`` without and with IRC. Usage:
``python bench/irc.py [--users 1000] [--rounds 5]``; on a loaded machine use fewer users
(``--users 300``) and say so with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import sys
import time

import benchlib as bl


def channel_join(name: str) -> bytes:
    return bl.frame(63, bl.osu_string(name))


async def poll_latency(port: int, tokens: list[str], rounds: int) -> tuple[float, float, int]:
    """(p50 ms, p99 ms, requests) of polls: ``rounds`` sweeps over every token, concurrency 16."""
    pool = bl.ConnPool(port, 16)
    times: list[float] = []
    try:
        for _ in range(rounds):
            it = iter(tokens)

            async def worker() -> None:
                for token in it:
                    started = time.perf_counter()
                    await pool.post(bl.ping(), token)
                    times.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(16)))
    finally:
        pool.close()
    return bl.percentile(times, 50) * 1000, bl.percentile(times, 99) * 1000, len(times)


async def poll_figures(server: bl.ServerProcess, tokens: list[str], rounds: int, report: bl.Report,
                       label: str) -> tuple[float, float]:
    """Report poll p50/p99 (ms) and the server's CPU per poll (µs, one more sweep); returns (p50, p99)."""
    p50, p99, _ = await poll_latency(server.port, tokens, rounds)
    report.figure(f"poll_p50_ms_{label}", p50, "ms", "{:.3f}")
    report.figure(f"poll_p99_ms_{label}", p99, "ms", "{:.3f}")
    cpu0 = server.cpu_seconds()
    await poll_latency(server.port, tokens, 1)
    report.figure(f"poll_cpu_us_{label}", (server.cpu_seconds() - cpu0) / len(tokens) * 1e6, "us", "{:.1f}")
    return p50, p99


class IrcClient:
    """A minimal IRC client: registers, joins #osu, notes when a marked line arrives."""

    def __init__(self, nick: str, token: str) -> None:
        self.nick = nick
        self.token = token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.waiting: dict[str, float] = {}  # marker -> arrival time (0 until seen)
        self.joined = asyncio.Event()
        self.lines = 0

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        self.writer.write(f"PASS {self.token}\r\nNICK {self.nick}\r\nUSER {self.nick} 0 * :{self.nick}\r\n"
                          f"JOIN #osu\r\n".encode())
        await self.writer.drain()

    async def read(self) -> None:
        assert self.reader is not None and self.writer is not None
        while True:
            line = await self.reader.readline()
            if not line:
                return
            self.lines += 1
            if line.startswith(b"PING"):
                self.writer.write(b"PONG" + line[4:])
            elif b" 366 " in line:
                self.joined.set()
            elif self.waiting and b"PRIVMSG" in line:
                text = line.decode("utf-8", "replace")
                for marker, seen in self.waiting.items():
                    if not seen and marker in text:
                        self.waiting[marker] = time.perf_counter()

    def say(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(f"PRIVMSG #osu :{text}\r\n".encode())


async def irc_fanout(clients: list[IrcClient], send, marker: str, skip: IrcClient | None = None,
                     timeout: float = 60.0) -> float:
    """Seconds from ``send()`` until every client (but ``skip``) has read ``marker``."""
    targets = [c for c in clients if c is not skip]
    for c in targets:
        c.waiting[marker] = 0.0
    started = time.perf_counter()
    send()
    deadline = started + timeout
    while any(not c.waiting[marker] for c in targets):
        if time.perf_counter() > deadline:
            missing = sum(1 for c in targets if not c.waiting[marker])
            raise RuntimeError(f"{missing} IRC clients never got {marker!r}")
        await asyncio.sleep(0.002)
    return max(c.waiting[marker] for c in targets) - started


async def game_fanout(port: int, tokens: list[str], marker: bytes, started: float) -> float:
    """Seconds from ``started`` until one poll sweep over every game token has seen ``marker``
    (each token polled until it has it)."""
    pool = bl.ConnPool(port, 16)
    it = iter(tokens)
    try:
        async def worker() -> None:
            for token in it:
                for _ in range(200):
                    _, _, body = await pool.post(bl.ping(), token)
                    if marker in body:
                        break
                    await asyncio.sleep(0.01)
                else:
                    raise RuntimeError("a game client never got the message")

        await asyncio.gather(*(worker() for _ in range(16)))
    finally:
        pool.close()
    return time.perf_counter() - started


async def scenario(world: bl.BenchWorld, server: bl.ServerProcess, irc_port: int, game_tokens: list[str],
                   irc_users: list[tuple[str, str]], rounds: int, report: bl.Report) -> None:
    port = server.port
    p50, p99 = await poll_figures(server, game_tokens, rounds, report, "without_irc")
    await bl.poll_all(bl.ConnPool(port, 16), game_tokens)
    time.sleep(1.0)
    rss_before = server.rss()
    clients = [IrcClient(nick, token) for nick, token in irc_users]
    started = time.perf_counter()
    readers = []
    for start in range(0, len(clients), 50):
        batch = clients[start:start + 50]
        await asyncio.gather(*(c.connect(irc_port) for c in batch))
        readers += [asyncio.ensure_future(c.read()) for c in batch]
        await asyncio.wait_for(asyncio.gather(*(c.joined.wait() for c in batch)), 60)
    report.figure("irc_connect_and_join_s", time.perf_counter() - started, "s", "{:.1f}")
    await bl.poll_all(bl.ConnPool(port, 16), game_tokens)  # the JOIN-induced presence packets
    await asyncio.sleep(1.0)
    rss_after = server.rss()
    report.figure("rss_per_irc_connection_kib", (rss_after - rss_before) / len(clients) / 1024, "KiB", "{:.1f}")

    # a game user speaks: every IRC client, then every game client
    pool = bl.ConnPool(port, 1)
    marker = f"bench-{secrets.token_hex(4)}"
    sent_at = [0.0]

    def game_send() -> None:
        sent_at[0] = time.perf_counter()
        asyncio.ensure_future(pool.post(bl.public_message("#osu", marker), game_tokens[0]))

    irc_s = await irc_fanout(clients, game_send, marker)
    report.figure("game_to_all_irc_ms", irc_s * 1000, "ms", "{:.1f}")
    game_s = await game_fanout(port, game_tokens[1:], marker.encode(), sent_at[0])
    report.figure("game_to_all_game_ms", game_s * 1000, "ms", "{:.1f}")
    pool.close()
    # an IRC user speaks
    marker = f"bench-{secrets.token_hex(4)}"
    speaker = clients[0]

    def irc_send() -> None:
        sent_at[0] = time.perf_counter()
        speaker.say(marker)

    irc_s = await irc_fanout(clients, irc_send, marker, skip=speaker)
    report.figure("irc_to_all_irc_ms", irc_s * 1000, "ms", "{:.1f}")
    game_s = await game_fanout(port, game_tokens, marker.encode(), sent_at[0])
    report.figure("irc_to_all_game_ms", game_s * 1000, "ms", "{:.1f}")

    p50b, p99b = await poll_figures(server, game_tokens, rounds, report, "with_irc")
    report.note(f"poll p50 with/without IRC: {p50b / p50:.2f}x; p99 {p99b / p99:.2f}x "
                f"({len(clients)} IRC connections, {len(game_tokens)} game users; load {bl.load_average()})")
    for c in clients:
        if c.writer is not None:
            c.writer.close()
    for r in readers:
        r.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description="pep.py IRC gateway benchmark")
    parser.add_argument("--users", type=int, default=1000, help="game users and IRC connections (each)")
    parser.add_argument("--rounds", type=int, default=5, help="poll sweeps per latency measurement")
    args = parser.parse_args()
    bl.pin_self()
    report = bl.Report("irc")
    n = args.users
    with bl.BenchWorld() as world:
        game = world.create_users(n, bl.bcrypt_hash(4), stem="g")
        irc = world.create_users(n, bl.bcrypt_hash(4), stem="i")
        tokens = {name: secrets.token_hex(16) for _, name in irc}
        world.sql().executemany("REPLACE INTO irc_tokens (userid, token) VALUES (%s, %s)",
                                [(uid, hashlib.md5(tokens[name].encode()).hexdigest()) for uid, name in irc])
        irc_port = bl.free_port()
        server = world.start_server({"PEP_IRC_PORT": str(irc_port), "PEP_IRC_MAX_PER_IP": str(n + 10),
                                     "PEP_IRC_MAX_CONNECTIONS": str(n + 10), "PEP_CHAT_SPAM_LIMIT": "100000"})
        game_tokens, secs, _ = bl.run(bl.login_many(server.port, [name for _, name in game], 16, drain_every=250))
        report.figure("game_logins_s", secs, "s", "{:.1f}")

        async def join_all() -> None:
            pool = bl.ConnPool(server.port, 16)
            try:
                await bl.poll_all(pool, game_tokens, body=channel_join("#osu"))
                await bl.poll_all(pool, game_tokens)
            finally:
                pool.close()

        bl.run(join_all())
        bl.run(scenario(world, server, irc_port, game_tokens, [(name, tokens[name]) for _, name in irc],
                        args.rounds, report))
        problems = server.log_problems()
        if problems:
            report.note(f"server log has {len(problems)} error lines, first: {problems[0][:200]}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
