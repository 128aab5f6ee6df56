"""Settings: ini values with defaults, each overridable by a CLIENTPAY_* environment variable.

The environment name of a setting is derived from its key: drop a leading ``clientpay.``,
turn dots into underscores, upper-case, prefix ``CLIENTPAY_``. So ``clientpay.public_url``
is ``CLIENTPAY_PUBLIC_URL`` and ``clientpay.sandbox.delay_ms`` is
``CLIENTPAY_SANDBOX_DELAY_MS``. A few keys that belong to other libraries have a shorter
name (``sqlalchemy.url`` is ``CLIENTPAY_DATABASE_URL``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlsplit

# Every setting the application reads, with its default. The README's table is made from this.
DEFAULTS: dict[str, str] = {
    "sqlalchemy.url": "sqlite:///var/clientpay.sqlite",
    "clientpay.secret": "",
    "clientpay.encryption_keys": "",
    "clientpay.secrets_file": "var/secrets.json",
    "clientpay.public_url": "",
    "clientpay.redis_url": "",
    "clientpay.jobs.sqlite_path": "var/jobs.sqlite",
    "clientpay.jobs.immediate": "false",
    "clientpay.jobs.name": "clientpay",
    "clientpay.jobs.workers": "2",
    # The longest an idle worker sleeps between looks at the SQLite queue (Redis wakes it):
    # a look costs tens of microseconds, and a person waits on the job it finds (a large
    # upload's links began on average half this late).
    "clientpay.jobs.max_poll_seconds": "0.25",
    "clientpay.cookie_secure": "true",
    "clientpay.cookie_samesite": "Lax",
    # A session unused this long ends (seconds)...
    "clientpay.session_max_age": "28800",
    # ...and any session ends this long after its sign-in, however busy (seconds).
    "clientpay.session_lifetime": "43200",
    "clientpay.frame_ancestors": "",
    "clientpay.limits.storage_url": "memory://",
    "clientpay.limits.key_prefix": "clientpay",
    "clientpay.limits.backoff": "clientpay_connect.throttle.services.LimitsBackoff",
    # Wrong passwords for one address from one IP before each further one makes it wait...
    "clientpay.limits.login_free_failures": "5",
    # ...this many seconds, doubling with every failure, up to the longest wait.
    "clientpay.limits.login_delay_seconds": "2",
    "clientpay.limits.login_longest_delay_seconds": "900",
    "clientpay.limits.login_failures_per_ip": "20/15minutes",
    "clientpay.limits.password_resets_per_account": "3/hour",
    "clientpay.limits.password_resets_per_ip": "10/hour",
    "clientpay.limits.pay_attempts": "10/minute",
    "clientpay.limits.token_lookups": "60/minute",
    "clientpay.limits.sandbox_tokens": "30/minute",
    "clientpay.limits.json_body_bytes": "65536",
    "clientpay.limits.upload_body_bytes": "34603008",
    "clientpay.limits.pacer": "clientpay_connect.throttle.services.LimitsPacer",
    "clientpay.serve.trusted_proxy": "",
    "clientpay.serve.trusted_proxy_count": "1",
    "clientpay.serve.trusted_proxy_headers": "x-forwarded-for x-forwarded-proto x-forwarded-host",
    "clientpay.openapi.validate_responses": "false",
    # No default: an instance names its processor, and only one for development may name the
    # sandbox (pay/__init__.py refuses to start otherwise).
    "clientpay.processor": "",
    # Those a merchant account may choose (pay/processors.py): the sandbox only on an instance
    # for development; with clientpay.processor, the default for new accounts.
    "clientpay.processors": (
        "clientpay_connect.pay.stripe_processor.StripeProcessor "
        "clientpay_connect.pay.processor.SandboxProcessor"
    ),
    "clientpay.development": "false",
    # Empty: Stripe's own API. A test server (localstripe) in the tests.
    "clientpay.stripe.api_base": "",
    # Where the payer's browser loads Stripe.js from: Stripe's own (Stripe requires it), or,
    # in the tests, localstripe's stand-in. The payment page's CSP follows it.
    "clientpay.stripe.js_url": "https://js.stripe.com/v3/",
    "clientpay.stripe.max_network_retries": "2",
    "clientpay.sandbox.delay_ms": "0",
    "clientpay.pay.processing_timeout_seconds": "300",
    "clientpay.pay.page_cache": "clientpay_connect.pay.page_cache.PageCache",
    "clientpay.pay.page_cache_size": "1000",
    # How often the payers' opens of their links are written, in one batch (pay/opens.py).
    "clientpay.pay.opens_flush_seconds": "2",
    "clientpay.mail.delivery": "clientpay_connect.mail.services.FileMailDelivery",
    "clientpay.mail.maildir": "var/mail",
    # The demo matter database `clientpay demo` creates (a SQLite file); empty: none.
    "clientpay.demo.matter_db": "var/demo-matters.sqlite",
    "clientpay.mail.sender": "payments@clientpay.test",
    "clientpay.mail.reply_to": "",
    "clientpay.mail.timeout": "10",
    "clientpay.mail.retry_base_seconds": "30",
    "clientpay.mail.retry_cap_seconds": "3600",
    "clientpay.mail.max_attempts": "8",
    "clientpay.mail.lease_seconds": "300",
    "clientpay.mail.sweep_grace_seconds": "60",
    "mail.host": "localhost",
    "mail.port": "25",
    "mail.username": "",
    "mail.password": "",
    "mail.tls": "false",
    "mail.ssl": "false",
    "clientpay.captcha.verifier": "clientpay_connect.pay.captcha.GoogleCaptchaVerifier",
    "clientpay.captcha.verify_url": "https://www.google.com/recaptcha/api/siteverify",
    "clientpay.http_timeout": "10",
    "clientpay.mycase.api_url": "https://external-integrations.mycase.com/v1",
    "clientpay.mycase.auth_url": "https://auth.mycase.com",
    "clientpay.mycase.client_id": "",
    "clientpay.mycase.client_secret": "",
    "clientpay.mycase.page_size": "1000",
    # Searches read only MyCase's changes; the whole book again after this many seconds.
    "clientpay.mycase.full_read_seconds": "300",
    "clientpay.mycase.max_rate_wait": "10",
    # MyCase's documented limit; every worker shares the pace (through Redis when set).
    "clientpay.mycase.rate_limit": "25/second",
    # Clio: {host} is the connection's region's host (app.clio.com, eu.app.clio.com, …) and
    # {region} its code (us, eu, ca, au), so a test server can stand in for every region.
    "clientpay.clio.api_url": "https://{host}/api/v4",
    "clientpay.clio.auth_url": "https://{host}",
    "clientpay.clio.client_id": "",
    "clientpay.clio.client_secret": "",
    "clientpay.clio.api_version": "4.0.9",
    "clientpay.clio.page_size": "200",
    "clientpay.clio.max_rate_wait": "10",
    # None: Clio's answers carry X-RateLimit-Remaining/-Reset, which the pace follows.
    "clientpay.clio.rate_limit": "",
    "clientpay.bulk.inline_rows": "2000",
    "clientpay.bulk.stuck_after_seconds": "600",
    "clientpay.bulk.links_beside_from": "20000",
    "clientpay.postings.max_attempts": "8",
    "clientpay.postings.backoff_base_seconds": "30",
    "clientpay.postings.backoff_cap_seconds": "3600",
    "clientpay.postings.lease_seconds": "300",
    "clientpay.postings.sweep_seconds": "60",
    "clientpay.postings.sweep_grace_seconds": "120",
}

SHORT_ENV_NAMES: dict[str, str] = {
    "sqlalchemy.url": "CLIENTPAY_DATABASE_URL",
}

# Settings whose value is a file or folder; a relative value is taken from the ini's folder.
PATH_SETTINGS = (
    "clientpay.jobs.sqlite_path",
    "clientpay.mail.maildir",
    "clientpay.secrets_file",
    "clientpay.demo.matter_db",
)


def env_name(key: str) -> str:
    """The environment variable that overrides setting ``key``."""
    if key in SHORT_ENV_NAMES:
        return SHORT_ENV_NAMES[key]
    bare = key.removeprefix("clientpay.")
    return "CLIENTPAY_" + bare.replace(".", "_").upper()


def resolve_settings(
    settings: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    here: str | None = None,
) -> dict[str, Any]:
    """Defaults, then the ini's values, then the environment's; relative paths made absolute."""
    environ = os.environ if environ is None else environ
    resolved: dict[str, Any] = dict(DEFAULTS)
    resolved.update(settings)
    for key in list(resolved):
        name = env_name(key)
        if name in environ:
            resolved[key] = environ[name]
    base = here or settings.get("here") or os.getcwd()
    _anchor_paths(resolved, base)
    return resolved


def _anchor_paths(settings: MutableMapping[str, Any], base: str) -> None:
    for key in PATH_SETTINGS:
        value = settings.get(key)
        if value and not os.path.isabs(value):
            settings[key] = os.path.join(base, value)
    url = settings["sqlalchemy.url"]
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        settings["sqlalchemy.url"] = prefix + os.path.join(base, url[len(prefix) :])


def as_bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


# --- Settings a browser would reject -------------------------------------------------------


class UnsafeSettings(RuntimeError):
    """Start-up stops: a combination of settings that browsers reject. Started anyway, it
    would fail on every request (or sign nobody in) instead of once, here, with a reason."""


SAMESITE_VALUES = ("Strict", "Lax", "None")
# What frame-ancestors may list: 'self' and origins (a scheme, a host or a *. wildcard of
# one, a port). Nothing else: a bare scheme ("https:") would let every site frame the panel,
# and a ";" would smuggle other directives into the policy.
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
FRAME_ANCESTOR = re.compile(rf"'self'|https?://(\*\.)?{_LABEL}(\.{_LABEL})*(:(\d{{1,5}}|\*))?/?")


def named(key: str) -> str:
    """A setting as a message names it: the ini key and its environment variable."""
    return f"{key} ({env_name(key)})"


def frame_ancestors(settings: Mapping[str, Any]) -> list[str]:
    return str(settings.get("clientpay.frame_ancestors", "") or "").split()


def embedding_configured(settings: Mapping[str, Any]) -> bool:
    """Whether another site may frame the panel: frame-ancestors lists more than 'self'."""
    return any(source != "'self'" for source in frame_ancestors(settings))


def is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_browser_settings(settings: Mapping[str, Any]) -> None:
    """Refuse the cookie and framing settings that a browser would reject."""
    problems = _cookie_problems(settings) + _embedding_problems(settings)
    if problems:
        raise UnsafeSettings("refusing to start: " + " ".join(problems))


def _cookie_problems(settings: Mapping[str, Any]) -> list[str]:
    # Any case, as WebOb (which writes the cookie) takes it; nothing around it.
    samesite = str(settings.get("clientpay.cookie_samesite", "")).capitalize()
    if samesite not in SAMESITE_VALUES:
        return [
            f"{named('clientpay.cookie_samesite')} must be one of {', '.join(SAMESITE_VALUES)}."
        ]
    if samesite == "None" and not as_bool(settings.get("clientpay.cookie_secure")):
        return [
            f"{named('clientpay.cookie_samesite')} = None needs "
            f"{named('clientpay.cookie_secure')} = true: browsers drop a SameSite=None cookie "
            "that is not Secure."
        ]
    return []


def _embedding_problems(settings: Mapping[str, Any]) -> list[str]:
    unusable = [s for s in frame_ancestors(settings) if not FRAME_ANCESTOR.fullmatch(s)]
    if unusable:
        return [
            f"{named('clientpay.frame_ancestors')} takes 'self' and origins such as "
            f"https://app.matters.example, separated by spaces; not {' '.join(unusable)}."
        ]
    if not embedding_configured(settings):
        return []
    problems = []
    if not as_bool(settings.get("clientpay.cookie_secure")):
        problems.append(
            f"{named('clientpay.frame_ancestors')} lets another site frame the panel, whose "
            "session cookie must then be SameSite=None; Secure; Partitioned: set "
            f"{named('clientpay.cookie_secure')} = true."
        )
    public_url = str(settings.get("clientpay.public_url", "") or "")
    if urlsplit(public_url).scheme != "https" and not is_loopback_url(public_url):
        problems.append(
            f"{named('clientpay.frame_ancestors')} lets another site frame the panel, which "
            f"needs {named('clientpay.public_url')} to be the https:// address it is served "
            f"from (browsers keep Secure cookies only from https; plain http only on loopback, "
            f"for development), not {public_url or 'empty'!r}."
        )
    return problems
