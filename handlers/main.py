"""The Bancho endpoint ``/``: POST without ``osu-token`` is a login, with it a poll; GET a status page.

The poll is the hot path (design.md): find the token, split the body into frames, run each
frame's event (restricted filter first), answer with the token's queue. Nothing here waits for
MySQL or Redis; only the login awaits (its checks run on the thread pools).
"""

from __future__ import annotations

import html
import ipaddress
import logging
import time

import tornado.web

from constants import game
from events import HANDLERS, RESTRICTED_ALLOWED
from services import login as login_event, session
from helpers import codec, metrics
from objects.state import State
from objects.token import Token

log = logging.getLogger("pep.bancho")

UNKNOWN_TOKEN_NOTICE = "You don't seem to be logged in anymore. This is common after a server restart; reconnecting..."
# the answer to an unknown token (protocol.md §1.5), encoded once: after a restart every client
# polls with a token this process does not know
RECONNECT_REPLY = codec.notification(UNKNOWN_TOKEN_NOTICE) + codec.restart(0)


def process_frames(state: State, token: Token, body: bytes) -> int:
    """Run every frame of ``body`` for ``token``; returns how many frames were handled.

    Malformed payloads, unknown ids and failures of a handler are logged and skipped; the
    remaining frames are still processed (spec README, decision 4).
    """
    limits = state.cfg.limits
    frames, problems = codec.read_frames(body, limits.max_frames, limits.max_payload)
    if problems:
        log.info("poll user=%d: dropped %d malformed/truncated byte(s) or frame(s)", token.user_id, problems)
    handled = 0
    token.poll_flags = 0  # what a poll answers at most once (docs/security.md)
    for packet_id, payload in frames:
        if token.logged_out:
            break
        handler = HANDLERS.get(packet_id)
        metrics.count_packet(packet_id, handler is not None)
        if handler is None:
            log.debug("poll user=%d: unknown packet %d (%d bytes)", token.user_id, packet_id, len(payload))
            continue
        if token.restricted and packet_id not in RESTRICTED_ALLOWED:
            log.debug("poll user=%d: packet %d refused (restricted)", token.user_id, packet_id)
            continue
        try:
            handler(state, token, payload)
        except codec.PacketError as exc:
            log.info("poll user=%d: malformed packet %d: %s", token.user_id, packet_id, exc)
        except Exception:
            log.exception("poll user=%d: packet %d handler failed", token.user_id, packet_id)
        handled += 1
    return handled


class MainHandler(tornado.web.RequestHandler):
    """``GET /`` status page, ``POST /`` Bancho login and polls."""

    def initialize(self, state: State) -> None:
        """Tornado hook: the handler gets the server's :class:`State`."""
        self.state = state

    def set_default_headers(self) -> None:
        """Every Bancho answer carries ``cho-protocol: 19`` (protocol.md §1.3)."""
        self.set_header("cho-protocol", str(game.PROTOCOL_VERSION))

    def client_ip(self) -> str:
        """The client IP: the configured proxy header when it holds an address, else the peer."""
        header = self.state.cfg.server.ip_header
        value = self.request.headers.get(header, "") if header else ""
        value = value.split(",")[-1].strip()
        if value:
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                log.debug("ignoring malformed %s header", header)
        return self.request.remote_ip or ""

    def get(self) -> None:
        """A small HTML status page (online users, uptime); handy as a health check."""
        state = self.state
        metrics.count_request("status")
        uptime = int(time.time() - state.started)
        self.write(
            "<!doctype html><html><head><title>pep.py</title></head><body>"
            f"<h1>pep.py</h1><p>{html.escape(state.cfg.stack.server_name)} realtime server.</p>"
            f"<p>Online users: {len(state.tokens)}<br>Uptime: {uptime} s</p></body></html>"
        )

    async def post(self) -> None:
        """A login (no ``osu-token`` header) or a poll; always HTTP 200 (protocol.md §10.4)."""
        state = self.state
        token_string = self.request.headers.get("osu-token")
        if token_string is None:
            metrics.count_request("login")
            token, body = await login_event.login(state, self.request.body, self.client_ip())
            self.set_header("cho-token", token.token if token is not None else "login-failed")
            self.write(body)
            return
        started = time.perf_counter()
        token = state.tokens.get(token_string)
        if token is None:
            metrics.count_request("unknown_token")
            kicked = state.kicked.pop(token_string, None)
            if kicked is not None:
                self.write(kicked[0].drain())
                return
            self.write(RECONNECT_REPLY)
            return
        token.last_seen = time.monotonic()
        if token.overflowed:  # its queue grew past [limits] max_queue: it lost packets, start over
            session.logout(state, token)
            self.write(RECONNECT_REPLY)
            return
        metrics.count_request("poll")
        process_frames(state, token, self.request.body)
        data = token.drain()
        if token.kicked:  # kicked during its own poll: its final packets go out now
            state.kicked.pop(token.token, None)
        if data:
            self.write(data)
        metrics.observe_poll(time.perf_counter() - started)
