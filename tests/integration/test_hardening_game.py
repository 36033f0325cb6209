"""Hardening II, in game (docs/security.md, "Hardening II: in game"): each attack of the issue
replayed against a real server on real MySQL and Redis.

Server-side evidence: MySQL work is read from the server's own ``pep_mysql_queries_total``
and ``pep_background_tasks`` on ``/metrics`` (each test runs its own server, so the deltas are
its own), Redis publishes are counted by a subscriber, log growth from the server's log file.
Each test prints the figure it checks (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import re
import time

import requests

from tests import client as C
from tests.waiting import holds_for, wait_until
from tests.client import BanchoClient
from tests.integration.test_multiplayer_common import create, join, updates

TOURNAMENT_STAFF = 2097152
TOURNEY_VERSION = "b20250306.2tourney"


# ------------------------------------------------------------------------------------ helpers
def metric(srv, name: str) -> float:
    """One unlabelled sample of the server's /metrics."""
    body = requests.get(srv.url + "metrics", timeout=5).text
    found = re.search(rf"^{name} ([0-9.e+]+)$", body, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def queries(srv) -> float:
    return metric(srv, "pep_mysql_queries_total")


def settle(srv, timeout: float = 5.0) -> float:
    """Wait until no background task runs and the query count is stable; return it."""
    deadline = time.monotonic() + timeout
    last = queries(srv)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = queries(srv)
        if now == last and metric(srv, "pep_background_tasks") == 0:
            return now
        last = now
    return last


def login(srv, user, **kw) -> BanchoClient:
    c = BanchoClient(srv.url)
    res = c.login(user.name, user.password, **kw)
    assert res.user_id == user.id, res.packets
    c.user = user
    c.drain(rounds=1)
    return c


# ------------------------------------------------------------------------------------ item 2
def test_status_update_requests_cost_at_most_two_stats_reads_per_burst(server, start_server):
    extra = start_server()
    c = login(extra, server.new_user())
    before = settle(extra)
    rss = metric(extra, "process_resident_memory_bytes")
    frames = C.request_status_update() * 1024  # one 7 KB poll, as in the issue
    c.send_raw(frames)
    tasks = metric(extra, "pep_background_tasks")
    for _ in range(49):  # fifty such polls
        c.send_raw(frames)
    after = settle(extra)
    grown = (metric(extra, "process_resident_memory_bytes") - rss) / 2**20
    print(f"\n50 polls x 1024 status requests: {after - before:.0f} MySQL operations, "
          f"{tasks:.0f} background task(s) after the first poll, RSS {grown:+.1f} MiB")
    assert tasks <= 1
    assert grown < 20
    assert after - before <= 2 * 2 * 50  # a stats read is at most 2 operations; <= 2 reads per poll
    got = C.wait_for(c, lambda p: p.id == C.USER_STATS and p.value.user_id == c.user.id, description="own 11")
    assert got is not None


def test_mode_changes_are_coalesced_too(server, start_server):
    extra = start_server()
    c = login(extra, server.new_user())
    before = settle(extra)
    frames = b"".join(C.change_action(mode=i % 2) for i in range(1024))
    c.send_raw(frames)
    after = settle(extra)
    print(f"\n1024 mode changes in one poll: {after - before:.0f} MySQL operations")
    assert after - before <= 4
    # the status still reaches the client, with the last mode
    C.wait_for(c, lambda p: p.id == C.USER_STATS and p.value.user_id == c.user.id and p.value.mode == 1,
               description="own 11 in the last mode")


def test_friend_changes_are_rate_limited(server, start_server):
    extra = start_server({"PEP_LIMITS_FRIEND_CHANGES": "5"})
    c = login(extra, server.new_user())
    before = settle(extra)
    c.send_raw(b"".join(C.friend_add(1000 + i) for i in range(512)) + b"".join(
        C.friend_remove(2000 + i) for i in range(512)))
    after = settle(extra)
    print(f"\n512 friend adds + 512 removes in one poll: {after - before:.0f} MySQL operations")
    assert after - before <= 5 * 3  # an add is at most 3 operations (exists, select, insert)
    assert "friend change refused" in extra.log_text()


def test_bot_commands_that_read_mysql_are_bounded_by_the_spam_limit(server, start_server):
    extra = start_server()
    c = login(extra, server.new_user())
    bot = server.bot_name()
    before = settle(extra)
    c.send_raw(C.private_message(bot, "!pp") * 1024)
    after = settle(extra)
    print(f"\n1024 !pp commands in one poll: {after - before:.0f} MySQL operations")
    assert after - before <= 11 + 2  # spam_limit + 1 commands, then one silence write
    C.wait_for(c, lambda p: p.id == C.SILENCE_END and p.value > 0, description="auto-silence")


def test_round_results_publishes_are_bounded_by_the_start_limit(server, start_server):
    extra = start_server({"PEP_LIMITS_ROUND_STARTS": "3"})
    host = login(extra, server.new_user())
    match_id, _ = create(host)
    sub = extra.redis.raw.pubsub()
    sub.subscribe(extra.redis.key("api:mp_complete_match"))
    sub.get_message(timeout=1)  # the subscribe confirmation
    host.send_raw((C.match_start() + C.match_complete()) * 200)
    published = 0
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.2)
        if msg and msg["type"] == "message":
            published += 1
            assert json.loads(msg["data"])["id"] == match_id
    sub.close()
    print(f"\n200 start+complete pairs in one poll: {published} result publishes")
    assert published == 3
    assert any(C.NOTIFICATION == p.id and "too quickly" in p.value for p in host.received + host.poll())


