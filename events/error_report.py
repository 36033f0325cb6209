"""Packet 20, error report: the client sends a crash/error text; it is logged, bounded.

The text is attacker-controlled (docs/security.md, "Hardening II: in game"): at most
``[limits] error_reports`` reports per ``error_report_window`` seconds per session are logged,
each cut to ``error_report_length`` characters, with control characters (CR, escape
sequences, NUL, ...) shown as ``\\xNN`` escapes and new lines as `` | ``, so one report is one
log line that cannot rewrite the terminal or forge other lines.
"""

from __future__ import annotations

import logging

from objects import ratelimit
from helpers import codec

log = logging.getLogger("pep.events")

#: C0 controls, DEL and the C1 controls (0x80-0x9f) become visible escapes
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7f, 0xa0))}
_CONTROLS[0x0a] = " | "


def clean(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (a trailing ``...`` when cut), control characters
    escaped, line feeds as `` | ``: safe for one log line."""
    cut = text[:limit]
    return cut.translate(_CONTROLS) + ("..." if len(text) > limit else "")


def handle(state, token, payload: bytes) -> None:
    """Log the cleaned report unless the session is over its report limit."""
    limits = state.cfg.limits
    if not ratelimit.allow(token, token.error_report_limit, "error report", limits.error_reports,
                           limits.error_report_window):
        return
    text = codec.read_str(payload)
    log.info("client error report user=%d: %s", token.user_id, clean(text, limits.error_report_length))
