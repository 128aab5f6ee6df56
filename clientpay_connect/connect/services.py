"""Connections: which adapters exist, building one for a connection, and its OAuth grant.

A connection's grant is refreshed once however many requests, workers or processes need it
at that moment: the refresher takes the connection's row lock (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write lock, ``BEGIN IMMEDIATE``, which holds across processes too) in a
short transaction of its own, and a waiter that gets the lock after it finds the new token
and uses it instead of refreshing again.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import Any

from pyramid.registry import Registry
from sqlalchemy import select
from sqlalchemy.orm import Session
from zope.interface import implementer

from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.connect.interfaces import (
    ENTRY_POINT_GROUP,
    AdapterConfig,
    AdapterError,
    Capabilities,
    ConnectionRefused,
    IAdapterCatalog,
    IOAuthMatterAdapter,
    ReauthorizationRequired,
    TokenSet,
)
from clientpay_connect.connect.models import (
    CONNECTION_CONNECTED,
    CONNECTION_DISCONNECTED,
    CONNECTION_NEEDS_REAUTHORIZATION,
    CONNECTION_PENDING,
    Connection,
)
from clientpay_connect.connect.notices import queue_reauthorization_notice
from clientpay_connect.crypto import Encryptor, new_token, sha256_hex
from clientpay_connect.db import sqlite_may_write, utcnow
from clientpay_connect.throttle.interfaces import IPacer
from clientpay_connect.work import Work

log = logging.getLogger(__name__)

# A token this close to its expiry is refreshed before use: a request must not start with a
# token that dies on its way.
REFRESH_MARGIN = dt.timedelta(seconds=60)
# Settings that are secrets whatever the adapter says: kept encrypted, never shown again.
ALWAYS_SECRET = frozenset({"url", "password", "client_secret", "api_key", "secret"})
NOTICE_EVENT = "connection_needs_reauthorization"


# The catalog of adapters.


@implementer(IAdapterCatalog)
class EntryPointAdapterCatalog:
    """The adapters installed in this Python environment, under the entry-point group
    ``clientpay_connect.adapters`` (ours and any third party's)."""

    def __init__(self, group: str = ENTRY_POINT_GROUP):
        self.group = group
        self._loaded: dict[str, type] = {}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> EntryPointAdapterCatalog:
        return cls()

    @classmethod
    def create_service(cls, context: Any, request: Any) -> EntryPointAdapterCatalog:
        catalog: EntryPointAdapterCatalog = request.registry["clientpay.connect.catalog"]
        return catalog

    def names(self) -> list[str]:
        # Read each time: a package installed while the app runs shows up without a restart.
        return sorted({point.name for point in entry_points(group=self.group)})

    def adapter_class(self, name: str) -> type:
        if name not in self._loaded:
            found = [point for point in entry_points(group=self.group) if point.name == name]
            if not found:
                raise KeyError(name)
            self._loaded[name] = found[0].load()
        return self._loaded[name]


@implementer(IAdapterCatalog)
class StaticAdapterCatalog:
    """A fixed set of adapters, for a host application that chooses them in code."""

    def __init__(self, classes: Mapping[str, type]):
        self.classes = dict(classes)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> StaticAdapterCatalog:
        return cls({})

    @classmethod
    def create_service(cls, context: Any, request: Any) -> StaticAdapterCatalog:
        catalog: StaticAdapterCatalog = request.registry["clientpay.connect.catalog"]
        return catalog

    def names(self) -> list[str]:
        return sorted(self.classes)

    def adapter_class(self, name: str) -> type:
        return self.classes[name]


def is_oauth(adapter_class: type) -> bool:
    return IOAuthMatterAdapter.implementedBy(adapter_class)


def secret_keys(adapter_class: type) -> frozenset[str]:
    return ALWAYS_SECRET | frozenset(getattr(adapter_class, "secret_settings", ()))


# Opening an adapter for a connection.


def callback_url(work: Work, connection_id: int) -> str:
    base = str(work.settings.get("clientpay.public_url") or "").rstrip("/")
    if work.has_request:
        return str(work.request.route_url("api.connection.callback", id=connection_id))
    return f"{base}/api/v1/connections/{connection_id}/callback"


def connection_settings(encryptor: Encryptor, connection: Connection) -> dict[str, Any]:
    """The connection's settings with its secrets decrypted."""
    merged = dict(connection.settings or {})
    if connection.secrets_encrypted:
        merged.update(json.loads(encryptor.decrypt(connection.secrets_encrypted)))
    return merged


def open_adapter(work: Work, connection: Connection) -> Any:
    """The adapter for ``connection``, ready to use; hand it back with ``release_adapter``."""
    catalog = work.find_service(IAdapterCatalog)
    adapter_class = catalog.adapter_class(connection.adapter)
    encryptor: Encryptor = work.registry["clientpay.encryptor"]
    if is_oauth(adapter_class):
        tokens = ConnectionTokens(work.registry, connection.id)
        adapter = adapter_class(_adapter_config(work, connection, encryptor, tokens))
        tokens.adapter = adapter
        return adapter
    fingerprint = sha256_hex(
        json.dumps([connection.adapter, connection.settings, connection.secrets_encrypted])
    )
    return adapter_pool(work.registry).get(
        connection.id,
        fingerprint,
        lambda: adapter_class(_adapter_config(work, connection, encryptor, None)),
    )


def _adapter_config(
    work: Work, connection: Connection, encryptor: Encryptor, tokens: Any
) -> AdapterConfig:
    return AdapterConfig(
        settings=connection_settings(encryptor, connection),
        app_settings=work.settings,
        tokens=tokens,
        redirect_uri=callback_url(work, connection.id),
        pace=connection_pace(work, connection),
        identity=connection_identity(connection),
    )


def connection_identity(connection: Connection) -> str:
    """The connection as last authorized: reconnecting (perhaps to another account of the
    matter system) makes a new identity, so nothing an adapter kept for the old one is used."""
    authorized = connection.connected_at.isoformat() if connection.connected_at else "never"
    return f"connection-{connection.id}@{authorized}"


class AdapterPool:
    """Adapters kept per connection between requests, for those that do not use OAuth: a
    database adapter reads the mapped tables' layout and opens an engine (a pool of
    connections) on first use, which would otherwise be paid on every search. A change of
    the connection's settings makes a new one; the old one is closed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._adapters: dict[int, tuple[str, Any]] = {}

    def get(self, connection_id: int, fingerprint: str, make: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._adapters.get(connection_id)
            if found is not None and found[0] == fingerprint:
                return found[1]
            adapter = make()
            self._adapters[connection_id] = (fingerprint, adapter)
        if found is not None:
            found[1].close()
        return adapter

    def holds(self, adapter: Any) -> bool:
        with self._lock:
            return any(held is adapter for _, held in self._adapters.values())

    def close(self) -> None:
        with self._lock:
            adapters, self._adapters = list(self._adapters.values()), {}
        for _, adapter in adapters:
            adapter.close()


def adapter_pool(registry: Registry) -> AdapterPool:
    pool: AdapterPool = registry["clientpay.connect.adapters"]
    return pool


def release_adapter(registry: Registry, adapter: Any) -> None:
    """Done with ``adapter``: closed, unless the pool keeps it for the next request."""
    if not adapter_pool(registry).holds(adapter):
        adapter.close()


@dataclass(frozen=True)
class ConnectionPace:
    """A RequestPace: the connection's calls, paced at ``clientpay.<adapter>.rate_limit``
    (e.g. ``25/second``) by the app's pacer, which every worker shares through Redis."""

    pacer: Any
    limit: str
    key: str

    def wait(self, max_wait: float) -> float:
        return float(self.pacer.wait(self.limit, self.key, max_wait))

    def pause(self, seconds: float) -> None:
        self.pacer.pause(self.key, seconds)


def connection_pace(work: Work, connection: Connection) -> ConnectionPace:
    limit = str(work.settings.get(f"clientpay.{connection.adapter}.rate_limit") or "")
    # Per connection: a vendor counts each grant's calls on their own.
    key = f"connection/{connection.id}"
    return ConnectionPace(work.find_service(IPacer), limit, key)


# The grant, stored encrypted in the connection's row.


def _token_json(tokens: TokenSet) -> str:
    return json.dumps(
        {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.isoformat() if tokens.expires_at else None,
            "extra": dict(tokens.extra),
        }
    )


def _token_set(text: str) -> TokenSet:
    data = json.loads(text)
    expires = data.get("expires_at")
    return TokenSet(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token"),
        expires_at=dt.datetime.fromisoformat(expires) if expires else None,
        extra=data.get("extra") or {},
    )


def store_tokens(encryptor: Encryptor, connection: Connection, tokens: TokenSet) -> None:
    connection.tokens_encrypted = encryptor.encrypt(_token_json(tokens))
    connection.token_expires_at = tokens.expires_at
    connection.token_generation = (connection.token_generation or 0) + 1


def stored_tokens(encryptor: Encryptor, connection: Connection) -> TokenSet | None:
    if not connection.tokens_encrypted:
        return None
    return _token_set(encryptor.decrypt(connection.tokens_encrypted))


def needs_refresh(tokens: TokenSet, now: dt.datetime) -> bool:
    return tokens.expires_at is not None and tokens.expires_at - now <= REFRESH_MARGIN


class ConnectionTokens:
    """The TokenSource of one connection (see the module's docstring for the lock). It lives
    as long as its adapter (one request, one job), and keeps the tokens it read for the
    adapter's next calls until they are about to expire: a job's four calls read the
    connection's row once, not four times. (Tokens another process refreshed meanwhile are
    found after a 401, by ``refreshed``.)"""

    def __init__(self, registry: Registry, connection_id: int):
        self.registry = registry
        self.connection_id = connection_id
        self.adapter: Any = None
        self._known: TokenSet | None = None

    @property
    def encryptor(self) -> Encryptor:
        encryptor: Encryptor = self.registry["clientpay.encryptor"]
        return encryptor

    def access_token(self) -> str:
        tokens = self._known
        if tokens is None or needs_refresh(tokens, utcnow()):
            tokens = self._known = self._read()
        if not needs_refresh(tokens, utcnow()):
            return tokens.access_token
        return self._refresh(lambda current: needs_refresh(current, utcnow()))

    def refreshed(self, stale_access_token: str) -> str:
        return self._refresh(lambda current: current.access_token == stale_access_token)

    def _read(self) -> TokenSet:
        with Work.fresh(self.registry) as work:
            connection = work.dbsession.get(Connection, self.connection_id)
            tokens = None if connection is None else stored_tokens(self.encryptor, connection)
            if connection is None or tokens is None or connection.status != CONNECTION_CONNECTED:
                raise ReauthorizationRequired("The matter system is not connected.")
            return tokens

    def _refresh(self, still_stale: Any) -> str:
        refused: ReauthorizationRequired | None = None
        may_write = sqlite_may_write.set(True)
        try:
            with Work.fresh(self.registry) as work:
                connection = lock_connection(work.dbsession, self.connection_id)
                tokens = None if connection is None else stored_tokens(self.encryptor, connection)
                if connection is None or tokens is None:
                    raise ReauthorizationRequired("The matter system is not connected.")
                if connection.status != CONNECTION_CONNECTED:
                    raise ReauthorizationRequired("The matter system needs to be reconnected.")
                if not still_stale(tokens):
                    self._known = tokens
                    return tokens.access_token
                try:
                    fresh = self.adapter.refresh(tokens.refresh_token)
                except ReauthorizationRequired as error:
                    mark_needs_reauthorization(work, connection, str(error))
                    refused = error
                else:
                    # A refresh answer may lack what only the first grant carried (MyCase's
                    # firm_uuid): keep it.
                    fresh = replace(fresh, extra={**tokens.extra, **fresh.extra})
                    store_tokens(self.encryptor, connection, fresh)
                    self._known = fresh
                    return fresh.access_token
        finally:
            sqlite_may_write.reset(may_write)
        raise refused


def lock_connection(dbsession: Session, connection_id: int) -> Connection | None:
    return dbsession.execute(
        select(Connection).where(Connection.id == connection_id).with_for_update()
    ).scalar_one_or_none()


def mark_needs_reauthorization(work: Work, connection: Connection, reason: str) -> None:
    """The grant is dead: say so on the connection and tell the firm's admins once."""
    if connection.status == CONNECTION_NEEDS_REAUTHORIZATION:
        return
    connection.status = CONNECTION_NEEDS_REAUTHORIZATION
    connection.last_error = reason[:500] or "The matter system refused our authorization."
    log.warning("connection %s needs reauthorization", connection.id)
    queue_reauthorization_notice(work, connection)


# What admins do with connections.


# Where the admin's session keeps that state, one per connection, until the provider returns
# to the API's callback (the API and the Connections page both send the admin away).
STATE_KEY = "clientpay.oauth_state.{}"


@dataclass(frozen=True)
class Authorization:
    """Where to send the admin, and the state their session must bring back."""

    url: str
    state: str


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def firm_connections(dbsession: Session, firm_id: int) -> list[Connection]:
    return list(
        dbsession.execute(
            select(Connection).where(Connection.firm_id == firm_id).order_by(Connection.id)
        ).scalars()
    )


def connection_for_firm(dbsession: Session, firm_id: int, connection_id: int) -> Connection | None:
    connection = dbsession.get(Connection, connection_id)
    if connection is None or connection.firm_id != firm_id:
        return None
    return connection


def find_connection(dbsession: Session, firm_id: int, raw_id: Any) -> Connection | None:
    """The firm's connection named by ``raw_id`` as sent (text from a URL or a body)."""
    text = str(raw_id).strip()
    if not text.isdigit() or not 0 < int(text) < 2**31:
        return None
    return connection_for_firm(dbsession, firm_id, int(text))


def create_connection(
    work: Work, firm_id: int, adapter: str, name: str, settings: Mapping[str, Any]
) -> tuple[Connection, Authorization | None]:
    """A new connection; an OAuth one is pending until the admin comes back with a code."""
    catalog = work.find_service(IAdapterCatalog)
    if adapter not in catalog.names():
        raise ConnectionRefused("unknown_adapter", f"There is no adapter named {adapter!r}.")
    adapter_class = catalog.adapter_class(adapter)
    secret = secret_keys(adapter_class)
    encryptor: Encryptor = work.registry["clientpay.encryptor"]
    secrets = {key: value for key, value in settings.items() if key in secret}
    connection = Connection(
        firm_id=firm_id,
        adapter=adapter,
        name=name.strip() or adapter,
        status=CONNECTION_PENDING,
        settings={key: value for key, value in settings.items() if key not in secret},
        secrets_encrypted=encryptor.encrypt(json.dumps(secrets)) if secrets else None,
    )
    work.dbsession.add(connection)
    work.dbsession.flush()
    if is_oauth(adapter_class):
        return connection, begin_authorization(work, connection)
    check_reachable(work, connection)
    connection.status = CONNECTION_CONNECTED
    connection.connected_at = utcnow()
    return connection, None


def check_reachable(work: Work, connection: Connection) -> None:
    """Refuse a connection whose system does not answer (a wrong URL or mapping)."""
    try:
        # Opening reads the settings: a missing URL or a wrong mapping is refused here too.
        adapter = open_adapter(work, connection)
    except AdapterError as error:
        raise ConnectionRefused("unreachable", str(error), "settings") from error
    try:
        adapter.get_invoices([])
        adapter.search("a")
    except AdapterError as error:
        raise ConnectionRefused(
            "unreachable", f"The matter system did not answer as expected: {error}", "settings"
        ) from error
    finally:
        release_adapter(work.registry, adapter)


def begin_authorization(work: Work, connection: Connection) -> Authorization:
    """A fresh state and PKCE verifier for the admin's trip to the provider."""
    encryptor: Encryptor = work.registry["clientpay.encryptor"]
    state = new_token()
    verifier = new_token()
    connection.oauth_state_hash = sha256_hex(state)
    connection.oauth_verifier_encrypted = encryptor.encrypt(verifier)
    adapter = open_adapter(work, connection)
    try:
        url = adapter.authorize_url(state, pkce_challenge(verifier))
    finally:
        release_adapter(work.registry, adapter)
    return Authorization(url=url, state=state)


def complete_authorization(
    work: Work, connection: Connection, code: str, state: str, session_state: str | None
) -> None:
    """The provider sent the admin back: check the state against the admin's session and the
    connection, trade the code for tokens, and keep them encrypted."""
    expected = connection.oauth_state_hash
    if (
        not state
        or not session_state
        or expected is None
        or not hmac.compare_digest(state, session_state)
        or not hmac.compare_digest(sha256_hex(state), expected)
    ):
        raise ConnectionRefused(
            "invalid_state", "This authorization was not started here, or was already used."
        )
    encryptor: Encryptor = work.registry["clientpay.encryptor"]
    verifier = encryptor.decrypt(connection.oauth_verifier_encrypted or "")
    # One use: a replayed callback finds no state.
    connection.oauth_state_hash = None
    connection.oauth_verifier_encrypted = None
    adapter = open_adapter(work, connection)
    try:
        tokens = adapter.exchange_code(code, verifier)
    except AdapterError as error:
        connection.last_error = f"Authorization failed: {error}"[:500]
        raise ConnectionRefused("authorization_failed", connection.last_error) from error
    finally:
        release_adapter(work.registry, adapter)
    store_tokens(encryptor, connection, tokens)
    connection.status = CONNECTION_CONNECTED
    connection.connected_at = utcnow()
    connection.last_error = ""


def disconnect(work: Work, connection: Connection) -> None:
    """Revoke the grant where the provider allows, then forget it. The row stays, so the
    links and postings that name it keep their history."""
    encryptor: Encryptor = work.registry["clientpay.encryptor"]
    tokens = stored_tokens(encryptor, connection)
    if tokens is not None:
        adapter = open_adapter(work, connection)
        try:
            adapter.revoke(tokens)
        except AdapterError as error:
            log.warning("connection %s: revoking failed: %s", connection.id, error)
        finally:
            release_adapter(work.registry, adapter)
    connection.tokens_encrypted = None
    connection.token_expires_at = None
    connection.oauth_state_hash = None
    connection.oauth_verifier_encrypted = None
    connection.status = CONNECTION_DISCONNECTED


def adapter_class_of(work: Work, connection: Connection) -> type | None:
    catalog = work.find_service(IAdapterCatalog)
    try:
        adapter_class: type = catalog.adapter_class(connection.adapter)
    except KeyError:
        # Its package was uninstalled: the connection stays listed, but nothing runs.
        return None
    return adapter_class


def adapter_capabilities(work: Work, connection: Connection) -> Capabilities | None:
    adapter_class = adapter_class_of(work, connection)
    found = getattr(adapter_class, "capabilities", None)
    return found if isinstance(found, Capabilities) else None


def is_oauth_connection(work: Work, connection: Connection) -> bool:
    adapter_class = adapter_class_of(work, connection)
    return adapter_class is not None and is_oauth(adapter_class)


def adapter_catalog_json(work: Work) -> list[dict[str, Any]]:
    catalog = work.find_service(IAdapterCatalog)
    return [
        {"name": name, "oauth": is_oauth(catalog.adapter_class(name))} for name in catalog.names()
    ]


def update_connection(work: Work, connection: Connection, changes: Mapping[str, Any]) -> None:
    """An admin's changes: name, default merchant account, post automatically."""
    if "name" in changes and str(changes["name"] or "").strip():
        connection.name = str(changes["name"]).strip()[:200]
    if "post_automatically" in changes:
        connection.post_automatically = bool(changes["post_automatically"])
    if "default_merchant_account_id" in changes:
        account_id = changes["default_merchant_account_id"]
        if account_id is not None:
            account = work.dbsession.get(MerchantAccount, account_id)
            if account is None or account.firm_id != connection.firm_id or not account.active:
                raise ConnectionRefused(
                    "invalid",
                    "Choose one of your firm's active merchant accounts.",
                    "default_merchant_account_id",
                )
        connection.default_merchant_account_id = account_id


def record_reauthorization_needed(registry: Registry, connection_id: int, reason: str) -> None:
    """Mark the connection in a short write of its own: the caller may be a read."""
    may_write = sqlite_may_write.set(True)
    try:
        with Work.fresh(registry) as work:
            connection = lock_connection(work.dbsession, connection_id)
            if connection is not None and connection.status == CONNECTION_CONNECTED:
                mark_needs_reauthorization(work, connection, reason)
    finally:
        sqlite_may_write.reset(may_write)
