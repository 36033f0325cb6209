"""Hardening: login abuse limits, queue and body limits, SQL metacharacters, token strength.

Each limit test fails without its protection: the refused request would otherwise succeed.
"""

from __future__ import annotations

import re

import requests

from objects.token import new_token_string
from tests import client as C
from tests.client import BanchoClient


def test_tokens_are_128_random_bits_shaped_like_uuids():
    tokens = {new_token_string() for _ in range(2000)}
    assert len(tokens) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", t) for t in tokens)
    # every hex position varies (a UUID4 would pin the version and variant nibbles)
    for position in (14, 19):
        assert len({t[position] for t in tokens}) > 4


def test_failed_logins_per_account_are_limited_before_bcrypt(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "3", "PEP_LIMITS_LOGIN_FAILURES_IP": "100"})
    user = server.new_user()
    for _ in range(3):
        assert BanchoClient(extra.url).login(user.name, "wrong").user_id == -1
    refused = BanchoClient(extra.url).login(user.name, user.password)
    assert refused.user_id == -1
    assert any(p.id == 24 and "Too many failed login attempts" in p.value for p in refused.packets)
    other = server.new_user()  # other accounts are not affected
    assert BanchoClient(extra.url).login(other.name, other.password).user_id == other.id


def test_failed_logins_per_ip_are_limited(server, start_server):
    extra = start_server({"PEP_LIMITS_LOGIN_FAILURES_IP": "3", "PEP_LIMITS_LOGIN_FAILURES_ACCOUNT": "100"})
    user = server.new_user()
    attacker = {"X-Real-IP": "203.0.113.7"}
    for i in range(3):
        assert BanchoClient(extra.url).login(f"nobody{i}", "x", headers=attacker).user_id == -1
    refused = BanchoClient(extra.url).login(user.name, user.password, headers=attacker)
    assert refused.user_id == -1
    assert any(p.id == 24 and "Too many failed" in p.value for p in refused.packets)
    fine = BanchoClient(extra.url).login(user.name, user.password, headers={"X-Real-IP": "198.51.100.9"})
    assert fine.user_id == user.id


def test_a_client_that_stops_polling_is_dropped_not_grown(server, start_server):
    extra = start_server({"PEP_LIMITS_MAX_QUEUE": "65536"})
    silent = server.new_user()
    silent_client = BanchoClient(extra.url)
    assert silent_client.login(silent.name, silent.password).user_id == silent.id
    senders = []
    for _ in range(5):
        sender = server.new_user()
        c = BanchoClient(extra.url)
        assert c.login(sender.name, sender.password).user_id == sender.id
        senders.append(c)
    text = "x" * 2000
    for c in senders:  # 5 x 9 messages of 2 KB: 90 KB for the silent client, under the spam limit
        c.send(*[C.public_message("#osu", text) for _ in range(9)])
    packets = silent_client.poll()
    assert any(p.id == 86 for p in packets), "an overflowed session must be told to log in again"
    assert not any(p.id == 7 for p in packets)
    again = silent_client.poll()
    assert any(p.id == 86 for p in again)  # and it is gone


def test_oversized_body_is_refused_and_the_server_goes_on(server):
    client = server.connect()
    try:
        requests.post(server.url, data=b"\x04\x00\x00\x00\x00\x00\x00" * 200_000,
                      headers={"osu-token": client.token, "User-Agent": "osu!"}, timeout=10)
    except requests.RequestException:
        pass  # the server may close the connection
    assert any(p.id != 86 for p in client.send(C.presence_request([client.user_id])))


def test_sql_metacharacters_are_data_not_code(server):
    evil_names = ["o'; DROP TABLE users; --", 'x" OR "1"="1', "\\'; SELECT SLEEP(5); --"]
    for name in evil_names:
        result = BanchoClient(server.url).login(name, "password")
        assert result.user_id == -1
    assert server.db.scalar("SELECT COUNT(*) FROM users") > 1
    a, b = server.connect(), server.connect()
    evil = "'); DELETE FROM users; -- \\ %s %% \x00"
    a.send(C.public_message("#osu", evil))
    got = C.wait_for(b, lambda p: p.id == 7 and p.value.sender == a.username)
    assert got.value.content == evil
    a.send(C.set_away_message(evil), C.private_message(b.username, evil))
    assert C.wait_for(b, lambda p: p.id == 7 and p.value.target == b.username).value.content == evil
    assert server.db.scalar("SELECT COUNT(*) FROM users") > 1


def test_api_output_never_contains_a_session_token(server):
    client = server.connect()
    for path in (f"api/v2/clients/{client.user_id}", f"api/status/{client.user_id}",
                 f"api/yes/userstats?id={client.user_id}", f"api/v1/isOnline?id={client.user_id}"):
        body = requests.get(server.url + path, timeout=5).text
        assert client.token not in body, path
    clients = requests.get(server.url + f"api/v2/clients/{client.user_id}", timeout=5).json()["clients"]
    assert clients and re.fullmatch(r"@[0-9a-f-]{36}", clients[0]["api_identifier"])


def test_matches_per_user_are_limited(server, start_server):
    from tests.integration.test_commands import ask, connect

    extra = start_server({"PEP_LIMITS_MAX_MATCHES_PER_USER": "2"})
    staff = connect(server, privileges=3 | 2097152, on=extra)  # tournament staff
    bot = server.bot_name()
    assert ask(staff, bot, "!mp make one").startswith("Tourney match #")
    assert ask(staff, bot, "!mp make two").startswith("Tourney match #")
    assert "open matches" in ask(staff, bot, "!mp make three")
    other = connect(server, privileges=3 | 2097152, on=extra)
    assert ask(other, bot, "!mp make mine").startswith("Tourney match #")
