"""The Prometheus metrics endpoint. Owned by the operations issue."""

from __future__ import annotations

from objects.state import State


def routes(state: State) -> list:
    """Tornado routes of the metrics endpoint."""
    return []
