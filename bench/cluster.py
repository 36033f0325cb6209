#!/usr/bin/env python3
"""Cluster benchmarks (docs/cluster.md): what several nodes cost and give.

1. **Cross-node delivery latency.** Two nodes (``[cluster] node_id`` n1, n2) on one Redis
   prefix; a sender logged in on n1, a receiver on n2 that polls in a tight loop. Each sample
   is the time from the start of the sender's request carrying a message (a ``#osu`` line, then
   a private message) to the end of the receiver's poll that carries it: the event through
   Redis pub/sub, its application on n2, plus at most one poll round trip of the receiver.
   Figures p50/p99; target p99 <= 5 ms.
2. **CPU per idle poll, cluster node vs single process.** The same users (``--users``, half of
   them on each node in the cluster case) polled with a ping by this script's keep-alive
   connections; the server's CPU time (``/proc``) divided by the polls it answered. Target:
   cluster / single <= 1.1 (issue #14: the poll path does not touch Redis).
3. **Combined throughput.** One node pinned to the server core, then two nodes pinned to the
   two cores, each polled at ``--concurrency`` by the load generator of this script (which
   shares the cores: that is why the CPU per request of each server is printed next to the
   rates). Printed, no target.

Usage: ``python bench/cluster.py [--users 400] [--samples 300] [--seconds 8] [--concurrency 32]``.
Exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import struct
import sys
import time

import benchlib as bl

LATENCY_P99_TARGET_MS = 5.0
CPU_RATIO_TARGET = 1.1


def osu_message(target: str, text: str) -> bytes:
    """Public (1) or private (25) message frame: sender, text, target (osu! strings), i32 0."""
    payload = bl.osu_string("") + bl.osu_string(text) + bl.osu_string(target) + struct.pack("<i", 0)
    return bl.frame(25 if not target.startswith("#") else 1, payload)


async def _poll_until(conn: bl.HttpConn, token: str, needle: bytes, timeout: float = 5.0) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        _, _, body = await conn.post(b"", token)
        if needle in body:
            return True
    return False


async def latency(port_a: int, port_b: int, names: list[str], samples: int) -> dict[str, list[float]]:
    """Message latency samples (ms) from a user on ``port_a`` to one on ``port_b``."""
    tokens_a, _, _ = await bl.login_many(port_a, names[:1], concurrency=1)
    tokens_b, _, _ = await bl.login_many(port_b, names[1:2], concurrency=1)
    sender, receiver = bl.HttpConn(port_a), bl.HttpConn(port_b)
    await asyncio.sleep(0.5)  # the logins reach the other node
    await sender.post(bl.ping(), tokens_a[0])
    await receiver.post(bl.ping(), tokens_b[0])
    out: dict[str, list[float]] = {"channel": [], "private": []}
    try:
        for kind, target in (("channel", "#osu"), ("private", names[1])):
            for i in range(samples):
                text = f"{kind}-{i}-{secrets.token_hex(4)}"
                started = time.perf_counter()
                await sender.post(osu_message(target, text), tokens_a[0])
                if not await _poll_until(receiver, tokens_b[0], text.encode()):
                    raise RuntimeError(f"{kind} message {i} not delivered within 5 s")
                out[kind].append((time.perf_counter() - started) * 1000)
    finally:
        sender.close()
        receiver.close()
    return out


async def idle_polls(targets: list[tuple[int, list[str]]], seconds: float, concurrency: int) -> list[int]:
    """Ping every token of each ``(port, tokens)`` round-robin for ``seconds``; returns the
    number of polls answered per target."""
    counts = [0] * len(targets)
    deadline = time.perf_counter() + seconds

    async def worker(index: int, conn: bl.HttpConn, tokens: list[str], start: int) -> None:
        body = bl.ping()
        i = start
        while time.perf_counter() < deadline:
            status, _, _ = await conn.post(body, tokens[i % len(tokens)])
            if status != 200:
                raise bl.HttpError(f"poll answered HTTP {status}")
            counts[index] += 1
            i += concurrency

    conns = []
    tasks = []
    for index, (port, tokens) in enumerate(targets):
        for k in range(concurrency):
            conn = bl.HttpConn(port)
            conns.append(conn)
            tasks.append(worker(index, conn, tokens, k))
    try:
        await asyncio.gather(*tasks)
    finally:
        for conn in conns:
            conn.close()
    return counts


def measure(servers: list[bl.ServerProcess], tokens: list[list[str]], seconds: float,
            concurrency: int) -> list[tuple[int, float]]:
    """(polls, server CPU seconds) of each server during one idle-poll run."""
    cpu0 = [s.cpu_seconds() for s in servers]
    counts = bl.run(idle_polls([(s.port, t) for s, t in zip(servers, tokens)], seconds, concurrency))
    return [(n, s.cpu_seconds() - c) for n, s, c in zip(counts, servers, cpu0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    report = bl.Report("cluster")
    half = args.users // 2
    with bl.BenchWorld() as world:
        users = world.create_users(args.users + 2, bl.bcrypt_hash(4))
        names = [name for _, name in users]
        cluster_prefix = f"{world.prefix}c:"

        def node(node_id: str, core: int) -> bl.ServerProcess:
            return world.start_server({"PEP_CLUSTER_NODE_ID": node_id, "PEP_REDIS_KEY_PREFIX": cluster_prefix,
                                       "PEP_CHAT_SPAM_LIMIT": "100000", "PEP_IRC_ENABLED": "0"},
                                      core=core, name=node_id)

        # ---- single process: CPU per idle poll and throughput of one node
        single = world.start_server({"PEP_IRC_ENABLED": "0"}, core=bl.SERVER_CORE, name="single")
        tokens, _, _ = bl.run(bl.login_many(single.port, names[2:2 + half], drain=None, drain_every=100))
        bl.run(bl.poll_all(bl.ConnPool(single.port, 8), tokens))
        (polls, cpu), = measure([single], [tokens], args.seconds, args.concurrency)
        single_cpu_us = cpu / max(1, polls) * 1e6
        report.figure("single_idle_polls_per_s", polls / args.seconds, "req/s")
        report.figure("single_cpu_per_poll", single_cpu_us, "us")
        single.stop()

        # ---- two nodes
        n1 = node("n1", bl.SERVER_CORE)
        n2 = node("n2", bl.LOAD_CORE)
        lat = bl.run(latency(n1.port, n2.port, names[:2], args.samples))
        for kind, values in lat.items():
            report.figure(f"{kind}_latency_p50", bl.percentile(values, 50), "ms", "{:.3f}")
            report.figure(f"{kind}_latency_p99", bl.percentile(values, 99), "ms", "{:.3f}")
            report.check(f"{kind}_latency_p99_ms", bl.percentile(values, 99), LATENCY_P99_TARGET_MS,
                         higher_is_better=False, unit="ms")
        tokens1, _, _ = bl.run(bl.login_many(n1.port, names[2:2 + half], drain_every=100))
        tokens2, _, _ = bl.run(bl.login_many(n2.port, names[2 + half:2 + 2 * half], drain_every=100))
        time.sleep(1.0)  # the presences of the other node arrive
        bl.run(bl.poll_all(bl.ConnPool(n1.port, 8), tokens1))
        bl.run(bl.poll_all(bl.ConnPool(n2.port, 8), tokens2))
        (polls1, cpu1), = measure([n1], [tokens1], args.seconds, args.concurrency)
        cluster_cpu_us = cpu1 / max(1, polls1) * 1e6
        report.figure("cluster_idle_polls_per_s", polls1 / args.seconds, "req/s")
        report.figure("cluster_cpu_per_poll", cluster_cpu_us, "us")
        report.check("cluster_cpu_per_poll_vs_single", cluster_cpu_us / single_cpu_us, CPU_RATIO_TARGET,
                     detail=f"{cluster_cpu_us:.1f} us vs {single_cpu_us:.1f} us; world of {2 * half} users",
                     higher_is_better=False)
        # ---- combined throughput: both nodes at once
        (p1, c1), (p2, c2) = measure([n1, n2], [tokens1, tokens2], args.seconds, args.concurrency)
        report.figure("two_nodes_polls_per_s", (p1 + p2) / args.seconds, "req/s")
        report.figure("two_nodes_cpu_per_poll_n1", c1 / max(1, p1) * 1e6, "us")
        report.figure("two_nodes_cpu_per_poll_n2", c2 / max(1, p2) * 1e6, "us")
        report.figure("two_nodes_vs_one_throughput", (p1 + p2) / max(1, polls), "x", "{:.3f}")
        report.note("the load generator (this script) shares the two cores with the nodes; compare the "
                    "CPU per poll, which it does not inflate")
        for server in (n1, n2):
            for line in server.log_problems()[:5]:
                report.note(f"server log: {line}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
