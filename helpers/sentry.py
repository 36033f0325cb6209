"""Error reporting to Sentry (``[sentry] dsn``; docs/operations.md). No state."""

from __future__ import annotations

import logging

log = logging.getLogger("pep.system")


def init_error_reporting(dsn: str) -> bool:
    """Start Sentry when ``[sentry] dsn`` is set; returns whether it was started.

    No personal data, request bodies (the login body has the password hash) or local variables
    are sent. A DSN that sentry-sdk refuses is logged and ignored (returns False).
    """
    if not dsn:
        return False
    try:
        import sentry_sdk

        sentry_sdk.init(dsn=dsn, send_default_pii=False, max_request_body_size="never",
                        include_local_variables=False, traces_sample_rate=0.0)
    except Exception as exc:
        log.error("Sentry could not be started: %s", exc)
        return False
    log.info("Sentry error reporting on")
    return True
