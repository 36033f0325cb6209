#!/usr/bin/env python3
"""Poll benchmarks: idle poll, status changes, chat in a crowded channel, and the scale curve.

What it does (one pep.py, one bare-Tornado baseline, both pinned to the server core; wrk and
this script pinned to the load core):

1. creates ``max(--scale)`` accounts in the throw-away database with one shared bcrypt hash
   (cost 4; the server just calls ``bcrypt.checkpw``, so any cost works) and logs them in over
   HTTP at concurrency 16, in steps: 100, 1,000, 5,000, 10,000 online users. Between steps every
   token is polled once so that the queues hold nothing when wrk starts. The first 1,000 are
   normal accounts; the **crowd beyond them is restricted accounts** (privileges 2): a normal
   login costs O(online) (every presence in its reply, its own presence appended to every
   queue), so a 10,000-user storm is O(N^2) (about 3.5 GB of presence bytes) and would take
   minutes, while restricted logins are not broadcast. An idle poll (ping) runs the same code
   for both kinds; the login-storm cost itself is measured by bench/login.py;
2. at each step runs wrk (``bench/poll.lua``: 64 keep-alive connections, one thread, every
   request a ping with the next token's ``osu-token``) and records throughput, p50/p99 latency,
   server CPU per poll and RSS (**idle poll** and **scale curve**);
3. at 1,000 users also runs the **status** mode (every request a status change, packet 0) and
   the **chat** mode (1% of requests a public message to ``#osu``, where all 1,000 users are), and
   times one ``#osu`` broadcast in-process (``services.chat.send_message`` on a ``State`` with
   1,000 / 5,000 members: the time until every member's queue holds the message);
4. measures the **baseline** (``bench/baseline_server.py``: a bare Tornado handler that reads the
   header and returns an empty body) on the same core with the same wrk settings right before
   each target run (the ratio uses that adjacent baseline) and once more at the end;
5. runs the baseline and pep.py on **uvloop** at 1,000 users for comparison (not a target).

Targets: idle poll throughput at 1,000 and 5,000 users >= 75% of the baseline; scale curve:
throughput at 10,000 users >= 80% of that at 100 (the cost of a poll must not grow with the
number online; this threshold is the suite's own). ``--profile`` (or any missed poll target)
records py-spy profiles of the server and prints the top functions.

``--gc-stats`` runs pep.py through ``bench/gc_pep.py`` and prints, for every idle run, the
collections per generation and their share of the wall time (``--gc-threshold A,B,C`` tries a
``gc.set_threshold`` setting the same way, without touching the server code).

Every measured wrk run (pep.py's and the baselines') comes right after ``--warmup`` seconds
(default 3) of the same load that are not counted (their p99 and req/s are printed as
``<run>.warmup_*``): the figures are the steady state's.

Usage: ``python bench/poll.py [--duration 15] [--short 10] [--scale 100,1000,5000,10000]
[--no-uvloop] [--profile] [--gc-stats [--gc-threshold 50000,20,100]] [--warmup 3]``. Exit code 1 when a
target is missed.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import benchlib as bl

CONCURRENCY = 16
CONNECTIONS = 64
POLL_TARGET = 1.4  # idle poll req/s / the bare tornado.web handler's (issue #17)
DELEGATE_TARGET = 0.9  # idle poll req/s / a bare HTTPServerConnectionDelegate's (empty answer)
BUSY_TARGET = 1.2  # status and chat polls req/s / the bare tornado.web handler's
P99_TARGET_MS = 10.0  # p99 latency of the idle, status and chat polls at CONNECTIONS connections
SCALE_TARGET = 0.80
CHAT_EVERY = 100  # 1% of requests carry a public message
#: seconds of the same wrk load run right before every measured run and not counted (pep.py and
#: the baselines alike; bench/README.md "fourth pass": the first seconds of a run on 64 fresh
#: connections are not the steady state the targets are about)
WARMUP = 3.0
ACTIVE = 1000  # normal accounts; every online user beyond them is a restricted "crowd" account
CROWD_PRIVILEGES = 2  # USER_NORMAL without USER_PUBLIC: restricted (not banned)


def status_body() -> bytes:
    return bl.change_action()


def chat_body() -> bytes:
    return bl.public_message("#osu", "does anyone know a good 6* farm map? asking for a friend")


def wrk_line(report: bl.Report, name: str, r: dict) -> None:
    """Print (and record) the figures of one wrk run."""
    report.figure(f"{name}.rps", r["rps"], "req/s", "{:.0f}")
    report.figure(f"{name}.p50_ms", r["p50_ms"], "ms", "{:.2f}")
    report.figure(f"{name}.p99_ms", r["p99_ms"], "ms", "{:.2f}")
    report.figure(f"{name}.server_cpu_us_per_req", r["cpu_us_per_req"], "us", "{:.1f}")
    report.figure(f"{name}.server_core_share", r["core_share"], "core", "{:.2f}")
    first = r.get("warmup")
    if first is not None:  # not counted (see measure); shown so that nothing is hidden
        report.figure(f"{name}.warmup_p99_ms", first["p99_ms"], "ms", "{:.2f}")
        report.figure(f"{name}.warmup_rps", first["rps"], "req/s", "{:.0f}")
    if r["core_share"] < 0.85:
        report.note(f"{name}: the server got only {r['core_share']:.0%} of its core (other processes on the "
                    "machine?); compare the CPU-per-request figures rather than req/s")
    if r["errors"]:
        report.note(f"{name}: wrk counted {r['errors']} errors ({r['raw']})")


def ratio_check(report: bl.Report, name: str, r: dict, base: dict, target: float, what: str) -> bool:
    """Check req/s of run ``r`` / req/s of the adjacent baseline run ``base`` against ``target``;
    the same ratio by CPU per request is printed beside it (robust to a busy machine)."""
    cpu_ratio = base["cpu_us_per_req"] / r["cpu_us_per_req"]
    report.figure(f"{name}_cpu_normalised", cpu_ratio, "x", "{:.3f}")
    return report.check(name, r["rps"] / base["rps"], target,
                        f"{r['rps']:.0f} vs {base['rps']:.0f} req/s of {what}, p99 {r['p99_ms']:.1f} ms; "
                        f"by CPU per request {cpu_ratio:.2f}")


def measure(server: bl.ServerProcess, tokens, body: bytes, duration: float, workdir: Path,
            alt_body: bytes | None = None, alt_every: int = 0, warmup: float | None = None) -> dict:
    """One wrk run against ``server``; adds ``cpu_us_per_req`` and ``core_share`` (server CPU
    seconds / wall seconds: 1.0 = the server had its core to itself and was saturated).

    First, a warm-up of ``warmup`` seconds (default :data:`WARMUP`) with the same requests
    and connections, not counted: the figures are those of the steady state, for pep.py and
    the baselines alike. Its figures are kept as ``r["warmup"]`` (printed by :func:`wrk_line`)."""
    gc.collect()
    warmup = WARMUP if warmup is None else warmup
    first = None
    if warmup > 0:
        first = bl.run_wrk(server.port, tokens, body, warmup, CONNECTIONS, alt_body, alt_every, workdir=workdir)
    cpu0 = server.cpu_seconds()
    r = bl.run_wrk(server.port, tokens, body, duration, CONNECTIONS, alt_body, alt_every, workdir=workdir)
    cpu = server.cpu_seconds() - cpu0
    r["cpu_us_per_req"] = cpu / max(1, r["requests"]) * 1e6
    r["core_share"] = cpu / r["seconds"] if r["seconds"] else 0.0
    r["warmup"] = first
    return r


def gc_snapshot(server: bl.ServerProcess, path: Path | None) -> dict | None:
    """Ask bench/gc_pep.py for its figures (its ``SIGNAL``, ``SIGRTMIN + 3``: SIGUSR1 would be
    the server's maintenance stop) and read them; None without --gc-stats."""
    if path is None:
        return None
    import json
    import os
    import signal

    before = path.stat().st_mtime_ns if path.exists() else 0
    os.kill(server.pid, signal.SIGRTMIN + 3)  # bench/gc_pep.py SIGNAL
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_mtime_ns != before:
            return json.loads(path.read_text())
        time.sleep(0.05)
    return None


def gc_line(report: bl.Report, name: str, before: dict | None, after: dict | None, seconds: float) -> None:
    """Collections per generation during one run, their share of the wall time, the longest."""
    if before is None or after is None:
        return
    for gen in ("0", "1", "2"):
        count = after[gen][0] - before[gen][0]
        spent = after[gen][1] - before[gen][1]
        report.figure(f"{name}.gc{gen}_collections", count, "", "{:.0f}")
        report.figure(f"{name}.gc{gen}_share", 100 * spent / seconds if seconds else 0.0, "% of wall", "{:.1f}")
    report.figure(f"{name}.gc_longest_ms", after["2"][2] * 1000, "ms", "{:.1f}")
    report.figure(f"{name}.gc_tracked_objects", after["tracked"], "objects", "{:.0f}")


def ladder(report: bl.Report, world: bl.BenchWorld, pep: dict, workdir: Path, seconds: float) -> None:
    """Split the gap between the bare baseline and pep.py: baseline variants that each add one
    thing pep.py's handler does (bench/baseline_server.py options), short wrk runs each."""
    print("-- attribution ladder (bare Tornado + one feature of handlers/main.py at a time, and the bare "
          "HTTP layer without tornado.web ('delegate'); CPU us per request, req/s):")
    tokens = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1000)]
    variants = ((), ("gzip",), ("header",), ("async",), ("lookup",), ("gzip", "header", "async", "lookup"),
                ("delegate",))
    servers = [world.start_baseline(options=options) for options in variants]
    best: dict[int, dict] = {}
    try:
        for _ in range(2):  # two interleaved rounds; the lower CPU per request of the two counts
            for i, srv in enumerate(servers):
                r = measure(srv, tokens, bl.ping(), seconds / 2, workdir, warmup=1.0)
                if i not in best or r["cpu_us_per_req"] < best[i]["cpu_us_per_req"]:
                    best[i] = r
    finally:
        for srv in servers:
            srv.stop()
    rows = []
    for i, options in enumerate(variants):
        label = "+".join(options) or "bare"
        rows.append((label, best[i]))
        report.figure(f"ladder.{label}.server_cpu_us_per_req", best[i]["cpu_us_per_req"], "us", "{:.1f}")
    bare = rows[0][1]["cpu_us_per_req"]
    for label, r in rows:
        print(f"   {label:<28} {r['cpu_us_per_req']:7.1f} us  (+{r['cpu_us_per_req'] - bare:5.1f})  {r['rps']:7.0f} req/s")
    print(f"   {'pep.py idle_1000':<28} {pep['cpu_us_per_req']:7.1f} us  (+{pep['cpu_us_per_req'] - bare:5.1f})  "
          f"{pep['rps']:7.0f} req/s")


