"""The Tornado application: routes and the gzip transform (Tornado's own, at the configured level)."""

from __future__ import annotations

import tornado.web

from handlers import api, metrics
from handlers.main import MainHandler
from objects.state import State


def make_app(state: State) -> tornado.web.Application:
    """Build the application for ``state``; responses are gzipped when ``[server] gzip`` is on."""
    transforms = []
    if state.cfg.server.gzip:
        level = state.cfg.server.gzip_level

        class GZip(tornado.web.GZipContentEncoding):
            GZIP_LEVEL = level
            MIN_LENGTH = 512

        transforms.append(GZip)
    routes = [(r"/", MainHandler, {"state": state})] + api.routes(state) + metrics.routes(state)
    return tornado.web.Application(routes, transforms=transforms)
