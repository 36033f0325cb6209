"""Rules that have one implementation, used from several places (docs/architecture.md).

* a multi-account found at the first login is banned, and its original restricted, by
  :mod:`services.moderation` (the same ban/restrict as ``!ban`` and the API): privileges,
  ``ban_datetime``, ``peppy:ban``; the new account is no longer pending, so its next login is
  refused as banned without a second hardware check.
"""

from __future__ import annotations

from tests import client as C
from tests.waiting import wait_until

PENDING = 1 << 20


def _privileges(server, user_id: int) -> int:
    return int(server.db.scalar("SELECT privileges FROM users WHERE id=%s", (user_id,)))


def test_multi_account_at_first_login_is_banned_and_the_original_restricted(server):
    original = server.new_user(privileges=PENDING | 3, stem="orig")
    hashes = C.default_hashes(original.name)
    first = server.client().login(original.name, original.password, hashes=hashes)
    assert first.user_id == original.id, first.packets
    wait_until(lambda: _privileges(server, original.id) == 3, what="the original activated")

    second = server.new_user(privileges=PENDING | 3, stem="multi")
    res = server.client().login(second.name, second.password, hashes=hashes)
    assert res.user_id == -3, res.packets
    assert any("Multiple accounts" in n for n in C.values(res.packets, C.NOTIFICATION))
    banned = _privileges(server, second.id)
    assert banned & 3 == 0 and not banned & PENDING, banned
    assert int(server.db.scalar("SELECT ban_datetime FROM users WHERE id=%s", (second.id,)) or 0) > 0
    restricted = _privileges(server, original.id)
    assert restricted & 2 and not restricted & 1, restricted  # normal, not public
    notes = server.db.scalar("SELECT notes FROM users WHERE id=%s", (second.id,)) or ""
    assert f"multiaccount of user {original.id}" in notes

    # the next login of the banned account: refused as banned, no second hardware check
    again = server.client().login(second.name, second.password, hashes=hashes)
    assert again.user_id == -3
    assert any("You are banned" in n for n in C.values(again.packets, C.NOTIFICATION))
