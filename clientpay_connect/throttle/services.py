"""Rate limits through the ``limits`` library: in memory, or in Redis across processes."""

from __future__ import annotations

from typing import Any

import limits
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from zope.interface import implementer

from clientpay_connect.throttle.interfaces import IRateLimiter

OFF = ("", "none", "off")


@implementer(IRateLimiter)
class LimitsRateLimiter:
    def __init__(self, storage_url: str, key_prefix: str = "clientpay"):
        # MemoryStorage ignores key_prefix; in Redis it keeps instances sharing a server apart.
        storage = storage_from_string(storage_url, key_prefix=key_prefix)
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> LimitsRateLimiter:
        url = settings.get("clientpay.limits.storage_url") or "memory://"
        redis_url = settings.get("clientpay.redis_url")
        if url == "memory://" and redis_url:
            url = redis_url
        return cls(url, settings.get("clientpay.limits.key_prefix") or "clientpay")

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
