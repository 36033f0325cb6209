#!/usr/bin/env python3
"""Issue #12 item 1 (docs/security.md, Hardening II): descriptor exhaustion by idle and
slowloris connections, at full size.

A pep.py with its open-file limit at 1,024 (soft and hard, through ``prlimit``) gets 2,000
hostile connections on the loopback, half idle, half slowloris (half a request header, then
nothing), then a legitimate client logs in and polls. Two layouts:

* ``one``: every hostile connection from one address (127.0.0.2 / 127.0.0.3): the per-address
  cap ``[server] max_connections_per_ip`` refuses all but 64 of each;
* ``spread``: the same 2,000 spread over 40 addresses (127.0.2.x), 50 each, under the cap:
  the descriptors run out and the server closes the connections that waited longest.

Printed per layout: hostile connections opened, how many the server still holds, the login and
poll times of the legitimate client (target: under 1 s), the growth of the server log (target:
under 100 KB) and the server's CPU over 10 s of attack. Loopback only; bounded counts.

Usage: ``python bench/attack_fd.py [--connections 2000] [--nofile 1024] [--layout one|spread|both]``
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import sys
import time

import benchlib as B

from tests.integration import netattack as N  # benchlib puts the repository on sys.path


def open_hostile(port: int, count: int, sources: list[str], deadline: float) -> list[socket.socket]:
    """``count`` connections round-robin over ``sources``; every second one sends half a header
    (tests/integration/netattack.py, shared with the Hardening II tests)."""
    return N.open_idle(port, count, sources, partial=b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: osu!\r\n",
                       deadline=deadline, partial_every=2)


async def legit(port: int, name: str) -> tuple[float, float]:
    pool = B.ConnPool(port, 1)
    try:
        started = time.monotonic()
        token, _, _ = await asyncio.wait_for(B.login_one(pool, name), 30)
        login = time.monotonic() - started
        started = time.monotonic()
        await asyncio.wait_for(pool.post(B.ping(), token), 30)
        return login, time.monotonic() - started
    finally:
        pool.close()


def run_layout(world: B.BenchWorld, report: B.Report, layout: str, names: list[str], count: int, nofile: int) -> None:
    port = B.free_port()
    env = world.env(port, f"{world.prefix}{layout}:", {"PEP_LOG_LEVEL": "INFO", "PEP_SERVER_UVLOOP": "0"})
    cmd = ["prlimit", f"--nofile={nofile}:{nofile}", "--", *B.pinned([B.PYTHON, "pep.py"], B.SERVER_CORE)]
    server = B.ServerProcess(cmd, env, port, world.dir / f"attack_fd_{layout}.log")
    world.servers.append(server)
    server.start()
    sources = ["127.0.0.2", "127.0.0.3"] if layout == "one" else [f"127.0.2.{n}" for n in range(1, 41)]
    log_before = server.log_path.stat().st_size
    socks = open_hostile(port, count, sources, deadline=60)
    try:
        time.sleep(1.5)
        cpu0 = server.cpu_seconds()
        time.sleep(10)
        cpu = server.cpu_seconds() - cpu0
        login, poll = B.run(legit(port, names.pop()))
        grown = server.log_path.stat().st_size - log_before
        report.figure(f"{layout}.hostile_opened", len(socks), "connections")
        report.figure(f"{layout}.hostile_held", N.still_open(socks), "connections")
        report.figure(f"{layout}.server_cpu_10s", cpu, "s")
        report.figure(f"{layout}.legit_login", login, "s")
        report.figure(f"{layout}.legit_poll", poll, "s")
        report.figure(f"{layout}.log_growth", grown / 1024, "KiB")
        report.check(f"{layout}.login_and_poll_under_1s", login + poll, 1.0, higher_is_better=False, unit="s")
        report.check(f"{layout}.log_growth_under_100KB", grown / 1000, 100, higher_is_better=False, unit="KB")
        if not server.alive():
            report.note(f"{layout}: the server died")
    finally:
        for s in socks:
            s.close()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--nofile", type=int, default=1024)
    parser.add_argument("--layout", choices=("one", "spread", "both"), default="both")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the attacker's own sockets
    if hard < args.connections + 100:
        print(f"attack_fd: this process may open only {hard} descriptors", file=sys.stderr)
        return 2
    report = B.Report("attack_fd")
    with B.BenchWorld() as world:
        names = [n for _, n in world.create_users(4, B.bcrypt_hash(10))]
        for layout in (("one", "spread") if args.layout == "both" else (args.layout,)):
            run_layout(world, report, layout, names, args.connections, args.nofile)
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
