"""Server-wide operations used by the bot, the API, pub/sub and signals: shutdown/restart,
maintenance, settings reload; and the process life cycle that ``pep.py`` drives.

Owned by the operations issue. The signatures of :func:`schedule_shutdown`,
:func:`set_maintenance` and :func:`reload_settings` are fixed; callers elsewhere rely on them.

Life cycle (docs/operations.md, docs/rules.md §7.5–7.7):

* ``pep.py`` calls :func:`install_signal_handlers`, starts the listener, then :func:`started`
  (``READY=1`` and the watchdog/status timer), waits in :func:`wait_for_stop` and finally runs
  :func:`shutdown`, which returns the exit code. When a restart was asked for,
  ``state.lifecycle.reexec`` is true afterwards and ``pep.py`` calls :func:`reexec`.
* A stop request (SIGTERM/SIGINT, SIGUSR2 = restart, or the end of a
  :func:`schedule_shutdown`) refuses logins at once, tells every client to reconnect (86
  Restart) unless a scheduled shutdown already did, keeps serving polls until every client has
  fetched that packet or ``[server] shutdown_grace`` seconds passed, then stops listening,
  stops the services, logs every session out (so their ``peppy:sessions:*`` entries go),
  waits for the background writes, sets ``ripple:online_users`` to 0 and closes the pools. The
  whole stop is bounded: a process still alive ``shutdown_grace + CLEANUP_TIMEOUT + 5`` seconds
  after the request exits hard with code 1.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import tornado.ioloop

from constants import game
from helpers import codec
from helpers import geo
from helpers.layout import TITLE
from helpers.systemd import watchdog_interval
from services import login, session, world

if TYPE_CHECKING:
    from objects.lifecycle import Lifecycle
    from objects.state import State

log = logging.getLogger("pep.system")

RESTART_NOTICE = ("We are performing some maintenance. Bancho will restart in {seconds} seconds. "
                  "Thank you for your patience.")
#: sent with the restart packet when the process is stopped by a signal (SIGTERM, SIGUSR2)
SHUTDOWN_NOTICE = "Bancho is restarting. You will be reconnected in a few seconds."
MAINTENANCE_OFF_NOTICE = "Bancho is no longer in maintenance mode. You can log in again."

#: seconds allowed for the clean-up after the grace period (listener, services, logouts,
#: background writes, pools) before the process gives up waiting and exits
CLEANUP_TIMEOUT = 10.0
#: seconds between two status updates to systemd when there is no watchdog
STATUS_INTERVAL = 10.0
#: longest send_after / delay accepted by schedule_shutdown, seconds
MAX_SCHEDULE = 3600.0


def status_line(state: State) -> str:
    """One line for ``systemctl status``: users online (bot excluded) and matches."""
    bot_id = state.bot.user_id if state.bot is not None else None
    online = sum(1 for uid in state.tokens.online_user_ids() if uid != bot_id)
    line = f"{online} online, {len(getattr(state, 'matches', ()))} matches"
    if state.settings.maintenance:
        line += ", maintenance"
    if state.restarting:
        line += ", restarting"
    return line


# ---------------------------------------------------------------------------------------------
# stop requests
# ---------------------------------------------------------------------------------------------
def request_stop(state: State, restart: bool = False, reason: str = "", notify: bool | None = None) -> None:
    """Ask the server to stop (and restart when ``restart``); see the module docstring.

    ``notify`` True: clients are told to reconnect and logged out (a maintenance stop; a
    restart re-executes the process: :func:`shutdown`). False: the sessions are kept (SIGTERM
    writes a snapshot for the next start, SIGUSR2 hands them to a new process:
    :mod:`services.handover`, chosen by ``pep.py``). None: keep them when ``[sessions]
    handover`` is on. A second request while a stop is under way skips the rest of the grace
    period.
    """
    lc = state.lifecycle
    if lc.stop_requested.is_set():
        if not lc.force:
            lc.force = True
            log.warning("%s: already stopping; skipping the rest of the grace period", reason or "stop request")
        return
    lc.restart = restart
    lc.reason = reason
    lc.notify = (not state.cfg.sessions.handover) if notify is None else notify
    log.info("%s: %s requested", reason or "stop request", "restart" if restart else "shutdown")
    lc.stop_requested.set()


async def wait_for_stop(state: State) -> None:
    """Return when a stop has been requested."""
    await state.lifecycle.stop_requested.wait()


def schedule_shutdown(state: State, restart: bool, message: str | None = None,
                      send_after: float = 5, delay: float = 20) -> None:
    """Schedule a restart (re-exec) or shutdown (docs/rules.md §7.5).

    ``message`` is broadcast at once as a notification; new logins are refused from now on;
    after ``send_after`` seconds every client gets 86 Restart(``delay * 2 * 1000`` ms); after
    ``send_after + delay`` seconds the process stops (and restarts itself when ``restart``).
    Shutdown exits with code 0 (a supervisor with ``Restart=on-failure`` leaves it stopped;
    docs/operations.md). Times are clamped to 0..3600 s (non-numbers count as the defaults).
    A second call while one is pending, or during a stop, is ignored (logged). Must be called
    from the event loop.
    """
    lc = state.lifecycle
    if lc.scheduled or lc.stop_requested.is_set():
        log.warning("a %s was asked for while one is already under way; ignored",
                    "restart" if restart else "shutdown")
        return
    send_after = _seconds(send_after, 5)
    delay = _seconds(delay, 20)
    if message:
        state.tokens.broadcast(codec.notification(str(message)))
    state.restarting = True
    loop = asyncio.get_running_loop()
    lc.scheduled = [
        loop.call_later(send_after, _send_restart_packet, state, delay),
        loop.call_later(send_after + delay, request_stop, state, restart,
                        "scheduled " + ("restart" if restart else "shutdown"), True),
    ]
    lc.notifier.status(status_line(state))
    log.info("%s scheduled: restart packet in %g s, %s in %g s", "restart" if restart else "shutdown",
             send_after, "re-exec" if restart else "exit", send_after + delay)


def _seconds(value: Any, default: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    if math.isnan(value):
        return default
    return min(max(value, 0.0), MAX_SCHEDULE)


def _send_restart_packet(state: State, delay: float) -> None:
    state.tokens.broadcast(codec.restart(int(delay * 2 * 1000)))
    state.lifecycle.restart_sent = True
    log.info("restart packet (%d ms) sent to %d session(s)", int(delay * 2 * 1000), len(state.tokens))


def install_signal_handlers(state: State) -> None:
    """SIGTERM/SIGINT: stop (keeping the sessions for the next start when ``[sessions]
    handover`` is on); SIGUSR1: maintenance stop (clients are told); SIGUSR2: restart in place
    (hand-over to the new code, or re-exec); SIGHUP: reload settings."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, request_stop, state, False, "SIGUSR1", True)
    loop.add_signal_handler(signal.SIGTERM, request_stop, state, False, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, request_stop, state, False, "SIGINT")
    loop.add_signal_handler(signal.SIGUSR2, request_stop, state, True, "SIGUSR2")
    loop.add_signal_handler(signal.SIGHUP, _on_reload_signal, state)


