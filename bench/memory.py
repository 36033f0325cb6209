#!/usr/bin/env python3
"""Memory benchmark: server RSS at 0, 1,000 and 5,000 online users (plus matches and spectators).

One pep.py pinned to the server core. Users are created in bulk (one shared bcrypt hash, cost 4)
and logged in over HTTP at concurrency 16; every 250 logins every online token is polled once,
as real clients would, so the presence broadcasts of the storm do not pile up in queues. After
each step every token is polled once more (empty queues), the server gets a second to settle,
and ``VmRSS`` is read from /proc.

With the multiplayer code present (a create-match request answered with 36), 50 of the online
users then each open a match, 150 more join them (3 per match), 100 spectate the 50 hosts and
100 sit in the lobby; RSS is read again. Without it the step is skipped with a note.

Target: at most 5 MiB per 1,000 online users beyond the empty server, i.e.
``(RSS(5000) - RSS(0)) / 5 <= 5 MiB``.

Then, at the top step, 100 of the idle users log in again without ``Accept-Encoding`` and 100
more with ``Accept-Encoding: gzip`` like the osu! client (warm: the password cache skips bcrypt):
target on the second, **server CPU per login <= 2 ms** (each carries every presence in its
reply, compressed, and broadcasts its own presence to everyone online).

Usage: ``python bench/memory.py [--users 1000,5000] [--no-login]``.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import time

import benchlib as bl

TARGET_MIB_PER_1000 = 5.0
MATCHES = 50
JOINERS_PER_MATCH = 3
SPECTATORS = 100
LOBBY = 100
RELOGINS = 100  # warm re-logins at the top step, twice (the last users: idle, in no match)
TARGET_LOGIN_MS = 2.0  # server CPU per login beyond the bcrypt check, at the top step


def settle(server: bl.ServerProcess, tokens: list[str]) -> int:
    bl.run(_drain(server.port, tokens))
    time.sleep(1.0)
    return server.rss()


async def _drain(port: int, tokens) -> int:
    pool = bl.ConnPool(port, 16)
    try:
        return await bl.poll_all(pool, tokens)
    finally:
        pool.close()


async def multiplayer(port: int, tokens: list[str], user_ids: list[int]) -> dict:
    """Open matches, join them, spectate the hosts, fill the lobby. Returns counts (or skip reason)."""
    pool = bl.ConnPool(port, 16)
    try:
        need = MATCHES * (1 + JOINERS_PER_MATCH) + SPECTATORS + LOBBY
        if len(tokens) < need:
            return {"skipped": f"needs {need} online users"}
        # probe: does the server implement match creation?
        status, _, body = await pool.post(bl.create_match("bench match 0", user_ids[0]), tokens[0])
        ids = [struct.unpack_from("<H", p)[0] for pid, p in bl.split_frames(body) if pid == 36]
        if status != 200 or not ids:
            return {"skipped": "the server did not answer a create-match request (31) with 36: no multiplayer yet"}
        match_ids = [ids[0]]

        async def create(i: int) -> None:
            _, _, body = await pool.post(bl.create_match(f"bench match {i}", user_ids[i]), tokens[i])
            got = [struct.unpack_from("<H", p)[0] for pid, p in bl.split_frames(body) if pid == 36]
            if got:
                match_ids.append(got[0])

        await asyncio.gather(*(create(i) for i in range(1, MATCHES)))
        joined = 0
        base = MATCHES

        async def join(k: int) -> None:
            nonlocal joined
            match_id = match_ids[k % len(match_ids)]
            _, _, body = await pool.post(bl.join_match(match_id), tokens[base + k])
            if any(pid == 36 for pid, _ in bl.split_frames(body)):
                joined += 1

        await asyncio.gather(*(join(k) for k in range(MATCHES * JOINERS_PER_MATCH)))
        base += MATCHES * JOINERS_PER_MATCH
        spectating = 0

        async def spectate(k: int) -> None:
            nonlocal spectating
            _, _, body = await pool.post(bl.start_spectating(user_ids[k % MATCHES]), tokens[base + k])
            spectating += any(pid == 64 for pid, _ in bl.split_frames(body))  # joined #spectator

        await asyncio.gather(*(spectate(k) for k in range(SPECTATORS)))
        base += SPECTATORS
        await asyncio.gather(*(pool.post(bl.join_lobby(), tokens[base + k]) for k in range(LOBBY)))
        return {"matches": len(match_ids), "joined": joined, "spectators": spectating, "lobby": LOBBY}
    finally:
        pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="pep.py memory benchmark")
    parser.add_argument("--users", default="1000,5000", help="online-user steps")
    parser.add_argument("--no-login", action="store_true", help="skip the warm re-logins at the top step")
    parser.add_argument("--poll-every", type=int, default=250,
                        help="poll every online token once per this many logins (a client's poll interval)")
    args = parser.parse_args()
    bl.pin_self()
    report = bl.Report("memory")
    steps = sorted({int(x) for x in args.users.split(",") if x.strip()})
    with bl.BenchWorld() as world:
        users = world.create_users(max(steps), bl.bcrypt_hash(4))
        names = [n for _, n in users]
        ids = [i for i, _ in users]
        server = world.start_server()
        rss0 = settle(server, [])
        report.figure("rss_0_mib", rss0 / 2**20, "MiB", "{:.1f}")
        tokens: list[str] = []
        rss: dict[int, int] = {0: rss0}
        for n in steps:
            new, secs, _ = bl.run(bl.login_many(server.port, names[len(tokens):n], 16, drain=tokens,
                                                drain_every=args.poll_every))
            report.figure(f"login_{n}_s", secs, "s", "{:.1f}")
            tokens += new
            rss[n] = settle(server, tokens)
            report.figure(f"rss_{n}_mib", rss[n] / 2**20, "MiB", "{:.1f}")
            report.figure(f"per_1000_users_at_{n}_mib", (rss[n] - rss0) / 2**20 / (n / 1000), "MiB", "{:.2f}")
        top = steps[-1]
        mp = bl.run(multiplayer(server.port, tokens, ids))
        if "skipped" in mp:
            report.note(f"multiplayer step skipped: {mp['skipped']}")
        else:
            rss_mp = settle(server, tokens)
            report.figure(f"rss_{top}_with_matches_mib", rss_mp / 2**20, "MiB", "{:.1f}")
            report.figure("matches_open", mp["matches"], "matches", "{:.0f}")
            report.figure("match_joins", mp["joined"], "joins", "{:.0f}")
            report.figure("spectators", mp["spectators"], "users", "{:.0f}")
            report.figure("lobby_members", mp["lobby"], "users", "{:.0f}")
            report.figure("matches_and_spectators_mib", (rss_mp - rss[top]) / 2**20, "MiB", "{:.2f}")
            rss[top] = rss_mp
        per_1000 = (rss[top] - rss0) / 2**20 / (top / 1000)
        report.check("per_1000_users_mib", per_1000, TARGET_MIB_PER_1000,
                     f"(RSS({top}) - RSS(0)) / {top / 1000:g}", higher_is_better=False, unit="MiB")
        # --- the cost of one login at this many online, beyond the bcrypt check: warm re-logins
        # (the password cache skips bcrypt) of idle users, with Accept-Encoding: gzip like the
        # osu! client; each one replaces the user's session, carries every presence in its reply
        # and broadcasts its own presence to everyone
        if not args.no_login and len(names) >= 2 * RELOGINS:
            bl.run(_drain(server.port, tokens))
            for label, gzip, batch in (("plain", False, names[-2 * RELOGINS:-RELOGINS]),
                                       ("gzip", True, names[-RELOGINS:])):
                cpu0 = server.cpu_seconds()
                _, secs, nbytes = bl.run(bl.login_many(server.port, batch, 16, gzip=gzip))
                cpu = server.cpu_seconds() - cpu0
                name = f"warm_login_at_{top}_{label}"
                report.figure(f"{name}.logins_per_s", RELOGINS / secs, "login/s", "{:.0f}")
                report.figure(f"{name}.reply_bytes", nbytes / RELOGINS, "B", "{:.0f}")
                report.figure(f"{name}.server_core_share", cpu / secs, "core", "{:.2f}")
                if gzip:  # the target is on what the osu! client does
                    report.check(f"{name}.server_cpu_ms_per_login", cpu / RELOGINS * 1000, TARGET_LOGIN_MS,
                                 f"{RELOGINS} warm re-logins at {top} online, Accept-Encoding: gzip; server CPU / "
                                 "logins", higher_is_better=False, unit="ms")
                else:
                    report.figure(f"{name}.server_cpu_ms_per_login", cpu / RELOGINS * 1000, "ms", "{:.2f}")
        problems = server.log_problems()
        if problems:
            report.note(f"server log has {len(problems)} error lines, first: {problems[0][:200]}")
    return report.finish()


if __name__ == "__main__":
    sys.exit(main())