# ------------------------------------------------------------------------------------ item 5
def test_tournament_clients_need_the_staff_privilege(server):
    user = server.new_user()
    res = BanchoClient(server.url).login(user.name, user.password, version=TOURNEY_VERSION)
    assert res.user_id == -1
    assert any(p.id == C.NOTIFICATION and "tournament staff" in p.value for p in res.packets)
    assert BanchoClient(server.url).login(user.name, user.password).user_id == user.id  # game client fine


def test_tournament_sessions_are_capped_and_time_out(server, start_server):
    extra = start_server({"PEP_SESSIONS_TIMEOUT": "2", "PEP_SESSIONS_TIMEOUT_CHECK": "0.5",
                          "PEP_LIMITS_TOURNAMENT_SESSIONS": "3"})
    staff = server.new_user(privileges=3 | TOURNAMENT_STAFF, stem="t")
    sessions = [login(extra, staff, version=TOURNEY_VERSION) for _ in range(3)]
    refused = BanchoClient(extra.url).login(staff.name, staff.password, version=TOURNEY_VERSION)
    assert refused.user_id == -1
    assert any(p.id == C.NOTIFICATION and "too many tournament clients" in p.value for p in refused.packets)
    time.sleep(3.5)  # no poll for longer than the timeout
    for c in sessions:
        assert C.of(c.poll(), C.RESTART), "an idle tournament session must time out"
    assert BanchoClient(extra.url).login(staff.name, staff.password, version=TOURNEY_VERSION).user_id == staff.id


def test_presence_of_everyone_is_answered_once_per_poll(server):
    c = server.connect()
    others = [server.connect() for _ in range(2)]
    c.drain(rounds=1)  # their login presences
    packets = c.send_raw(C.presence_request_all() * 1024)
    presences = C.of(packets, C.USER_PRESENCE)
    ids = [p.value.user_id for p in presences]
    print(f"\n1024 presence-all requests in one poll: {len(presences)} presences for {len(set(ids))} users")
    assert len(ids) == len(set(ids)), "every user once"
    assert {o.user_id for o in others} <= set(ids)
    again = C.of(c.send_raw(C.presence_request_all()), C.USER_PRESENCE)  # the next poll answers again
    assert len(again) == len(presences)


# ------------------------------------------------------------------------------------ item 13
def test_a_silence_written_by_the_api_applies_on_peppy_ban(server):
    a, b = server.connect(), server.connect()
    end = int(time.time()) + 600
    server.db.execute("UPDATE users SET silence_end=%s, silence_reason=%s WHERE id=%s", (end, "rude words", a.user_id))
    server.redis.publish("peppy:ban", str(a.user_id))
    left = C.wait_for(a, lambda p: p.id == C.SILENCE_END and p.value > 0, description="92").value
    assert 590 <= left <= 600
    C.wait_for(a, lambda p: p.id == C.NOTIFICATION and "rude words" in p.value, description="the reason")
    C.wait_for(b, lambda p: p.id == C.USER_SILENCED and p.value == a.user_id, description="94")
    a.send(C.public_message("#osu", "still talking?"))
    assert "still talking?" not in [m.content for m in C.values(b.poll(), C.SEND_MESSAGE)]
    # an unrelated peppy:ban (privileges unchanged, same silence) announces nothing again
    b.drain(rounds=1)
    server.redis.publish("peppy:ban", str(a.user_id))
    holds_for(lambda: not C.of(b.poll(), C.USER_SILENCED), duration=0.5, what="no second 94")


