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

from clientpay_connect.throttle.interfaces import IPacer, IRateLimiter

OFF = ("", "none", "off")


def storage_url(settings: dict[str, Any]) -> str:
    """Where counters live: the configured storage, else Redis when the app has one (so
    that every process shares them), else this process's memory."""
    url = settings.get("clientpay.limits.storage_url") or "memory://"
    redis_url = settings.get("clientpay.redis_url")
    if url == "memory://" and redis_url:
        url = redis_url
    return str(url)


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
        return bool(self._limiter.hit(limits.parse(limit), *keys))

    def allowed(self, limit: str, *keys: str) -> bool:
        if limit.strip().lower() in OFF:
            return True
        return bool(self._limiter.test(limits.parse(limit), *keys))

    def clear(self, limit: str, *keys: str) -> None:
        if limit.strip().lower() in OFF:
            return
        self._limiter.clear(limits.parse(limit), *keys)


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


# A window over more than a few seconds is also cut in this many parts, each allowed its
# share: the calls spread over the window instead of being spent at its start.
PACE_SPREAD = 10


@lru_cache(maxsize=64)
def pace_windows(limit: str) -> tuple[limits.RateLimitItem, ...]:
    """The moving windows that pace calls to a vendor allowing ``limit``: the limit less the
    headroom and, for a window longer than a second, a tenth of that per tenth of it."""
    if limit.strip().lower() in OFF:
        return ()
    item = limits.parse(limit)
    period = item.get_expiry()
    kept = max(1, math.floor(item.amount * (1 - PACE_HEADROOM)))
    windows = [limits.RateLimitItemPerSecond(kept, period)]
    if period >= PACE_SPREAD:
        share = max(1, math.ceil(kept / PACE_SPREAD))
        windows.append(limits.RateLimitItemPerSecond(share, period // PACE_SPREAD))
    return tuple(windows)


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
        windows = pace_windows(limit)
        deadline = time.monotonic() + max(max_wait, 0.0)
        while True:
            delay = self._paused_for(key)
            if delay <= 0:
                delay = self._take(windows, key)
                if delay <= 0:
                    return 0.0
            left = deadline - time.monotonic()
            if delay > left:
                return delay
            time.sleep(min(delay, PACE_POLL_SECONDS))

    def _take(self, windows: tuple[limits.RateLimitItem, ...], key: str) -> float:
        """0.0 with a slot taken in every window, else how long until one may free up."""
        full = [w for w in windows if not self._windows.test(w, key)]
        if not full:
            # Another process may fill a window between the test and the hit: then the slot
            # taken in an earlier window is lost, which only slows us a little.
            if all(self._windows.hit(w, key) for w in windows):
                return 0.0
            full = list(windows)
        resets = [self._windows.get_window_stats(w, key).reset_time for w in full]
        return max(min(resets) - time.time(), 0.01)

    def pause(self, key: str, seconds: float) -> None:
        if seconds <= 0:
            return
        paused = self._pause_key(key)
        if self._paused_for(key) >= seconds:
            return
        self._storage.clear(paused)
        # Whole seconds: Redis keeps expiries in seconds.
        self._storage.incr(paused, math.ceil(seconds))

    def _paused_for(self, key: str) -> float:
        paused = self._pause_key(key)
        if self._storage.get(paused) <= 0:
            return 0.0
        return max(self._storage.get_expiry(paused) - time.time(), 0.0)

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