def _on_reload_signal(state: State) -> None:
    lc = state.lifecycle
    log.info("SIGHUP: reloading settings")
    lc.notifier.reloading("reloading settings")

    async def run() -> None:
        try:
            await reload_settings(state)
        finally:
            lc.notifier.ready(status_line(state))

    state.spawn(run(), "settings reload (SIGHUP)")


# ---------------------------------------------------------------------------------------------
# systemd readiness, watchdog and status
# ---------------------------------------------------------------------------------------------
def started(state: State, ready: bool = True) -> None:
    """Tell systemd the server accepts clients (``READY=1``) and start the timer that sends
    ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2`` and the status line (integration with
    ``Type=notify``; a no-op without ``NOTIFY_SOCKET``). ``ready`` False: a process started by
    a hand-over, whose ``READY=1`` the old process sends with ``MAINPID=``."""
    lc = state.lifecycle
    if not lc.notifier.enabled:
        return
    lc.last_status = status_line(state)
    if ready:
        lc.notifier.ready(lc.last_status)
    interval = watchdog_interval()
    watchdog = interval is not None
    period = interval / 2 if watchdog else STATUS_INTERVAL

    def tick() -> None:
        status = status_line(state)
        if watchdog:
            lc.notifier.watchdog(status)
        elif status != lc.last_status:
            lc.notifier.status(status)
        lc.last_status = status

    lc.ticker = tornado.ioloop.PeriodicCallback(tick, period * 1000)
    lc.ticker.start()
    log.info("systemd notification on%s", f", watchdog every {period:g} s" if watchdog else "")


