#!/usr/bin/env python3
"""Issue #12 item 3 (docs/security.md, Hardening II): login limits under concurrency, full size.

A pep.py with the default limits (``[limits] login_failures_ip`` 20, ``login_failures_account``
10, ``bcrypt_queue`` 16) gets 1,000 simultaneous wrong logins that all claim one client address
(``X-Real-IP``, as behind the reverse proxy), each on its own connection; 0.2 s into the burst
another user logs in from another address. Then 100 simultaneous wrong logins on one account
from 100 addresses.

Printed: the bcrypt checks each burst cost (counted from the server log: every "wrong username
or password" refusal is one check; targets: at most the limits), how many were refused without
a check ("too many" or "busy"), the server's CPU per request and its share of a core during
the burst (below 1.0 when other processes took the core: the login time then grows with it),
and the other user's login time (target: under 1 s). Accounts use bcrypt
cost 10 like the website's. Loopback only; bounded counts.

Usage: ``python bench/attack_login.py [--burst 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time

import benchlib as B


async def one_login(port: int, body: bytes, ip: str) -> int | None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return None
    try:
        writer.write((f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: osu!\r\nConnection: close\r\n"
                      f"X-Real-IP: {ip}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        data = await asyncio.wait_for(reader.read(), 120)
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        writer.close()
    _, _, payload = data.partition(b"\r\n\r\n")
    for packet_id, value in B.split_frames(payload):
        if packet_id == 5 and len(value) >= 4:
            return int.from_bytes(value[:4], "little", signed=True)
    return None


async def burst_with_legit(port: int, bodies: list[tuple[bytes, str]], legit_name: str) -> tuple[list, float]:
    tasks = [asyncio.ensure_future(one_login(port, b, ip)) for b, ip in bodies]
    await asyncio.sleep(0.2)
    started = time.monotonic()
    reply = await one_login(port, B.login_body(legit_name), "198.18.0.1")
    legit = time.monotonic() - started
    if reply is None or reply <= 0:
        legit = float("inf")
    return list(await asyncio.gather(*tasks)), legit


def count(server: B.ServerProcess, text: str) -> int:
    return server.log_path.read_text("utf-8", "replace").count(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--burst", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    report = B.Report("attack_login")
    with B.BenchWorld() as world:
        users = [n for _, n in world.create_users(2, B.bcrypt_hash(10))]
        server = world.start_server({"PEP_LOG_LEVEL": "INFO"})
        wrong = "0" * 32
        bodies = [(B.login_body(f"nobody{i}", wrong), "203.0.113.50") for i in range(args.burst)]
        cpu0, wall0 = server.cpu_seconds(), time.monotonic()
        replies, legit = B.run(burst_with_legit(server.port, bodies, users[0]))
        cpu, wall = server.cpu_seconds() - cpu0, time.monotonic() - wall0
        checks = count(server, "reason=wrong username or password")
        report.figure("one_address.server_cpu_per_request_ms", 1000 * cpu / len(bodies), "ms")
        report.figure("one_address.server_core_share", cpu / wall, "")
        report.figure("one_address.attempts", len(bodies), "logins")
        report.figure("one_address.bcrypt_checks", checks, "checks")
        report.figure("one_address.refused_without_check", sum(1 for r in replies if r == -1) - checks, "logins")
        report.figure("one_address.unanswered", sum(1 for r in replies if r is None), "logins")
        report.figure("other_user_login", legit, "s")
        report.check("one_address.bcrypt_checks_within_limit", checks, 20, higher_is_better=False, unit="")
        report.check("other_user_login_under_1s", legit, 1.0, higher_is_better=False, unit="s")

        before = checks
        bodies = [(B.login_body(users[1], wrong), f"198.51.100.{i % 250 + 1}") for i in range(100)]
        replies, _ = B.run(burst_with_legit(server.port, bodies, users[0]))
        checks = count(server, "reason=wrong username or password") - before
        report.figure("one_account.attempts", len(bodies), "logins")
        report.figure("one_account.bcrypt_checks", checks, "checks")
        report.check("one_account.bcrypt_checks_within_limit", checks, 10, higher_is_better=False, unit="")
        if not server.alive():
            report.note("the server died")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
