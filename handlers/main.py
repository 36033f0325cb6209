"""The Bancho endpoint ``/`` as a ``tornado.web`` handler: ``GET /`` a status page; ``POST /``
(login without ``osu-token``, else a poll) through the same body-level functions as the server's
own delegate.

The running server answers ``POST /`` below ``tornado.web`` (``handlers.bancho.BanchoServer``,
docs/architecture.md); this handler's ``post`` serves the application when it is used on its
own. Both call :func:`handlers.bancho.poll` and :func:`handlers.bancho.login`, the one
implementation of the login and poll semantics.
"""

from __future__ import annotations

import html
import time

import tornado.web

from constants import game
from handlers import bancho
from objects.state import State


class MainHandler(tornado.web.RequestHandler):
    """``GET /`` status page, ``POST /`` Bancho login and polls."""

    def initialize(self, state: State) -> None:
        """Tornado hook: the handler gets the server's :class:`State`."""
        self.state = state

    def set_default_headers(self) -> None:
        """Every Bancho answer carries ``cho-protocol: 19`` (docs/protocol.md §1.3)."""
        self.set_header("cho-protocol", str(game.PROTOCOL_VERSION))

    def get(self) -> None:
        """A small HTML status page (online users, uptime); handy as a health check."""
        state = self.state
        state.poll_counters.count_request("status")
        uptime = int(time.time() - state.started)
        self.write(
            "<!doctype html><html><head><title>pep.py</title></head><body>"
            f"<h1>pep.py</h1><p>{html.escape(state.cfg.stack.server_name)} realtime server.</p>"
            f"<p>Online users: {len(state.tokens)}<br>Uptime: {uptime} s</p></body></html>"
        )

    async def post(self) -> None:
        """A login (no ``osu-token`` header) or a poll; always HTTP 200 (docs/protocol.md §10.4)."""
        state = self.state
        token_string = self.request.headers.get("osu-token")
        if token_string is None:
            ip = bancho.client_ip(state, self.request.headers, self.request.remote_ip)
            cho_token, parts = await bancho.login(state, self.request.body, ip)
            self.set_header("cho-token", cho_token)
            self.write(b"".join(parts))
            return
        data = bancho.poll(state, token_string, self.request.body)
        if data:
            self.write(data)
