#!/usr/bin/env python3
"""Login storm: 1,000 accounts log in at concurrency 16, cold (bcrypt cost 10) then warm (cached).

* **raw bcrypt rate**: ``bcrypt.checkpw`` throughput of the same cost-10 hash with a thread pool
  as large as the server's ``state.cpu_pool`` (read from ``objects.state.State``), pinned to the
  server core, in a subprocess, measured before and after the storm (the mean is used). This is
  what a cold login cannot beat.
* **cold wave**: every account logs in for the first time; each login pays one bcrypt check;
  nothing else runs. Target: logins/s >= 85% of the raw bcrypt rate.
* **warm wave**: the same accounts log in again (the password cache skips bcrypt; each login
  replaces the session of the first wave). Target: >= 500 logins/s.
* **polls during the storm**: after the cold wave, 64 users who were online before the storm
  poll (ping) every 200 ms from a separate process; target: p99 latency of those polls during
  the warm wave <= 50 ms. Also reported (no target): a quiet window, and, after the warm wave,
  150 more first logins (cost 10) made while they poll ("cold_polled": poll latency while
  bcrypt keeps the core busy).
* **cost per online user** (informational): those 64 users log in twice before the storm; the
  second (warm) wave at 64 online against the big warm wave at 1,064 online gives the server
  CPU a login costs per 1,000 users online (presences in the login reply, broadcasts).

Server CPU per login (``/proc/<pid>/stat``) and the server's core share (CPU s / wall s) are
printed with every wave: when other processes take the server core, rates drop but CPU per
login stays comparable.

Every login is checked (HTTP 200, ``cho-token``, positive login reply). With ``--profile``, or
when a target is missed, a third (warm) wave runs with py-spy attached and the top functions
are printed. Usage: ``python bench/login.py [--accounts 1000] [--concurrency 16] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as bl

COLD_TARGET = 0.85
WARM_TARGET = 500.0
POLL_P99_TARGET_MS = 50.0
POLLERS = 64
POLL_INTERVAL = 0.2


# --------------------------------------------------------------------------------- raw bcrypt
RAW_BCRYPT = r"""
import concurrent.futures, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import bcrypt
from helpers.config import Config
from objects.state import State
from tests.fakes import FakeDatabase, FakeRedis
state = State(Config(), FakeDatabase(), FakeRedis())
workers = state.cpu_pool._max_workers
state.cpu_pool.shutdown(wait=False)
hashed, md5, count = sys.argv[2].encode(), sys.argv[3].encode(), int(sys.argv[4])
with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    list(pool.map(lambda _: bcrypt.checkpw(md5, hashed), range(workers)))  # warm up
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    ok = all(pool.map(lambda _: bcrypt.checkpw(md5, hashed), range(count)))
    r1, secs = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
