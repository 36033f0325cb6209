"""Unit tests of helpers/netlimits.py: address keys, the per-address counts, throttled warnings,
the open-file limit."""

from __future__ import annotations

import logging
import resource

from helpers import netlimits


def test_address_key_groups_ipv6_by_64():
    assert netlimits.address_key("192.0.2.1") == "192.0.2.1"
    assert netlimits.address_key("2001:db8::1") == netlimits.address_key("2001:db8::ffff") == "2001:db8::/64"
    assert netlimits.address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert netlimits.address_key("not an address") == "not an address"


def test_parse_networks():
    nets = netlimits.parse_networks("127.0.0.1, ::1, 10.0.0.0/8")
    assert [str(n) for n in nets] == ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]


def test_address_counts_cap_exemptions_and_release():
    counts = netlimits.AddressCounts(2, netlimits.parse_networks("127.0.0.1, 10.0.0.0/8"))
    assert counts.limited("192.0.2.1")
    assert not counts.limited("127.0.0.1") and not counts.limited("10.1.2.3")
    assert not counts.limited("")  # no address known: never limited
    assert not counts.exempted("not an address") and counts.limited("not an address")
    assert not netlimits.AddressCounts(0).limited("192.0.2.1")  # 0 = no limit
    assert not netlimits.AddressCounts(2).exempted("127.0.0.1")  # nothing exempt
    assert not counts.at_limit("192.0.2.1")
    counts.add("192.0.2.1")
    assert not counts.at_limit("192.0.2.1") and counts.open == {"192.0.2.1": 1}
    counts.add("192.0.2.1")
    assert counts.at_limit("192.0.2.1") and not counts.at_limit("192.0.2.2")
    counts.release("192.0.2.1")
    assert counts.open == {"192.0.2.1": 1} and not counts.at_limit("192.0.2.1")
    counts.release("192.0.2.1")
    counts.release("192.0.2.9")  # never counted: stays absent
    assert counts.open == {}


def test_throttle_logs_once_per_interval_with_the_count(caplog):
    throttle = netlimits.Throttle("refused %d (last %s)", interval=3600)
    with caplog.at_level(logging.WARNING, logger="pep.net"):
        for i in range(500):
            throttle.hit(f"x{i}")
    assert [r.getMessage() for r in caplog.records] == ["refused 1 (last x0)"]
    assert throttle.total == 500 and throttle.count == 499


def test_log_throttle_filter_suppresses_repeats():
    filt = netlimits.LogThrottle(interval=3600)
    records = [logging.LogRecord("tornado.general", logging.INFO, "", 0, "Malformed HTTP message from %s", ("a",), None)
               for _ in range(100)]
    assert sum(filt.filter(r) for r in records) == 1
    other = logging.LogRecord("tornado.general", logging.INFO, "", 0, "Timeout reading body from %s", ("a",), None)
    assert filt.filter(other)


def test_raise_nofile_limit_reaches_the_hard_limit():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        soft, hard = netlimits.raise_nofile_limit()
        assert soft == hard or hard == resource.RLIM_INFINITY
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)
