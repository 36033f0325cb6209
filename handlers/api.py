"""The HTTP API of the web stack (integration.md §2). Owned by the web-stack issue."""

from __future__ import annotations

from objects.state import State


def routes(state: State) -> list:
    """Tornado routes of the API endpoints."""
    return []
