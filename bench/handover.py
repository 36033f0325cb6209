#!/usr/bin/env python3
"""Restart with 1,000 online users: hand-over (SIGUSR2) against today's reconnect.

Both legs run in the same run, against two servers on the same database:

* **hand-over** (``[sessions] handover = 1``, the default): N users online, each polling once
  a second on its own schedule (a pool of keep-alive connections, like clients behind a proxy);
  after a few seconds SIGUSR2. Printed: failed polls (no answer, HTTP error, a restart packet 86
  or a login reply 5 in an answer), logins (must stay 0), the longest poll stall (from sending a
  poll to its answer; target <= 1 s), p99 poll latency during the swap, and the swap time the
  server logged (quiesce + snapshot + transfer + load).
* **reconnect** (``[sessions] handover = 0``, today's behaviour): the same N users online on a
  second server, polling the same way; SIGUSR2 re-executes the process and every client is told
  to reconnect (86). Each simulated client does what osu! does: waits the announced delay, logs
  in again (retrying while refused), then polls on. Printed: time from the signal until every
  user is back online, and the logins that took (each a bcrypt check: the password cache is
  empty after a restart).

Checks: failed polls == 0, logins == 0, longest stall <= 1 s. The reconnect time is the
baseline the hand-over is compared with (ratio printed).

Usage: ``python bench/handover.py [--users 1000] [--before 3] [--after 6]``. With fewer users
on a loaded machine, say so when quoting the figures (bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402


class Stats:
    def __init__(self) -> None:
        self.polls = 0
        self.failed: list[str] = []
        self.forbidden = 0  # 86 or 5 in a poll answer
        self.logins = 0
        self.latencies: list[tuple[float, float]] = []  # (monotonic send time, seconds)
        self.back: dict[int, float] = {}  # user index -> monotonic time it was online again


def packet_ids(body: bytes) -> list[int]:
    out = []
    pos = 0
    while pos + 7 <= len(body):
        packet_id, _, length = struct.unpack_from("<HBI", body, pos)
        out.append(packet_id)
        pos += 7 + length
    return out


def restart_delay(body: bytes) -> int | None:
    pos = 0
    while pos + 7 <= len(body):
        packet_id, _, length = struct.unpack_from("<HBI", body, pos)
        if packet_id == 86 and length >= 4:
            return struct.unpack_from("<i", body, pos + 7)[0]
        pos += 7 + length
    return None


async def client(index: int, name: str, token: str, pool: bl.ConnPool, stats: Stats, stop: asyncio.Event,
                 reconnect: bool, signalled: list[float]) -> None:
    """One user polling once a second; with ``reconnect`` it follows 86 like the osu! client."""
    await asyncio.sleep((index % 1000) / 1000)  # spread the users over the second
    next_at = time.monotonic()
    while not stop.is_set():
        sent = time.monotonic()
        try:
            status, _, body = await pool.post(bl.ping(), token)
        except Exception as exc:  # noqa: BLE001 - every failure counts
            stats.failed.append(f"{name}: {exc!r}")
            status, body = 0, b""
        took = time.monotonic() - sent
        stats.latencies.append((sent, took))
        stats.polls += 1
        if status != 200 and status != 0:
            stats.failed.append(f"{name}: HTTP {status}")
        delay = restart_delay(body) if status == 200 else None
        if delay is not None or (status == 200 and 5 in packet_ids(body)):
            stats.forbidden += 1
            if not reconnect:
                stats.failed.append(f"{name}: restart/login packet in a poll")
        if reconnect and delay is not None:
            await asyncio.sleep(max(0, delay) / 1000)
            while not stop.is_set():
                try:
                    token, _, _ = await bl.login_one(pool, name)
                    stats.logins += 1
                    break
                except Exception:  # noqa: BLE001 - refused while restarting / down: retry
                    await asyncio.sleep(1.0)
            if signalled:
                stats.back[index] = time.monotonic()
        next_at += 1.0
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def leg(port: int, names: list[str], tokens: list[str], pid: int, reconnect: bool, before: float,
              after: float, wait_back: float) -> tuple[Stats, float]:
    """Poll, signal, poll on; returns (stats, monotonic time of the signal)."""
    stats = Stats()
    stop = asyncio.Event()
    pool = bl.ConnPool(port, min(256, max(16, len(names) // 4)))
    signalled: list[float] = []
    tasks = [asyncio.ensure_future(client(i, n, t, pool, stats, stop, reconnect, signalled))
             for i, (n, t) in enumerate(zip(names, tokens))]
    await asyncio.sleep(before)
    signalled.append(time.monotonic())
    os.kill(pid, signal.SIGUSR2)
    if reconnect:
        deadline = time.monotonic() + wait_back
        while len(stats.back) < len(names) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
    else:
        await asyncio.sleep(after)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    pool.close()
    return stats, signalled[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--before", type=float, default=3.0, help="seconds of polling before the signal")
    parser.add_argument("--after", type=float, default=8.0, help="seconds of polling after it (hand-over leg)")
    parser.add_argument("--wait-back", type=float, default=600.0, help="longest wait for the reconnect leg")
    args = parser.parse_args()
    report = bl.Report("handover")
    if args.users < 1000:
        report.note(f"{args.users} users instead of 1,000 (--users)")
    bl.pin_self()
    with bl.BenchWorld() as world:
        rows = world.create_users(args.users * 2, bl.bcrypt_hash(10))
        names_a = [n for _, n in rows[:args.users]]
        names_b = [n for _, n in rows[args.users:]]
        common = {"PEP_LOG_LEVEL": "INFO", "PEP_SERVER_RECONNECT_DELAY": "1", "PEP_SERVER_SHUTDOWN_GRACE": "3"}
        new_pid = None
        try:
            # ---------------------------------------------------------------- hand-over
            server = world.start_server(dict(common, PEP_SESSIONS_HANDOVER="1"), name="handover")
            tokens, seconds, _ = bl.run(bl.login_many(server.port, names_a, concurrency=16,
                                                      drain_every=200))
            report.figure("cold_logins_per_s", len(names_a) / seconds, "logins/s")
            stats, at = bl.run(leg(server.port, names_a, tokens, server.pid, False, args.before, args.after, 0))
            log = server.log_path.read_text(errors="replace")
            found = re.findall(r"new process pid=(\d+) started", log)
            new_pid = int(found[-1]) if found else None
            swap = re.findall(r"swap took (\d+) ms", log)
            window = [took for sent, took in stats.latencies if at - 1 <= sent <= at + args.after]
            longest = max((took for _, took in stats.latencies), default=0.0)
            report.figure("handover_polls", stats.polls, "polls")
            report.figure("handover_failed_polls", len(stats.failed), "polls")
            report.figure("handover_restart_or_login_packets", stats.forbidden, "packets")
            report.figure("handover_logins", stats.logins, "logins")
            report.figure("handover_longest_stall", longest * 1000, "ms")
            report.figure("handover_p99_during_swap", bl.percentile(window, 99) * 1000 if window else 0, "ms")
            if swap:
                report.figure("handover_swap_server_side", int(swap[-1]), "ms")
            else:
                report.note("the server log has no hand-over line: " + log[-800:])
            for line in stats.failed[:5]:
                report.note("failed poll: " + line)
            report.check("handover_failed_polls_is_0", 1.0 if not stats.failed and not stats.forbidden else 0.0, 1.0,
                         f"{len(stats.failed)} failed, {stats.forbidden} restart/login packets")
            report.check("handover_logins_is_0", 1.0 if stats.logins == 0 else 0.0, 1.0)
            report.check("handover_longest_stall_s", longest, 1.0, higher_is_better=False, unit="s")
            if new_pid is not None:
                os.kill(new_pid, signal.SIGTERM)
            # ---------------------------------------------------------------- reconnect (today)
            server_b = world.start_server(dict(common, PEP_SESSIONS_HANDOVER="0"), name="reconnect")
            tokens_b, _, _ = bl.run(bl.login_many(server_b.port, names_b, concurrency=16, drain_every=200))
            stats_b, at_b = bl.run(leg(server_b.port, names_b, tokens_b, server_b.pid, True, args.before, 0,
                                       args.wait_back))
            back = len(stats_b.back)
            all_back = (max(stats_b.back.values()) - at_b) if back == len(names_b) else float("nan")
            report.figure("reconnect_users_back_online", back, "users")
            report.figure("reconnect_logins", stats_b.logins, "logins")
            report.figure("reconnect_time_until_all_back", all_back, "s")
            longest_b = max((took for _, took in stats_b.latencies), default=0.0)
            report.figure("reconnect_longest_poll", longest_b * 1000, "ms")
            if longest > 0 and all_back == all_back:
                report.figure("reconnect_time_over_handover_stall", all_back / longest, "x")
        finally:
            if new_pid is not None:
                try:
                    os.kill(new_pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
