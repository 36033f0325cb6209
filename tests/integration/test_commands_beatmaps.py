"""Beatmap commands through real clients: ``!map``, ``!request``, ``!requests`` (docs/commands.md).

The ``beatmaps`` rows are written by the test; the /np goes through the bot (the pp API is not
needed: the /np is remembered before the API is asked). MySQL rows and the Redis publishes
(``ussr:refresh_bmap``) are read back; the Discord webhook is a local HTTP server.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests import client as C
from tests.integration.test_commands import ask, connect, sentinel, wait_bot
from tests.waiting import Subscription, subscribe

MANAGE_BEATMAPS = 256


@pytest.fixture(scope="module")
def bot(server) -> str:
    return server.bot_name()


def add_set(server, difficulties: int = 2, ranked: int = 0) -> tuple[int, list[int], list[str]]:
    """A beatmap set of ``difficulties`` rows; returns (set id, beatmap ids, md5s)."""
    set_id = random.randint(10_000_000, 99_999_999)
    ids, md5s = [], []
    for n in range(difficulties):
        beatmap_id = set_id * 10 + n
        md5 = f"{random.getrandbits(128):032x}"
        server.db.execute(
            "INSERT INTO beatmaps (beatmap_id, beatmapset_id, beatmap_md5, song_name, ranked) "
            "VALUES (%s, %s, %s, %s, %s)", (beatmap_id, set_id, md5, f"Artist - Song {set_id} [Diff {n}]", ranked))
        ids.append(beatmap_id)
        md5s.append(md5)
    return set_id, ids, md5s


def np(client, bot: str, beatmap_id: int) -> None:
    """/np ``beatmap_id`` by PM and wait for the bot's answer (whatever the pp API says)."""
    ask(client, bot, f"\x01ACTION is playing [https://osu.ppy.sh/b/{beatmap_id} Some - Map [X]]\x01")


def Subscriber(server, channel: str) -> Subscription:  # noqa: N802 (used like the class it was)
    """A subscription to the server's ``channel`` (unprefixed), confirmed before it returns."""
    return subscribe(server.redis.raw, server.redis.key(channel))


