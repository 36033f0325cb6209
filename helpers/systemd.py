"""systemd integration: the ``sd_notify`` datagram protocol and journald-friendly logging.

``sd_notify`` (see ``sd_notify(3)``) is a one-way protocol: the service sends newline-separated
``KEY=VALUE`` assignments in one datagram to the ``AF_UNIX`` ``SOCK_DGRAM`` socket named by the
environment variable ``NOTIFY_SOCKET``. A name starting with ``@`` is in the Linux abstract
namespace (the ``@`` stands for a leading NUL byte). Nothing is ever read back, so a send can
never block the event loop (the socket is non-blocking; a full queue drops the message, which
systemd tolerates). Without ``NOTIFY_SOCKET`` every call is a no-op.

The messages pep.py sends (docs/operations.md):

* ``READY=1`` once the listener accepts clients (docs/rules.md §7.7, its last step);
* ``WATCHDOG=1`` every ``WATCHDOG_USEC / 2`` from the event loop, so a hung loop is restarted;
* ``STATUS=...`` with the online count;
* ``RELOADING=1`` + ``MONOTONIC_USEC=`` on SIGHUP (then ``READY=1``) and before a re-exec;
* ``STOPPING=1`` when a shutdown starts.

This module only speaks the protocol and sets up logging; the timers that use it live in
:mod:`services.readiness`, :mod:`services.shutdown` and :mod:`services.signals`. No state, no third-party dependency.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Mapping

log = logging.getLogger("pep.systemd")

#: syslog priorities of the logging levels; journald reads a ``<N>`` prefix on stdout/stderr
#: lines as the priority (``SyslogLevelPrefix=`` is on by default, systemd.exec(5))
SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def notify_address(environ: Mapping[str, str] | None = None) -> str | None:
    """The socket address from ``NOTIFY_SOCKET``: a path, or ``"\\0name"`` for ``@name``.

    Returns None when the variable is unset, empty, or not an ``AF_UNIX`` address (systemd
    also knows ``vsock:`` addresses, which only matter inside VMs and are not supported).
    """
    environ = os.environ if environ is None else environ
    value = environ.get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog timeout in **seconds** from ``WATCHDOG_USEC`` (µs), or None when disabled.

    ``WATCHDOG_PID``, when set, must be this process's pid (``sd_watchdog_enabled(3)``);
    otherwise the variables were meant for another process and are ignored. A malformed or
    non-positive value disables the watchdog.
    """
    environ = os.environ if environ is None else environ
    raw = environ.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    owner = environ.get("WATCHDOG_PID", "")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    try:
        usec = int(raw)
    except ValueError:
        return None
    return usec / 1_000_000 if usec > 0 else None


#: the first fd systemd passes (``SD_LISTEN_FDS_START``, sd_listen_fds(3))
LISTEN_FDS_START = 3


def listen_sockets(environ: "os._Environ[str] | dict[str, str] | None" = None,
                   pid: int | None = None) -> list[socket.socket]:
    """Listening sockets passed by socket activation (``sd_listen_fds(3)``): ``LISTEN_FDS=n``
    sockets at fds 3..3+n-1, meant for this process when ``LISTEN_PID`` is its pid.

    The variables are removed from ``environ`` (so a child does not inherit them, as
    ``sd_listen_fds(1)`` does). Returns [] when nothing was passed, the variables are meant for
    another process, or are malformed (logged). Each fd must be a listening stream socket; the
    sockets are made non-blocking and close-on-exec.
    """
    environ = os.environ if environ is None else environ
    raw_fds = environ.pop("LISTEN_FDS", "")
    raw_pid = environ.pop("LISTEN_PID", "")
    environ.pop("LISTEN_FDNAMES", None)
    if not raw_fds:
        return []
    try:
        count = int(raw_fds)
        owner = int(raw_pid)
    except ValueError:
        log.warning("ignoring malformed LISTEN_FDS=%r LISTEN_PID=%r", raw_fds, raw_pid)
        return []
    if owner != (os.getpid() if pid is None else pid) or not 0 < count <= 64:
        return []
    sockets = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + count):
        try:
            sock = socket.socket(fileno=fd)
            listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        except OSError as exc:
            log.warning("inherited fd %d is not a socket: %s", fd, exc)
            continue
        if sock.type != socket.SOCK_STREAM or not listening:
            log.warning("inherited fd %d is not a listening stream socket; ignored", fd)
            sock.detach()
            continue
        sock.setblocking(False)
        sock.set_inheritable(False)
        sockets.append(sock)
    return sockets


class Notifier:
    """Sends ``sd_notify`` messages to ``address`` (default: from ``NOTIFY_SOCKET``).

    ``enabled`` is False when there is no address; every method then returns False without
    doing anything. Sending never raises: an error (socket gone, queue full) is logged once at
    DEBUG level and the method returns False.
    """

    def __init__(self, address: str | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.address = address if address is not None else notify_address(environ)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram; returns whether it was sent.

        Values must not contain a newline (it would start a new assignment); newlines are
        replaced by spaces.
        """
        if self.address is None or not assignments:
            return False
        data = "\n".join(a.replace("\n", " ") for a in assignments).encode("utf-8", "replace")
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(data, self.address)
            return True
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False

    def ready(self, status: str = "") -> bool:
        """``READY=1`` (start-up finished, or a reload finished), with an optional status."""
        return self.send("READY=1", *((f"STATUS={status}",) if status else ()))

    def reloading(self, status: str = "") -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (CLOCK_MONOTONIC µs, systemd ≥ 253 wants it)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *((f"STATUS={status}",) if status else ()))

    def stopping(self, status: str = "") -> bool:
        """``STOPPING=1``: the shutdown has begun."""
        return self.send("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    def watchdog(self, status: str = "") -> bool:
        """``WATCHDOG=1`` (keep-alive), with an optional status."""
        return self.send("WATCHDOG=1", *((f"STATUS={status}",) if status else ()))

    def status(self, status: str) -> bool:
        """``STATUS=...``: one line shown by ``systemctl status``."""
        return self.send(f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# ---------------------------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------------------------
def under_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether stderr goes to journald (systemd sets ``JOURNAL_STREAM``; ``INVOCATION_ID`` is set
    for every unit, whose output goes to the journal by default)."""
    environ = os.environ if environ is None else environ
    return bool(environ.get("JOURNAL_STREAM") or environ.get("INVOCATION_ID"))


class JournalFormatter(logging.Formatter):
    """``<priority>LEVEL logger: message`` without a timestamp (journald adds its own).

    Continuation lines (tracebacks) are indented and carry the same priority prefix, so the
    journal keeps the whole record at the record's level.
    """

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{SYSLOG_PRIORITY.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)}>"
        lines = super().format(record).split("\n")
        return "\n".join([prefix + lines[0]] + [prefix + "    " + line for line in lines[1:]])


def setup_logging(level: str, environ: Mapping[str, str] | None = None, stream=None) -> None:
    """Log to stderr at ``level``: journald form under systemd, else with timestamps.

    Tornado's access log (one line per request, i.e. per poll) is only kept at DEBUG level.
    Replaces handlers installed earlier on the root logger, so it may be called again.
    """
    numeric = getattr(logging, level.upper(), logging.INFO)
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    if under_journal(environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("tornado.access").setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
