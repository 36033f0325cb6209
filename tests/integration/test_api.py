"""The HTTP API of the web stack against a running server: paths, parameters, status codes,
headers, JSON keys and key order, as the peers answer them (docs/integration.md §5).

Bodies are compared as text with ``json.dumps`` of the expected dict (Python separators, the
peers' key order), because consumers parse them. The session server has no ``ci_key``; keyed
tests start their own server with ``PEP_SERVER_CI_KEY``.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
import requests

from tests import client as C
from tests.waiting import past_logout_grace

HTML = "text/html; charset=UTF-8"
JSON = "application/json; charset=UTF-8"  # the endpoints with player text (docs/security.md)
PENDING = 1048576
CI_NOTICE = ("A new Bancho update is available and the server will be restarted in 5 seconds. "
             "Thank you for your patience.")
USERSTATS_JOKES = {"denmark is exist", "denmark doesnt exist", "the uk #1",
                   "femboy simon will haunt your dreams", "dash is da(ni)sh"}


def get(srv, path, params=None, **kw) -> requests.Response:
    return requests.get(srv.url.rstrip("/") + path, params=params, timeout=10, **kw)


def body(data: dict) -> str:
    return json.dumps(data)


def ordered(r: requests.Response) -> list[str]:
    return [k for k, _ in json.loads(r.text, object_pairs_hook=lambda pairs: pairs)]


def assert_v1(r, status, data):
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == HTML
    assert r.text == body(data)


@pytest.fixture
def keyed(start_server, server):
    key = "k-" + secrets.token_urlsafe(16)
    srv = start_server({"PEP_SERVER_CI_KEY": key})
    srv.key = key
    return srv


# --------------------------------------------------------------------------------------------
# isOnline, onlineUsers, serverStatus
# --------------------------------------------------------------------------------------------
def test_is_online(server):
    c = server.connect()
    offline = server.new_user()
    ok = lambda v: {"message": "ok", "result": v, "status": 200}  # noqa: E731
    assert_v1(get(server, "/api/v1/isOnline", {"id": c.user_id}), 200, ok(True))
    assert_v1(get(server, "/api/v1/isOnline", {"id": offline.id}), 200, ok(False))
    assert_v1(get(server, "/api/v1/isOnline", {"id": C.BOT_ID}), 200, ok(True))
    # u = the name in any case; it wins over id
    assert_v1(get(server, "/api/v1/isOnline", {"u": c.user.name.upper()}), 200, ok(True))
    assert_v1(get(server, "/api/v1/isOnline", {"u": offline.name, "id": c.user_id}), 200, ok(False))
    assert_v1(get(server, "/api/v1/isOnline", {"u": c.user.name, "id": "nope"}), 200, ok(True))
    assert_v1(get(server, "/api/v1/isOnline", {"u": ""}), 200, ok(False))
    missing = {"message": "missing required arguments", "status": 400}
    assert_v1(get(server, "/api/v1/isOnline"), 400, missing)
    assert_v1(get(server, "/api/v1/isOnline", {"id": "abc"}), 400, missing)
    assert_v1(get(server, "/api/v1/isOnline", {"id": ""}), 400, missing)


def test_is_online_turns_false_after_logout(server):
    c = server.connect()
    past_logout_grace(c)
    c.send(C.logout())
    assert_v1(get(server, "/api/v1/isOnline", {"id": c.user_id}), 200,
              {"message": "ok", "result": False, "status": 200})


def test_online_users_matches_redis(start_server, server):
    srv = start_server()
    srv.login(server.new_user())
    srv.login(server.new_user())
    assert srv.wait_online_users(3) == 3
    assert_v1(get(srv, "/api/v1/onlineUsers"), 200, {"message": "ok", "result": 3, "status": 200})


def test_server_status(server):
    assert_v1(get(server, "/api/v1/serverStatus"), 200, {"message": "ok", "result": 1, "status": 200})


def test_get_only(server):
    for path in ("/api/v1/isOnline", "/api/v1/serverStatus", "/api/v1/ciTrigger", "/api/yes/userstats",
                 "/api/v2/clients/999", "/api/status/999"):
        r = requests.post(server.url.rstrip("/") + path, data=b"x", timeout=10)
        assert r.status_code == 405, path
        assert requests.delete(server.url.rstrip("/") + path, timeout=10).status_code == 405, path


# --------------------------------------------------------------------------------------------
# verifiedStatus
# --------------------------------------------------------------------------------------------
def test_verified_status(server):
    r = get(server, "/api/v1/verifiedStatus", {"u": "123456789"})
    assert r.status_code == 200
    assert r.text == body({"message": "ok", "result": -1, "status": 200})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    # Tornado's text/html plus a second Content-Type header, like the peers
    assert r.raw.headers.getlist("Content-Type") == [HTML, "application/json"]
    # a pending account verified at its first login: 1
    c = server.connect(privileges=PENDING, stem="pend")
    r = get(server, "/api/v1/verifiedStatus", {"u": str(c.user_id)})
    assert r.text == body({"message": "ok", "result": 1, "status": 200})
    # JSONP (jQuery callbacks)
    r = get(server, "/api/v1/verifiedStatus", {"u": str(c.user_id), "callback": "jQuery1124_1591"})
    assert r.status_code == 200
    assert r.text == "jQuery1124_1591(" + body({"message": "ok", "result": 1, "status": 200}) + ")"
    r = get(server, "/api/v1/verifiedStatus", {"callback": "cb"})
    assert r.status_code == 400
    assert r.text == "cb(" + body({"message": "missing required arguments", "status": 400}) + ")"
    r = get(server, "/api/v1/verifiedStatus")
    assert r.status_code == 400
    assert r.text == body({"message": "missing required arguments", "status": 400})


@pytest.mark.parametrize("callback", ["<script>alert(1)</script>", "a(b)", "", "1abc", "x;y"])
def test_verified_status_refuses_a_callback_that_is_not_a_name(server, callback):
    r = get(server, "/api/v1/verifiedStatus", {"u": "1", "callback": callback})
    assert r.status_code == 400
    assert r.text == body({"message": "invalid callback", "status": 400})
    assert "<" not in r.text


# --------------------------------------------------------------------------------------------
# ciTrigger and fokabotMessage: the key
# --------------------------------------------------------------------------------------------
def _no_key_variants(key=None):
    variants = [{}, {"k": ""}, {"k": "wrong"}]
    if key:
        variants += [{"k": key[:-1]}, {"k": key + "x"}, {"k": key.upper()}]
    return variants


def test_keyed_endpoints_refuse_everything_without_a_configured_key(server):
    for params in _no_key_variants() + [{"k": "None"}, {"k": " "}]:
        assert_v1(get(server, "/api/v1/ciTrigger", params), 400, {"message": "invalid ci key", "status": 400})
        assert_v1(get(server, "/api/v1/fokabotMessage", {**params, "to": "#osu", "msg": "x"}), 400,
                  {"message": "invalid parameters", "status": 400})
    assert_v1(get(server, "/api/v1/serverStatus"), 200, {"message": "ok", "result": 1, "status": 200})


def test_keyed_endpoints_refuse_a_missing_empty_or_wrong_key(keyed, server):
    a = keyed.login(server.new_user())
    start = len(a.received)
    for params in _no_key_variants(keyed.key):
        assert_v1(get(keyed, "/api/v1/ciTrigger", params), 400, {"message": "invalid ci key", "status": 400})
        assert_v1(get(keyed, "/api/v1/fokabotMessage", {**params, "to": "#osu", "msg": "nope"}), 400,
                  {"message": "invalid parameters", "status": 400})
    assert_v1(get(keyed, "/api/v1/serverStatus"), 200, {"message": "ok", "result": 1, "status": 200})
    # the right key, but a parameter missing
    for params in ({"to": "#osu"}, {"msg": "x"}, {}):
        assert_v1(get(keyed, "/api/v1/fokabotMessage", {"k": keyed.key, **params}), 400,
                  {"message": "invalid parameters", "status": 400})
    # nothing was said or scheduled
    t = "sentinel " + secrets.token_hex(3)
    assert_v1(get(keyed, "/api/v1/fokabotMessage", {"k": keyed.key, "to": "#osu", "msg": t}), 200,
              {"message": "ok", "status": 200})
    C.wait_for(a, lambda p: C.is_message(p, content=t), description="sentinel")
    got = a.received[start:]
    assert [m.content for m in C.values(got, C.SEND_MESSAGE)] == [t]
    assert not C.of(got, C.NOTIFICATION)
    log = keyed.log_text()
    assert keyed.key not in log and keyed.key[:-1] not in log, "keys (right or wrong) must not be logged"


def test_fokabot_message(keyed, server):
    a = keyed.login(server.new_user())
    bot = server.bot_name()
    t = "[https://osu.ppy.sh/s/1 Sòng ✓] is now ranked! " + secrets.token_hex(3)
    assert_v1(get(keyed, "/api/v1/fokabotMessage", {"k": keyed.key, "to": "#announce", "msg": t}), 200,
              {"message": "ok", "status": 200})
    m = C.wait_for(a, lambda p: C.is_message(p, content=t), description="bot message").value
    assert (m.sender, m.sender_id, m.target) == (bot, C.BOT_ID, "#announce")
    t2 = "private " + secrets.token_hex(3)
    assert_v1(get(keyed, "/api/v1/fokabotMessage", {"k": keyed.key, "to": a.user.name, "msg": t2}), 200,
              {"message": "ok", "status": 200})
    m2 = C.wait_for(a, lambda p: C.is_message(p, content=t2), description="bot PM").value
    assert (m2.sender, m2.target) == (bot, a.user.name)
    # undeliverable: still 200
    for to in ("#nochannel", "nobody_" + secrets.token_hex(3)):
        assert_v1(get(keyed, "/api/v1/fokabotMessage", {"k": keyed.key, "to": to, "msg": "x"}), 200,
                  {"message": "ok", "status": 200})


def test_ci_trigger_schedules_a_shutdown(keyed, server):
    a = keyed.login(server.new_user())
    assert_v1(get(keyed, "/api/v1/ciTrigger", {"k": keyed.key}), 200, {"message": "ok", "status": 200})
    C.wait_for(a, lambda p: p.id == C.NOTIFICATION and p.value == CI_NOTICE, description="CI notice")
    assert_v1(get(keyed, "/api/v1/serverStatus"), 200, {"message": "ok", "result": -1, "status": 200})
    res = keyed.client().login(server.new_user().name, "password")
    # refused (docs/operations.md: a notice and a restart packet instead of a session)
    assert res.user_id is None or res.user_id < 0, "logins are refused while a shutdown is scheduled"
    # after 5 s: the restart packet with 2 x 20 s
    ms = C.wait_for(a, lambda p: p.id == C.RESTART, timeout=9, description="86").value
    assert ms == 40000
    assert keyed.proc.alive(), "the process stops only after 25 s"
    assert keyed.key not in keyed.log_text(), "the CI key must not be logged"


# --------------------------------------------------------------------------------------------
# Kawata: /api/yes/userstats and /api/v2/clients/<id>
# --------------------------------------------------------------------------------------------
def test_userstats(server):
    offline = server.new_user()
    r = get(server, "/api/yes/userstats", {"id": offline.id})
    assert r.status_code == 200 and r.headers["Content-Type"] == JSON
    assert r.text == body({"status": 200, "message": "i dint even lknow in netherlands?", "Online": False})
    c = server.connect()
    c.send(C.change_action(2, "Artist - Title [Insane]", "b" * 32, 0, 0, 4242))
    # applied during that poll: nothing in the background to wait for
    r = get(server, "/api/yes/userstats", {"id": c.user_id})
    assert r.status_code == 200
    data = json.loads(r.text)
    assert ordered(r) == ["status", "message", "Online", "ActionID", "BeatmapID", "Username"]
    assert data["message"] in USERSTATS_JOKES
    assert (data["status"], data["Online"], data["ActionID"], data["BeatmapID"], data["Username"]) == (
        200, True, 2, 4242, c.user.name)
    for params in ({}, {"id": "x"}, {"id": ""}):
        r = get(server, "/api/yes/userstats", params)
        assert r.status_code == 400
        assert r.text == body({"status": 400, "message": "Invalid or no id passed."})


def test_delta_clients(server):
    offline = server.new_user()
    r = get(server, f"/api/v2/clients/{offline.id}")
    assert r.status_code == 200 and r.headers["Content-Type"] == JSON
    assert r.text == body({"code": 200, "clients": []})
    c = server.connect()
    c.send(C.change_action(2, "someone play Artist - Title (Mapper) [Hard]", "c" * 32, 0, 0, 777))
    # applied during that poll: nothing in the background to wait for
    r = get(server, f"/api/v2/clients/{c.user_id}")
    assert r.status_code == 200
    data = json.loads(r.text)
    assert list(data) == ["code", "clients"] and len(data["clients"]) == 1
    client = data["clients"][0]
    assert list(client) == ["api_identifier", "type", "action", "user_id", "location", "username",
                            "privileges", "silence_end_time"]
    # Kawata put the session token here; we give a stable identifier that is not the token
    assert client["api_identifier"].startswith("@") and c.token not in client["api_identifier"]
    assert client["type"] == 0
    assert client["action"] == {"id": 2, "text": "someone play Artist - Title (Mapper) [Hard]", "beatmap": {"id": 777}}
    assert (client["user_id"], client["location"], client["username"], client["privileges"]) == (
        c.user_id, "null", c.user.name, 3)
    assert isinstance(client["silence_end_time"], int)
    r = get(server, "/api/v2/clients/abc")
    assert r.status_code == 500
    assert r.text == body({"code": 500, "message": "Server got itself in troube..."})


# --------------------------------------------------------------------------------------------
# RealistikOsu: /api/status/<id> (RealistikPanel's IsOnline)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/status/{}", "/api/v2/status/{}"])
def test_status(server, path):
    offline = server.new_user()
    r = get(server, path.format(offline.id))
    assert r.status_code == 204 and r.content == b""
    c = server.connect()
    c.send(C.change_action(2, "Artist - Title [Easy]", "d" * 32, 72, 1, 4321))
    # applied during that poll: nothing in the background to wait for
    r = get(server, path.format(c.user_id))
    assert r.status_code == 200 and r.headers["Content-Type"] == JSON
    data = json.loads(r.text)
    assert list(data) == ["code", "username", "user_id", "privileges", "action", "match_id", "mode", "rank",
                          "autopilot", "relax"]
    assert list(data["action"]) == ["id", "text", "beatmap"]
    assert data["action"]["beatmap"] == {"id": 4321, "md5": "d" * 32, "mods": 72}
    assert (data["code"], data["username"], data["user_id"], data["privileges"]) == (200, c.user.name, c.user_id, 3)
    assert data["action"]["id"] == 2 and data["action"]["text"].endswith("Artist - Title [Easy]")
    assert (data["match_id"], data["mode"], data["autopilot"], data["relax"]) == (-1, 1, False, False)
    assert isinstance(data["rank"], int)
    r = get(server, path.format("abc"))
    assert r.status_code == 400
