"""Hardening II, network and services (docs/security.md): attacks from outside on a real server.

Each test reproduces one attack of issue #12 on the loopback and fails without its protection.
Counts are small so that each test takes seconds; ``bench/attack_*.py`` print the full-size
figures.
"""

from __future__ import annotations

import asyncio
import time

from tests import client as C
from tests.integration import netattack as N


def _bcrypt_checks(server, ip: str | None = None) -> int:
    """Wrong-password refusals in the server log (each one cost a bcrypt check)."""
    lines = [ln for ln in server.log_text().splitlines() if "reason=wrong username or password" in ln]
    if ip is not None:
        lines = [ln for ln in lines if f"ip={ip} " in ln]
    return len(lines)


def test_simultaneous_wrong_logins_from_one_address_cost_at_most_the_limit(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "5", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "1000",
                          "PEP_LIMITS_BCRYPT_QUEUE": "1000"})
    ip = "203.0.113.50"
    bodies = [(C.login_body(f"nobody{i}", "wrong"), {"X-Real-IP": ip}) for i in range(150)]
    replies = asyncio.run(N.login_burst(extra.port, bodies))
    assert all(r == -1 for r in replies), replies
    checks = _bcrypt_checks(extra, ip)
    print(f"150 simultaneous wrong logins from one address: {checks} bcrypt checks (limit 5)")
    assert checks <= 5


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
        await asyncio.sleep(0.2)
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
