"""The HTTP API of the web stack (docs/integration.md §5): the paths, parameters, status
codes, JSON keys and key order, and ``Content-Type`` of the peers, because real consumers (Hanayo,
RAP, RealistikPanel, LETS) parse them.

Conventions kept from the peers:

* GET only (plus the CORS preflight ``OPTIONS`` of ``/api/v2/clients/<id>``); any other method
  gets Tornado's HTML 405 page.
* The body is the JSON text of a dict written as a string (Python separators ``", "`` and
  ``": "``). The v1 endpoints keep Tornado's ``text/html; charset=UTF-8`` like the peers
  (RealistikPanel requires it for ``serverStatus``); their bodies hold no player text.
  ``verifiedStatus`` adds a second ``Content-Type: application/json`` header and
  ``Access-Control-Allow-Origin: *`` like the peers.
* The endpoints that carry player text (``/api/yes/userstats``, ``/api/v2/clients/<id>``,
  ``/api/status/<id>``) are served as ``application/json`` (docs/security.md, Hardening II: a
  status text served as text/html was a cross-site scripting hole). Every body has ``<``,
  ``>`` and ``&`` written as JSON ``\\u`` escapes (the same JSON value, inert as HTML), and
  every answer carries ``X-Content-Type-Options: nosniff``. ``/api/v2/clients/<id>`` answers
  ``Access-Control-Allow-Origin: *`` and the ``OPTIONS`` preflight: Hanayo calls it from the
  browser, cross-origin.
* v1 bodies: ``message`` first, then ``result``, then ``status`` (= the HTTP status).

Fixed on purpose (spec [FIX] / security): the CI key endpoints refuse a missing, empty or wrong
``k`` and refuse everything while ``[server] ci_key`` is empty; keys are compared in constant
time. A JSONP ``callback`` must be a JavaScript identifier path (else 400), because the body is
served as text/html. ``fokabotMessage`` keeps non-ASCII text (UTF-8 end to end) instead of
deleting it.

Handlers are thin: parse the query, call the domain (token list, chat pipeline, system), format.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import re
import urllib.parse
import uuid
from typing import Any

import tornado.web

from common.ripple import safe_username
from services import chat, stop
from objects.state import State

log = logging.getLogger("pep.api")

CI_NOTICE = ("A new Bancho update is available and the server will be restarted in 5 seconds. "
             "Thank you for your patience.")
# Kawata's /api/yes/userstats texts (docs/integration.md §5: meaningless; kept for parity)
USERSTATS_OFFLINE = "i dint even lknow in netherlands?"
USERSTATS_ONLINE = ("denmark is exist", "denmark doesnt exist", "the uk #1",
                    "femboy simon will haunt your dreams", "dash is da(ni)sh")
# Kawata's delta emulation: "[clan] name play artist - title (creator) [diff]" loses the [clan]
_CLAN_TEXT = re.compile(r"^(\[(?P<clan>.+)\]) (?P<name>.+) play (?P<artist>.+) - (?P<title>.+) "
                        r"(?:\((?P<creator>.+)\))?(?: \[(?P<version>.+)\])")
_CALLBACK = re.compile(r"[A-Za-z_$][0-9A-Za-z_$]*(?:\.[A-Za-z_$][0-9A-Za-z_$]*)*")
_INT = re.compile(r"[+-]?\d{1,10}")



def _public_id(token: str) -> str:
    """A stable, UUID-shaped identifier of a session that is NOT its token (Kawata put the
    token itself here, which let anyone poll as that user; docs/security.md)."""
    return str(uuid.UUID(bytes=hashlib.sha256(b"pep.py api identifier:" + token.encode()).digest()[:16]))

def _int(text: str | None) -> int | None:
    """A decimal int32 from a query or path value, or None."""
    if text is None or not _INT.fullmatch(text.strip()):
        return None
    value = int(text)
    return value if -2**31 <= value < 2**31 else None


def key_ok(state: State, given: str | None) -> bool:
    """Whether ``given`` is the configured ``[server] ci_key``: never when either is empty;
    compared in constant time (spec README decision 5, docs/integration.md §5 [FIX])."""
    expected = state.cfg.server.ci_key
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def json_text(data: Any) -> str:
    """``json.dumps(data)`` with ``<``, ``>`` and ``&`` as ``\\u003c``, ``\\u003e``, ``\\u0026``:
    the same JSON value, but no markup even where a browser renders the body as HTML
    (docs/security.md, Hardening II)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class ApiHandler(tornado.web.RequestHandler):
    """Base: holds the state and writes a dict as JSON text with a status code.

    ``JSON``: serve as ``application/json`` (True) or keep Tornado's ``text/html`` (False, the
    v1 endpoints whose consumers expect it and whose bodies hold no player text).
    """

    JSON = False

    def initialize(self, state: State) -> None:
        self.state = state

    def set_default_headers(self) -> None:
        """``nosniff`` on every answer; ``application/json`` where :attr:`JSON` is set."""
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.JSON:
            self.set_header("Content-Type", "application/json; charset=UTF-8")

    def reply(self, status: int, data: dict[str, Any]) -> None:
        """Answer ``status`` with :func:`json_text` of ``data`` as the body (key order kept)."""
        self.set_status(status)
        self.write(json_text(data))

    def has(self, name: str) -> bool:
        """Whether the query has parameter ``name`` (even empty)."""
        return name in self.request.arguments

    def _request_summary(self) -> str:
        """Tornado's request summary (used in its error logs) with the CI key ``k`` masked, so
        that the secret never reaches the logs."""
        path, _, query = (self.request.uri or "").partition("?")
        if query:
            pairs = [(k, "***" if k == "k" else v) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True)]
            path += "?" + urllib.parse.urlencode(pairs)
        return f"{self.request.method} {path} ({self.request.remote_ip})"


