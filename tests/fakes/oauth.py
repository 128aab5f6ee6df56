"""The authorization server both vendor fakes (MyCase, Clio) mount at their own paths.

OAuth2 authorization code (RFC 6749) with PKCE (RFC 7636, S256 or plain):
- ``authorize``: checks the client and redirect URI, then sends the browser back to the
  redirect URI with ``code`` and the caller's ``state`` (the user always consents);
- ``token``: ``authorization_code`` (a code works once and only for its redirect URI; when
  the authorization carried a ``code_challenge``, the ``code_verifier`` must match it) and
  ``refresh_token`` (a revoked, expired or rotated-away refresh token is ``invalid_grant``);
  the client's credentials come in the body or as HTTP Basic;
- ``revoke``: forgets a token (RFC 7009; unknown tokens are fine).

Access tokens live ``access_ttl`` seconds (short in tests). Tests steer it with
``expire_access_tokens()`` and ``revoke_refresh_tokens()`` and read its counters.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tests.fakes.httpserver import FakeRequest, FakeResponse

CODE_TTL = 600.0


@dataclass
class _Code:
    redirect_uri: str
    challenge: str | None
    challenge_method: str
    expires: float
    used: bool = False


@dataclass
class _Refresh:
    expires: float
    alive: bool = True


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def with_query(url: str, params: Mapping[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def oauth_error(error: str, status: int = 400, description: str = "") -> FakeResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return FakeResponse.json(status, body, {"Cache-Control": "no-store"})


class FakeOAuthProvider:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        access_ttl: float = 3600.0,
        refresh_ttl: float = 14 * 86400.0,
        rotate_refresh_tokens: bool = True,
        token_fields: Mapping[str, Any] | None = None,
        redirect_uris: tuple[str, ...] = (),
        scope: str = "",
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        # Fields the vendor adds to a code exchange's answer (MyCase's firm_uuid).
        self.token_fields = dict(token_fields or {})
        # The granted scopes every token answer names (space-separated); empty: none named.
        self.scope = scope
        # Empty: any redirect URI is registered.
        self.redirect_uris = redirect_uris
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, _Refresh] = {}
        # authorizations, exchanges, refreshes, refused (token requests answered with an error)
        self.counts: Counter[str] = Counter()

    # What tests read and steer.

    @property
    def refreshes(self) -> int:
        return self.counts["refreshes"]

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (the vendor answers 401)."""
        with self._lock:
            for token in self._access:
                self._access[token] = 0.0

    def revoke_refresh_tokens(self) -> None:
        """The grant is gone (revoked by the firm, or unused too long): invalid_grant."""
        with self._lock:
            for refresh in self._refresh.values():
                refresh.alive = False

    def access_token_valid(self, token: str | None) -> bool:
        with self._lock:
            return token is not None and self._access.get(token, 0.0) > time.monotonic()

    # Endpoints.

    def authorize(self, request: FakeRequest) -> FakeResponse:
        redirect_uri = request.arg("redirect_uri") or ""
        if request.arg("client_id") != self.client_id:
            return FakeResponse(400, b"unknown client_id")
        if not redirect_uri or (self.redirect_uris and redirect_uri not in self.redirect_uris):
            # Never redirect to an address the client did not register (RFC 6749 4.1.2.1).
            return FakeResponse(400, b"redirect_uri is not registered")
        back: dict[str, str] = {}
        if request.arg("state") is not None:
            back["state"] = request.arg("state") or ""
        if request.arg("response_type") != "code":
            return FakeResponse.redirect(
                with_query(redirect_uri, {"error": "unsupported_response_type", **back})
            )
        method = request.arg("code_challenge_method") or "plain"
        if method not in ("S256", "plain"):
            return FakeResponse.redirect(
                with_query(redirect_uri, {"error": "invalid_request", **back})
            )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(
                redirect_uri=redirect_uri,
                challenge=request.arg("code_challenge"),
                challenge_method=method,
                expires=time.monotonic() + CODE_TTL,
            )
            self.counts["authorizations"] += 1
        return FakeResponse.redirect(with_query(redirect_uri, {"code": code, **back}))

    def token(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        if not self._client_authenticated(request, form):
            return self._refused("invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return self._refused("unsupported_grant_type")

    def revoke(self, request: FakeRequest) -> FakeResponse:
        form = request.form()
        if not self._client_authenticated(request, form):
            return self._refused("invalid_client", 401)
        token = form.get("token", "")
        with self._lock:
            self._access.pop(token, None)
            refresh = self._refresh.get(token)
            if refresh is not None:
                refresh.alive = False
            self.counts["revocations"] += 1
        return FakeResponse(200)

    # The grants.

    def _exchange(self, form: Mapping[str, str]) -> FakeResponse:
        with self._lock:
            code = self._codes.get(form.get("code", ""))
            if code is None or code.used or code.expires < time.monotonic():
                return self._refused_locked("invalid_grant", "the code is unknown or used")
            # A code is spent by its first use, even a failed one (RFC 6749 10.5).
            code.used = True
            if form.get("redirect_uri") != code.redirect_uri:
                return self._refused_locked("invalid_grant", "redirect_uri differs")
            if not _verifier_matches(code, form.get("code_verifier")):
                return self._refused_locked("invalid_grant", "PKCE verification failed")
            self.counts["exchanges"] += 1
            return self._issue_locked(self.token_fields)

    def _refresh_grant(self, form: Mapping[str, str]) -> FakeResponse:
        with self._lock:
            token = form.get("refresh_token", "")
            refresh = self._refresh.get(token)
            if refresh is None or not refresh.alive or refresh.expires < time.monotonic():
                return self._refused_locked("invalid_grant", "the refresh token is not valid")
            if self.rotate_refresh_tokens:
                refresh.alive = False
            self.counts["refreshes"] += 1
            return self._issue_locked(
                {}, keep_refresh=None if self.rotate_refresh_tokens else token
            )

    def _issue_locked(
        self, fields: Mapping[str, Any], keep_refresh: str | None = None
    ) -> FakeResponse:
        access = secrets.token_urlsafe(24)
        now = time.monotonic()
        self._access[access] = now + self.access_ttl
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            **fields,
        }
        if self.scope:
            body["scope"] = self.scope
        if keep_refresh is None:
            refresh = secrets.token_urlsafe(24)
            # A refresh token's life starts at its issue and is not extended by use.
            self._refresh[refresh] = _Refresh(expires=now + self.refresh_ttl)
            body["refresh_token"] = refresh
        return FakeResponse.json(200, body, {"Cache-Control": "no-store"})

    def _client_authenticated(self, request: FakeRequest, form: Mapping[str, str]) -> bool:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
        return client_id == self.client_id and client_secret == self.client_secret

    def _refused(self, error: str, status: int = 400) -> FakeResponse:
        with self._lock:
            return self._refused_locked(error, status=status)

    def _refused_locked(self, error: str, description: str = "", status: int = 400) -> FakeResponse:
        self.counts["refused"] += 1
        return oauth_error(error, status, description)


def _verifier_matches(code: _Code, verifier: str | None) -> bool:
    if code.challenge is None:
        return True
    if not verifier:
        return False
    expected = s256(verifier) if code.challenge_method == "S256" else verifier
    return secrets.compare_digest(expected, code.challenge)
