"""The base of matter systems reached over OAuth2 REST APIs (MyCase, Clio).

A subclass names its vendor and its OAuth paths; the base reads the vendor's hosts and client
credentials from the app's settings (``clientpay.<vendor>.api_url``, ``.auth_url``,
``.client_id``, ``.client_secret``, ``.max_rate_wait``), so a test server stands in for the
vendor by settings alone. The OAuth dance goes through requests-oauthlib's ``OAuth2Session``;
API calls go through one ``_request`` that

- takes the access token from the connection's ``TokenSource`` and, on a 401, asks it once for
  a refreshed token (the source refreshes at most once however many callers saw the 401);
- always passes a timeout (``clientpay.http_timeout``);
- waits for the connection's pace (``AdapterConfig.pace``: ``clientpay.<vendor>.rate_limit``,
  shared by every worker) before each call, and pauses it for everyone on a 429's
  ``Retry-After`` or an ``X-RateLimit-Remaining: 0`` until ``X-RateLimit-Reset``;
- on a 429 waits ``Retry-After`` and tries again while the total wait stays within
  ``max_rate_wait`` seconds, then raises ``RateLimited`` (0: raise at once, for a job that
  would rather be rescheduled than hold a worker);
- maps timeouts, dropped connections and 5xx to ``Transient``, other refusals to ``Permanent``,
  and never hands back an answer whose status it did not check.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2 import InvalidGrantError, OAuth2Error
from requests_oauthlib import OAuth2Session

from clientpay_connect.connect.interfaces import (
    AdapterConfig,
    AdapterError,
    Permanent,
    RateLimited,
    ReauthorizationRequired,
    RequestPace,
    TokenSet,
    TokenSource,
    Transient,
)

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_RATE_WAIT = 10.0
# A 429 without a usable Retry-After still means "not now".
DEFAULT_RETRY_AFTER = 1.0
# What every OAuth2 token answer has; anything else the provider sends goes to TokenSet.extra.
STANDARD_TOKEN_FIELDS = frozenset(
    {"access_token", "refresh_token", "token_type", "expires_in", "expires_at"}
)
# requests' failures that say nothing about the call itself: it may succeed later.
TRANSIENT_FAILURES = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

T = TypeVar("T")


def retry_after_seconds(response: requests.Response) -> float:
    """``Retry-After`` as seconds from now: a number of seconds or an HTTP date."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return DEFAULT_RETRY_AFTER
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - dt.datetime.now(dt.UTC)).total_seconds()
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER
    return max(seconds, 0.0)


# An X-RateLimit-Reset above this is a moment (epoch seconds), below it a number of seconds.
EPOCH_THRESHOLD = 1_000_000_000


def rate_reset_seconds(response: requests.Response) -> float:
    """``X-RateLimit-Reset`` as seconds from now (vendors send epoch seconds or a delay)."""
    try:
        value = float(response.headers.get("X-RateLimit-Reset", ""))
    except ValueError:
        return DEFAULT_RETRY_AFTER
    if not math.isfinite(value):
        return DEFAULT_RETRY_AFTER
    if value > EPOCH_THRESHOLD:
        value -= time.time()
    return max(value, 0.0)


def vendor_message(response: requests.Response) -> str:
    """The vendor's own words about a refusal, for staff: MyCase's ``errors[].description``,
    Clio's ``error.message``, an OAuth ``error_description``; else the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            parts = [str(e.get("description")) for e in errors if isinstance(e, dict)]
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
        elif isinstance(error, str):
            parts.append(str(body.get("error_description") or error))
    detail = "; ".join(p for p in parts if p and p != "None")
    return detail or f"HTTP {response.status_code} {response.reason or ''}".strip()


def token_set(token: Mapping[str, Any], previous_refresh_token: str | None = None) -> TokenSet:
    """requests-oauthlib's token dict as a TokenSet (``expires_at`` is epoch seconds there)."""
    expires_at = token.get("expires_at")
    return TokenSet(
        access_token=str(token["access_token"]),
        # A provider that does not rotate refresh tokens (Clio) sends none on refresh.
        refresh_token=token.get("refresh_token") or previous_refresh_token,
        expires_at=(dt.datetime.fromtimestamp(float(expires_at), dt.UTC) if expires_at else None),
        extra={k: v for k, v in token.items() if k not in STANDARD_TOKEN_FIELDS},
    )


def _raise_for_token_status(response: requests.Response) -> requests.Response:
    """A compliance hook: oauthlib reads only the body, so the status is checked here."""
    if response.status_code == 429:
        raise RateLimited(retry_after_seconds(response))
    if response.status_code >= 500:
        raise Transient(f"The authorization server failed: {vendor_message(response)}")
    return response


