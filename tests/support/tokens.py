"""A thread-safe, in-memory TokenSource for adapter tests.

It keeps one connection's TokenSet and refreshes it through the adapter's ``refresh`` under a
lock: a token that is about to expire, or that a caller reports stale after a 401, is
refreshed exactly once however many threads ask at that moment. The application's own source
(database-backed, locked across processes) lives in ``clientpay_connect.connect``.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from clientpay_connect.connect.interfaces import ReauthorizationRequired, TokenSet
from tests.fakes.oauth import s256

Refresh = Callable[[str], TokenSet]


class MemoryTokenSource:
    def __init__(
        self,
        tokens: TokenSet,
        refresh: Refresh | None = None,
        *,
        leeway: dt.timedelta = dt.timedelta(seconds=30),
    ):
        self._tokens = tokens
        self._refresh = refresh
        self._leeway = leeway
        self._lock = threading.Lock()
        # How many refreshes this source made (the fake server counts its own too).
        self.refreshes = 0

    def refresh_with(self, refresh: Refresh) -> MemoryTokenSource:
        """Set how tokens are refreshed: usually the adapter's own ``refresh``, which can only
        exist once the adapter was built with this source."""
        self._refresh = refresh
        return self

    @property
    def tokens(self) -> TokenSet:
        with self._lock:
            return self._tokens

    def access_token(self) -> str:
        with self._lock:
            if self._expiring():
                self._refresh_locked()
            return self._tokens.access_token

    def refreshed(self, stale_access_token: str) -> str:
        with self._lock:
            # Another thread that saw the same 401 first has already replaced it.
            if self._tokens.access_token == stale_access_token:
                self._refresh_locked()
            return self._tokens.access_token

    def _expiring(self) -> bool:
        expires_at = self._tokens.expires_at
        return expires_at is not None and expires_at - self._leeway <= dt.datetime.now(dt.UTC)

    def _refresh_locked(self) -> None:
        if self._refresh is None:
            raise RuntimeError(
                "MemoryTokenSource has no refresh: call refresh_with(adapter.refresh)"
            )
        refresh_token = self._tokens.refresh_token
        if refresh_token is None:
            raise ReauthorizationRequired("No refresh token: connect again")
        fresh = self._refresh(refresh_token)
        # What only the first answer carries (MyCase's firm_uuid) outlives the refresh.
        self._tokens = TokenSet(
            access_token=fresh.access_token,
            refresh_token=fresh.refresh_token,
            expires_at=fresh.expires_at,
            extra={**self._tokens.extra, **fresh.extra},
        )
        self.refreshes += 1


@dataclass(frozen=True)
class Authorization:
    """One pass through an OAuth adapter's authorization: what the browser was sent to, where
    the provider sent it back, and the code and verifier to exchange."""

    url: str
    redirected_to: str
    code: str
    state: str
    code_verifier: str


def authorize(adapter: Any, state: str = "state-from-the-session") -> Authorization:
    """Play the admin's browser against a fake provider: open the adapter's authorization URL
    (the fake consents at once) and read the code from the redirect, without exchanging it."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorize_url(state, s256(verifier))
    answer = requests.get(url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    return Authorization(url, location, query["code"][0], query["state"][0], verifier)


def connect(adapter: Any) -> TokenSet:
    """Authorize and exchange the code: the tokens of a freshly connected connection."""
    authorization = authorize(adapter)
    tokens: TokenSet = adapter.exchange_code(authorization.code, authorization.code_verifier)
    return tokens
