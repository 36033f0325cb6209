"""Unit tests of the operations helpers: sd_notify, journald logging, geolocation, metrics."""

from __future__ import annotations

import io
import logging
import os
import socket
import secrets

import pytest

from helpers import geo, metrics, systemd


# ---------------------------------------------------------------------------------------------
# sd_notify
# ---------------------------------------------------------------------------------------------
def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notify_address_forms():
    assert systemd.notify_address({}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": ""}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}) == "/run/systemd/notify"
    assert systemd.notify_address({"NOTIFY_SOCKET": "@abstract/name"}) == "\0abstract/name"
    assert systemd.notify_address({"NOTIFY_SOCKET": "@"}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None
    assert systemd.notify_address({"NOTIFY_SOCKET": "relative/path"}) is None


def test_notifier_sends_datagrams_to_a_path(tmp_path):
    path = str(tmp_path / "notify.sock")
    receiver = _receiver(path)
    try:
        notifier = systemd.Notifier(environ={"NOTIFY_SOCKET": path})
        assert notifier.enabled
        assert notifier.ready("3 online, 0 matches")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=3 online, 0 matches"
        assert notifier.watchdog()
        assert receiver.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping("stopping")
        assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
        assert notifier.status("two\nlines")
        assert receiver.recv(4096) == b"STATUS=two lines"
        assert notifier.reloading()
        fields = receiver.recv(4096).decode().split("\n")
        assert fields[0] == "RELOADING=1" and fields[1].startswith("MONOTONIC_USEC=")
        assert int(fields[1].split("=")[1]) > 0
        notifier.close()
    finally:
        receiver.close()


def test_notifier_abstract_namespace():
    name = f"pep-test-{secrets.token_hex(4)}"
    receiver = _receiver("\0" + name)
    try:
        notifier = systemd.Notifier(environ={"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert receiver.recv(4096) == b"READY=1"
        notifier.close()
    finally:
        receiver.close()


def test_notifier_without_socket_or_with_a_dead_one_never_raises(tmp_path):
    assert not systemd.Notifier(environ={}).ready()
    dead = systemd.Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert dead.enabled
    assert not dead.ready()
    assert not dead.watchdog()


def test_watchdog_interval():
    assert systemd.watchdog_interval({}) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    mine = str(os.getpid())
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": mine}) == 2.0
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, pid=4242) is None


# ---------------------------------------------------------------------------------------------
# logging
# ---------------------------------------------------------------------------------------------
def _log_once(environ: dict, level: str = "INFO") -> str:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("tornado.access").level)
    try:
        systemd.setup_logging(level, environ=environ, stream=stream)
        logging.getLogger("pep.test").warning("hello %d", 7)
        logging.getLogger("pep.test").debug("hidden at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("pep.test").exception("failed")
        logging.getLogger("tornado.access").info("200 POST / (127.0.0.1) 0.50ms")
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.getLogger("tornado.access").setLevel(saved[2])
    return stream.getvalue()


def test_logs_under_journald_have_priorities_and_no_timestamps():
    for env in ({"JOURNAL_STREAM": "8:12345"}, {"INVOCATION_ID": "abc"}):
        out = _log_once(env)
        lines = out.splitlines()
        assert lines[0] == "<4>WARNING pep.test: hello 7"
        assert lines[1] == "<3>ERROR pep.test: failed"
        # the traceback stays with its record: same priority, indented
        assert all(line.startswith("<3>    ") for line in lines[2:]), lines
        assert "ValueError: boom" in out
        assert "hidden at INFO" not in out
        assert "POST /" not in out  # access log only at DEBUG


def test_logs_outside_systemd_have_timestamps():
    out = _log_once({})
    first = out.splitlines()[0]
    assert not first.startswith("<")
    assert first[:4].isdigit() and "WARNING pep.test: hello 7" in first
    debug = _log_once({}, level="DEBUG")
    assert "hidden at INFO" in debug and "POST /" in debug


# ---------------------------------------------------------------------------------------------
# geolocation (a real MaxMind-format database written with mmdb-writer)
# ---------------------------------------------------------------------------------------------
def write_mmdb(path: str, database_type: str = "GeoLite2-City") -> None:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    city = "City" in database_type
    for network, code, lat, lon in (("133.0.0.0/8", "JP", 35.5, 139.75), ("2a00:1450::/32", "DE", 52.5, 13.25),
                                    ("81.0.0.0/16", "ZZ", 1.0, 2.0)):
        record = {"country": {"iso_code": code, "names": {"en": code}}}
        if city:
            record["location"] = {"latitude": lat, "longitude": lon}
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(path)


def test_geolocation_with_a_city_database(tmp_path):
    path = str(tmp_path / "city.mmdb")
    write_mmdb(path)
    locator = geo.open_locator(path)
    assert locator is not None
    try:
        assert locator.lookup("133.1.2.3") == geo.Location("JP", 35.5, 139.75)
        assert locator.lookup("2a00:1450::1") == geo.Location("DE", 52.5, 13.25)
        assert locator.lookup("::ffff:133.1.2.3") == geo.Location("JP", 35.5, 139.75)  # IPv4-mapped
        assert locator.lookup("8.8.8.8") is None  # not in the database
        assert locator.lookup("127.0.0.1") is None  # not global
        assert locator.lookup("10.1.2.3") is None
        assert locator.lookup("not an ip") is None
        assert locator.lookup("81.0.1.1") is None  # a code the osu! country table does not know
        assert geo.locate(None, "133.1.2.3") is None
        assert geo.locate(locator, "") is None
    finally:
        locator.close()


def test_geolocation_with_a_country_database_and_reload(tmp_path):
    path = str(tmp_path / "country.mmdb")
    write_mmdb(path, "GeoLite2-Country")
    locator = geo.open_locator(path)
    assert locator is not None
    try:
        assert locator.lookup("133.1.2.3") == geo.Location("JP", 0.0, 0.0)
        assert not locator.reload()  # unchanged file
        write_mmdb(path, "GeoLite2-City")
        os.utime(path, (1, 1))
        assert locator.reload()
        assert locator.lookup("133.1.2.3") == geo.Location("JP", 35.5, 139.75)
        os.unlink(path)
        assert not locator.reload()  # gone: the open reader is kept
        assert locator.lookup("133.1.2.3").country == "JP"
    finally:
        locator.close()


def test_geolocation_missing_or_broken_database(tmp_path):
    assert geo.open_locator("") is None
    assert geo.open_locator(str(tmp_path / "missing.mmdb")) is None
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"this is not a maxmind database")
    assert geo.open_locator(str(bad)) is None


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------
def _value(name: str, labels: dict | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_metric_helpers_count():
    before = _value("pep_logins_total", {"outcome": "maintenance"})
    metrics.count_login(-1, "maintenance")
    assert _value("pep_logins_total", {"outcome": "maintenance"}) == before + 1
    before = _value("pep_logins_total", {"outcome": "banned"})
    metrics.count_login(-3, "banned")
    assert _value("pep_logins_total", {"outcome": "banned"}) == before + 1
    counters = metrics.PollCounters()
    counters.count_packet(31337, known=False)
    counters.count_packet(4)
    counters.count_packet(4)
    counters.count_request("poll")
    counters.observe_poll(0.0003)
    counters.observe_poll(5.0)

    def own(name: str, labels: dict | None = None) -> float | None:
        return counters.registry.get_sample_value(name, labels or {})

    assert own("pep_packets_total", {"packet": "unknown"}) == 1
    assert own("pep_packets_total", {"packet": "31337"}) is None
    assert own("pep_packets_total", {"packet": "4"}) == 2
    assert own("pep_requests_total", {"kind": "poll"}) == 1
    assert own("pep_poll_seconds_bucket", {"le": "0.0005"}) == 1  # 0.3 ms: in le=0.0005 and above
    assert own("pep_poll_seconds_bucket", {"le": "0.00025"}) == 0
    assert own("pep_poll_seconds_bucket", {"le": "+Inf"}) == 2 and own("pep_poll_seconds_count") == 2
    assert own("pep_poll_seconds_sum") == pytest.approx(5.0003)
    # a second server's counts are its own, and none reach the process-wide registry
    assert metrics.PollCounters().registry.get_sample_value("pep_requests_total", {"kind": "poll"}) is None
    assert _value("pep_packets_total", {"packet": "4"}) == 0
    page = metrics.exposition(counters).decode()
    assert 'pep_packets_total{packet="4"} 2.0' in page and "pep_logins_total" in page
    before = _value("pep_pubsub_messages_total", {"channel": "peppy:ban", "outcome": "ok"})
    metrics.count_pubsub("peppy:ban")
    assert _value("pep_pubsub_messages_total", {"channel": "peppy:ban", "outcome": "ok"}) == before + 1


def test_error_counter_counts_mysql_and_redis_errors_from_the_log():
    from redis.exceptions import RedisError

    from common.db import DatabaseError

    logger = logging.getLogger("pep.test.errors")
    logger.propagate = False
    handler = metrics.ErrorCounter(DatabaseError, RedisError)
    logger.addHandler(handler)
    try:
        mysql, redis_, errors = (_value("pep_mysql_errors_total"), _value("pep_redis_errors_total"),
                                 _value("pep_log_messages_total", {"level": "ERROR"}))
        logger.error("task failed", exc_info=DatabaseError("2006: gone away", 2006))
        logger.error("task failed", exc_info=RedisError("connection reset"))
        logger.error("plain error without an exception")
        logger.info("not counted")
        assert _value("pep_mysql_errors_total") == mysql + 1
        assert _value("pep_redis_errors_total") == redis_ + 1
        assert _value("pep_log_messages_total", {"level": "ERROR"}) == errors + 3
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("allow, ok", [("127.0.0.0/8, ::1", True), ("10.0.0.0/8,192.168.1.5", True),
                                       ("localhost", False)])
def test_metrics_allow_is_validated(allow, ok):
    from helpers import config

    if ok:
        assert config.load(None, environ={"PEP_METRICS_ALLOW": allow}).metrics.allow == allow
    else:
        with pytest.raises(config.ConfigError, match=r"\[metrics\] allow"):
            config.load(None, environ={"PEP_METRICS_ALLOW": allow})


# ---------------------------------------------------------------------------------------------
# Sentry (in a subprocess: sentry-sdk instruments the whole interpreter once started)
# ---------------------------------------------------------------------------------------------
def test_sentry_starts_only_with_a_valid_dsn():
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO);"
            "from helpers.sentry import init_error_reporting as i;"
            "print(i(''), i('not a dsn'), i('https://public@o1.ingest.example.invalid/42'))")
    res = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "False", "True"], (res.stdout, res.stderr)
    assert "Sentry could not be started" in res.stderr