def profile_run(report: bl.Report, server: bl.ServerProcess, tokens, body: bytes, label: str, workdir: Path,
                alt_body: bytes | None = None, alt_every: int = 0, seconds: float = 8, native: bool = False) -> None:
    """wrk for ``seconds`` with py-spy attached; prints the top functions (self and inclusive %)."""
    out = workdir / f"profile-{label}.txt"
    spy = bl.profile_start(server.pid, seconds, out, native=native)
    if spy is None:
        report.note("py-spy not available (bench/run.sh installs it into bench/.deps); no profile")
        return
    time.sleep(0.5)
    bl.run_wrk(server.port, tokens, body, seconds, CONNECTIONS, alt_body, alt_every, workdir=workdir)
    try:
        _, err = spy.communicate(timeout=seconds + 30)
    except Exception:
        spy.kill()
        err = b""
    rows = bl.profile_summary(out)
    if not rows:
        report.note(f"py-spy produced no profile for {label}: {err.decode(errors='replace')[-300:]}")
        return
    print(f"-- profile {label} (py-spy{' --native' if native else ''}, GIL holder, {seconds:.0f} s; "
          "self% / inclusive%):")
    for name, self_pct, incl_pct in rows:
        print(f"   {self_pct:5.1f}% {incl_pct:5.1f}%  {name}")
    keep = bl.RESULTS / f"profile-poll-{label}.txt"
    bl.RESULTS.mkdir(exist_ok=True)
    keep.write_text(out.read_text())
    print(f"   (collapsed stacks kept in {keep.relative_to(bl.BENCH.parent)})")