print(json.dumps({"workers": workers, "rate": count / secs, "cpu_ms": cpu / count * 1000, "ok": ok}))
"""


def raw_bcrypt_rate(password_hash: str, count: int, core: int | None) -> dict:
    """checkpw/s of ``password_hash`` with the server's bcrypt pool size, optionally pinned."""
    cmd = [bl.PYTHON, "-c", RAW_BCRYPT, str(bl.REPO), password_hash, bl.PASSWORD_MD5, str(count)]
    if core is not None:
        cmd = bl.pinned(cmd, core)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=str(bl.REPO))
    if res.returncode != 0:
        raise RuntimeError(f"raw bcrypt measurement failed:\n{res.stdout}\n{res.stderr}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    if not data["ok"]:
        raise RuntimeError("bcrypt.checkpw returned False for the bench hash")
    return data


# --------------------------------------------------------------------------------- poller process
def poller_main(port: int, tokens: list[str], interval: float, stop, out) -> None:
    """Child process: every token polls every ``interval`` s; sends [(monotonic start, latency s)]."""
    bl.pin_self()

    async def one(token: str, offset: float, samples: list) -> None:
        conn = bl.HttpConn(port)
        next_at = time.monotonic() + offset
        try:
            while not stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                t0 = time.monotonic()
                status, _, _ = await conn.post(bl.ping(), token)
                samples.append((t0, time.monotonic() - t0, status))
                next_at += interval
                if next_at < time.monotonic():  # fell behind: do not burst
                    next_at = time.monotonic() + interval
        finally:
            conn.close()

    async def main() -> list:
        samples: list = []
        n = len(tokens)
        await asyncio.gather(*(one(t, interval * i / n, samples) for i, t in enumerate(tokens)))
        return samples

    out.send(bl.run(main()))
    out.close()


def window(samples: list, start: float, end: float) -> list[float]:
    return [lat for t0, lat, _ in samples if start <= t0 <= end]


# --------------------------------------------------------------------------------- waves
async def wave(port: int, names: list[str], concurrency: int) -> dict:
    """Log every name in at ``concurrency``; returns rate, latency percentiles and tokens."""
    pool = bl.ConnPool(port, concurrency)
    it = iter(range(len(names)))
    tokens = [""] * len(names)
    latencies: list[float] = []
    received = 0

    async def worker() -> None:
        nonlocal received
        for i in it:
            t0 = time.perf_counter()
            token, _, size = await bl.login_one(pool, names[i])
            latencies.append(time.perf_counter() - t0)
            tokens[i] = token
            received += size

    start_mono = time.monotonic()
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        pool.close()
    secs = time.perf_counter() - t0
    return {"rate": len(names) / secs, "seconds": secs, "tokens": tokens, "start": start_mono,
            "end": time.monotonic(), "p50_ms": bl.percentile(latencies, 50) * 1000,
            "p99_ms": bl.percentile(latencies, 99) * 1000, "bytes": received}


def run_wave(report: bl.Report, server: bl.ServerProcess, label: str, names: list[str], concurrency: int) -> dict:
    cpu0 = server.cpu_seconds()
    w = bl.run(wave(server.port, names, concurrency))
    cpu = server.cpu_seconds() - cpu0
    report.figure(f"{label}.logins_per_s", w["rate"], "login/s", "{:.1f}")
    report.figure(f"{label}.seconds", w["seconds"], "s", "{:.1f}")
    report.figure(f"{label}.login_p50_ms", w["p50_ms"], "ms", "{:.1f}")
    report.figure(f"{label}.login_p99_ms", w["p99_ms"], "ms", "{:.1f}")
    w["cpu_ms"] = cpu / len(names) * 1000
    report.figure(f"{label}.server_cpu_ms_per_login", w["cpu_ms"], "ms", "{:.2f}")
    report.figure(f"{label}.server_core_share", cpu / w["seconds"], "core", "{:.2f}")
    report.figure(f"{label}.response_kib_per_login", w["bytes"] / len(names) / 1024, "KiB", "{:.1f}")
    return w


def main() -> int:
    parser = argparse.ArgumentParser(description="pep.py login storm benchmark")
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--cost", type=int, default=10, help="bcrypt cost of the storm accounts")
    parser.add_argument("--cold-polled", type=int, default=150,
                        help="first logins made while the online users poll (poll latency under bcrypt load)")
    parser.add_argument("--profile", action="store_true", help="profile an extra warm wave with py-spy")
    args = parser.parse_args()
    bl.pin_self()
    report = bl.Report("login")
    storm_hash = bl.bcrypt_hash(args.cost)

    raw_before = raw_bcrypt_rate(storm_hash, 48, bl.SERVER_CORE)
    report.figure("raw_bcrypt.workers", raw_before["workers"], "threads", "{:.0f}")
    report.figure("raw_bcrypt.before.checks_per_s_server_core", raw_before["rate"], "check/s", "{:.1f}")

    with bl.BenchWorld() as world:
        storm = [name for _, name in world.create_users(args.accounts, storm_hash, stem="storm")]
        extra = [name for _, name in world.create_users(args.cold_polled, storm_hash, stem="coldp")]
        online = [name for _, name in world.create_users(POLLERS, bl.bcrypt_hash(4), stem="online")]
        server = world.start_server()
        bl.run(bl.login_many(server.port, online, 16))
        # the same 64 again, cached: CPU per warm login with few users online (the slope against
        # the big warm wave is the cost that grows with the number online)
        small = run_wave(report, server, f"warm_{POLLERS}", online, 16)
        online_tokens = small["tokens"]
        bl.run(_drain(server.port, online_tokens))

        # cold wave: nothing else runs (the target compares it with bcrypt alone)
        cold = run_wave(report, server, "cold", storm, args.concurrency)
        bl.run(_drain(server.port, cold["tokens"] + online_tokens))

        # from here on the 64 online users poll every 200 ms
        ctx = multiprocessing.get_context("fork")
        stop = ctx.Event()
        recv, send = ctx.Pipe(duplex=False)
        poller = ctx.Process(target=poller_main, args=(server.port, online_tokens, POLL_INTERVAL, stop, send),
                             daemon=True)
        poller.start()
        time.sleep(1.0)
        quiet_start, quiet_cpu0 = time.monotonic(), server.cpu_seconds()
        time.sleep(3.0)
        quiet_end, quiet_cpu = time.monotonic(), server.cpu_seconds() - quiet_cpu0
        warm = run_wave(report, server, "warm", storm, args.concurrency)
        bl.run(_drain(server.port, warm["tokens"]))
        cold_polled = None
        if extra:  # a few more first logins while they poll: poll latency under bcrypt load
            cold_polled = run_wave(report, server, "cold_polled", extra, args.concurrency)
        time.sleep(0.5)
        stop.set()
        samples = recv.recv()
        poller.join(timeout=30)

        raw_after = raw_bcrypt_rate(storm_hash, 48, bl.SERVER_CORE)
        report.figure("raw_bcrypt.after.checks_per_s_server_core", raw_after["rate"], "check/s", "{:.1f}")
        raw = {"workers": raw_before["workers"], "rate": (raw_before["rate"] + raw_after["rate"]) / 2,
               "cpu_ms": (raw_before["cpu_ms"] + raw_after["cpu_ms"]) / 2}
        report.figure("raw_bcrypt.checks_per_s_server_core", raw["rate"], "check/s", "{:.1f}")
        report.figure("raw_bcrypt.cpu_ms_per_check", raw["cpu_ms"], "ms", "{:.1f}")

        bad = [s for s in samples if s[2] != 200]
        if bad:
            report.note(f"{len(bad)} polls of online users failed (HTTP {bad[0][2]})")
        windows = [("quiet", (quiet_start, quiet_end)), ("warm", (warm["start"], warm["end"]))]
        if cold_polled is not None:
            windows.append(("cold", (cold_polled["start"], cold_polled["end"])))
        for label, (a, b) in windows:
            lat = window(samples, a, b)
            report.figure(f"polls_during_{label}.count", len(lat), "polls", "{:.0f}")
            report.figure(f"polls_during_{label}.p50_ms", bl.percentile(lat, 50) * 1000, "ms", "{:.2f}")
            report.figure(f"polls_during_{label}.p99_ms", bl.percentile(lat, 99) * 1000, "ms", "{:.2f}")
            report.figure(f"polls_during_{label}.max_ms", max(lat, default=0) * 1000, "ms", "{:.2f}")

        # the pollers' share of the warm wave's server CPU, from the quiet window (polls only)
        cpu_per_poll = quiet_cpu / max(1, len(window(samples, quiet_start, quiet_end)))
        report.figure("server_cpu_us_per_poll_quiet", cpu_per_poll * 1e6, "us", "{:.0f}")
        polls = len(window(samples, warm["start"], warm["end"]))
        warm["login_cpu_ms"] = warm["cpu_ms"] - polls * cpu_per_poll / len(storm) * 1000
        report.figure("warm.server_cpu_ms_per_login_excl_polls", warm["login_cpu_ms"], "ms", "{:.2f}")
        slope = (warm["login_cpu_ms"] - small["cpu_ms"]) / len(storm) * 1000  # ~64 vs ~1,064 online
        report.figure("warm.cpu_ms_per_login_per_1000_online", slope, "ms", "{:.2f}")
        by_cpu = raw["cpu_ms"] / cold["cpu_ms"]
        report.figure("cold.vs_raw_bcrypt_cpu_normalised", by_cpu, "x", "{:.3f}")
        ok_cold = report.check("cold.vs_raw_bcrypt", cold["rate"] / raw["rate"], COLD_TARGET,
                               f"{cold['rate']:.1f} logins/s vs {raw['rate']:.1f} checkpw/s with "
                               f"{raw['workers']} threads on the server core; by CPU {by_cpu:.2f}")
        ok_warm = report.check("warm.logins_per_s", warm["rate"], WARM_TARGET, "cached password", unit="/s")
        warm_p99 = bl.percentile(window(samples, warm["start"], warm["end"]), 99) * 1000
        ok_poll = report.check("warm.poll_p99_ms", warm_p99, POLL_P99_TARGET_MS,
                               f"{POLLERS} online users polling every {POLL_INTERVAL * 1000:.0f} ms",
                               higher_is_better=False, unit="ms")
        problems = server.log_problems()
        if problems:
            report.note(f"server log has {len(problems)} error lines, first: {problems[0][:200]}")

        if args.profile or not (ok_cold and ok_warm and ok_poll):
            bl.run(_drain(server.port, warm["tokens"] + (cold_polled["tokens"] if cold_polled else [])))
            profile_wave(report, server, storm, args.concurrency)
    return report.finish()


def profile_wave(report: bl.Report, server: bl.ServerProcess, names: list[str], concurrency: int) -> None:
    """A third (warm) wave with py-spy attached; prints the top functions."""
    with tempfile.TemporaryDirectory(prefix="pep_bench_login_") as tmp:
        out = Path(tmp) / "profile.txt"
        expected = max(3.0, len(names) / 250.0)
        spy = bl.profile_start(server.pid, expected + 2, out, native=True)
        if spy is None:
            report.note("py-spy not available; no profile")
            return
        time.sleep(0.5)
        bl.run(wave(server.port, names, concurrency))
        spy.wait(timeout=expected + 60)
        rows = bl.profile_summary(out, top=20)
        print("-- profile warm login wave (py-spy --native, GIL holder; self% / inclusive%):")
        for name, self_pct, incl_pct in rows:
            print(f"   {self_pct:5.1f}% {incl_pct:5.1f}%  {name}")
        bl.RESULTS.mkdir(exist_ok=True)
        if out.exists():
            (bl.RESULTS / "profile-login-warm.txt").write_text(out.read_text())
            print("   (collapsed stacks kept in bench/results/profile-login-warm.txt)")


async def _drain(port: int, tokens) -> int:
    pool = bl.ConnPool(port, 16)
    try:
        return await bl.poll_all(pool, tokens)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