# ------------------------------------------------------------------------------------ item 10
def test_a_round_nobody_finishes_is_aborted(server, start_server):
    extra = start_server({"PEP_MULTIPLAYER_ROUND_TIMEOUT": "2", "PEP_MULTIPLAYER_LOAD_TIMEOUT": "1"})
    a, b = login(extra, server.new_user()), login(extra, server.new_user())
    match_id, _ = create(a)
    join(b, match_id)
    a.send(C.match_start())
    started = time.monotonic()
    C.wait_for(b, lambda p: p.id == C.MATCH_START, description="start")
    for c in (a, b):  # the players go idle: no MATCH_COMPLETE ever
        C.wait_for(c, lambda p: p.id == C.MATCH_ABORT, timeout=6, description="abort")
    print(f"\nround without completion aborted after {time.monotonic() - started:.1f} s")
    state = updates(a.received, match_id)[-1]
    assert not state.in_progress
    assert all(s.status != 32 for s in state.slots), "no slot left PLAYING"
    a.drain(rounds=1)
    assert C.of(a.send(C.match_start()), C.MATCH_START), "the match can start again"


# ------------------------------------------------------------------------------------ item 9
def test_invites_count_against_the_spam_limit(server):
    a, target = server.connect(), server.connect()
    create(a)
    a.send_raw(C.match_invite(target.user_id) * 300)
    invites = C.of(target.poll(), C.MATCH_INVITE)
    print(f"\n300 invites in one request: {len(invites)} delivered")
    assert len(invites) <= 11
    C.wait_for(a, lambda p: p.id == C.SILENCE_END and p.value > 0, description="auto-silence")


# ------------------------------------------------------------------------------------ item 7
def test_lobby_gets_nothing_for_matches_created_and_left_in_one_poll(server, start_server):
    extra = start_server()
    lobby = [login(extra, server.new_user()) for _ in range(3)]
    for c in lobby:
        c.send(C.lobby_join())
        c.drain(rounds=1)
    attacker = login(extra, server.new_user())
    pair = C.match_create(C.make_match(host_id=attacker.user.id)) + C.match_part()
    started = time.monotonic()
    attacker.send_raw(pair * 512)
    took = time.monotonic() - started
    received = sum(len(r.content) for r in [c.post(C.ping(), token=c.token) for c in lobby])
    print(f"\n512 create+part pairs: {received} bytes to {len(lobby)} lobby members, poll took {took * 1000:.0f} ms")
    assert received < 2000
    assert C.of(attacker.received, C.MATCH_JOIN_FAIL), "creations past the limit are refused"
    assert "match creation refused" in extra.log_text()


def test_lobby_updates_are_coalesced_within_a_poll(server, start_server):
    extra = start_server()
    watcher = login(extra, server.new_user())
    watcher.send(C.lobby_join())
    host = login(extra, server.new_user())
    match_id, _ = create(host)
    watcher.drain(rounds=1)
    host.send_raw(b"".join(C.match_change_mods(16 if i % 2 else 0) for i in range(200)))
    got = [u for u in updates(watcher.poll(), match_id)]
    print(f"\n200 changes in one poll: {len(got)} lobby update(s)")
    assert len(got) == 1 and got[0].mods == 16


def test_the_lobby_list_is_sent_once_per_poll(server, start_server):
    extra = start_server()
    hosts = [login(extra, server.new_user()) for _ in range(3)]
    for h in hosts:
        create(h)
    c = login(extra, server.new_user())
    new = C.of(c.send_raw(C.lobby_join() * 1024), C.MATCH_NEW)
    print(f"\n1024 lobby joins in one poll: {len(new)} NEW_MATCH packets for 3 matches")
    assert len(new) == 3


# ------------------------------------------------------------------------------------ item 12
def test_error_reports_are_cut_cleaned_and_rate_limited(server):
    c = server.connect()
    with open(server.log_path, "rb") as f:
        f.seek(0, 2)
        start = f.tell()
    evil = "boom\r\x1b[2J\x1b]0;pwned\x07 forged line\n" + "x" * 2000
    for _ in range(3):
        c.send_raw(C.error_report(evil) * 100)

    def appended_lines() -> bytes:
        with open(server.log_path, "rb") as f:
            f.seek(start)
            return f.read()

    # the reports are logged while the polls are handled; wait for the three lines to reach the file
    wait_until(lambda: appended_lines().count(f"client error report user={c.user_id}:".encode()) >= 3, what="3 log lines")
    appended = appended_lines()
    lines = [ln for ln in appended.split(b"\n") if f"client error report user={c.user_id}:".encode() in ln]
    size = sum(len(ln) for ln in lines)
    print(f"\n300 error reports of {len(evil)} characters: {len(lines)} log line(s), {size} bytes")
    assert len(lines) == 3
    assert size < 3 * 700
    for line in lines:
        assert b"\r" not in line and b"\x1b" not in line and b"\x07" not in line
        assert b"\\x1b[2J" in line
