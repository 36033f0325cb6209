"""A/B of the poll between two server trees on the same machine, runs alternated (no target).

    python bench/ab.py --rev HEAD~1                  # this checkout (B) against a git revision (A)
    python bench/ab.py --rev main --modes idle,chat --rounds 5 --seconds 8

The revision is checked out into a temporary git worktree and its codec compiled there; both
servers run in one world (one database, 1,000 users each logged in to both), pinned to the same
core, never at the same time. Each round measures every mode on A and on B, the order flipping
from round to round, with the wrk load of ``bench/poll.py`` (64 connections, 3 s warm-up).
It prints each run and the median CPU per request and p99 of each side: on a machine whose
speed drifts (a shared host), alternated runs compare two versions where two full
``bench/run.sh`` runs minutes apart cannot (bench/README.md, sixth pass).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import benchlib as bl
import poll

MODES = {
    "idle": lambda: (bl.ping(), None, 0),
    "status": lambda: (poll.status_body(), None, 0),
    "chat": lambda: (bl.ping(), poll.chat_body(), poll.CHAT_EVERY),
}


def worktree(rev: str, where: Path) -> Path:
    """Check ``rev`` out into ``where`` (a git worktree) and compile its codec; returns the tree."""
    subprocess.run(["git", "-C", str(bl.REPO), "worktree", "add", "--detach", str(where), rev],
                   check=True, capture_output=True)
    subprocess.run([bl.PYTHON, "setup.py", "build_ext", "--inplace"], cwd=where, check=True, capture_output=True)
    return where


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description="A/B of the poll between two server trees")
    parser.add_argument("--rev", required=True, help="git revision of side A (B is this checkout)")
    parser.add_argument("--modes", default="idle", help="comma-separated: idle, status, chat")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per measured run")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; known: {sorted(MODES)}")
    bl.pin_self()
    bl.ensure_wrk()
    temp = Path(tempfile.mkdtemp(prefix="pep_bench_ab_"))
    tree = temp / "a"
    try:
        worktree(args.rev, tree)
        with bl.BenchWorld() as world:
            names = [name for _, name in world.create_users(poll.ACTIVE, bl.bcrypt_hash(4))]
            sides = {"A": world.start_server(name="A", repo=tree), "B": world.start_server(name="B")}
            tokens = {}
            for label, server in sides.items():
                tokens[label], _, _ = bl.run(bl.login_many(server.port, names, poll.CONCURRENCY, drain=[],
                                                           drain_every=1000))
            results: dict[tuple[str, str], list[dict]] = {}
            for round_ in range(args.rounds):
                order = ("A", "B") if round_ % 2 == 0 else ("B", "A")
                for mode in modes:
                    body, alt, every = MODES[mode]()
                    for label in order:
                        server = sides[label]
                        bl.run(poll._drain(server.port, tokens[label]))
                        r = poll.measure(server, tokens[label], body, args.seconds, temp, alt, every)
                        results.setdefault((mode, label), []).append(r)
                        print(f"round {round_ + 1} {mode:6} {label}: {r['rps']:7.0f} req/s, "
                              f"{r['cpu_us_per_req']:6.1f} us CPU per request, p99 {r['p99_ms']:6.2f} ms", flush=True)
            print(f"== A = {args.rev}, B = this checkout; medians over {args.rounds} rounds")
            for mode in modes:
                a, b = results[(mode, "A")], results[(mode, "B")]
                cpu_a, cpu_b = median([r["cpu_us_per_req"] for r in a]), median([r["cpu_us_per_req"] for r in b])
                p99_a, p99_b = median([r["p99_ms"] for r in a]), median([r["p99_ms"] for r in b])
                print(f"ab.{mode}: CPU per request A {cpu_a:.1f} us, B {cpu_b:.1f} us (B/A {cpu_b / cpu_a:.3f}); "
                      f"p99 A {p99_a:.2f} ms, B {p99_b:.2f} ms")
    finally:
        subprocess.run(["git", "-C", str(bl.REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(temp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
