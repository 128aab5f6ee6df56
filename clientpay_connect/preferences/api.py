"""GET and PUT /api/v1/me/preferences: always the requesting user's own, never by id, so
that no request can name another user's (of this firm or another)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.accounts.models import User
from clientpay_connect.api.json_body import read_json_body
from clientpay_connect.preferences.services import (
    preferences_json,
    preferences_of,
    save_preferences,
)
from clientpay_connect.security import STAFF


def _user(request: Request) -> User:
    # STAFF is granted only to a signed-in user or a valid token's user (security.py).
    user: User = request.user
    return user


@view_config(
    route_name="api.me.preferences",
    request_method="GET",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def get_preferences(request: Request) -> dict[str, Any]:
    return preferences_json(preferences_of(_user(request)))


@view_config(
    route_name="api.me.preferences",
    request_method="PUT",
    renderer="json",
    permission=STAFF,
    openapi=True,
)
def put_preferences(request: Request) -> dict[str, Any]:
    # The body as sent, not openapi-core's unmarshalled copy, whose dates are date objects;
    # the validation (openapi=True) has already passed it whole.
    changes: dict[str, Any] = read_json_body(request)
    return preferences_json(save_preferences(_user(request), changes))
