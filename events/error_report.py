"""Packet 20, error report: the client sends a crash/error text; it is logged (truncated)."""

from __future__ import annotations

import logging

from constants import packets
from events import event
from helpers import codec

log = logging.getLogger("pep.events")


@event(packets.C_ERROR_REPORT)
def handle(state, token, payload: bytes) -> None:
    """Log the first 500 characters of the client's error report (docs/protocol.md §6.1)."""
    text = codec.read_str(payload)
    log.info("client error report user=%d: %s", token.user_id, text[:500].replace("\n", " | "))
