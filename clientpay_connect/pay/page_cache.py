"""The payment page, rendered once per state of what it shows.

Rendering the page (a Jinja2 template with some forty translated messages) costs many times
what finding the link does, and payers reload it. So the rendered page is kept in memory, in
this process, under a key made of *everything* that went into it: the link's facts as read on
this very request (pay/facts.py), the state at this moment, the language, the address the
app is served at and the year (the card expiry list). Nothing is ever invalidated: a change
to the link, the firm, its settings or its account makes a different key, so a page can be
stale only if one of its inputs is missing from the key. The link is still read on every
request, so a paid or cancelled link never shows its form again.

The memory is bounded (least recently used pages go first). Pages hold the link's URL, as
the payer's browser does; they are never written anywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from pyramid.response import Response
from zope.interface import implementer

from clientpay_connect.pay.interfaces import IPageCache

SIZE_SETTING = "clientpay.pay.page_cache_size"
# Headers a page's view sets itself (the tweens add the rest to every response, cached or not).
KEPT_HEADERS = ("Content-Security-Policy",)


@dataclass(frozen=True)
class CachedPage:
    status: int
    content_type: str
    charset: str | None
    body: bytes
    headers: tuple[tuple[str, str], ...]
    # The answer's headers, worked out once from the fields above: every answer made from
    # the page starts from a copy of them (see ``response``).
    _headerlist: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        response = Response(
            body=self.body,
            status=self.status,
            content_type=self.content_type,
            charset=self.charset,
        )
        for name, value in self.headers:
            response.headers[name] = value
        object.__setattr__(self, "_headerlist", tuple(response.headerlist))

    @classmethod
    def of(cls, response: Response) -> CachedPage:
        kept = tuple(
            (name, response.headers[name]) for name in KEPT_HEADERS if name in response.headers
        )
        return cls(
            response.status_code, response.content_type, response.charset, response.body, kept
        )

    def response(self) -> Response:
        """A new answer with the page: its headers copied as they were worked out (a list of
        its own, as the tweens add to it), the body shared (bytes never change)."""
        # The status as its number: WebOb parses a status line by failing int() on it first.
        return Response(app_iter=[self.body], status=self.status, headerlist=list(self._headerlist))


@implementer(IPageCache)
class PageCache:
    def __init__(self, size: int):
        self._size = max(size, 1)
        # Least recently used first; an OrderedDict keeps the order in C (cachetools' LRUCache
        # did it in Python, at several times the cost of the page's look-up).
        self._pages: OrderedDict[Hashable, CachedPage] = OrderedDict()
        # waitress serves from several threads; the order's bookkeeping is not thread-safe.
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> PageCache:
        return cls(int(settings.get(SIZE_SETTING) or 1000))

    @classmethod
    def create_service(cls, context: Any, request: Any) -> PageCache:
        cache: PageCache = request.registry["clientpay.pay.page_cache"]
        return cache

    def get(self, key: Hashable) -> CachedPage | None:
        with self._lock:
            page = self._pages.get(key)
            if page is not None:
                self._pages.move_to_end(key)
            return page

    def put(self, key: Hashable, page: CachedPage) -> None:
        with self._lock:
            self._pages[key] = page
            self._pages.move_to_end(key)
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)


@implementer(IPageCache)
class NullPageCache:
    """Keeps nothing: every page is rendered afresh."""

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> NullPageCache:
        return cls()

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullPageCache:
        cache: NullPageCache = request.registry["clientpay.pay.page_cache"]
        return cache

    def get(self, key: Hashable) -> CachedPage | None:
        return None

    def put(self, key: Hashable, page: CachedPage) -> None:
        return None
