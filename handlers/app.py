"""The Tornado application: routes and the gzip transform (Tornado's own, at the configured level)."""

from __future__ import annotations

import logging

import tornado.web

from handlers import api, metrics
from handlers.main import MainHandler
from objects.state import State


access_log = logging.getLogger("tornado.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Access log line without the query string: it may carry the CI key (``?k=``)."""
    status = handler.get_status()
    if status < 400:
        level = logging.DEBUG if handler.request.path == "/" else logging.INFO
    else:
        level = logging.WARNING if status < 500 else logging.ERROR
    if access_log.isEnabledFor(level):
        access_log.log(level, "%d %s %s (%s) %.2fms", status, handler.request.method, handler.request.path,
                       handler.request.remote_ip, 1000.0 * handler.request.request_time())


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
    return tornado.web.Application(routes, transforms=transforms, log_function=log_request)
