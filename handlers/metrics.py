"""The Prometheus metrics endpoint ``GET /metrics`` (docs/operations.md, "Metrics").

The endpoint shares the Bancho port, and a reverse proxy usually forwards everything to that
port, so access is limited by address: both the peer address and, when the request carries the
configured proxy header (``[server] ip_header``), the address in that header must be in
``[metrics] allow`` (default loopback only). A scrape through the public proxy therefore gets
403, a Prometheus on the same host (or on an allowed network, directly) gets the metrics.
``[metrics] enabled = 0`` removes the route (404).
"""

from __future__ import annotations

import ipaddress
import logging

import prometheus_client
import tornado.web

from helpers import metrics
from objects.state import State

log = logging.getLogger("pep.metrics")


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Comma-separated addresses or CIDR networks; raises ValueError on a bad entry."""
    return [ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()]


class MetricsHandler(tornado.web.RequestHandler):
    """``GET /metrics``: the Prometheus text exposition format (prometheus-client)."""

    def initialize(self, state: State, networks: list) -> None:
        self.state = state
        self.networks = networks

    def _allowed(self, value: str) -> bool:
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def get(self) -> None:
        peer = self.request.remote_ip or ""
        header = self.state.cfg.server.ip_header
        forwarded = self.request.headers.get(header) if header else None
        if not self._allowed(peer) or (forwarded is not None and not self._allowed(forwarded.split(",")[-1])):
            log.info("metrics: refused a scrape from %s (forwarded for %s)", peer, forwarded)
            self.set_status(403)
            self.finish("forbidden\n")
            return
        metrics.update_state_gauges(self.state)
        self.set_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.finish(metrics.exposition(self.state.poll_counters))


def routes(state: State) -> list:
    """Tornado routes of the metrics endpoint: ``/metrics`` unless ``[metrics] enabled = 0``."""
    cfg = state.cfg.metrics
    if not cfg.enabled:
        return []
    return [(r"/metrics", MetricsHandler, {"state": state, "networks": parse_networks(cfg.allow)})]