# ---------------------------------------------------------------------------------------------
# socket activation: LISTEN_FDS / LISTEN_PID (sd_listen_fds(3))
# ---------------------------------------------------------------------------------------------
def _at_fd3(sock):
    """Put ``sock`` at fd 3 as systemd does; returns what was at fd 3 before (to restore)."""
    import os

    try:
        saved = os.dup(3)
    except OSError:
        saved = None
    os.dup2(sock.fileno(), 3)
    return saved


def _restore_fd3(saved) -> None:
    import os

    if saved is None:
        try:
            os.close(3)
        except OSError:
            pass
    else:
        os.dup2(saved, 3)
        os.close(saved)


def test_listen_sockets_takes_fd3_only_for_this_pid():
    import os
    import socket as socket_module

    from helpers.systemd import listen_sockets

    listener = socket_module.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    saved = _at_fd3(listener)
    try:
        # for another process: ignored, variables removed
        env = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDNAMES": "x"}
        assert listen_sockets(env) == [] and env == {}
        # malformed
        assert listen_sockets({"LISTEN_FDS": "one", "LISTEN_PID": str(os.getpid())}) == []
        assert listen_sockets({"LISTEN_FDS": "0", "LISTEN_PID": str(os.getpid())}) == []
        assert listen_sockets({}) == []
        env = {"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())}
        got = listen_sockets(env)
        assert len(got) == 1 and env == {}
        assert got[0].getsockname() == listener.getsockname()
        assert not got[0].get_inheritable() and got[0].getblocking() is False
        got[0].detach()  # fd 3 is closed by _restore_fd3
    finally:
        _restore_fd3(saved)
        listener.close()


def test_listen_sockets_refuses_what_is_not_a_listening_socket():
    import os
    import socket as socket_module

    from helpers.systemd import listen_sockets

    plain = socket_module.socket()  # not listening
    saved = _at_fd3(plain)
    try:
        assert listen_sockets({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())}) == []
    finally:
        _restore_fd3(saved)
        plain.close()
