"""The rendered payment page is kept (pay/page_cache.py); none of that may ever show a payer
anything out of date. Each test loads the page, changes one thing the page shows the way the
app (or time) changes it, and loads it again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from zope.interface.verify import verifyClass

from clientpay_connect.accounts.models import Firm
from clientpay_connect.admin.models import FirmSettings
from clientpay_connect.db import utcnow
from clientpay_connect.pay.interfaces import IPageCache
from clientpay_connect.pay.page_cache import CachedPage, NullPageCache, PageCache
from tests import factories
from tests.support.payments import card, new_link, pay, submission, tokenize


@pytest.fixture
def account(firm: Any) -> Any:
    return factories.MerchantAccountFactory(firm=firm)


@pytest.fixture
def link_and_token(app: Any, dbsession: Any, account: Any) -> Any:
    return new_link(dbsession, app.registry, account, 123_450, invoice_number="INV-77")


def has_form(page: Any) -> bool:
    return page.html.find("form", id="pay-form") is not None


def text_of(page: Any) -> str:
    return " ".join(page.html.get_text(" ").split())


def test_the_same_page_twice_is_the_same_page(testapp, link_and_token):
    _link, token = link_and_token
    first = testapp.get(f"/pay/{token}", status=200)
    second = testapp.get(f"/pay/{token}", status=200)
    assert has_form(second)
    assert second.body == first.body
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    # The tweens' headers are on every answer, kept or not.
    assert second.headers["Referrer-Policy"] == "no-referrer"


def test_once_paid_the_page_never_shows_the_form_again(testapp, link_and_token):
    _link, token = link_and_token
    assert has_form(testapp.get(f"/pay/{token}"))
    paid = pay(testapp, token, submission(tokenize(testapp, card()), amount="1234.50"))
    assert paid.status_int == 201, paid.text
    after = testapp.get(f"/pay/{token}", status=200)
    assert not has_form(after)
    assert "receipt" in text_of(after).lower()


def test_a_cancelled_link_stops_showing_the_form_at_once(testapp, link_and_token, staff_auth):
    link, token = link_and_token
    assert has_form(testapp.get(f"/pay/{token}"))
    testapp.post_json("/api/v1/links/cancel", {"ids": [link.id]}, headers=staff_auth, status=200)
    after = testapp.get(f"/pay/{token}", status=200)
    assert not has_form(after)
    assert "cancel" in text_of(after).lower()


def test_a_link_expires_while_its_page_is_kept(testapp, dbsession, link_and_token):
    link, token = link_and_token
    assert has_form(testapp.get(f"/pay/{token}"))
    # Time passes: the expiry job has not run yet, the clock has.
    link.expires_at = utcnow() - dt.timedelta(seconds=1)
    dbsession.flush()
    after = testapp.get(f"/pay/{token}", status=200)
    assert not has_form(after)
    assert "expired" in text_of(after).lower()


def test_the_firms_new_disclaimer_and_name_show_at_once(testapp, dbsession, firm, link_and_token):
    _link, token = link_and_token
    testapp.get(f"/pay/{token}")
    dbsession.get(FirmSettings, firm.id).disclaimer = "Refunds within 30 days only."
    dbsession.get(Firm, firm.id).name = "Renamed & Partners LLP"
    dbsession.flush()
    text = text_of(testapp.get(f"/pay/{token}"))
    assert "Refunds within 30 days only." in text
    assert "Renamed & Partners LLP" in text


def test_a_deactivated_account_takes_the_payment_fields_away(
    testapp, dbsession, account, link_and_token
):
    _link, token = link_and_token
    assert testapp.get(f"/pay/{token}").html.find(id="card-number") is not None
    account.active = False
    dbsession.flush()
    assert testapp.get(f"/pay/{token}").html.find(id="card-number") is None


def test_turning_recaptcha_on_brings_its_widget_and_policy(
    testapp, dbsession, firm, link_and_token
):
    _link, token = link_and_token
    before = testapp.get(f"/pay/{token}")
    assert "www.google.com" not in before.headers["Content-Security-Policy"]
    settings = dbsession.get(FirmSettings, firm.id)
    settings.recaptcha_enabled = True
    settings.recaptcha_site_key = "site-key-123"
    dbsession.flush()
    after = testapp.get(f"/pay/{token}")
    assert after.html.find(attrs={"data-sitekey": "site-key-123"}) is not None
    assert "https://www.google.com" in after.headers["Content-Security-Policy"]


def test_each_language_and_address_gets_its_own_page(testapp, link_and_token):
    _link, token = link_and_token
    english = testapp.get(f"/pay/{token}")
    spanish = testapp.get(f"/pay/{token}?lang=es")
    again = testapp.get(f"/pay/{token}")
    assert spanish.html.find("html")["lang"] == "es"
    assert english.html.find("html")["lang"] == again.html.find("html")["lang"] == "en"
    elsewhere = testapp.get(f"/pay/{token}", extra_environ={"HTTP_HOST": "pay.example.test"})
    [stylesheet, *_] = elsewhere.html.find_all("link", rel="stylesheet")
    assert stylesheet["href"].startswith("http://pay.example.test/")
    # Every part the address is made of: the scheme, and the prefix it is mounted under.
    secure = testapp.get(f"/pay/{token}", extra_environ={"wsgi.url_scheme": "https"})
    [stylesheet, *_] = secure.html.find_all("link", rel="stylesheet")
    assert stylesheet["href"].startswith("https://localhost/")
    mounted = testapp.get(f"/pay/{token}", extra_environ={"SCRIPT_NAME": "/billing"})
    [stylesheet, *_] = mounted.html.find_all("link", rel="stylesheet")
    assert stylesheet["href"].startswith("http://localhost/billing/")


def test_two_links_with_the_same_details_keep_their_own_addresses(app, testapp, dbsession, account):
    _first, first_token = new_link(dbsession, app.registry, account, 500, invoice_number="A")
    _second, second_token = new_link(dbsession, app.registry, account, 500, invoice_number="A")
    first = testapp.get(f"/pay/{first_token}")
    second = testapp.get(f"/pay/{second_token}")
    assert first_token in first.text and second_token not in first.text
    assert second_token in second.text and first_token not in second.text


# The cache itself


def test_both_caches_provide_the_interface():
    assert verifyClass(IPageCache, PageCache)
    assert verifyClass(IPageCache, NullPageCache)


def page(text: str) -> CachedPage:
    return CachedPage(200, "text/html", "UTF-8", text.encode(), ())


def test_the_least_recently_used_page_goes_first():
    cache = PageCache(size=2)
    cache.put("a", page("A"))
    cache.put("b", page("B"))
    assert cache.get("a") == page("A")  # "a" is now the more recent
    cache.put("c", page("C"))
    assert cache.get("b") is None
    assert cache.get("a") == page("A")
    assert cache.get("c") == page("C")


def test_the_null_cache_keeps_nothing():
    cache = NullPageCache()
    cache.put("a", page("A"))
    assert cache.get("a") is None


def test_each_answer_from_a_kept_page_has_headers_of_its_own():
    kept = CachedPage(200, "text/html", "UTF-8", b"<p>hi</p>", (("Content-Security-Policy", "x"),))
    first = kept.response()
    first.headers["Cache-Control"] = "no-store"  # as the tweens add theirs to an answer
    second = kept.response()
    assert "Cache-Control" not in second.headers
    assert second.headerlist == [
        ("Content-Type", "text/html; charset=UTF-8"),
        ("Content-Length", "9"),
        ("Content-Security-Policy", "x"),
    ]
    assert second.status == "200 OK" and second.body == b"<p>hi</p>"


def test_a_kept_page_answers_as_it_was_rendered():
    original = CachedPage(
        200, "text/html", "UTF-8", b"<p>hi</p>", (("Content-Security-Policy", "x"),)
    )
    response = original.response()
    assert response.body == b"<p>hi</p>"
    assert response.headers["Content-Security-Policy"] == "x"
    assert CachedPage.of(response) == original