# ---------------------------------------------------------------------------------------------
# shutdown
# ---------------------------------------------------------------------------------------------
async def shutdown(state: State, server: Any, grace: float | None = None, hard_exit: bool = True) -> int:
    """Stop the server cleanly after a stop request (module docstring); returns the exit code 0.

    ``server`` is the ``tornado.httpserver.HTTPServer`` (or None); ``state.services`` are
    stopped in reverse order; ``grace`` overrides ``[server] shutdown_grace``. ``hard_exit``
    arms the timer that ends the *process* with code 1 if the stop hangs; pass False when
    calling this inside a process that must survive (tests). Afterwards
    ``state.lifecycle.reexec`` tells whether the caller should :func:`reexec`.
    """
    lc = state.lifecycle
    cfg = state.cfg.server
    grace = cfg.shutdown_grace if grace is None else max(0.0, grace)
    if hard_exit:
        _arm_hard_exit(lc, grace + CLEANUP_TIMEOUT + 5)
    for handle in lc.scheduled:
        handle.cancel()
    state.restarting = True
    if lc.restart:
        lc.notifier.reloading("restarting")
    else:
        lc.notifier.stopping("stopping")
    if not lc.restart_sent:
        state.tokens.broadcast(codec.notification(SHUTDOWN_NOTICE) + codec.restart(int(cfg.reconnect_delay * 1000)))
        lc.restart_sent = True
        waited = await _grace(state, lc, grace)
        log.info("restart packet delivered to every session after %.2f s" if waited is not None
                 else "grace period of %.2f s over", grace if waited is None else waited)
    try:
        await asyncio.wait_for(_cleanup(state, server), CLEANUP_TIMEOUT)
    except asyncio.TimeoutError:
        log.error("clean-up did not finish within %g s; exiting anyway", CLEANUP_TIMEOUT)
    lc.reexec = lc.restart
    lc.close()
    log.info("stopped%s", "; re-executing" if lc.restart else "")
    return 0


async def _grace(state: State, lc: Lifecycle, grace: float) -> float | None:
    """Serve polls until no session has unread packets or ``grace`` s passed; returns the time
    it took when everyone got their packets, None when the grace period ran out."""
    start = time.monotonic()
    deadline = start + grace
    while True:
        if not any(t.queue for t in state.tokens if not t.is_bot):
            return time.monotonic() - start
        if lc.force or time.monotonic() >= deadline:
            return None
        await asyncio.sleep(0.05)


async def _cleanup(state: State, server: Any) -> None:
    if server is not None:
        server.stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), 2)
        except asyncio.TimeoutError:
            log.warning("some HTTP connections did not close within 2 s")
    lc = state.lifecycle
    if lc.ticker is not None:
        lc.ticker.stop()
        lc.ticker = None
    for service in reversed(state.services):
        try:
            await asyncio.wait_for(service.stop(), 5)
        except Exception:
            log.exception("stopping %s failed", type(service).__name__)
    # twice: a login that was past its checks when the stop began may add a session meanwhile
    for _ in range(2):
        for token in state.tokens:
            if not token.is_bot:
                session.logout(state, token, broadcast=False)
        if state.bot is not None:
            state.tokens.remove(state.bot)
        state.kicked.clear()
        await asyncio.sleep(0)  # lets the coalesced online-count update start
        await state.drain_tasks()
    try:
        await state.redis.set_online_users(0)
    except Exception as exc:
        log.warning("could not reset the online count: %s", exc)
    await close_pools(state)


async def close_pools(state: State) -> None:
    """Close Redis, the MySQL pool, the thread pools and the GeoIP reader (end of every stop,
    also of one that keeps the sessions: services/handover.py)."""
    try:
        await state.redis.close()
    except Exception as exc:
        log.warning("closing Redis failed: %s", exc)
    state.db.close()
    state.cpu_pool.shutdown(wait=False)
    state.io_pool.shutdown(wait=False)
    locator = getattr(state, "geo", None)
    if locator is not None:
        locator.close()


async def logout_and_close(state: State) -> None:
    """The end of a stop whose snapshot could not be written: log every session out, reset the
    online count, close the pools (services/handover.py)."""
    await _cleanup(state, None)


def arm_hard_exit(lc: Lifecycle, seconds: float) -> None:
    """:func:`_arm_hard_exit` for services/handover.py (the stop that keeps sessions)."""
    _arm_hard_exit(lc, seconds)


