"""Prometheus metrics of the server (prometheus-client, the default registry).

The prometheus-client counters and gauges are registered in prometheus-client's default
registry, as the library is designed (one registry per process; docs/decisions.md
"Module-level state"), so that any module can count without
a reference to the state: ``from helpers import metrics; metrics.count_pubsub("peppy:ban")``.
Gauges that describe the live state (online users, matches, channels) are set from the state
when ``/metrics`` is scraped (:func:`update_state_gauges`), never on the hot path.

Cost on the poll path: requests, packets and the poll-time histogram are plain counts in a
:class:`PollCounters` owned by the state (``state.poll_counters``: one increment, no lock; the
event loop is the only writer), read when ``/metrics`` is scraped (:func:`exposition`).

Metric names (all prefixed ``pep_``; docs/operations.md lists them with their meaning):

* ``pep_requests_total{kind}``: Bancho requests: ``login``, ``poll``, ``unknown_token``,
  ``status`` (GET /);
* ``pep_packets_total{packet}``: client packets handled, by packet id (``unknown`` for ids no
  handler knows, so a client cannot create labels at will);
* ``pep_poll_seconds``: histogram of the server-side time of one poll (frames + reply);
* ``pep_logins_total{outcome}``: login outcomes (``success``, ``failed``, ``old_client``,
  ``banned``, ``locked``, ``error``, ``verification``, ``maintenance``, ``restarting``);
* ``pep_mysql_queries_total``: MySQL operations run (one statement, one ``executemany`` or
  one transaction each; counted in the pool's worker thread);
* ``pep_background_tasks``: gauge, coroutines started with ``State.spawn`` still running;
* ``pep_mysql_errors_total``, ``pep_redis_errors_total``: failures seen (counted where they
  are logged, see :class:`ErrorCounter`, and by direct calls);
* ``pep_pubsub_messages_total{channel, outcome}``: pub/sub messages received;
* ``pep_log_messages_total{level}``: log records at WARNING and above;
* gauges ``pep_http_connections``, ``pep_http_pending_body_bytes``, ``pep_http_refused_connections``,
  ``pep_http_shed_connections``, ``pep_http_descriptor_shortages`` (the connection limits of
  ``helpers/netlimits.py``; the last three count since start) and ``pep_bcrypt_queue``;
* gauges ``pep_tcp_connections``, ``pep_tcp_sessions``, ``pep_tcp_pending_bytes``,
  ``pep_tcp_refused_connections`` (the TCP listener of ``handlers/tcp.py`` while it runs);
* gauges ``pep_online_users`` (distinct users, bot excluded), ``pep_tokens`` (sessions, bot
  included: the value of ``ripple:online_users``), ``pep_matches``, ``pep_channels``,
  ``pep_restarting``, ``pep_maintenance``, ``pep_uptime_seconds``;
* plus prometheus-client's ``process_*`` and ``python_*`` collectors.
"""

from __future__ import annotations

import bisect
import logging
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from objects.state import State

#: upper bounds (seconds) of the ``pep_poll_seconds`` buckets (+Inf is implied)
POLL_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LOGINS = Counter("pep_logins", "Login attempts by outcome", ["outcome"])
MYSQL_ERRORS = Counter("pep_mysql_errors", "MySQL errors seen")
MYSQL_QUERIES = Counter("pep_mysql_queries", "MySQL operations run (statement, executemany or transaction)")
BACKGROUND_TASKS = Gauge("pep_background_tasks", "Background coroutines (State.spawn) still running")
REDIS_ERRORS = Counter("pep_redis_errors", "Redis errors seen")
PUBSUB_MESSAGES = Counter("pep_pubsub_messages", "Pub/sub messages received", ["channel", "outcome"])
LOG_MESSAGES = Counter("pep_log_messages", "Log records at WARNING or above", ["level"])

