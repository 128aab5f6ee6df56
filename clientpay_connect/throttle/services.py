"""Rate limits through the ``limits`` library: in memory, or in Redis across processes."""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any, cast

import limits
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from zope.interface import implementer

from clientpay_connect.throttle.interfaces import IBackoff, IPacer, IRateLimiter

OFF = ("", "none", "off")


def storage_url(settings: dict[str, Any]) -> str:
    """Where counters live: the configured storage, else Redis when the app has one (so
    that every process shares them), else this process's memory."""
    url = settings.get("clientpay.limits.storage_url") or "memory://"
    redis_url = settings.get("clientpay.redis_url")
    if url == "memory://" and redis_url:
        url = redis_url
    return str(url)


@lru_cache(maxsize=256)
def parsed(limit: str) -> limits.RateLimitItem:
    """A limit such as "60/minute", parsed once per process (the limits come from settings,
    and the payment page checks one on every request)."""
    return limits.parse(limit)


@implementer(IRateLimiter)
class LimitsRateLimiter:
    def __init__(self, storage_url: str, key_prefix: str = "clientpay"):
        # MemoryStorage ignores key_prefix; in Redis it keeps instances sharing a server apart.
        storage = storage_from_string(storage_url, key_prefix=key_prefix)
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LimitsRateLimiter:
        return cls(
            storage_url(settings), settings.get("clientpay.limits.key_prefix") or "clientpay"
        )

    @classmethod
    def create_service(cls, context: Any, request: Any) -> LimitsRateLimiter:
        limiter: LimitsRateLimiter = request.registry["clientpay.rate_limiter"]
        return limiter

    def hit(self, limit: str, *keys: str) -> bool:
        if limit.strip().lower() in OFF:
            return True
        return bool(self._limiter.hit(parsed(limit), *keys))

    def allowed(self, limit: str, *keys: str) -> bool:
        if limit.strip().lower() in OFF:
            return True
        return bool(self._limiter.test(parsed(limit), *keys))

    def clear(self, limit: str, *keys: str) -> None:
        if limit.strip().lower() in OFF:
            return
        self._limiter.clear(parsed(limit), *keys)


@implementer(IRateLimiter)
class NullRateLimiter:
    """Never limits: for a host application that throttles in front of us."""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NullRateLimiter:
        return cls()

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullRateLimiter:
        limiter: NullRateLimiter = request.registry["clientpay.rate_limiter"]
        return limiter

    def hit(self, limit: str, *keys: str) -> bool:
        return True

    def allowed(self, limit: str, *keys: str) -> bool:
        return True

    def clear(self, limit: str, *keys: str) -> None:
        return None


# A vendor counts our calls when they arrive, we when they leave: keep this share of its
# limit unused, so that calls delayed on the way never add up to one too many in its window.
PACE_HEADROOM = 0.02
# The longest nap between two looks at a busy window (another process may free a slot).
PACE_POLL_SECONDS = 0.25


# A window longer than this is cut into parts of whole seconds, each allowed its share, so
# that the calls spread over the window instead of being spent at its start.
PACE_SPREAD = 10


