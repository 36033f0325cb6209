#!/usr/bin/env python3
"""pep.py: the realtime Bancho server of a Ripple / Kawata / RealistikOsu stack.

Command line (README "Usage"):

* ``python3 pep.py [--config PATH]``: run the server (default ``./config.ini``).
* ``python3 pep.py init-db [--config PATH]``: create missing tables and seed rows; idempotent.
* ``python3 pep.py adduser USERNAME PASSWORD [--privileges N] [--config PATH]``: create a user
  the way the Ripple website does and print its id.
* ``python3 pep.py stop --pid PID [--notify]``: stop the server with that pid, keeping every
  session for the next start (SIGTERM), or as a maintenance stop that tells the clients to
  reconnect (``--notify``: SIGUSR1). docs/operations.md "Deploys without disconnects".
* ``python3 pep.py irc-token USERNAME [--config PATH]``: give the user a new IRC token the way
  the website's ``/irc`` page does and print it (docs/irc.md).

Every configuration key can be overridden with ``PEP_<SECTION>_<KEY>`` (see ``config.ini``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
    stop = sub.add_parser("stop", help="stop a running server (keeping its sessions unless --notify)")
    stop.add_argument("--pid", type=int, required=True, help="the server's pid (systemd: MainPID of the unit)")
    stop.add_argument("--notify", action="store_true",
                      help="maintenance stop: tell the clients to reconnect and log them out (SIGUSR1)")
    stop.add_argument("--config", default=argparse.SUPPRESS)
    irc = sub.add_parser("irc-token", help="give a user a new IRC token like the website does; prints it")
    irc.add_argument("username")
    irc.add_argument("--config", default=argparse.SUPPRESS)
    return parser


def _stop(pid: int, notify: bool) -> int:
    """Send SIGUSR1 (``notify``) or SIGTERM to ``pid``; 1 when there is no such process."""
    import signal

    try:
        os.kill(pid, signal.SIGUSR1 if notify else signal.SIGTERM)
    except ProcessLookupError:
        print(f"stop: no process {pid}", file=sys.stderr)
        return 1
    except PermissionError:
        print(f"stop: not allowed to signal {pid}", file=sys.stderr)
        return 1
    return 0


def _setup_logging(level: str) -> None:
    """stderr at ``level``; journald form (priority prefix, no timestamp) under systemd."""
    from helpers.systemd import setup_logging

    setup_logging(level)


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


async def _irc_token(cfg: config_module.Config, username: str) -> int:
    from common import db as db_module
    from common import schema

    db = db_module.Database(cfg.db)
    try:
        token = await schema.new_irc_token(db, username)
    finally:
        db.close()
    print(token)
    return 0


def build_services(state) -> None:
    """Attach the runtime objects to ``state``: the bot's commands (``state.bot_hooks``), the
    pub/sub listener (``state.listener``) and the background services in start order
    (``state.services``: loops, match janitor, pub/sub listener, the match-event lines, the IRC
    gateway (docs/irc.md), the TCP listener of the 2012-2013 builds (docs/operations.md "The TCP
    listener"); stopped in reverse)."""
    from services import commands as bot_commands
    from handlers import irc, tcp
    from services import loops, match_cleanup, match_events, pubsub, pubsub_handlers

    bot_commands.install(state)
    services = []
    if state.cfg.cluster.node_id:  # several nodes, one world (docs/cluster.md): first in, last out
        from services import cluster

        from events import HANDLERS

        state.cluster = cluster.Cluster(state)
        state.cluster.handlers = HANDLERS
        services.append(state.cluster)
    state.listener = pubsub.Listener(state, pubsub_handlers.SUBSCRIPTIONS, on_reconnect=pubsub_handlers.catch_up)
    state.services = services + [loops.Loops(state), match_cleanup.MatchJanitor(state), state.listener,
                      match_events.MatchEvents(state), irc.Gateway(state), tcp.TcpListener(state)]


async def serve(cfg: config_module.Config):
    """Start everything, serve until a stop request, then stop cleanly.

    Returns ``(exit code, lifecycle)``; ``lifecycle.reexec`` tells whether to re-execute
    (``lifecycle`` is None when the start-up failed). Signals and the stop/restart flow:
    :mod:`services.stop`, :mod:`services.shutdown` and :mod:`services.signals` (docs/operations.md).
    """
    import tornado.netutil

    from redis.exceptions import RedisError

    from common.db import Database, DatabaseError
    from common.redis import Redis
    from services import commands as bot_commands
    from services import handover, readiness, shutdown, signals, stop, world
    from handlers.app import make_app
    from handlers.bancho import BanchoServer, body_limit
    from helpers import geo, metrics, netlimits, sentry, systemd
    from objects.state import State

    logging.getLogger().addHandler(metrics.ErrorCounter(DatabaseError, RedisError))
    # docs/security.md, Hardening II: every connection takes a descriptor; malformed requests
    # and slow bodies are logged by Tornado once per request unless throttled
    netlimits.raise_nofile_limit()
    netlimits.install_log_throttle()
    sentry.init_error_reporting(cfg.sentry.dsn)
    # Start-up changes nothing outside the process until every prerequisite is checked: the
    # listening socket is bound first (a second server on a busy port stops here), then Redis
    # and MySQL are read; only then are the stack's Redis keys reset (docs/operations.md).
    # started by a hand-over (SIGUSR2) or by systemd socket activation: the listening sockets
    # are inherited (docs/operations.md "Deploys without disconnects")
    channel = handover.successor_channel()
    inherited = systemd.listen_sockets()
    try:
        sockets = inherited or tornado.netutil.bind_sockets(cfg.server.port, address=cfg.server.host,
                                                            backlog=cfg.server.backlog)
    except OSError as exc:
        log.error("start-up failed: cannot listen on %s:%d: %s", cfg.server.host, cfg.server.port, exc)
        return 1, None
    db = Database(cfg.db)
    redis = Redis(cfg.redis)
    state = State(cfg, db, redis)
    state.geo = geo.open_locator(cfg.geo.database)
    try:
        await redis.client.ping()
        bot_commands.load_configured(state)
        loaded = await world.read_world(state.repo, cfg)
        others = []
        if cfg.cluster.node_id:  # a node joining live nodes keeps their Redis keys (docs/cluster.md)
            from services import cluster

            others = await cluster.live_nodes(redis, cfg.cluster.node_timeout, but=cfg.cluster.node_id)
        await redis.startup(wipe=not others)
    except Exception as exc:  # MySQL, Redis, a missing bot user
        log.error("start-up failed: %s: %s", type(exc).__name__, exc)
        for sock in sockets:
            sock.close()
        db.close()
        await redis.close()
        return 1, None
    world.apply_world(state, loaded)
    if channel is not None:
        data, source = await handover.receive(channel), "the old process"
    elif cfg.cluster.node_id:
        data, source = None, "none (cluster node)"
    else:
        data, source = await handover.take_stored(state)
    restored = handover.restore(state, data, source)
    # POST / (login and poll) is answered below tornado.web by BanchoServer, on the connection's
    # fast side when it is in the common form (helpers/httpfast.py), everything else by the
    # application (docs/architecture.md, "The path of a poll"); the guarded server applies the
    # connection and body limits to both (docs/security.md)
    srv = cfg.server
    bancho = BanchoServer(state, make_app(state))
    server = netlimits.GuardedHTTPServer(
        bancho, fast=bancho, xheaders=False, max_body_size=srv.max_body, max_header_size=srv.max_header,
        idle_connection_timeout=srv.idle_timeout, body_timeout=srv.body_timeout,
        max_per_address=srv.max_connections_per_ip,
        exempt=netlimits.parse_networks(srv.connection_limit_exempt),
        body_limit=body_limit(state), max_pending=srv.max_pending_body)
    state.http_server = server
    build_services(state)
    for service in state.services:
        await service.start()
    signals.install_signal_handlers(state)
    # The live state is long-lived and mostly acyclic: move what start-up built out of the
    # collector's sight and collect rarely. With the defaults, full collections over 10,000
    # sessions took 80-95 ms every 1-1.5 s and made the whole p99 of the poll (bench/README.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    server.add_sockets(sockets)  # docs/rules.md §7.7: HTTP last, after the services
    readiness.started(state, ready=channel is None)
    if channel is not None:
        await handover.serving(channel)
    where = sockets[0].getsockname()[:2] if sockets else (cfg.server.host, cfg.server.port)
    log.info("listening on %s:%d (flavour %s%s)", where[0], where[1], cfg.stack.flavour,
             ", inherited socket" if inherited else "")
    if restored is not None:
        # after accepting: the session keys the start-up wiped, then the re-check (bench/README.md
        # handover.py: the swap is what polls wait for)
        users = sorted({t.user_id for t in state.tokens if not t.is_bot})
        sessions = [(t.user_id, t.ip) for t in state.tokens if not t.is_bot]
        state.spawn(redis.resync(len(state.tokens), sessions), "session keys after the restore")
        state.spawn(handover.recheck(state, users), "re-check after the restart")
    while True:
        await stop.wait_for_stop(state)
        if state.lifecycle.notify:
            return await shutdown.shutdown(state, server), state.lifecycle
        code = await handover.stop_keeping_sessions(state, server)
        if code is not None:
            return code, state.lifecycle


def _event_loop_runner(cfg: config_module.Config):
    """``uvloop.run`` when ``[server] uvloop`` is on and uvloop is installed, else ``asyncio.run``.

    bench/README.md: pep.py on uvloop spends 1.10-1.25x less CPU per poll than on the default
    asyncio loop; Tornado runs on either, so a machine without uvloop still works.
    """
    if cfg.server.uvloop:
        try:
            import uvloop
        except ImportError:
            log.warning("[server] uvloop is on but uvloop is not installed: using the asyncio loop")
        else:
            return uvloop.run
    return asyncio.run


def run(cfg: config_module.Config) -> int:
    """Run the server until it is stopped; returns the exit code, or re-executes the process
    when a restart was asked for (SIGUSR2, ``!system restart``)."""
    code, lifecycle = _event_loop_runner(cfg)(serve(cfg))
    from services import shutdown

    if code == 0 and lifecycle is not None and lifecycle.reexec:
        shutdown.reexec(lifecycle)
    return code


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
    if args.command == "stop":
        return _stop(args.pid, args.notify)
    if args.command == "adduser":
        from common.schema import UserError

        try:
            return asyncio.run(_add_user(cfg, args.username, args.password, args.privileges))
        except UserError as exc:
            print(f"adduser: {exc}", file=sys.stderr)
            return 1
    if args.command == "irc-token":
        from common.schema import UserError

        try:
            return asyncio.run(_irc_token(cfg, args.username))
        except UserError as exc:
            print(f"irc-token: {exc}", file=sys.stderr)
            return 1
    return run(cfg)


if __name__ == "__main__":
    sys.exit(main())