class IsOnline(ApiHandler):
    """``GET /api/v1/isOnline?u=<name>`` or ``?id=<id>`` (``u`` wins): whether any session of
    the user is online (the bot counts). 400 "missing required arguments" without either or
    with a non-integer ``id``."""

    def get(self) -> None:
        tokens = self.state.tokens
        if self.has("u"):
            online = tokens.by_name(safe_username(self.get_argument("u"))) is not None
        else:
            user_id = _int(self.get_argument("id", None))
            if user_id is None:
                self.reply(400, {"message": "missing required arguments", "status": 400})
                return
            online = tokens.user(user_id) is not None
        self.reply(200, {"message": "ok", "result": online, "status": 200})


class OnlineUsers(ApiHandler):
    """``GET /api/v1/onlineUsers``: the number of sessions, the bot included (= ``ripple:online_users``)."""

    def get(self) -> None:
        self.reply(200, {"message": "ok", "result": len(self.state.tokens), "status": 200})


class ServerStatus(ApiHandler):
    """``GET /api/v1/serverStatus``: ``result`` 1, or -1 while a restart or shutdown is scheduled."""

    def get(self) -> None:
        self.reply(200, {"message": "ok", "result": -1 if self.state.restarting else 1, "status": 200})


class LegacyServerStatus(ApiHandler):
    """``GET /api/server-status``: ``{"status": 1}`` while the server answers, the form the 2016
    Ripple status page reads (docs/integration.md)."""

    def get(self) -> None:
        self.reply(200, {"status": 1})


class VerifiedStatus(ApiHandler):
    """``GET /api/v1/verifiedStatus?u=<user id>[&callback=<fn>]``: -1 not seen since start-up,
    0 multi-account refused, 1 verified (``state.verified``); JSONP with ``callback``; CORS."""

    def get(self) -> None:
        self.add_header("Access-Control-Allow-Origin", "*")
        self.add_header("Content-Type", "application/json")
        callback = self.get_argument("callback", None) if self.has("callback") else None
        if callback is not None and not _CALLBACK.fullmatch(callback):
            self.reply(400, {"message": "invalid callback", "status": 400})
            return
        if self.has("u"):
            status = 200
            data = {"message": "ok", "result": self.state.verified.get(self.get_argument("u"), -1), "status": 200}
        else:
            status = 400
            data = {"message": "missing required arguments", "status": 400}
        body = json_text(data)
        self.set_status(status)
        self.write(f"{callback}({body})" if callback is not None else body)


class CiTrigger(ApiHandler):
    """``GET /api/v1/ciTrigger?k=<key>``: schedule a **shutdown** (5 s notice, restart packet,
    exit after 25 s; a supervisor brings the server back, docs/rules.md §7.5)."""

    def get(self) -> None:
        if not key_ok(self.state, self.get_argument("k", None)):
            log.warning("ciTrigger refused (bad or missing key) from %s", self.request.remote_ip)
            self.reply(400, {"message": "invalid ci key", "status": 400})
            return
        log.warning("ciTrigger from %s: shutdown scheduled", self.request.remote_ip)
        stop.schedule_shutdown(self.state, restart=False, message=CI_NOTICE, send_after=5, delay=20)
        self.reply(200, {"message": "ok", "status": 200})


class FokabotMessage(ApiHandler):
    """``GET /api/v1/fokabotMessage?k=<key>&to=<#channel or user>&msg=<text>``: a message from the
    bot through the chat pipeline. 200 even when it was not delivered (unknown channel, user
    offline), like the peers; 400 "invalid parameters" for a missing parameter or a bad key."""

    def get(self) -> None:
        to = self.get_argument("to", None)
        msg = self.get_argument("msg", None)
        if to is None or msg is None or not key_ok(self.state, self.get_argument("k", None)):
            self.reply(400, {"message": "invalid parameters", "status": 400})
            return
        result = chat.bot_message(self.state, to, msg)
        if result is not chat.Result.SENT:
            log.info("fokabotMessage to %r not delivered: %s", to, result.value)
        self.reply(200, {"message": "ok", "status": 200})