ONLINE_USERS = Gauge("pep_online_users", "Distinct users online (the bot excluded)")
TOKENS = Gauge("pep_tokens", "Sessions in the token list (the bot included; = ripple:online_users)")
MATCHES = Gauge("pep_matches", "Multiplayer matches")
CHANNELS = Gauge("pep_channels", "Chat channels (permanent and runtime)")
RESTARTING = Gauge("pep_restarting", "1 while a restart or shutdown is under way")
MAINTENANCE = Gauge("pep_maintenance", "1 while maintenance mode is on")
UPTIME = Gauge("pep_uptime_seconds", "Seconds since the server started")
# connection-level limits (helpers/netlimits.py, docs/security.md): read from the server at scrape time
HTTP_CONNECTIONS = Gauge("pep_http_connections", "Open HTTP connections")
HTTP_PENDING = Gauge("pep_http_pending_body_bytes", "Bytes held by request bodies not yet complete")
HTTP_REFUSED = Gauge("pep_http_refused_connections", "Connections refused since start: over the per-address cap")
HTTP_SHED = Gauge("pep_http_shed_connections", "Idle connections closed since start to let newcomers in (descriptors ran out)")
HTTP_PAUSES = Gauge("pep_http_descriptor_shortages", "Times since start the accept loop found no descriptor left")
BCRYPT_QUEUE = Gauge("pep_bcrypt_queue", "bcrypt checks queued or running")
TCP_CONNECTIONS = Gauge("pep_tcp_connections", "Open connections of the TCP listener (logged in or not)")
TCP_SESSIONS = Gauge("pep_tcp_sessions", "Sessions of the TCP listener (2012-2013 clients)")
TCP_PENDING = Gauge("pep_tcp_pending_bytes", "Bytes of incomplete packets held by the TCP listener")
TCP_REFUSED = Gauge("pep_tcp_refused_connections", "TCP connections refused since start: over a connection cap")

#: login reply code (docs/protocol.md §3.5) -> outcome label
LOGIN_OUTCOMES = {
    -1: "failed", -2: "old_client", -3: "banned", -4: "locked", -5: "error", -8: "verification",
}

class PollCounters:
    """The poll-path counters of one server (``state.poll_counters``): handled client packets
    by id, Bancho requests by kind and the poll-time histogram, as plain counts written by the
    event loop only (no lock) and exported when ``/metrics`` is scraped.

    bench/README.md: prometheus-client's ``Histogram.observe`` took a lock and ~40% of the
    poll's own time, hence plain counts. The object is also a prometheus-client collector
    (:meth:`collect`), registered in a registry of its own (``registry``), never in the
    process-wide default one, so every ``State`` (tests build many) has its own counts.
    """

    __slots__ = ("packets", "requests", "poll_buckets", "poll_sum", "registry")

    def __init__(self) -> None:
        #: packet id (or ``"unknown"``) -> packets handled
        self.packets: dict[int | str, int] = {}
        #: request kind -> requests
        self.requests: dict[str, int] = {}
        #: one count per bucket of :data:`POLL_BUCKETS`, the last one is +Inf
        self.poll_buckets: list[int] = [0] * (len(POLL_BUCKETS) + 1)
        #: sum of the observed poll times, seconds
        self.poll_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def count_packet(self, packet_id: int, known: bool = True) -> None:
        """Count one handled client packet (``known=False`` for ids without a handler: they all
        count as ``unknown``, so a client cannot create labels at will)."""
        key: int | str = packet_id if known else "unknown"
        self.packets[key] = self.packets.get(key, 0) + 1

    def count_request(self, kind: str) -> None:
        """Count one Bancho request: ``login``, ``poll``, ``unknown_token`` or ``status``."""
        self.requests[kind] = self.requests.get(kind, 0) + 1

    def observe_poll(self, seconds: float, _bisect: Any = bisect.bisect_left) -> None:
        """Record the duration of one poll, in seconds (bucket ``le`` = the first bound >= it)."""
        self.poll_buckets[_bisect(POLL_BUCKETS, seconds)] += 1
        self.poll_sum += seconds

    def collect(self) -> Any:
        """The counts as ``pep_packets_total``, ``pep_requests_total`` and the ``pep_poll_seconds``
        histogram (prometheus-client metric families)."""
        packets = CounterMetricFamily("pep_packets", "Client packets handled, by packet id", labels=["packet"])
        for key, value in list(self.packets.items()):
            packets.add_metric([str(key)], value)
        requests = CounterMetricFamily("pep_requests", "Bancho endpoint requests by kind", labels=["kind"])
        for kind, value in list(self.requests.items()):
            requests.add_metric([kind], value)
        buckets = []
        total = 0
        for bound, count in zip((*POLL_BUCKETS, float("inf")), list(self.poll_buckets)):
            total += count
            buckets.append((floatToGoString(bound), total))
        poll = HistogramMetricFamily("pep_poll_seconds", "Server-side duration of one poll (frames and reply), seconds",
                                     buckets=buckets, sum_value=self.poll_sum)
        return [packets, requests, poll]


