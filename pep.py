#!/usr/bin/env python3
"""pep.py: the realtime Bancho server of a Ripple / Kawata / RealistikOsu stack.

Command line (README "Usage"):

* ``python3 pep.py [--config PATH]``: run the server (default ``./config.ini``).
* ``python3 pep.py init-db [--config PATH]``: create missing tables and seed rows; idempotent.
* ``python3 pep.py adduser USERNAME PASSWORD [--privileges N] [--config PATH]``: create a user
  the way the Ripple website does and print its id.

Every configuration key can be overridden with ``PEP_<SECTION>_<KEY>`` (see ``config.ini``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import config as config_module  # noqa: E402

log = logging.getLogger("pep")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pep.py", description="Realtime Bancho server for osu! private servers.")
    parser.add_argument("--config", default="config.ini", help="path of config.ini (default ./config.ini)")
    sub = parser.add_subparsers(dest="command")
    init = sub.add_parser("init-db", help="create missing tables and seed rows (idempotent, never drops data)")
    init.add_argument("--config", default=argparse.SUPPRESS)
    add = sub.add_parser("adduser", help="create a user like the Ripple website does; prints its id")
    add.add_argument("username")
    add.add_argument("password")
    add.add_argument("--privileges", type=int, default=3, help="users.privileges (default 3: public, normal)")
    add.add_argument("--config", default=argparse.SUPPRESS)
    return parser


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


async def _init_db(cfg: config_module.Config) -> int:
    from common import db as db_module
    from common import schema

    db = db_module.Database(cfg.db)
    try:
        await db.create_database_if_missing()
        created = await schema.init_db(db, cfg.stack.flavour, bot_id=cfg.stack.bot_id)
    finally:
        db.close()
    for line in created:
        print(line)
    print("init-db: done")
    return 0


async def _add_user(cfg: config_module.Config, username: str, password: str, privileges: int) -> int:
    from common import db as db_module
    from common import schema

    db = db_module.Database(cfg.db)
    try:
        user_id = await schema.add_user(db, cfg.stack.flavour, username, password, privileges)
    finally:
        db.close()
    print(user_id)
    return 0


def run(cfg: config_module.Config) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code."""
    from objects.app import serve

    return serve(cfg)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = config_module.load(args.config)
    except config_module.ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    _setup_logging(cfg.log.level)
    if args.command == "init-db":
        return asyncio.run(_init_db(cfg))
    if args.command == "adduser":
        from common.schema import UserError

        try:
            return asyncio.run(_add_user(cfg, args.username, args.password, args.privileges))
        except UserError as exc:
            print(f"adduser: {exc}", file=sys.stderr)
            return 1
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