@lru_cache(maxsize=64)
def pace_window(limit: str) -> limits.RateLimitItem | None:
    """The moving window that paces calls to a vendor allowing ``limit`` (None: no pace):
    the limit less the headroom, spread over up to ``PACE_SPREAD`` parts of its window.
    Any stretch of the vendor's window is covered by that many parts, so the vendor never
    counts more than the allowance; the parts are chosen to leave none of it unused where
    they can (600/minute: 98 per 10 seconds)."""
    if limit.strip().lower() in OFF:
        return None
    item = limits.parse(limit)
    period = item.get_expiry()
    kept = max(1, math.floor(item.amount * (1 - PACE_HEADROOM)))
    parts = [p for p in range(1, min(PACE_SPREAD, period) + 1) if period % p == 0]
    # The most calls in all, then the most parts (the smoothest spread).
    best = max(parts, key=lambda p: ((kept // p) * p if kept >= p else 0, p))
    return limits.RateLimitItemPerSecond(max(1, kept // best), period // best)


def mark_for(storage: Storage, key: str, seconds: float) -> None:
    """Set ``key`` in the limits' storage for ``seconds`` (a pause, a wait), replacing any."""
    storage.clear(key)
    # Whole seconds: Redis keeps expiries in seconds.
    storage.incr(key, math.ceil(seconds))


def seconds_left(storage: Storage, key: str) -> float:
    """How long ``key`` set by mark_for has still to run; 0.0 when it is not set."""
    if storage.get(key) <= 0:
        return 0.0
    return max(storage.get_expiry(key) - time.time(), 0.0)


@implementer(IPacer)
class LimitsPacer:
    """Paces calls to a vendor: every process sharing the storage (Redis) shares the pace;
    with memory storage, each process keeps its own."""

    def __init__(self, storage_url: str, key_prefix: str = "clientpay"):
        self._storage = cast(
            Storage, storage_from_string(storage_url, key_prefix=key_prefix + "-pace")
        )
        self._windows = MovingWindowRateLimiter(self._storage)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LimitsPacer:
        return cls(
            storage_url(settings), settings.get("clientpay.limits.key_prefix") or "clientpay"
        )

    @classmethod
    def create_service(cls, context: Any, request: Any) -> LimitsPacer:
        pacer: LimitsPacer = request.registry["clientpay.pacer"]
        return pacer

    def wait(self, limit: str, key: str, max_wait: float) -> float:
        window = pace_window(limit)
        deadline = time.monotonic() + max(max_wait, 0.0)
        while True:
            delay = self._paused_for(key)
            if delay <= 0:
                delay = self._take(window, key)
                if delay <= 0:
                    return 0.0
            left = deadline - time.monotonic()
            if delay > left:
                return delay
            time.sleep(min(delay, PACE_POLL_SECONDS))

    def _take(self, window: limits.RateLimitItem | None, key: str) -> float:
        """0.0 with a slot taken, else how long until one may free up."""
        if window is None or self._windows.hit(window, key):
            return 0.0
        reset = self._windows.get_window_stats(window, key).reset_time
        return max(reset - time.time(), 0.01)

    def pause(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            return
        paused = self._pause_key(key)
        if seconds_left(self._storage, paused) >= seconds:
            return
        mark_for(self._storage, paused, seconds)

    def _paused_for(self, key: str) -> float:
        return seconds_left(self._storage, self._pause_key(key))

    @staticmethod
    def _pause_key(key: str) -> str:
        return f"paused/{key}"


@implementer(IPacer)
class NullPacer:
    """Never waits: for vendors (or tests) that need no pace."""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NullPacer:
        return cls()

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullPacer:
        pacer: NullPacer = request.registry["clientpay.pacer"]
        return pacer

    def wait(self, limit: str, key: str, max_wait: float) -> float:
        return 0.0

    def pause(self, key: str, seconds: float) -> None:
        return None


# How long a key's failures are remembered, counted from its first: long enough that a slow,
# patient guesser keeps meeting the longest wait, short enough that yesterday's typos are gone.
BACKOFF_MEMORY_SECONDS = 24 * 3600


def backoff_delay(failures: int, free: int, first: float, longest: float) -> float:
    """The wait after ``failures`` failures: none for the first ``free``, then ``first``
    seconds doubling with each failure, at most ``longest``."""
    beyond = failures - free
    if beyond <= 0:
        return 0.0
    # min() first: 2 ** a large count is a large number, not an overflow, but needless.
    return float(min(first * 2 ** min(beyond - 1, 63), longest))


@implementer(IBackoff)
class LimitsBackoff:
    """A growing wait after repeated failures, kept in the rate limits' storage (Redis when
    set, so that every process applies the same wait)."""

    def __init__(self, storage_url: str, key_prefix: str = "clientpay"):
        self._storage = cast(
            Storage, storage_from_string(storage_url, key_prefix=key_prefix + "-backoff")
        )

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LimitsBackoff:
        return cls(
            storage_url(settings), settings.get("clientpay.limits.key_prefix") or "clientpay"
        )

    @classmethod
    def create_service(cls, context: Any, request: Any) -> LimitsBackoff:
        backoff: LimitsBackoff = request.registry["clientpay.backoff"]
        return backoff

    def wait(self, key: str) -> float:
        return seconds_left(self._storage, self._wait_key(key))

    def failed(self, key: str, free: int, first: float, longest: float) -> float:
        failures = self._storage.incr(self._count_key(key), BACKOFF_MEMORY_SECONDS)
        delay = backoff_delay(failures, free, first, longest)
        if delay > 0:
            mark_for(self._storage, self._wait_key(key), delay)
        return delay

    def clear(self, key: str) -> None:
        self._storage.clear(self._count_key(key))
        self._storage.clear(self._wait_key(key))

    @staticmethod
    def _count_key(key: str) -> str:
        return f"failures/{key}"

    @staticmethod
    def _wait_key(key: str) -> str:
        return f"wait/{key}"


@implementer(IBackoff)
class NullBackoff:
    """Never makes anyone wait: for a host application that throttles in front of us."""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NullBackoff:
        return cls()

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullBackoff:
        backoff: NullBackoff = request.registry["clientpay.backoff"]
        return backoff

    def wait(self, key: str) -> float:
        return 0.0

    def failed(self, key: str, free: int, first: float, longest: float) -> float:
        return 0.0

    def clear(self, key: str) -> None:
        return None
