#!/usr/bin/env python3
"""Instructions of one warm login at N online, counted by valgrind's callgrind (no load noise).

The login runs in-process (``services.login``) on a :class:`objects.state.State` with the
in-memory repository and Redis fakes of ``tests/fakes.py`` (no MySQL, no HTTP, no threads):
what is counted is the server's own work for a login, with N visible users online (in #osu,
as ``tests.fakes.World`` makes them). The same user logs in again and again (warm: the
password cache skips bcrypt; each login replaces the previous session, gets every presence
and broadcasts its own to everyone), and with ``--gzip`` the reply is compressed as the
delegate does for the osu! client.

The script runs itself twice under ``valgrind --tool=callgrind`` (``PYTHONHASHSEED=0``), with
``W`` and ``W + K`` logins after the same set-up, and prints the difference divided by ``K``:
instructions per login, independent of what else the machine is doing. ``--repo PATH``
measures another tree of the server (e.g. ``git archive`` of an older commit, with its
compiled codec) to compare before and after a change.

Usage: ``python bench/login_instructions.py [--online 5000] [--logins 20] [--gzip] [--repo PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def inner(repo: Path, online: int, logins: int, gzip: bool) -> None:
    sys.path.insert(0, str(repo))
    import zlib

    from services import login as login_module
    from tests import client as C
    from tests.fakes import PASSWORD, LoginRepo, World

    world = World(redis=True)
    repo_fake = LoginRepo("kawata")
    world.state.repo = repo_fake
    repo_fake.add(900, "Alice")
    for _ in range(online):
        world.user()
    body = C.login_body("Alice", PASSWORD)
    parts_login = getattr(login_module, "login_parts", None)
    packer = None
    if gzip and parts_login is not None:
        from helpers.gzparts import PartsGzip
        packer = PartsGzip(1)

    async def run() -> None:
        for i in range(1 + logins):  # the first checks bcrypt
            if packer is not None:
                token, parts = await parts_login(world.state, body, "10.0.0.1")
                packer.compress(parts)
            else:
                token, reply = await login_module.login(world.state, body, "10.0.0.1")
                if gzip:
                    zlib.compress(reply, 1, 31)
            assert token is not None
            await world.state.drain_tasks()
            if i % 50 == 0:  # as clients poll: queues do not pile up
                for t in world.state.tokens:
                    t.drain()

    asyncio.run(run())


def count(repo: Path, online: int, logins: int, gzip: bool) -> int:
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
           sys.executable, str(Path(__file__).resolve()), "--inner", str(logins), "--online", str(online),
           "--repo", str(repo)] + (["--gzip"] if gzip else [])
    env = dict(os.environ, PYTHONHASHSEED="0")
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(repo))
    found = re.findall(r"Collected\s*:\s*(\d+)", res.stderr)
    if res.returncode != 0 or not found:
        raise SystemExit(f"callgrind run failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return int(found[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online", type=int, default=5000)
    parser.add_argument("--logins", type=int, default=20, help="K: logins measured")
    parser.add_argument("--warm", type=int, default=5, help="W: logins of the shorter run")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--repo", default=str(BENCH.parent))
    parser.add_argument("--inner", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    if args.inner is not None:
        inner(repo, args.online, args.inner, args.gzip)
        return 0
    short = count(repo, args.online, args.warm, args.gzip)
    long = count(repo, args.online, args.warm + args.logins, args.gzip)
    per = (long - short) / args.logins
    print(f"login_instructions: {repo.name} online {args.online}{' gzip' if args.gzip else ''}: "
          f"{per / 1e6:.2f} M instructions per warm login ({args.logins} logins)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
