"""Every IPageCache (pay/page_cache.py) keeps the payer's rendered pages by the same rules:
a key finds the page stored under it or nothing, never another key's; the memory stays
within its size; waitress's threads may use it at once. The ``clientpay.pay.page_cache``
setting names the class, built by ``from_settings``. A shared cache (Redis, say) joins by
adding its name here."""

from __future__ import annotations

import threading
from collections.abc import Hashable
from types import SimpleNamespace
from typing import Any

import pytest
from zope.interface.verify import verifyObject

from clientpay_connect.pay.interfaces import IPageCache
from clientpay_connect.pay.page_cache import SIZE_SETTING, CachedPage, NullPageCache, PageCache

SIZE = 4
# Each cache, and whether it keeps pages at all (the null cache renders every page afresh).
CACHES: dict[str, tuple[type[Any], bool]] = {
    "memory": (PageCache, True),
    "null": (NullPageCache, False),
}


@pytest.fixture(params=sorted(CACHES))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cache(kind: str) -> Any:
    cache_class, _keeps = CACHES[kind]
    return cache_class.from_settings({SIZE_SETTING: str(SIZE)})


@pytest.fixture
def keeps(kind: str) -> bool:
    return CACHES[kind][1]


def page(text: str) -> CachedPage:
    return CachedPage(
        200, "text/html", "UTF-8", text.encode(), (("Content-Security-Policy", text),)
    )


def key(n: int) -> Hashable:
    # Built afresh each time, as each request builds its own: equal by value, not identity.
    return ("link", n, "en", "http://localhost", (("amount", str(n * 100)),))


def test_the_cache_provides_the_interface(cache):
    assert verifyObject(IPageCache, cache)


def test_the_service_is_the_one_cache_the_app_keeps(cache):
    request = SimpleNamespace(registry={"clientpay.pay.page_cache": cache})
    assert type(cache).create_service(None, request) is cache


def test_a_key_never_stored_finds_nothing(cache):
    assert cache.get(key(1)) is None


def test_a_page_comes_back_as_stored_when_the_cache_keeps_pages(cache, keeps):
    cache.put(key(1), page("one"))
    assert cache.get(key(1)) == (page("one") if keeps else None)


def test_a_key_finds_its_own_page_or_nothing_never_another(cache):
    for n in range(SIZE * 3):
        cache.put(key(n), page(f"page {n}"))
    for n in range(SIZE * 3):
        assert cache.get(key(n)) in (page(f"page {n}"), None)


def test_a_new_page_under_a_key_replaces_the_old(cache, keeps):
    cache.put(key(1), page("old"))
    cache.put(key(1), page("new"))
    assert cache.get(key(1)) == (page("new") if keeps else None)


def test_the_cache_holds_no_more_pages_than_its_size(cache):
    for n in range(SIZE * 5):
        cache.put(key(n), page(f"page {n}"))
    kept = [n for n in range(SIZE * 5) if cache.get(key(n)) is not None]
    assert len(kept) <= SIZE


def test_threads_share_it_without_harm(cache):
    """waitress serves from several threads at once."""
    failures: list[BaseException] = []

    def use(worker: int) -> None:
        try:
            for n in range(300):
                which = (worker * 7 + n) % (SIZE * 2)
                cache.put(key(which), page(f"page {which}"))
                assert cache.get(key(which)) in (page(f"page {which}"), None)
        except BaseException as error:  # reported below, from the main thread
            failures.append(error)

    threads = [threading.Thread(target=use, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
