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
