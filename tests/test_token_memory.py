"""Per-session memory (bench/README.md, "Issue #17, third pass"): rarely used containers of a
Token are shared empty immutables until first use, and the token list keeps a tuple per user."""

from objects.ratelimit import Window
from objects.token import NO_IDS, NO_SPECTATORS, Token
from objects.tokenlist import TokenList


def _token(user_id: int = 5) -> Token:
    return Token(user_id, f"u{user_id}", f"u{user_id}", 3)


def test_a_new_session_shares_its_empty_containers():
    a, b = _token(1), _token(2)
    assert a.spectators is NO_SPECTATORS and b.spectators is NO_SPECTATORS
    assert a.friends is NO_IDS and b.friends is NO_IDS
    assert a._friend_limit is None and a._error_report_limit is None


def test_rate_windows_are_made_once_on_first_use():
    token = _token()
    window = token.friend_limit
    assert isinstance(window, Window) and token.friend_limit is window
    assert token.match_create_limit is not window
    assert token._round_start_limit is None  # untouched ones stay unmade


def test_spectators_get_their_own_map_and_give_it_back():
    host, s1, s2 = _token(1), _token(2), _token(3)
    other = _token(4)
    host.add_spectator(s1)
    host.add_spectator(s2)
    assert list(host.spectators.values()) == [s1, s2]  # join order
    assert other.spectators is NO_SPECTATORS and len(NO_SPECTATORS) == 0
    assert host.remove_spectator(s1.token) is s1
    assert host.remove_spectator(s1.token) is None
    assert host.remove_spectator(s2.token) is s2
    assert host.spectators is NO_SPECTATORS
    host.add_spectator(s1)
    host.clear_spectators()
    assert host.spectators is NO_SPECTATORS and len(NO_SPECTATORS) == 0


def test_friends_get_their_own_set():
    a, b = _token(1), _token(2)
    a.add_friend(7)
    assert a.friends == {7} and b.friends is NO_IDS and not NO_IDS
    a.remove_friend(7)
    a.remove_friend(8)
    b.remove_friend(7)
    assert not a.friends and b.friends is NO_IDS


def test_by_user_keeps_a_tuple_in_join_order():
    tokens = TokenList()
    first, second = _token(9), _token(9)
    tokens.add(first)
    tokens.add(second)
    assert tokens.by_user[9] == (first, second)
    assert tokens.remove(first)
    assert tokens.by_user[9] == (second,)
    assert tokens.user(9) is second
    assert tokens.remove(second) and 9 not in tokens.by_user