class Hook:
    """A local HTTP server recording the JSON bodies POSTed to it (the Discord webhook)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def wait(self, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.bodies:
                return self.bodies[-1]
            time.sleep(0.05)
        raise AssertionError("the webhook was not called")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_map_errors(server, bot):
    staff = connect(server, 3 | MANAGE_BEATMAPS)
    assert ask(staff, bot, "!map rank set") == "Please give me a beatmap first with /np command."
    assert ask(staff, bot, "!map rank") == "Wrong syntax: !map <rank|love|unrank> <set|map>"
    _, ids, _ = add_set(server, 1, ranked=2)
    np(staff, bot, ids[0])
    assert ask(staff, bot, "!map approve set") == "Status must be either rank, unrank, or love."
    assert ask(staff, bot, "!map rank all") == "Scope must either be set or map."
    assert ask(staff, bot, "!map rank map") == "That map is already ranked!"
    np(staff, bot, 1)  # not in the beatmaps table
    assert ask(staff, bot, "!map love map") == "Could not find beatmap."
    # a player without ADMIN_MANAGE_BEATMAPS gets no reply at all
    player = connect(server)
    np(player, bot, ids[0])
    player.send(C.private_message(bot, "!map unrank map"))
    assert not [p for p in sentinel(player, bot)]
    assert int(server.db.scalar("SELECT ranked FROM beatmaps WHERE beatmap_id=%s", (ids[0],))) == 2


def test_map_set_writes_publishes_announces_and_calls_the_webhook(server, start_server, bot):
    hook = Hook()
    srv = start_server({"PEP_BOT_NEW_RANKED_WEBHOOK": hook.url, "PEP_BOT_WEBSITE": "https://example.test/"})
    sub = Subscriber(srv, "ussr:refresh_bmap")
    try:
        staff = connect(server, 3 | MANAGE_BEATMAPS, on=srv)
        watcher = srv.connect()
        set_id, ids, md5s = add_set(server, 3)
        other_set, other_ids, _ = add_set(server, 1)
        np(staff, bot, ids[1])
        assert ask(staff, bot, "!map love set") == "Successfully loved a map."
        rows = server.db.query("SELECT ranked, ranked_status_freezed, rankedby FROM beatmaps WHERE beatmapset_id=%s",
                               (set_id,))
        assert [(r["ranked"], r["ranked_status_freezed"], r["rankedby"]) for r in rows] == \
            [(5, 1, str(staff.user.id))] * 3
        assert server.db.scalar("SELECT ranked FROM beatmaps WHERE beatmapset_id=%s", (other_set,)) == 0
        assert sorted(sub.messages(1.5)) == sorted(md5s)
        text = wait_bot(watcher, bot, target="#announce")
        assert text == (f"[https://example.test/u/{staff.user.id} {staff.user.name}] has loved the beatmap set "
                        f"[https://example.test/b/{ids[1]} Artist - Song {set_id}]")
        body = hook.wait()
        assert body["embeds"][0]["author"]["name"] == f"Artist - Song {set_id} was just loved"
        assert body["embeds"][0]["description"] == f"Loved by {staff.user.name}"
        # one difficulty only: the others keep their status
        np(staff, bot, ids[0])
        assert ask(staff, bot, "!map unrank map") == "Successfully unranked a map."
        assert [r["ranked"] for r in server.db.query(
            "SELECT ranked FROM beatmaps WHERE beatmapset_id=%s ORDER BY beatmap_id", (set_id,))] == [0, 5, 5]
        assert wait_bot(watcher, bot, target="#announce").endswith(
            f"has unranked the beatmap [https://example.test/b/{ids[0]} Artist - Song {set_id} [Diff 0]]")
    finally:
        sub.close()
        hook.close()


def test_map_on_ripple_publishes_nothing(server, start_server, bot):
    srv = start_server({"PEP_STACK_FLAVOUR": "ripple"})
    sub = Subscriber(srv, "ussr:refresh_bmap")
    try:
        staff = connect(server, 3 | MANAGE_BEATMAPS, on=srv)
        _, ids, _ = add_set(server, 1)
        np(staff, bot, ids[0])
        assert ask(staff, bot, "!map rank map") == "Successfully ranked a map."
        assert server.db.scalar("SELECT ranked FROM beatmaps WHERE beatmap_id=%s", (ids[0],)) == 2
        assert sub.messages(1.0) == []
    finally:
        sub.close()


def test_request_requests_and_map_closes_them(server, start_server, bot):
    srv = start_server({"PEP_BOT_MAX_REQUESTS": "1"})
    player = connect(server, on=srv)
    staff = connect(server, 3 | MANAGE_BEATMAPS, on=srv)
    assert ask(player, bot, "!request") == "Please give me a beatmap first with /np command."
    _, ranked, _ = add_set(server, 1, ranked=2)
    np(player, bot, ranked[0])
    assert ask(player, bot, "!request") == "Only pending maps may be requested for status change."
    set_a, a, _ = add_set(server, 2)
    _, b, _ = add_set(server, 1)
    np(player, bot, a[0])
    assert ask(player, bot, "!request") == "Request submitted."
    assert ask(player, bot, "!request") == "That map has already been requested."
    np(player, bot, b[0])
    assert ask(player, bot, "!request") == "You already have 1 open requests. Please wait for the staff."
    rows = server.db.query("SELECT map_id, active FROM map_requests WHERE player_id=%s ORDER BY id", (player.user.id,))
    assert [(r["map_id"], r["active"]) for r in rows] == [(a[0], 1)]
    # staff list them (the table is shared by the module's tests: look for ours)
    staff.drain(rounds=1)
    staff.send(C.private_message(bot, "!requests"))
    first = wait_bot(staff, bot, target=staff.user.name)
    assert first.startswith("Total requests: ")
    lines = [wait_bot(staff, bot, target=staff.user.name) for _ in range(min(10, int(first.split(": ")[1])))]
    assert any(f"[{player.user.name} @ " in line and f"/b/{a[0]} Artist - Song {set_a} [Diff 0]]" in line
               for line in lines), lines
    # !map on the set closes its requests; the player may request again
    np(staff, bot, a[1])
    assert ask(staff, bot, "!map rank set") == "Successfully ranked a map."
    assert server.db.scalar("SELECT active FROM map_requests WHERE map_id=%s", (a[0],)) == 0
    assert ask(player, bot, "!request") == "Request submitted."
    assert server.db.scalar("SELECT COUNT(*) FROM map_requests WHERE map_id=%s AND active=1", (b[0],)) == 1
    # players get no reply to !requests
    other = connect(server, on=srv)
    other.send(C.private_message(bot, "!requests"))
    assert not sentinel(other, bot)