class UserStats(ApiHandler):
    """Kawata ``GET /api/yes/userstats?id=<id>``: online flag, action, beatmap id and name (JSON)."""

    JSON = True

    def get(self) -> None:
        user_id = _int(self.get_argument("id", None))
        if user_id is None:
            self.reply(400, {"status": 400, "message": "Invalid or no id passed."})
            return
        token = self.state.tokens.user(user_id)
        if token is None:
            self.reply(200, {"status": 200, "message": USERSTATS_OFFLINE, "Online": False})
            return
        self.reply(200, {"status": 200, "message": random.choice(USERSTATS_ONLINE), "Online": True,
                         "ActionID": token.action, "BeatmapID": token.beatmap_id, "Username": token.username})


def _delta_text(text: str) -> str:
    """Kawata's delta emulation drops a leading ``[clan]`` tag from a "... play ..." status."""
    match = _CLAN_TEXT.match(text)
    if match and match.group("clan"):
        return text.split("]", 1)[1].lstrip(" ")
    return text


class DeltaClients(ApiHandler):
    """Kawata's emulation of Ripple delta's ``GET /api/v2/clients/<id>`` (Hanayo's online ring
    and "Playing ..." line): every session of the user, the main game client first; ``type`` 0
    (game client). A non-integer id gives 500 like Kawata. JSON, with CORS for any origin and
    the ``OPTIONS`` preflight (Hanayo fetches it from the browser)."""

    JSON = True

    def set_default_headers(self) -> None:
        """JSON and nosniff (:class:`ApiHandler`), plus ``Access-Control-Allow-Origin: *``."""
        super().set_default_headers()
        self.set_header("Access-Control-Allow-Origin", "*")

    def options(self, raw_id: str) -> None:
        """The CORS preflight: 204 allowing GET from any origin, cached for a day."""
        self.set_status(204)
        self.set_header("Access-Control-Allow-Methods", "GET, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Content-Type")
        self.set_header("Access-Control-Max-Age", "86400")

    def get(self, raw_id: str) -> None:
        user_id = _int(raw_id)
        if user_id is None:
            self.reply(500, {"code": 500, "message": "Server got itself in troube..."})
            return
        main = self.state.tokens.user(user_id)
        tokens = [] if main is None else [main] + [
            t for t in self.state.tokens.user_tokens(user_id) if t is not main and not t.kicked]
        clients = [{
            "api_identifier": f"@{_public_id(t.token)}",
            "type": 0,
            "action": {"id": t.action, "text": _delta_text(t.action_text), "beatmap": {"id": t.beatmap_id}},
            "user_id": t.user_id,
            "location": "null",
            "username": t.username,
            "privileges": t.privileges,
            "silence_end_time": t.silence_end,
        } for t in tokens]
        self.reply(200, {"code": 200, "clients": clients})


class Status(ApiHandler):
    """RealistikOsu ``GET /api/status/<id>`` and ``/api/v2/status/<id>`` (RealistikPanel's
    ``IsOnline``: online ⇔ 200): the main session's status; 204 without a body when offline;
    400 for an id that is not an integer. JSON."""

    JSON = True

    def get(self, raw_id: str) -> None:
        user_id = _int(raw_id)
        if user_id is None:
            self.reply(400, {"code": 400, "message": "invalid user id"})
            return
        t = self.state.tokens.user(user_id)
        if t is None:
            self.set_status(204)
            return
        self.reply(200, {
            "code": 200,
            "username": t.username,
            "user_id": t.user_id,
            "privileges": t.privileges,
            "action": {"id": t.action, "text": t.action_text,
                       "beatmap": {"id": t.beatmap_id, "md5": t.beatmap_md5, "mods": t.mods}},
            "match_id": t.match_id if t.match_id is not None else -1,
            "mode": t.mode,
            "rank": t.rank,
            "autopilot": t.autopilot,
            "relax": t.relax,
        })


def routes(state: State) -> list:
    """Tornado routes of the API endpoints."""
    kw = {"state": state}
    return [
        (r"/api/v1/isOnline", IsOnline, kw),
        (r"/api/v1/onlineUsers", OnlineUsers, kw),
        (r"/api/v1/serverStatus", ServerStatus, kw),
        (r"/api/server-status", LegacyServerStatus, kw),
        (r"/api/v1/ciTrigger", CiTrigger, kw),
        (r"/api/v1/verifiedStatus", VerifiedStatus, kw),
        (r"/api/v1/fokabotMessage", FokabotMessage, kw),
        (r"/api/yes/userstats", UserStats, kw),
        (r"/api/v2/clients/(.*)", DeltaClients, kw),
        (r"/api/status/(.*)", Status, kw),
        (r"/api/v2/status/(.*)", Status, kw),
    ]
