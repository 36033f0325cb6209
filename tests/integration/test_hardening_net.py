"""Hardening II, network and services (docs/security.md): attacks from outside on a real server.

Each test reproduces one attack of issue #12 on the loopback and fails without its protection.
Counts are small so that each test takes seconds; ``bench/attack_*.py`` print the full-size
figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from tests import client as C
from tests.waiting import wait_until
from tests.integration import netattack as N


def _bcrypt_checks(server, ip: str | None = None) -> int:
    """Wrong-password refusals in the server log (each one cost a bcrypt check)."""
    lines = [ln for ln in server.log_text().splitlines() if "reason=wrong username or password" in ln]
    if ip is not None:
        lines = [ln for ln in lines if f"ip={ip} " in ln]
    return len(lines)


def test_simultaneous_wrong_logins_from_one_address_cost_at_most_the_limit(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "5", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1000",
                          "PEP_LIMITS_BCRYPT_QUEUE": "1000", "PEP_LIMITS_BCRYPT_PER_IP": "1000"})
    ip = "203.0.113.50"
    bodies = [(C.login_body(f"nobody{i}", "wrong"), {"X-Real-IP": ip}) for i in range(150)]
    replies = asyncio.run(N.login_burst(extra.port, bodies))
    assert all(r == -1 for r in replies), replies
    checks = _bcrypt_checks(extra, ip)
    print(f"150 simultaneous wrong logins from one address: {checks} bcrypt checks (limit 5)")
    assert checks <= 5


def test_a_sustained_flood_from_one_address_does_not_hold_other_logins(server, start_server):
    # a failure limit high enough that the address could keep the whole bcrypt queue by itself
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "1000", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1000",
                          "PEP_LIMITS_BCRYPT_QUEUE": "6"})
    user = server.new_user()

    async def scenario():
        stop = time.monotonic() + 4.0
        sent = 0

        async def attacker(n: int) -> None:
            nonlocal sent
            while time.monotonic() < stop:  # 12 logins always in flight, for 4 s
                await N.login_burst(extra.port, [(C.login_body(f"flood{n}", "wrong"), {"X-Real-IP": "203.0.113.77"})])
                sent += 1

        flood = [asyncio.ensure_future(attacker(n)) for n in range(12)]
        await asyncio.sleep(1.0)  # the behaviour: logins measured while the flood is under way
        results = []
        for _ in range(3):
            results.append(await asyncio.get_running_loop().run_in_executor(
                None, N.login_timed, extra.url, user.name, user.password, {"X-Real-IP": "198.18.0.2"}))
        await asyncio.gather(*flood)
        return results, sent

    results, sent = asyncio.run(scenario())
    print(f"{sent} wrong logins from one address over 4 s, 12 at a time: {_bcrypt_checks(extra)} bcrypt checks; "
          f"another user's logins: {[(r, round(t, 2)) for r, t in results]}")
    assert all(reply == user.id for reply, _ in results), "the other user was refused (busy) because of the flood"
    assert all(seconds < 3.0 for _, seconds in results)


def test_refused_login_floods_are_logged_once_per_interval(server, start_server):
    extra = start_server({"PEP_LOG_LEVEL": "INFO"})
    before = len(extra.log_text())
    bodies = [(b"not a login body %d" % i, {"X-Real-IP": "203.0.113.90"}) for i in range(200)]
    bodies += [(C.login_body(f"ghost{i}", "wrong").replace(b"b2025", b"b2000"), {}) for i in range(100)]  # old client
    replies = asyncio.run(N.login_burst(extra.port, bodies))
    assert all(r is not None and r < 0 for r in replies)
    grown = extra.log_text()[before:]
    lines = [ln for ln in grown.splitlines() if "login refused" in ln]
    print(f"300 malformed logins: {len(lines)} log line(s), {len(grown)} bytes")
    assert 1 <= len(lines) <= 4
    assert extra.proc.alive()


def test_simultaneous_attempts_on_one_account_cost_at_most_the_limit(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "1000", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "4",
                          "PEP_LIMITS_BCRYPT_QUEUE": "1000"})
    victim = server.new_user()
    bodies = [(C.login_body(victim.name, "wrong"), {"X-Real-IP": f"198.51.100.{i}"}) for i in range(1, 81)]
    replies = asyncio.run(N.login_burst(extra.port, bodies))
    assert all(r == -1 for r in replies), replies
    checks = _bcrypt_checks(extra)
    print(f"80 simultaneous attempts on one account: {checks} bcrypt checks (limit 4)")
    assert checks <= 4


def test_ipv6_failures_are_counted_per_64(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "3", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1000"})
    user = server.new_user()
    for i in range(3):
        header = {"X-Real-IP": f"2001:db8:1:2::{i + 1:x}"}
        assert C.BanchoClient(extra.url).login(f"nobody6_{i}", "x", headers=header).user_id == -1
    # another address of the same /64: refused before any password check
    refused = C.BanchoClient(extra.url).login(user.name, user.password, headers={"X-Real-IP": "2001:db8:1:2:ffff::9"})
    assert refused.user_id == -1
    assert any(p.id == 24 and "Too many failed" in p.value for p in refused.packets)
    fine = C.BanchoClient(extra.url).login(user.name, user.password, headers={"X-Real-IP": "2001:db8:1:3::1"})
    assert fine.user_id == user.id


def test_a_full_bcrypt_queue_refuses_at_once_and_other_logins_go_on(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "1000", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1000",
                          "PEP_LIMITS_BCRYPT_QUEUE": "4"})
    user = server.new_user()

    async def scenario():
        bodies = [(C.login_body(f"ghost{i}", "wrong"), {"X-Real-IP": f"192.0.2.{i % 250 + 1}"}) for i in range(300)]
        burst = asyncio.ensure_future(N.login_burst(extra.port, bodies))
        await asyncio.sleep(0.2)  # the behaviour: the legitimate login comes while the queue is full
        legit = await asyncio.get_running_loop().run_in_executor(
            None, N.login_timed, extra.url, user.name, user.password, {"X-Real-IP": "198.18.0.1"})
        return await burst, legit

    replies, (legit_reply, seconds) = asyncio.run(scenario())
    checks = _bcrypt_checks(extra)
    busy = extra.log_text().count("reason=bcrypt queue full")
    print(f"300 simultaneous wrong logins, queue 4: {checks} bcrypt checks, {busy} refused busy; "
          f"another user's login took {seconds:.2f} s")
    assert busy > 0 and checks < 300
    assert all(r == -1 for r in replies)
    # the legitimate login may itself find the queue full once; it must not wait behind 300 checks
    if legit_reply != user.id:
        legit_reply, seconds = N.login_timed(extra.url, user.name, user.password, {"X-Real-IP": "198.18.0.1"})
    assert legit_reply == user.id
    assert seconds < 3.0


# ------------------------------------------------------------------ item 1: descriptors
@contextlib.contextmanager
def _fd_server(tmp_path, db_name: str, nofile: int, **env):
    """(proc, socks): a started pep.py on the session database whose open-file limit (soft and
    hard) is ``nofile``, and a list for the test's sockets; at the end the sockets are closed,
    the server stopped and its Redis keys deleted."""
    import secrets

    from tests.conftest import ServerProcess, _server_env, free_port
    from tests.integration.test_outages import _clean_redis

    base = _server_env(db_name, f"pep_fd_{secrets.token_hex(4)}:", free_port(),
                       {k: str(v) for k, v in env.items()})
    proc = ServerProcess(base, tmp_path / "fd_server.log")
    proc.nofile = nofile
    socks: list = []
    try:
        proc.start()
        yield proc, socks
    finally:
        N.close_all(socks)
        proc.stop()
        _clean_redis(base)


def _log_size(proc) -> int:
    return proc.log_path.stat().st_size


def test_idle_and_slowloris_floods_from_one_address_are_capped(server, tmp_path):
    user = server.new_user()
    with _fd_server(tmp_path, server.db_name, 256, PEP_SERVER_MAX_CONNECTIONS_PER_IP=16,
                    PEP_LOG_LEVEL="INFO") as (proc, socks):
        before = _log_size(proc)
        socks += N.open_idle(proc.port, 300, source="127.0.0.2", deadline=8)
        socks += N.open_idle(proc.port, 100, source="127.0.0.3", partial=b"POST / HTTP/1.1\r\nHost: x\r\n", deadline=4)
        reply, seconds = N.login_timed(proc.url, user.name, user.password)
        client = C.BanchoClient(proc.url)
        client.login(user.name, user.password)
        poll_started = time.monotonic()
        client.poll()
        poll_seconds = time.monotonic() - poll_started
        time.sleep(0.3)  # the behaviour: the hostile connections are still held a moment later
        held = N.still_open(socks)
        grown = _log_size(proc) - before
        print(f"{len(socks)} hostile connections opened, {held} held by the server; login {seconds:.2f} s, "
              f"poll {poll_seconds:.2f} s; log grew {grown} bytes")
        assert reply == user.id
        assert seconds < 1.0 and poll_seconds < 1.0
        assert held <= 32
        assert grown < 20_000


def test_out_of_descriptors_backs_off_quietly_and_sheds_idle_connections(server, tmp_path):
    user = server.new_user()
    with _fd_server(tmp_path, server.db_name, 200, PEP_SERVER_MAX_CONNECTIONS_PER_IP=0,
                    PEP_LOG_LEVEL="INFO") as (proc, socks):
        before = _log_size(proc)
        # more connections than descriptors, from many addresses: no per-address cap can help
        for n in range(2, 8):
            socks += N.open_idle(proc.port, 50, source=f"127.0.1.{n}", deadline=2)
        time.sleep(1.0)  # the behaviour: the accept loop has met the descriptor shortage
        cpu_before = N.cpu_seconds(proc.proc.pid)
        time.sleep(2.0)  # the behaviour: CPU spent over a 2 s window of shortage (must stay low)
        cpu = N.cpu_seconds(proc.proc.pid) - cpu_before
        grown = _log_size(proc) - before
        warnings = proc.log_text().count("out of file descriptors")
        # the connections that idled longest make room for a newcomer
        reply, seconds = N.login_timed(proc.url, user.name, user.password)
        print(f"{len(socks)} idle connections, limit 200 descriptors: server CPU {cpu:.2f} s in 2 s, "
              f"log grew {grown} bytes, {warnings} warning(s); a login then took {seconds:.2f} s")
        assert warnings >= 1, "the descriptors never ran out: the test did not reproduce the attack"
        assert cpu < 0.5
        assert grown < 20_000
        assert reply == user.id, reply
        assert seconds < 2.0


# ------------------------------------------------------------------ item 6: slow bodies
def test_slow_request_bodies_hold_bounded_memory_and_time_out(server, start_server):
    extra = start_server({"PEP_SERVER_MAX_PENDING_BODY": str(4 << 20), "PEP_SERVER_BODY_TIMEOUT": "2"})
    user = server.new_user()
    c = C.BanchoClient(extra.url)
    assert c.login(user.name, user.password).user_id == user.id
    pid = extra.proc.proc.pid
    before = N.rss_mib(pid)
    # 60 connections with a valid session token, each declaring 1 MiB and sending 768 KiB
    socks = N.slow_bodies(extra.port, 60, (1 << 20) - 1, 768 << 10, {"osu-token": c.token})
    try:
        time.sleep(0.5)  # the behaviour: memory while the 60 bodies are held, before the timeout
        grown = N.rss_mib(pid) - before
        held = N.still_open(socks)
        print(f"60 slow 1 MiB bodies: RSS grew {grown:.1f} MiB, {held} connections still open")
        assert grown < 20
        # the behaviour: past the body timeout every one of them is closed
        wait_until(lambda: N.still_open(socks) == 0, timeout=15, what="slow bodies closed")
        assert N.still_open(socks) == 0
        # logins and unknown tokens get small limits: refused at the headers, nothing read
        def declared_only(size: int, headers: dict) -> bytes:  # the headers of a body never sent
            return N.raw_request("/", b"", headers).replace(b"Content-Length: 0", f"Content-Length: {size}".encode())

        status, _, _ = asyncio.run(N.exchange(extra.port, declared_only(5000, {}), timeout=5))
        assert status == 400
        status, _, _ = asyncio.run(N.exchange(extra.port, declared_only(70_000, {"osu-token": "nope"}), timeout=5))
        assert status == 400
        assert c.poll() is not None  # the real session goes on
    finally:
        N.close_all(socks)


# ------------------------------------------------------------------ item 4: the API and XSS
def test_status_text_cannot_script_the_api_pages(server):
    import json

    import requests

    evil = '<script>alert(document.cookie)</script>&<img src=x onerror=alert(1)>'
    c = server.connect()
    c.send(C.change_action(2, evil, "e" * 32, 0, 0, 1))  # handled before the poll answers
    base = server.url.rstrip("/")
    for path in (f"/api/v2/clients/{c.user_id}", f"/api/status/{c.user_id}", f"/api/v2/status/{c.user_id}"):
        r = requests.get(base + path, timeout=5)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"].startswith("application/json"), path
        assert r.headers.get("X-Content-Type-Options") == "nosniff", path
        assert "<" not in r.text and ">" not in r.text, path  # inert even if rendered as HTML
        data = json.loads(r.text)
        text = data["clients"][0]["action"]["text"] if "clients" in data else data["action"]["text"]
        assert text.endswith(evil), path  # the same value for a JSON consumer
    for path in ("/api/v1/isOnline?u=<b>x</b>", "/api/v1/serverStatus", f"/api/yes/userstats?id={c.user_id}"):
        r = requests.get(base + path, timeout=5)
        assert "<" not in r.text, path


def test_delta_clients_allows_cross_origin_reads(server):
    import requests

    c = server.connect()
    url = server.url.rstrip("/") + f"/api/v2/clients/{c.user_id}"
    r = requests.get(url, headers={"Origin": "https://ripple.example"}, timeout=5)
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    pre = requests.options(url, headers={"Origin": "https://ripple.example", "Access-Control-Request-Method": "GET"},
                           timeout=5)
    assert pre.status_code == 204
    assert pre.headers.get("Access-Control-Allow-Origin") == "*"
    assert "GET" in pre.headers.get("Access-Control-Allow-Methods", "")


def test_connection_limits_are_in_the_metrics(server):
    import requests

    text = requests.get(server.url.rstrip("/") + "/metrics", timeout=5).text
    for name in ("pep_http_connections", "pep_http_pending_body_bytes", "pep_http_refused_connections",
                 "pep_http_shed_connections", "pep_http_descriptor_shortages", "pep_bcrypt_queue"):
        assert f"\n{name} " in text, name
    connections = float(next(ln.split()[1] for ln in text.splitlines() if ln.startswith("pep_http_connections ")))
    assert connections >= 1  # this very request