def broadcast_timing(report: bl.Report, members: int, rounds: int = 200) -> None:
    """In-process: time ``services.chat.send_message`` to ``#osu`` with ``members`` tokens in it.

    The measured span is from the call until it returns, i.e. until every member's queue holds
    the encoded message (the broadcast is synchronous). Queues are cleared between rounds
    (not timed); senders rotate so the spam limit never triggers.
    """
    from helpers.config import Config
    from objects.channel import Channel
    from objects.state import State
    from objects.token import Token
    from services import channels, chat
    from tests.fakes import FakeDatabase, FakeRedis

    state = State(Config(), FakeDatabase(), FakeRedis())
    channel = Channel("#osu", "Main osu! channel")
    state.channels.add(channel)
    tokens = []
    for i in range(members):
        t = Token(10_000 + i, f"user{i}", f"user{i}", 3)
        state.tokens.add(t)
        channels.join_channel(state, t, channel)
        t.drain()
        tokens.append(t)
    text = "does anyone know a good 6* farm map? asking for a friend"
    samples = []
    for r in range(rounds):
        sender = tokens[(r * 7919) % members]
        sender.spam_count = 0
        t0 = time.perf_counter()
        result = chat.send_message(state, sender, "#osu", text)
        samples.append(time.perf_counter() - t0)
        if result is not chat.Result.SENT:
            raise RuntimeError(f"send_message returned {result}")
        if r == 0:
            assert all(tok.queue for tok in tokens if tok is not sender)
        for tok in tokens:
            tok.queue.clear()
    samples.sort()
    median = samples[len(samples) // 2]
    report.figure(f"chat.broadcast_{members}.median_us", median * 1e6, "us", "{:.0f}")
    report.figure(f"chat.broadcast_{members}.p99_us", bl.percentile(samples, 99) * 1e6, "us", "{:.0f}")
    report.figure(f"chat.broadcast_{members}.ns_per_member", median / members * 1e9, "ns", "{:.0f}")
    state.cpu_pool.shutdown(wait=False)


def main() -> int:
    parser = argparse.ArgumentParser(description="pep.py poll benchmarks (wrk)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per required wrk run (>= 15)")
    parser.add_argument("--short", type=float, default=10.0, help="seconds per informational wrk run")
    parser.add_argument("--scale", default="100,1000,5000,10000", help="online-user counts of the scale curve")
    parser.add_argument("--no-uvloop", action="store_true", help="skip the uvloop comparison")
    parser.add_argument("--warmup", type=float, default=WARMUP,
                        help=f"seconds of uncounted load before every measured run (default {WARMUP:g}; 0: none)")
    parser.add_argument("--profile", action="store_true", help="profile the ping/status/chat modes with py-spy")
    parser.add_argument("--gc-stats", action="store_true",
                        help="run pep.py through bench/gc_pep.py and print the garbage collector's share of each idle, status and chat run")
    parser.add_argument("--gc-threshold", metavar="A,B,C",
                        help="with --gc-stats: gc.set_threshold(A, B, C) in the server first (to try a setting)")
    args = parser.parse_args()
    bl.pin_self()
    bl.ensure_wrk()
    report = bl.Report("poll")
    scale = sorted({int(x) for x in args.scale.split(",") if x.strip()})
    workdir_holder = tempfile.TemporaryDirectory(prefix="pep_bench_poll_")
    workdir = Path(workdir_holder.name)
    results: dict[int, dict] = {}
    missed_poll = False
    with workdir_holder, bl.BenchWorld() as world:
        t0 = time.perf_counter()
        password_hash = bl.bcrypt_hash(4)
        names = [name for _, name in world.create_users(min(max(scale), ACTIVE), password_hash)]
        if max(scale) > ACTIVE:  # the crowd beyond the active users: restricted (see the module doc)
            names += [name for _, name in world.create_users(max(scale) - ACTIVE, password_hash,
                                                             privileges=CROWD_PRIVILEGES, stem="crowd")]
        report.figure("setup.create_users_s", time.perf_counter() - t0, "s", "{:.1f}")
        baseline = world.start_baseline()
        delegate = world.start_baseline(options=("delegate",))
        gc_path = workdir / "gc.json" if (args.gc_stats or args.gc_threshold) else None
        server = world.start_server(gc_stats=gc_path, gc_threshold=args.gc_threshold)
        if args.gc_threshold:
            report.note(f"pep.py runs with gc.set_threshold({args.gc_threshold}) (bench/gc_pep.py)")
        ping = bl.ping()

        base_tokens = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1000)]
        baselines: dict[int, dict] = {}  # online count -> the baseline run right before it
        delegates: dict[int, dict] = {}  # online count -> the bare-delegate run right before it
        busy: dict[str, dict] = {}  # "status" / "chat" -> the run at 1,000 online
        busy_baselines: dict[str, dict] = {}  # "status" / "chat" -> the baseline run right before it

        # --- scale steps
        tokens: list[str] = []
        for n in scale:
            t0 = time.perf_counter()
            new, secs, nbytes = bl.run(bl.login_many(server.port, names[len(tokens):n], CONCURRENCY,
                                                     drain=tokens, drain_every=1000))
            tokens += new  # login_many polled every token after the last batch: queues are empty
            report.figure(f"setup.login_{n}_s", time.perf_counter() - t0, "s", "{:.1f}")
            report.figure(f"rss_{n}_mib", server.rss() / 2**20, "MiB", "{:.1f}")
            required = n in (1000, 5000)
            if required:  # the baselines right before, so that all see the same machine
                baselines[n] = measure(baseline, base_tokens, ping, args.duration, workdir, warmup=args.warmup)
                wrk_line(report, f"baseline_before_{n}", baselines[n])
                delegates[n] = measure(delegate, base_tokens, ping, args.duration, workdir, warmup=args.warmup)
                wrk_line(report, f"delegate_before_{n}", delegates[n])
            gc0 = gc_snapshot(server, gc_path)
            r = measure(server, tokens, ping, args.duration if required else args.short, workdir, warmup=args.warmup)
            wrk_line(report, f"idle_{n}", r)
            gc_line(report, f"idle_{n}", gc0, gc_snapshot(server, gc_path), r["seconds"])
            results[n] = r
            if n == 1000:
                bl.run(_drain(server.port, tokens))
                busy_baselines["status"] = measure(baseline, base_tokens, ping, args.duration, workdir, warmup=args.warmup)
                wrk_line(report, "baseline_before_status", busy_baselines["status"])
                gc0 = gc_snapshot(server, gc_path)
                rs = measure(server, tokens, status_body(), args.duration, workdir, warmup=args.warmup)
                wrk_line(report, "status_1000", rs)
                gc_line(report, "status_1000", gc0, gc_snapshot(server, gc_path), rs["seconds"])
                busy["status"] = rs
                bl.run(_drain(server.port, tokens))
                busy_baselines["chat"] = measure(baseline, base_tokens, ping, args.duration, workdir, warmup=args.warmup)
                wrk_line(report, "baseline_before_chat", busy_baselines["chat"])
                gc0 = gc_snapshot(server, gc_path)
                rc = measure(server, tokens, ping, args.duration, workdir, chat_body(), CHAT_EVERY, warmup=args.warmup)
                wrk_line(report, "chat_1000", rc)
                gc_line(report, "chat_1000", gc0, gc_snapshot(server, gc_path), rc["seconds"])
                busy["chat"] = rc
                report.figure("chat_1000.messages_per_s", rc["rps"] / CHAT_EVERY, "msg/s", "{:.0f}")
                report.figure("chat_1000.response_bytes_per_req", rc["bytes"] / max(1, rc["requests"]), "B", "{:.0f}")
                bl.run(_drain(server.port, tokens))
                if args.profile:
                    profile_run(report, server, tokens, ping, "idle_1000", workdir)
                    profile_run(report, server, tokens, status_body(), "status_1000", workdir)
                    bl.run(_drain(server.port, tokens))
                    profile_run(report, server, tokens, ping, "chat_1000", workdir, chat_body(), CHAT_EVERY)
                    bl.run(_drain(server.port, tokens))
        problems = server.log_problems()
        if problems:
            report.note(f"server log has {len(problems)} error lines, first: {problems[0][:200]}")

        # --- baseline again at the end: how much did the machine change during the run?
        b_end = measure(baseline, base_tokens, ping, args.short, workdir, warmup=args.warmup)
        wrk_line(report, "baseline.end", b_end)
        runs = list(baselines.values()) + [b_end]
        base_rps = sum(b["rps"] for b in runs) / len(runs)
        base_cpu = sum(b["cpu_us_per_req"] for b in runs) / len(runs)
        report.figure("baseline.rps_mean", base_rps, "req/s", "{:.0f}")
        report.figure("baseline.server_cpu_us_per_req_mean", base_cpu, "us", "{:.1f}")
        drift = (max(b["rps"] for b in runs) - min(b["rps"] for b in runs)) / base_rps
        if drift > 0.10:
            report.note(f"the baseline varied by {drift:.0%} during the run: the machine is busy, "
                        "ratios are less reliable (each ratio uses the baseline measured right before it)")

        for n in (1000, 5000):
            if n in results and n in baselines:
                missed_poll |= not ratio_check(report, f"idle_{n}.vs_baseline", results[n], baselines[n], POLL_TARGET,
                                               "the bare tornado.web handler")
            if n in results and n in delegates:
                missed_poll |= not ratio_check(report, f"idle_{n}.vs_delegate", results[n], delegates[n],
                                               DELEGATE_TARGET, "a bare HTTPServerConnectionDelegate")
        for mode, r in busy.items():
            missed_poll |= not ratio_check(report, f"{mode}_1000.vs_baseline", r, busy_baselines[mode], BUSY_TARGET,
                                           "the bare tornado.web handler")
        for name, r in [(f"idle_{n}", results[n]) for n in (1000, 5000) if n in results] + \
                [(f"{mode}_1000", r) for mode, r in busy.items()]:
            ok = report.check(f"{name}.p99_ms", r["p99_ms"], P99_TARGET_MS,
                              f"at {CONNECTIONS} connections, server core share {r['core_share']:.2f}",
                              higher_is_better=False, unit="ms")
            missed_poll |= not ok
        scale_ok = True
        if len(scale) >= 2:
            lo, hi = scale[0], scale[-1]
            cpu_ratio = results[lo]["cpu_us_per_req"] / results[hi]["cpu_us_per_req"]
            report.figure(f"scale_{hi}_vs_{lo}_cpu_normalised", cpu_ratio, "x", "{:.3f}")
            scale_ok = report.check(f"scale_{hi}_vs_{lo}", results[hi]["rps"] / results[lo]["rps"], SCALE_TARGET,
                                    f"req/s with {hi} online / with {lo} online (suite's own threshold); "
                                    f"by CPU per request {cpu_ratio:.2f}")
            print("-- scale curve: online users, req/s, p99 ms")
            for n in scale:
                print(f"   {n:>6} {results[n]['rps']:>8.0f} {results[n]['p99_ms']:>8.2f}")

        # --- uvloop comparison (informational)
        if not args.no_uvloop:
            try:
                import uvloop  # noqa: F401
                have_uvloop = True
            except ImportError:
                have_uvloop = False
                report.note("uvloop is not installed (bench/run.sh installs it into bench/.deps); comparison skipped")
            if have_uvloop and 1000 in results:
                baseline_uv = world.start_baseline(uvloop=True)
                bu = measure(baseline_uv, base_tokens, ping, args.short, workdir, warmup=args.warmup)
                wrk_line(report, "baseline_uvloop", bu)
                baseline_uv.stop()
                server_uv = world.start_server(uvloop=True, name="pep-uvloop")
                uv_tokens, _, _ = bl.run(bl.login_many(server_uv.port, names[:1000], CONCURRENCY))
                bl.run(_drain(server_uv.port, uv_tokens))
                # same length run of asyncio pep.py right before, for a like-for-like ratio
                ra = measure(server, tokens[:1000], ping, args.short, workdir, warmup=args.warmup)
                wrk_line(report, "idle_1000_asyncio_again", ra)
                ru = measure(server_uv, uv_tokens, ping, args.short, workdir, warmup=args.warmup)
                wrk_line(report, "idle_1000_uvloop", ru)
                report.figure("uvloop.pep_speedup", ru["rps"] / ra["rps"], "x", "{:.3f}")
                report.figure("uvloop.pep_speedup_cpu_normalised", ra["cpu_us_per_req"] / ru["cpu_us_per_req"], "x", "{:.3f}")
                report.figure("uvloop.baseline_speedup", bu["rps"] / b_end["rps"], "x", "{:.3f}")
                report.figure("uvloop.baseline_speedup_cpu_normalised", b_end["cpu_us_per_req"] / bu["cpu_us_per_req"],
                              "x", "{:.3f}")
                gain = ra["cpu_us_per_req"] / ru["cpu_us_per_req"]  # CPU per request: robust to a busy machine
                verdict = "faster" if gain > 1.03 else ("slower" if gain < 0.97 else "no different")
                report.note(f"pep.py on uvloop measured {verdict} (by CPU per request: {ru['cpu_us_per_req']:.0f} vs "
                            f"{ra['cpu_us_per_req']:.0f} us, {gain:.2f}x; by req/s {ru['rps']:.0f} vs {ra['rps']:.0f}; "
                            f"p99 {ru['p99_ms']:.1f} vs {ra['p99_ms']:.1f} ms); bare Tornado on uvloop "
                            f"{b_end['cpu_us_per_req'] / bu['cpu_us_per_req']:.2f}x by CPU per request")
                server_uv.stop()

        # --- profiles and the attribution ladder when a poll target was missed (or asked for)
        if (missed_poll or args.profile) and 1000 in results:
            if not args.profile:
                profile_run(report, server, tokens[:1000], ping, "idle_1000", workdir)
            ladder(report, world, results[1000], workdir, min(args.short, 6.0))
        if (not scale_ok or args.profile) and len(scale) >= 2:
            profile_run(report, server, tokens, ping, f"idle_{scale[-1]}", workdir, native=True, seconds=6)

    broadcast_timing(report, 1000)
    broadcast_timing(report, 5000)
    return report.finish()


async def _drain(port: int, tokens) -> int:
    pool = bl.ConnPool(port, CONCURRENCY)
    try:
        return await bl.poll_all(pool, tokens)
    finally:
        pool.close()


if __name__ == "__main__":
    sys.exit(main())