class OAuthRestAdapter:
    """Shared by the OAuth2 REST adapters; a subclass sets the class attributes below."""

    vendor: ClassVar[str]  # settings prefix: clientpay.<vendor>.*
    default_api_url: ClassVar[str]
    default_auth_url: ClassVar[str]
    authorize_path: ClassVar[str]
    token_path: ClassVar[str]
    revoke_path: ClassVar[str | None] = None
    scope: ClassVar[tuple[str, ...]] = ()
    # PKCE S256 on the authorization request and the code exchange. A provider that does not
    # know PKCE ignores the extra parameters, as OAuth2 asks of it.
    pkce: ClassVar[bool] = True
    # Client id and secret in the token request's body (else HTTP Basic).
    client_auth_in_body: ClassVar[bool] = True

    def __init__(self, config: AdapterConfig, *, max_rate_wait: float | None = None):
        self.config = config
        self.client_id = str(self._setting("client_id", ""))
        self.client_secret = str(self._setting("client_secret", ""))
        self.timeout = float(config.app_settings.get("clientpay.http_timeout") or DEFAULT_TIMEOUT)
        if max_rate_wait is None:
            max_rate_wait = float(self._setting("max_rate_wait", DEFAULT_MAX_RATE_WAIT))
        # Seconds a call may spend waiting out 429s in total; 0: RateLimited at once.
        self.max_rate_wait = max_rate_wait
        self._http = requests.Session()

    # Settings and addresses.

    def _setting(self, name: str, default: Any) -> Any:
        value = self.config.app_settings.get(f"clientpay.{self.vendor}.{name}")
        return default if value in (None, "") else value

    def api_base(self) -> str:
        """The API's base URL; a vendor with regional hosts overrides it per connection."""
        return str(self._setting("api_url", self.default_api_url)).rstrip("/")

    def auth_base(self) -> str:
        return str(self._setting("auth_url", self.default_auth_url)).rstrip("/")

    def token_url(self) -> str:
        return self.auth_base() + self.token_path

    def default_headers(self) -> dict[str, str]:
        """Headers every API call carries (Clio adds its X-API-VERSION)."""
        return {"Accept": "application/json"}

    # OAuth2.

    def _oauth_session(self, state: str | None = None) -> OAuth2Session:
        session = OAuth2Session(
            self.client_id,
            redirect_uri=self.config.redirect_uri or None,
            scope=list(self.scope) or None,
            state=state,
        )
        session.register_compliance_hook("access_token_response", _raise_for_token_status)
        session.register_compliance_hook("refresh_token_response", _raise_for_token_status)
        return session

    def authorize_url(self, state: str, code_challenge: str) -> str:
        pkce = {"code_challenge": code_challenge, "code_challenge_method": "S256"}
        with self._oauth_session(state) as session:
            url, _state = session.authorization_url(
                self.auth_base() + self.authorize_path, **(pkce if self.pkce else {})
            )
        return str(url)

    def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """The tokens for an authorization code. A code that is refused (used, expired, its
        PKCE verifier wrong) raises Permanent: the admin starts the connection again."""
        extra: dict[str, Any] = {"code_verifier": code_verifier} if self.pkce else {}
        with self._oauth_session() as session:
            token = self._token_call(
                lambda: session.fetch_token(
                    self.token_url(),
                    code=code,
                    client_secret=self.client_secret,
                    include_client_id=self.client_auth_in_body,
                    timeout=self.timeout,
                    **extra,
                ),
                refused=Permanent,
            )
        return token_set(token)

    def refresh(self, refresh_token: str) -> TokenSet:
        credentials = {"client_id": self.client_id, "client_secret": self.client_secret}
        auth = None
        if not self.client_auth_in_body:
            auth = requests.auth.HTTPBasicAuth(self.client_id, self.client_secret)
            credentials = {}
        with self._oauth_session() as session:
            token = self._token_call(
                lambda: session.refresh_token(
                    self.token_url(),
                    refresh_token=refresh_token,
                    auth=auth,
                    timeout=self.timeout,
                    **credentials,
                ),
                refused=ReauthorizationRequired,
            )
        return token_set(token, previous_refresh_token=refresh_token)

    def revoke(self, tokens: TokenSet) -> None:
        """Revoke at the vendor when it has a revocation endpoint (else the tokens simply
        expire). A dead token is not an error; only an unreachable vendor raises Transient."""
        if self.revoke_path is None:
            return
        try:
            response = self._http.post(
                self.auth_base() + self.revoke_path,
                data={"token": tokens.refresh_token or tokens.access_token},
                auth=(self.client_id, self.client_secret),
                timeout=self.timeout,
            )
        except TRANSIENT_FAILURES as exc:
            raise Transient("The matter system could not be reached to revoke access") from exc
        if response.status_code >= 500:
            raise Transient(f"Revoking access failed: {vendor_message(response)}")

    def _token_call(self, call: Callable[[], T], refused: type[AdapterError]) -> T:
        try:
            return call()
        except InvalidGrantError as exc:
            raise refused(f"The matter system refused the grant: {exc.description}") from exc
        except OAuth2Error as exc:
            raise Permanent(f"The matter system refused the authorization: {exc}") from exc
        except TRANSIENT_FAILURES as exc:
            raise Transient("The matter system's authorization server did not answer") from exc

    # API calls.

    def _tokens(self) -> TokenSource:
        if self.config.tokens is None:
            raise ReauthorizationRequired("This connection has no tokens: connect it first")
        return self.config.tokens

    def _url(self, path: str) -> str:
        """An API path, or an absolute URL the API handed out (a next-page link). The bearer
        token goes nowhere but the API's own host."""
        base = self.api_base()
        if "://" not in path:
            return f"{base}/{path.lstrip('/')}"
        given, ours = urlsplit(path), urlsplit(base)
        if (given.scheme, given.netloc) != (ours.scheme, ours.netloc):
            raise Permanent(f"The matter system pointed to another host: {given.netloc}")
        return path

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        max_rate_wait: float | None = None,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """One API call, answered 2xx (or a status in ``accept``, for the caller to read);
        every other outcome raises one of the interface's errors."""
        url = self._url(path)
        tokens = self._tokens()
        budget = self.max_rate_wait if max_rate_wait is None else max_rate_wait
        waited = 0.0
        access_token = tokens.access_token()
        refreshed = False
        pace = self.config.pace
        while True:
            if pace is not None:
                waited += self._wait_for_pace(pace, budget - waited)
            response = self._send(method, url, access_token, params, json)
            if pace is not None:
                self._learn_pace(pace, response)
            if response.status_code == 401 and not refreshed:
                refreshed = True
                access_token = tokens.refreshed(access_token)
                continue
            if response.status_code == 429:
                delay = retry_after_seconds(response)
                if waited + delay > budget:
                    raise RateLimited(delay)
                if pace is None:
                    time.sleep(delay)
                    waited += delay
                # Else the pace, paused by _learn_pace, holds this call (and every other
                # worker's call to this connection) until then.
                continue
            return self._checked(response, accept)

    @staticmethod
    def _wait_for_pace(pace: RequestPace, budget: float) -> float:
        """Wait for the connection's next slot; the seconds waited. RateLimited when the
        wait would be longer than ``budget``."""
        started = time.monotonic()
        still = pace.wait(max(budget, 0.0))
        if still > 0:
            raise RateLimited(still)
        return time.monotonic() - started

    @staticmethod
    def _learn_pace(pace: RequestPace, response: requests.Response) -> None:
        """What the vendor says of its limit holds for every worker: a 429's Retry-After,
        and an allowance used up (``X-RateLimit-Remaining: 0``) until its reset."""
        if response.status_code == 429:
            pace.pause(retry_after_seconds(response))
            return
        if response.headers.get("X-RateLimit-Remaining", "").strip() == "0":
            pace.pause(rate_reset_seconds(response))

    def _send(
        self,
        method: str,
        url: str,
        access_token: str,
        params: Mapping[str, Any] | None,
        json: Any,
    ) -> requests.Response:
        headers = {**self.default_headers(), "Authorization": f"Bearer {access_token}"}
        try:
            return self._http.request(
                method, url, params=params, json=json, headers=headers, timeout=self.timeout
            )
        except TRANSIENT_FAILURES as exc:
            raise Transient(f"The matter system did not answer ({type(exc).__name__})") from exc
        except requests.RequestException as exc:
            raise Permanent(f"The call to the matter system could not be made: {exc}") from exc

    @staticmethod
    def _checked(response: requests.Response, accept: Collection[int]) -> requests.Response:
        status = response.status_code
        if 200 <= status < 300 or status in accept:
            return response
        message = vendor_message(response)
        if status == 401:
            # Refreshed once already and still refused: the grant itself is gone.
            raise ReauthorizationRequired(f"The matter system refused our access: {message}")
        if status >= 500:
            raise Transient(f"The matter system failed: {message}")
        raise Permanent(f"The matter system refused the call: {message}")

    @staticmethod
    def _json(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            # A proxy's error page or a cut body: the same call may well work next time.
            raise Transient("The matter system's answer was not JSON") from exc

    def close(self) -> None:
        self._http.close()