def exposition(counters: PollCounters) -> bytes:
    """The ``/metrics`` page: the process-wide registry of prometheus-client, then the poll
    counters of this server (Prometheus text format; the metric names do not overlap)."""
    return generate_latest(REGISTRY) + generate_latest(counters.registry)


def count_login(code: int, reason: str = "") -> None:
    """Count a login outcome from its reply code (> 0 = success, the user id).

    ``reason`` distinguishes the -1 refusals of maintenance and restarts (docs/decisions.md).
    """
    if code > 0:
        outcome = "success"
    elif reason == "maintenance":
        outcome = "maintenance"
    elif reason == "server restarting":
        outcome = "restarting"
    else:
        outcome = LOGIN_OUTCOMES.get(code, "failed")
    LOGINS.labels(outcome).inc()


def count_pubsub(channel: str, outcome: str = "ok") -> None:
    """Count one received pub/sub message on the stack channel ``channel`` (without prefix);
    ``outcome``: ``ok``, ``invalid`` (dropped as malformed) or ``error`` (handler failed)."""
    PUBSUB_MESSAGES.labels(channel, outcome).inc()


def mysql_query() -> None:
    """Count one MySQL operation (called by ``common.db`` in a worker thread; the counter locks)."""
    MYSQL_QUERIES.inc()


def mysql_error() -> None:
    MYSQL_ERRORS.inc()


def redis_error() -> None:
    REDIS_ERRORS.inc()


def update_state_gauges(state: State) -> None:
    """Set the gauges from the live state (called when ``/metrics`` is scraped)."""
    bot_id = state.bot.user_id if state.bot is not None else None
    ONLINE_USERS.set(sum(1 for uid in state.tokens.online_user_ids() if uid != bot_id))
    TOKENS.set(len(state.tokens))
    MATCHES.set(len(getattr(state, "matches", ())))
    CHANNELS.set(len(state.channels))
    BACKGROUND_TASKS.set(state.background_tasks())
    RESTARTING.set(1 if state.restarting else 0)
    MAINTENANCE.set(1 if state.settings.maintenance else 0)
    UPTIME.set(max(0.0, time.time() - state.started))
    BCRYPT_QUEUE.set(getattr(state, "bcrypt_pending", 0))
    server = getattr(state, "http_server", None)
    if server is not None:
        HTTP_CONNECTIONS.set(len(server._connections))
        HTTP_PENDING.set(server.pending_bytes)
        HTTP_REFUSED.set(server.refused_connections.total)
        HTTP_SHED.set(server.shed_total)
        HTTP_PAUSES.set(server.accept_pauses.total)
    tcp = getattr(state, "tcp", None)
    if tcp is not None:
        TCP_CONNECTIONS.set(len(tcp.connections))
        TCP_SESSIONS.set(len(tcp.by_token))
        TCP_PENDING.set(tcp.pending)
        TCP_REFUSED.set(tcp.refused.total)


class ErrorCounter(logging.Handler):
    """A logging handler that counts records at WARNING and above, and the MySQL and Redis
    errors that reach the log (a record whose exception, or whose ``exc_info``, is a
    :class:`common.db.DatabaseError` or a :class:`redis.exceptions.RedisError`).

    The house rule is that no failure is swallowed silently (every background task failure is
    logged by ``State.spawn``), so the log is the one place every such error passes through.
    Install once on the root logger (``pep.py`` does). ``db_error`` and ``redis_error`` are the
    two exception classes (passed in, so that this module stays below ``common`` in the layers).
    """

    def __init__(self, db_error: type[BaseException], redis_error: type[BaseException]) -> None:
        super().__init__(logging.WARNING)
        self._db_error = db_error
        self._redis_error = redis_error

    def emit(self, record: logging.LogRecord) -> None:
        LOG_MESSAGES.labels(record.levelname).inc()
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return
        if isinstance(exc, self._db_error):
            MYSQL_ERRORS.inc()
        elif isinstance(exc, self._redis_error):
            REDIS_ERRORS.inc()
