"""Publishing on the stack's Redis channels (docs/integration.md §2): the generic publisher and
``ussr:refresh_bmap``. The ``peppy:ban`` loop-back is :func:`services.moderation.publish_ban`.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from objects.state import State

log = logging.getLogger("pep.pubsub")

#: ``ussr:refresh_bmap`` is consumed by USSR, the score server of these flavours
USSR_FLAVOURS = frozenset({"kawata", "realistikosu"})

_MD5 = re.compile(r"[0-9a-fA-F]{32}")


async def publish(state: State, channel: str, payload: str | int | Mapping[str, Any]) -> int:
    """Publish ``payload`` on the stack channel ``channel`` (prefixed): ints as decimal text,
    mappings as JSON (UTF-8, not ASCII-escaped). Returns the number of receivers. Raises
    :class:`redis.exceptions.RedisError`; TypeError for a boolean."""
    if isinstance(payload, bool):
        raise TypeError("booleans are not a pub/sub payload")
    if isinstance(payload, int):
        text = str(payload)
    elif isinstance(payload, str):
        text = payload
    else:
        text = json.dumps(dict(payload), ensure_ascii=False)
    return await state.redis.publish(channel, text)


async def refresh_beatmaps(state: State, md5s: Iterable[str]) -> int:
    """``ussr:refresh_bmap`` with each beatmap md5 (one message per difficulty, docs/integration.md
    §2, Kawata's ``!map``) so that USSR drops its cached beatmap. Only for the flavours whose
    score server is USSR (kawata, realistikosu); a no-op returning 0 for ripple. Values that are
    not 32 hex digits are skipped. Returns how many were published. Raises
    :class:`redis.exceptions.RedisError`."""
    if state.repo.flavour.name not in USSR_FLAVOURS:
        return 0
    count = 0
    for md5 in md5s:
        if not isinstance(md5, str) or not _MD5.fullmatch(md5):
            log.warning("ussr:refresh_bmap: %r is not an md5; skipped", md5)
            continue
        await publish(state, "ussr:refresh_bmap", md5.lower())
        count += 1
    return count
