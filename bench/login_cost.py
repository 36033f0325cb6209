#!/usr/bin/env python3
"""The server CPU of one login beyond the bcrypt check, at few and at many users online.

One pep.py pinned to the server core, accounts with a cost-4 bcrypt hash. ``--small`` users
(default 100) log in and then log in again ``--relogins`` times in all (warm: the password
cache skips bcrypt, each login replaces the user's session): the fixed cost of a login. Then
users are logged in up to ``--online`` (default 5,000; every token polled once per 250 logins,
as in bench/memory.py), the queues drained, and ``--relogins`` of the idle users log in again
without and then with ``Accept-Encoding: gzip``: the cost at that many online (every presence
in the reply, the own presence broadcast to everyone). Server CPU is user + system time of the
whole process (/proc), so it counts the MySQL and Redis client threads too and does not depend
on how much of the core the server got.

``--profile`` runs the server through ``bench/cprofile_pep.py`` and profiles the event-loop
thread during the gzip wave at ``--online``: the top functions by own time and by cumulative
time are printed and the statistics kept in ``bench/results/login_cost.pstats``.

No target of its own (bench/memory.py checks the 2 ms one); figures for bench/README.md.
Usage: ``python bench/login_cost.py [--online 5000] [--relogins 200] [--profile]``.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import time

import benchlib as bl


def relogin_cpu(server: bl.ServerProcess, names: list[str], gzip: bool) -> tuple[float, float, int]:
    """Warm re-logins of ``names`` at concurrency 16: (server CPU ms per login, logins/s, reply bytes)."""
    cpu0 = server.cpu_seconds()
    _, secs, nbytes = bl.run(bl.login_many(server.port, names, 16, gzip=gzip))
    cpu = server.cpu_seconds() - cpu0
    return cpu / len(names) * 1000, len(names) / secs, nbytes // len(names)


def drain(server: bl.ServerProcess, tokens: list[str]) -> None:
    async def go() -> None:
        pool = bl.ConnPool(server.port, 16)
        try:
            await bl.poll_all(pool, tokens)
        finally:
            pool.close()
    bl.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(description="server CPU per warm login at few and many online")
    parser.add_argument("--online", type=int, default=5000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--relogins", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile of the event loop during the gzip wave")
    args = parser.parse_args()
    bl.pin_self()
    report = bl.Report("login_cost")
    with bl.BenchWorld() as world:
        users = world.create_users(args.online, bl.bcrypt_hash(4))
        names = [n for _, n in users]
        stats_path = bl.RESULTS / "login_cost.pstats"
        bl.RESULTS.mkdir(exist_ok=True)
        server = world.start_server(cprofile=stats_path if args.profile else None)
        small = names[:args.small]
        tokens, _, _ = bl.run(bl.login_many(server.port, small, 16))
        again = (small * (args.relogins // len(small) + 1))[:args.relogins]
        ms, rate, nbytes = relogin_cpu(server, again, gzip=True)
        report.figure(f"warm_at_{args.small}.server_cpu_ms_per_login", ms, "ms", "{:.3f}")
        report.figure(f"warm_at_{args.small}.logins_per_s", rate, "login/s", "{:.0f}")
        rest, secs, _ = bl.run(bl.login_many(server.port, names[args.small:], 16, drain_every=250))
        report.figure(f"storm_to_{args.online}_s", secs, "s", "{:.1f}")
        tokens = rest
        drain(server, tokens)
        batch = names[-2 * args.relogins:]
        for label, gzip, part in (("plain", False, batch[:args.relogins]), ("gzip", True, batch[args.relogins:])):
            if gzip and args.profile:
                stats_path.unlink(missing_ok=True)
                server.toggle_cprofile()
            ms, rate, nbytes = relogin_cpu(server, part, gzip)
            if gzip and args.profile:
                server.toggle_cprofile()
            report.figure(f"warm_at_{args.online}_{label}.server_cpu_ms_per_login", ms, "ms", "{:.3f}")
            report.figure(f"warm_at_{args.online}_{label}.logins_per_s", rate, "login/s", "{:.0f}")
            report.figure(f"warm_at_{args.online}_{label}.reply_bytes", nbytes, "B", "{:.0f}")
        if args.profile:
            deadline = time.monotonic() + 10
            while not stats_path.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            out = io.StringIO()
            st = pstats.Stats(str(stats_path), stream=out)
            st.sort_stats("tottime").print_stats(25)
            st.sort_stats("cumulative").print_stats(40)
            print(out.getvalue())
        problems = server.log_problems()
        if problems:
            report.note(f"server log has {len(problems)} error lines, first: {problems[0][:200]}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