def _arm_hard_exit(lc: Lifecycle, seconds: float) -> None:
    """Exit with code 1 after ``seconds`` whatever happens (a stuck MySQL call, a hung thread)."""
    if lc.hard_exit is not None:
        return

    def fire() -> None:
        log.error("shutdown took longer than %g s; exiting hard", seconds)
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                pass
        os._exit(1)

    timer = lc.hard_exit = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def reexec(lc: Lifecycle) -> None:
    """Replace this process by a fresh ``pep.py`` with the same interpreter, options and
    arguments (same pid, so systemd keeps tracking it); after a :func:`shutdown` that left
    ``lc.reexec`` set. Does not return."""
    if lc.hard_exit is not None:
        lc.hard_exit.cancel()
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    args = list(getattr(sys, "orig_argv", ())[1:]) or list(sys.argv)
    os.execv(sys.executable, [sys.executable] + args)


# ---------------------------------------------------------------------------------------------
# maintenance and reload
# ---------------------------------------------------------------------------------------------
async def set_maintenance(state: State, on: bool) -> None:
    """Turn maintenance mode on/off: write ``bancho_settings``, notify, refuse non-admins.

    docs/rules.md §7.6: the row is written first (raises :class:`common.db.DatabaseError`,
    nothing changes then). On: admins get the admin maintenance notice; every other session
    gets the maintenance notice and login reply -5 and is logged out at once (its final packets
    are kept for its next poll, like a kick; docs/operations.md). Off: everyone is told.
    """
    on = bool(on)
    await state.repo.set_maintenance(on)
    state.settings.maintenance = on
    refused = 0
    if on:
        admin_notice = codec.notification(login.NOTICE_MAINTENANCE_ADMIN)
        for token in state.tokens:
            if token.is_bot:
                continue
            if token.admin:
                token.enqueue(admin_notice)
                continue
            session.kick(state, token, login.NOTICE_MAINTENANCE, reply=game.LOGIN_ERROR)
            refused += 1
    else:
        state.tokens.broadcast(codec.notification(MAINTENANCE_OFF_NOTICE))
    state.lifecycle.notifier.status(status_line(state))
    log.info("maintenance %s (%d session(s) refused)", "on" if on else "off", refused)


async def reload_settings(state: State) -> None:
    """Reload bancho settings, the menu icon and new channels from MySQL, without dropping anyone.

    docs/integration.md §1 ``reload_settings``: everything is read first (a
    :class:`common.db.DatabaseError` leaves the state unchanged), then in one step: the settings
    are replaced, channels not known yet are added (existing ones are never removed or changed)
    and joined by the bot, and every session gets the menu icon (76, even when empty), 89 and
    65 for every listed channel. The geolocation database is reopened if its file changed.
    Concurrent reloads run one after the other.
    """
    repo = state.repo
    lc = state.lifecycle
    async with lc.reload_lock:
        await repo.load_admin_groups()
        settings = await repo.settings()
        settings.menu_icon = await repo.menu_icon(state.cfg.stack.menu_icon_base)
        rows = await repo.channels()
        # ---- memory only from here
        state.settings = settings
        added = world.add_channels(state, rows)
        tail = codec.channel_info_end() + b"".join(channel.info_packet() for channel in state.channels.listed())
        state.tokens.broadcast_layouts(lambda lay: codec.main_menu_icon(settings.menu_icon, lay) + tail, TITLE)
    _reload_geo(state)
    log.info("settings reloaded: maintenance %s, login notification %s, menu icon %s, new channels: %s",
             "on" if settings.maintenance else "off", "set" if settings.login_notification else "empty",
             "set" if settings.menu_icon else "none", ", ".join(added) or "none")


def _reload_geo(state: State) -> None:
    locator = getattr(state, "geo", None)
    if locator is not None:
        locator.reload()
    elif state.cfg.geo.database:
        state.geo = geo.open_locator(state.cfg.geo.database)


# ---------------------------------------------------------------------------------------------
# error reporting
# ---------------------------------------------------------------------------------------------
def init_error_reporting(dsn: str) -> bool:
    """Start Sentry when ``[sentry] dsn`` is set; returns whether it was started.

    No personal data, request bodies (the login body has the password hash) or local variables
    are sent. A DSN that sentry-sdk refuses is logged and ignored.
    """
    if not dsn:
        return False
    try:
        import sentry_sdk

        sentry_sdk.init(dsn=dsn, send_default_pii=False, max_request_body_size="never",
                        include_local_variables=False, traces_sample_rate=0.0)
    except Exception as exc:
        log.error("Sentry could not be started: %s", exc)
        return False
    log.info("Sentry error reporting on")
    return True
