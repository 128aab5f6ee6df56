"""The pace of calls to a vendor (throttle.services.LimitsPacer): in memory, and in Redis when
the tests have it, where every process of one instance shares it."""

from __future__ import annotations

import os
import uuid

import pytest

from clientpay_connect.throttle.services import LimitsPacer, NullPacer, pace_window

REDIS_URL = os.environ.get("CLIENTPAY_TEST_REDIS_URL", "")
needs_redis = pytest.mark.skipif(not REDIS_URL, reason="CLIENTPAY_TEST_REDIS_URL is not set")


def pacer_on(redis_url: str, prefix: str) -> LimitsPacer:
    return LimitsPacer.from_settings(
        {
            "clientpay.limits.storage_url": "memory://",
            "clientpay.redis_url": redis_url,
            "clientpay.limits.key_prefix": prefix,
        }
    )


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def pacer(request) -> LimitsPacer:
    return pacer_on(REDIS_URL if request.param == "redis" else "", "test-" + uuid.uuid4().hex)


def key() -> str:
    return "connection/" + uuid.uuid4().hex


def window(limit: str) -> tuple[int, int] | None:
    found = pace_window(limit)
    return None if found is None else (found.amount, found.get_expiry())


def test_a_limit_keeps_headroom_and_a_long_window_is_spread():
    # 2 % under the vendor's count (588 a minute), spent a sixth per sixth of the minute.
    assert window("600/minute") == (98, 10)
    assert window("25/second") == (24, 1)
    assert window("1/second") == (1, 1)
    # 49 a minute cannot be cut evenly: all of it, rather than less of it spread.
    assert window("50/minute") == (49, 60)
    assert window("1000/hour") == (98, 360)
    assert window("none") is None and window("") is None


def test_slots_are_taken_up_to_the_limit_then_the_wait_is_told(pacer):
    who = key()
    # 3/second keeps 2 (headroom): the third would wait up to a second; nothing is taken.
    assert [pacer.wait("3/second", who, 0) for _ in range(2)] == [0.0, 0.0]
    assert 0 < pacer.wait("3/second", who, 0) <= 1
    assert pacer.wait("3/second", key(), 0) == 0.0
    # 22/minute: 21 a minute, 7 in any 20 seconds.
    spread = key()
    assert [pacer.wait("22/minute", spread, 0) for _ in range(7)] == [0.0] * 7
    assert 0 < pacer.wait("22/minute", spread, 0) <= 20


def test_a_slot_that_frees_within_max_wait_is_waited_for(pacer):
    who = key()
    assert pacer.wait("2/second", who, 0) == 0.0
    assert pacer.wait("2/second", who, 0) > 0
    assert pacer.wait("2/second", who, 5) == 0.0


def test_a_pause_holds_every_caller_of_the_key(pacer):
    who = key()
    pacer.pause(who, 30)
    assert 25 < pacer.wait("none", who, 0) <= 30
    assert 25 < pacer.wait("100/second", who, 1) <= 30
    assert pacer.wait("100/second", key(), 0) == 0.0
    # A shorter pause does not cut a longer one short.
    pacer.pause(who, 2)
    assert pacer.wait("none", who, 0) > 20


def test_no_limit_and_no_pause_never_wait(pacer):
    who = key()
    assert all(pacer.wait("none", who, 0) == 0.0 for _ in range(100))


@needs_redis
def test_processes_of_one_instance_share_the_pace():
    prefix = "test-" + uuid.uuid4().hex
    first, second = pacer_on(REDIS_URL, prefix), pacer_on(REDIS_URL, prefix)
    other = pacer_on(REDIS_URL, "test-" + uuid.uuid4().hex)
    who = key()
    assert first.wait("2/minute", who, 0) == 0.0
    assert second.wait("2/minute", who, 0) > 0
    assert other.wait("2/minute", who, 0) == 0.0
    first.pause(who, 20)
    assert second.wait("none", who, 0) > 10


def test_the_null_pacer_never_waits():
    null = NullPacer.from_settings({})
    null.pause("k", 60)
    assert all(null.wait("1/hour", "k", 0) == 0.0 for _ in range(5))
