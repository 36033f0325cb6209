#!/usr/bin/env python3
"""Soak test (issue #12, "Done when"): 500 users polling once a second for 5 minutes with chat
and status changes; the server must show 0 errors and flat memory.

Each simulated client has its own keep-alive connection and polls every second (a ping, plus
on average one status change every 20 s and one public message in ``#osu`` every 40 s, well
under the spam limit). Every reply is checked: HTTP 200, frames that split cleanly, and no
restart packet (86, which means the server forgot the session). The server's RSS is sampled
every 10 s.

Printed: requests, errors (by kind), the poll latency (p50, p99, max), RSS over time, and the
RSS growth between the end of the first minute (after the login storm and the first messages
settled) and the end (target: under 10 %); ERROR lines of the server log count as errors. The
server is pinned to one core and this load generator to the other (bench/README.md); on a
machine shared with other work the latency figures grow, the error count must not.

Usage: ``python bench/soak.py [--users 500] [--minutes 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time

import benchlib as B


async def client(idx: int, conn: B.HttpConn, token: str, stop: float, stats: dict, rng: random.Random) -> None:
    next_at = time.monotonic() + rng.random()
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if time.monotonic() >= stop:
            return
        next_at += 1.0
        body = B.ping()
        roll = rng.random()
        if roll < 1 / 20:
            body += B.change_action(2, f"Artist - Title {rng.randrange(1000)} [Hard]", beatmap_id=rng.randrange(1, 10**6))
        elif roll < 1 / 20 + 1 / 40:
            body += B.public_message("#osu", f"soak message {idx} {rng.randrange(10**6)}")
            stats["messages"] += 1
        started = time.perf_counter()
        try:
            status, _, data = await asyncio.wait_for(conn.post(body, token), 30)
        except (B.HttpError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            stats["errors"][type(exc).__name__] = stats["errors"].get(type(exc).__name__, 0) + 1
            continue
        stats["latency"].append(time.perf_counter() - started)
        stats["requests"] += 1
        if status != 200:
            stats["errors"][f"HTTP {status}"] = stats["errors"].get(f"HTTP {status}", 0) + 1
            continue
        try:
            frames = B.split_frames(data)
        except ValueError:
            stats["errors"]["bad frames"] = stats["errors"].get("bad frames", 0) + 1
            continue
        if any(p == 86 for p, _ in frames):
            stats["errors"]["restart packet"] = stats["errors"].get("restart packet", 0) + 1
        stats["received_messages"] += sum(1 for p, _ in frames if p == 7)


async def soak(port: int, tokens: list[str], seconds: float, server: B.ServerProcess, report: B.Report) -> dict:
    stats = {"requests": 0, "messages": 0, "received_messages": 0, "errors": {}, "latency": [], "rss": []}
    stop = time.monotonic() + seconds
    conns = [B.HttpConn(port) for _ in tokens]
    rng = random.Random(12)
    tasks = [asyncio.ensure_future(client(i, conns[i], t, stop, stats, random.Random(rng.random())))
             for i, t in enumerate(tokens)]
    started = time.monotonic()
    while time.monotonic() < stop:
        await asyncio.sleep(min(10.0, max(0.0, stop - time.monotonic())))
        elapsed = time.monotonic() - started
        rss = server.rss() / (1 << 20)
        stats["rss"].append((elapsed, rss))
        lat = sorted(stats["latency"][-5000:])
        print(f"soak: t={elapsed:6.0f} s  rss {rss:7.1f} MiB  requests {stats['requests']:8d}  "
              f"errors {sum(stats['errors'].values())}  p99 {1000 * B.percentile(lat, 99) if lat else 0:.1f} ms",
              flush=True)
    await asyncio.gather(*tasks)
    for c in conns:
        c.close()
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    B.pin_self()
    report = B.Report("soak")
    with B.BenchWorld() as world:
        names = [n for _, n in world.create_users(args.users, B.bcrypt_hash(4))]
        server = world.start_server()
        tokens, login_seconds, _ = B.run(B.login_many(server.port, names, concurrency=16, drain_every=250))
        report.figure("login_storm", login_seconds, "s")
        stats = B.run(soak(server.port, tokens, args.minutes * 60, server, report))
        problems = server.log_problems()
        lat = sorted(stats["latency"])
        errors = sum(stats["errors"].values()) + len(problems)
        report.figure("requests", stats["requests"], "polls")
        report.figure("messages_sent", stats["messages"], "messages")
        report.figure("messages_received", stats["received_messages"], "messages")
        report.figure("errors", errors, "")
        for kind, n in sorted(stats["errors"].items()):
            report.figure(f"errors.{kind.replace(' ', '_')}", n, "")
        report.figure("server_log_errors", len(problems), "lines")
        if lat:
            report.figure("poll_p50", 1000 * B.percentile(lat, 50), "ms")
            report.figure("poll_p99", 1000 * B.percentile(lat, 99), "ms")
            report.figure("poll_max", 1000 * lat[-1], "ms")
        rss = stats["rss"]
        if rss:
            report.figure("rss_start", rss[0][1], "MiB")
            report.figure("rss_end", rss[-1][1], "MiB")
            settled = next((r for t, r in rss if t >= min(60.0, rss[-1][0] / 3)), rss[0][1])
            growth = (rss[-1][1] - settled) / settled * 100
            report.figure("rss_growth_after_settling", growth, "%")
            report.check("rss_growth_after_settling_under_10pct", growth, 10, higher_is_better=False, unit="%")
        report.check("errors_zero", errors, 0, higher_is_better=False, unit="")
        for line in problems[:10]:
            report.note(f"server log: {line[:200]}")
        if not server.alive():
            report.note("the server died")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
