"""The login failure limiter: sliding window, per key, bounded memory."""

from objects.ratelimit import FailureLimiter


def test_blocks_after_limit_within_window_and_recovers():
    limiter = FailureLimiter(limit=3, window=10)
    for t in (0, 1, 2):
        assert not limiter.blocked("ip", now=t)
        limiter.failure("ip", now=t)
    assert limiter.blocked("ip", now=3)
    assert not limiter.blocked("other", now=3)
    assert limiter.blocked("ip", now=10)  # the first failure is still inside the window
    assert not limiter.blocked("ip", now=10.5)  # it left the window: two failures remain


def test_reset_and_key_bound():
    limiter = FailureLimiter(limit=1, window=10, max_keys=2)
    limiter.failure("a", now=0)
    assert limiter.blocked("a", now=1)
    limiter.reset("a")
    assert not limiter.blocked("a", now=1)
    for key in ("x", "y", "z"):
        limiter.failure(key, now=0)
    assert not limiter.blocked("x", now=1)  # evicted: the oldest key goes first
    assert limiter.blocked("z", now=1)


def test_window_counts_per_fixed_window_and_counts_refusals():
    from objects.ratelimit import Window

    w = Window()
    assert [w.allow(3, 10.0, now=100.0 + i) for i in range(5)] == [True, True, True, False, False]
    assert w.refused == 2
    assert w.allow(3, 10.0, now=110.0) and w.refused == 0  # a new window
def test_attempts_in_flight_count_against_the_limit():
    from objects.ratelimit import FailureLimiter as L

    limiter = L(limit=3, window=10)
    assert all(limiter.begin("ip", now=0) for _ in range(3))
    assert not limiter.begin("ip", now=0)  # three in flight: the fourth is refused
    limiter.end("ip", failed=False, now=1)
    assert limiter.begin("ip", now=1)
    for _ in range(3):
        limiter.end("ip", failed=True, now=2)
    assert limiter.in_flight("ip") == 0
    assert limiter.blocked("ip", now=3)


def test_limit_key_groups_ipv6_by_64_and_unmaps_ipv4():
    from objects.ratelimit import limit_key

    assert limit_key("203.0.113.7") == "203.0.113.7"
    assert limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1")
    assert limit_key("::ffff:198.51.100.4") == "198.51.100.4"
    assert limit_key("") == ""
