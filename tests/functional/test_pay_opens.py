"""When the payer opened a link (pay/opens.py): the payment page records the first and the
last open, after its response, at most once a minute, and staff see both on the link's page
and in the API's link object."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import update

from clientpay_connect.db import utcnow
from clientpay_connect.links.models import STATUS_CANCELLED, STATUS_PAID, PaymentLink
from clientpay_connect.pay.facts import link_facts
from tests import factories
from tests.conftest import login
from tests.support.payments import new_link


@pytest.fixture
def account(firm: Any) -> Any:
    return factories.MerchantAccountFactory(firm=firm)


@pytest.fixture
def link_and_token(app: Any, dbsession: Any, account: Any) -> Any:
    return new_link(dbsession, app.registry, account, 50_000, invoice_number="INV-OPEN")


def opens_of(dbsession: Any, link: PaymentLink) -> tuple[dt.datetime | None, dt.datetime | None]:
    dbsession.expire_all()
    fresh = dbsession.get(PaymentLink, link.id)
    return fresh.first_opened_at, fresh.last_opened_at


def backdate(dbsession: Any, link: PaymentLink, by: dt.timedelta) -> tuple[dt.datetime, ...]:
    first, last = opens_of(dbsession, link)
    assert first is not None and last is not None
    dbsession.execute(
        update(PaymentLink)
        .where(PaymentLink.id == link.id)
        .values(first_opened_at=first - by, last_opened_at=last - by)
    )
    dbsession.flush()
    return first - by, last - by


def test_a_link_never_opened_has_no_opens(testapp, dbsession, link_and_token, staff_auth):
    link, _token = link_and_token
    assert opens_of(dbsession, link) == (None, None)
    body = testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json
    assert body["first_opened_at"] is None
    assert body["last_opened_at"] is None


def test_the_first_open_sets_both(testapp, dbsession, link_and_token):
    link, token = link_and_token
    before = utcnow().replace(microsecond=0)
    testapp.get(f"/pay/{token}", status=200)
    first, last = opens_of(dbsession, link)
    assert first is not None and first >= before
    assert first == last


def test_a_reload_within_a_minute_writes_nothing(testapp, dbsession, link_and_token):
    link, token = link_and_token
    testapp.get(f"/pay/{token}", status=200)
    recorded = opens_of(dbsession, link)
    testapp.get(f"/pay/{token}", status=200)
    assert opens_of(dbsession, link) == recorded


def test_a_later_open_moves_last_and_keeps_first(testapp, dbsession, link_and_token):
    link, token = link_and_token
    page = testapp.get(f"/pay/{token}", status=200)
    first, last = backdate(dbsession, link, dt.timedelta(minutes=5))
    again = testapp.get(f"/pay/{token}", status=200)
    # The same page (the time of the last open is no part of what it shows, nor of its key
    # in the page cache), and still the open is recorded.
    assert again.body == page.body
    now_first, now_last = opens_of(dbsession, link)
    assert now_first == first
    assert now_last is not None and now_last > last + dt.timedelta(minutes=4)


def test_the_page_cache_key_ignores_when_the_link_was_opened(dbsession, link_and_token):
    link, token = link_and_token
    before = link_facts(dbsession, token)
    link.last_opened_at = utcnow()
    dbsession.flush()
    after = link_facts(dbsession, token)
    assert after is not None and after.last_opened_at is not None
    assert after == before and hash(after) == hash(before)


@pytest.mark.parametrize("status", [STATUS_CANCELLED, STATUS_PAID])
def test_opening_a_used_or_cancelled_link_is_recorded_too(
    testapp, dbsession, link_and_token, status
):
    # The firm wants to know that the payer came back to a link that can no longer be paid.
    link, token = link_and_token
    link.status = status
    dbsession.flush()
    testapp.get(f"/pay/{token}", status=200)
    first, last = opens_of(dbsession, link)
    assert first is not None and first == last


def test_the_payers_api_and_a_head_request_are_not_opens(testapp, dbsession, link_and_token):
    link, token = link_and_token
    testapp.get(f"/api/v1/pay/{token}", status=200)
    testapp.head(f"/pay/{token}", status=200)
    assert opens_of(dbsession, link) == (None, None)


def test_staff_see_the_opens_on_the_link_and_in_the_api(
    testapp, dbsession, link_and_token, staff, staff_auth
):
    link, token = link_and_token
    testapp.get(f"/pay/{token}", status=200)
    first, _last = backdate(dbsession, link, dt.timedelta(hours=2))
    testapp.get(f"/pay/{token}", status=200)
    _first, now_last = opens_of(dbsession, link)
    assert now_last is not None

    body = testapp.get(f"/api/v1/links/{link.id}", headers=staff_auth).json
    assert body["first_opened_at"] == first.astimezone(dt.UTC).isoformat(
        timespec="seconds"
    ).replace("+00:00", "Z")
    assert body["last_opened_at"] == now_last.astimezone(dt.UTC).isoformat(
        timespec="seconds"
    ).replace("+00:00", "Z")
    listed = testapp.get("/api/v1/links", headers=staff_auth).json["items"]
    assert [item["first_opened_at"] for item in listed] == [body["first_opened_at"]]

    login(testapp, staff)
    page = testapp.get(f"/links/{link.id}", status=200)
    shown_first = page.html.find(attrs={"data-first-opened": True}).get_text(strip=True)
    shown_last = page.html.find(attrs={"data-last-opened": True}).get_text(strip=True)
    assert shown_first and shown_first != "Not yet"
    assert shown_last and shown_last != "Not yet" and shown_last != shown_first
