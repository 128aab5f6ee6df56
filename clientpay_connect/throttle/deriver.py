"""The ``rate_limit`` view option: a view's rate limit counted before its request is validated.

A refused request must cost as little as possible: ``rate_limit=check`` runs ``check(request)``
(which raises to refuse) ahead of the OpenAPI validation of the body, so that a flood of large
bodies is turned away by the limiter rather than parsed and validated one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyramid.request import Request

from clientpay_connect.api.errors import ApiError
from clientpay_connect.throttle.interfaces import IRateLimiter


def throttle(request: Request, setting: str, *keys: str) -> None:
    """Count one attempt against the limit named by ``setting`` for every key; 429 if over."""
    limiter = request.find_service(IRateLimiter)
    limit = request.registry.settings[setting]
    # Every key counts the attempt, even when an earlier one already refuses it.
    allowed = [limiter.hit(limit, key) for key in keys]
    if not all(allowed):
        raise ApiError(
            429, "rate_limited", "Too many attempts. Please wait a minute and try again."
        )


def rate_limited_view(view: Callable[..., Any], info: Any) -> Callable[..., Any]:
    check = info.options.get("rate_limit")
    if check is None:
        return view

    def limited_view(context: Any, request: Request) -> Any:
        check(request)
        return view(context, request)

    return limited_view


rate_limited_view.options = ("rate_limit",)  # type: ignore[attr-defined]
