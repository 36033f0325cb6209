"""The token list's cached block of visible presences (objects/tokenlist.py
``TokenList.presence_block``), in-process: after every kind of change the block equals what
reading every session gives (one 83 per visible user, from its first live token)."""

from __future__ import annotations

from objects.token import Token
from objects.tokenlist import PRESENCE_CHUNK, TokenList


def expected(tokens: TokenList, except_user: int = 0) -> set[bytes]:
    """The presences by reading every session (the rule the cache must keep)."""
    seen = {except_user}
    out = set()
    for token in tokens.by_token.values():
        if token.user_id in seen or token.restricted or token.kicked:
            continue
        seen.add(token.user_id)
        out.add(token.presence_packet())
    return out


def split(block: bytes) -> list[bytes]:
    """The 83 packets of a block (7-byte header: id u16, 0 u8, length u32)."""
    out, pos = [], 0
    while pos < len(block):
        length = int.from_bytes(block[pos + 3:pos + 7], "little")
        out.append(block[pos:pos + 7 + length])
        pos += 7 + length
    return out


def check(tokens: TokenList, except_user: int = 0) -> list[bytes]:
    got = split(tokens.presence_block(except_user))
    assert len(got) == len(set(got)) and set(got) == expected(tokens, except_user)
    return got


def user(user_id: int, **kwargs) -> Token:
    return Token(user_id, f"user{user_id}", f"user{user_id}", 3, **kwargs)


def test_block_follows_adds_removes_and_presence_changes():
    tokens = TokenList()
    a, b, c = user(1), user(2), user(3)
    tokens.add(a)
    tokens.add(b)
    assert len(check(tokens)) == 2
    first = tokens.presence_block()
    assert tokens.presence_block() is first, "unchanged: the same joined block"
    tokens.add(c)
    assert len(check(tokens)) == 3
    a.mode = 3
    a.invalidate()  # a status change
    got = check(tokens)
    assert a.presence_packet() in got
    b.set_stats(1, 0.5, 2, 3, 42, 100)  # the rank is in the presence
    assert b.presence_packet() in check(tokens)
    tokens.remove(c)
    assert len(check(tokens)) == 2
    assert c.presence_watch is None
    c.invalidate()  # a removed token no longer touches the list
    assert len(check(tokens)) == 2


def test_restricted_kicked_and_several_sessions_of_a_user():
    tokens = TokenList()
    a, t1 = user(1), user(2, tournament=True)
    tokens.add(a)
    tokens.add(t1)
    check(tokens)
    t2 = user(2)  # the main client of the user with a tournament client
    tokens.add(t2)
    assert len(check(tokens)) == 2
    assert len(check(tokens, except_user=2)) == 1, "the user logging in never sees itself"
    a.restricted = True
    a.invalidate()  # as services.moderation applies new privileges
    assert len(check(tokens)) == 1
    a.restricted = False
    a.invalidate()
    assert len(check(tokens)) == 2
    tokens.remove(t1)
    t2.utc_offset = 5
    t2.invalidate()
    assert t2.presence_packet() in check(tokens)
    r = user(9, restricted=True)
    tokens.add(r)
    assert len(check(tokens)) == 2


def test_layouts_are_cached_apart():
    tokens = TokenList()
    a = user(1)
    tokens.add(a)
    assert tokens.presence_block(layout="other", encode=lambda t: b"x") == b"x"
    assert split(tokens.presence_block()) == [a.presence_packet()]
    tokens.add(user(2))
    assert tokens.presence_block(layout="other", encode=lambda t: b"x") == b"xx"


def test_chunks_stay_shared_and_bounded_under_churn():
    tokens = TokenList()
    online = [user(i) for i in range(1, 2 * PRESENCE_CHUNK + 50)]
    for token in online:
        tokens.add(token)
    parts = list(tokens.presence_parts())
    assert len(parts) == 3 and len(check(tokens)) == len(online)
    changed = online[5]
    changed.mode = 1
    changed.invalidate()
    again = tokens.presence_parts()
    same = [a is b for a, b in zip(parts, again)]
    assert same.count(False) == 1, "only the chunk of the changed user is joined again"
    # a day of churn at the same number online: chunks are reused, not piled up
    next_id = 10_000
    for round_ in range(20):
        for token in online[round_::7][:40]:
            tokens.remove(token)
        online = [t for t in online if t.token in tokens.by_token]
        for _ in range(40):
            next_id += 1
            new = user(next_id)
            tokens.add(new)
            online.append(new)
        check(tokens)
    assert len(tokens.presence_parts()) <= len(online) // PRESENCE_CHUNK + 2
    # the user logging in is left out of its own chunk only
    me = online[100]
    left = check(tokens, except_user=me.user_id)
    assert me.presence_packet() not in left and len(left) == len(online) - 1
