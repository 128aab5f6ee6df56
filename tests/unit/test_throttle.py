"""The rate limiter behind sign-in throttling: in memory, and in Redis when the tests have it
(CLIENTPAY_TEST_REDIS_URL), where counters are shared by every process with the same prefix."""

from __future__ import annotations

import os
import uuid

import pytest

from clientpay_connect.throttle.services import (
    LimitsBackoff,
    LimitsRateLimiter,
    NullBackoff,
    NullRateLimiter,
)

REDIS_URL = os.environ.get("CLIENTPAY_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="CLIENTPAY_TEST_REDIS_URL is not set")


def from_settings(redis_url: str, prefix: str) -> LimitsRateLimiter:
    return LimitsRateLimiter.from_settings(
        {
            "clientpay.limits.storage_url": "memory://",
            "clientpay.redis_url": redis_url,
            "clientpay.limits.key_prefix": prefix,
        }
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def limiter(request) -> LimitsRateLimiter:
    return from_settings(REDIS_URL if request.param == "redis" else "", "test-" + uuid.uuid4().hex)


def key() -> str:
    return uuid.uuid4().hex


def test_events_count_up_to_the_limit(limiter):
    who = key()
    assert limiter.allowed("3/minute", who)
    assert [limiter.hit("3/minute", who) for _ in range(4)] == [True, True, True, False]
    assert not limiter.allowed("3/minute", who)
    assert limiter.allowed("3/minute", key())


def test_allowed_only_looks(limiter):
    who = key()
    for _ in range(10):
        assert limiter.allowed("2/minute", who)
    assert limiter.hit("2/minute", who)


def test_clear_forgets(limiter):
    who = key()
    limiter.hit("2/minute", who)
    limiter.hit("2/minute", who)
    assert not limiter.allowed("2/minute", who)
    limiter.clear("2/minute", who)
    assert limiter.allowed("2/minute", who)


@pytest.mark.parametrize("off", ["", "none", "OFF", " off "])
def test_a_limit_can_be_switched_off(limiter, off):
    who = key()
    assert all(limiter.hit(off, who) for _ in range(100))
    assert limiter.allowed(off, who)
    limiter.clear(off, who)


def test_memory_counters_belong_to_one_limiter():
    who = key()
    first, second = from_settings("", "same"), from_settings("", "same")
    first.hit("1/minute", who)
    assert not first.allowed("1/minute", who)
    assert second.allowed("1/minute", who)


@needs_redis
def test_redis_counters_are_shared_by_prefix():
    """Two processes (here: two limiters) of one instance share counters; another instance
    on the same Redis server, with another prefix, does not."""
    who, prefix = key(), "test-" + uuid.uuid4().hex
    first, second = from_settings(REDIS_URL, prefix), from_settings(REDIS_URL, prefix)
    other = from_settings(REDIS_URL, "test-" + uuid.uuid4().hex)
    first.hit("1/minute", who)
    assert not second.allowed("1/minute", who)
    assert other.allowed("1/minute", who)
    second.clear("1/minute", who)
    assert first.allowed("1/minute", who)


def test_the_null_limiter_never_limits():
    null = NullRateLimiter.from_settings({})
    assert all(null.hit("1/hour", "k") for _ in range(5))
    assert null.allowed("1/hour", "k")
    null.clear("1/hour", "k")


# --- The growing wait after failures (sign-in) ---------------------------------------------


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def backoff(request) -> LimitsBackoff:
    return LimitsBackoff.from_settings(
        {
            "clientpay.limits.storage_url": "memory://",
            "clientpay.redis_url": REDIS_URL if request.param == "redis" else "",
            "clientpay.limits.key_prefix": "test-" + uuid.uuid4().hex,
        }
    )


def test_failures_past_the_free_ones_wait_longer_and_longer_up_to_the_longest(backoff):
    who = key()
    waits = [backoff.failed(who, 3, 2, 60) for _ in range(10)]
    assert waits == [0, 0, 0, 2, 4, 8, 16, 32, 60, 60]


def test_the_wait_is_kept_for_its_key_alone(backoff):
    who, other = key(), key()
    assert backoff.wait(who) == 0
    backoff.failed(who, 0, 30, 900)
    assert 29 < backoff.wait(who) <= 30
    assert backoff.wait(other) == 0


def test_clear_forgets_the_failures_and_the_wait(backoff):
    who = key()
    for _ in range(5):
        backoff.failed(who, 2, 30, 900)
    backoff.clear(who)
    assert backoff.wait(who) == 0
    assert backoff.failed(who, 2, 30, 900) == 0


def test_the_null_backoff_never_waits():
    null = NullBackoff()
    assert [null.failed("k", 0, 30, 900) for _ in range(3)] == [0, 0, 0]
    assert null.wait("k") == 0
