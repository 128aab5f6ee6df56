"""The Clio adapter against the fake Clio over real HTTP (requests-oauthlib and requests, no
patching): the OAuth dance, refresh once under concurrency, invalid_grant, 429, paging,
fields=, X-API-VERSION, regions, and the manual slip that stands for a posting."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from zope.interface.verify import verifyClass

from adapters.clio import ClioAdapter
from adapters.clio.mapping import BILL_FIELDS, CONTACT_FIELDS, MATTER_FIELDS
from clientpay_connect.connect.interfaces import (
    ACCOUNT_TRUST,
    ENTRY_POINT_GROUP,
    AdapterConfig,
    Allocation,
    IOAuthMatterAdapter,
    Permanent,
    PostingRequest,
    RateLimited,
    ReauthorizationRequired,
    Transient,
)
from tests.fakes.clio import FakeClio
from tests.fakes.httpserver import running
from tests.fakes.oauth import s256
from tests.support.tokens import MemoryTokenSource, authorize
from tests.support.tokens import connect as connect_tokens

REDIRECT_URI = "https://firm.example/connections/callback"


@pytest.fixture(autouse=True)
def plain_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses http:// unless told otherwise; the fake speaks plain HTTP on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def clio() -> Iterator[FakeClio]:
    # No rate limit unless a test sets one: the other tests count calls, not minutes.
    with running(FakeClio(rate_limit=None)) as fake:
        yield fake


def app_settings(clio: FakeClio, **overrides: str) -> dict[str, str]:
    return {**clio.settings(), "clientpay.http_timeout": "2", **overrides}


def dance_adapter(clio: FakeClio, region: str = "us", **overrides: str) -> ClioAdapter:
    """An adapter for the authorization only (no tokens yet), as the connections page has."""
    app = app_settings(clio, **overrides)
    return ClioAdapter(AdapterConfig({"region": region}, app, redirect_uri=REDIRECT_URI))


def connect(
    clio: FakeClio, region: str = "us", **overrides: str
) -> tuple[ClioAdapter, MemoryTokenSource]:
    """A connected adapter: the whole dance, then an adapter on the connection's tokens."""
    settings, app = {"region": region}, app_settings(clio, **overrides)
    dance = dance_adapter(clio, region, **overrides)
    tokens = connect_tokens(dance)
    dance.close()
    source = MemoryTokenSource(tokens)
    adapter = ClioAdapter(AdapterConfig(settings, app, tokens=source))
    source.refresh_with(adapter.refresh)
    return adapter, source


@pytest.fixture
def firm(clio: FakeClio) -> dict[str, Any]:
    """Jane Smith with two matters and bills in every state; Bob Jones with one bill."""
    jane = clio.add_contact("Jane", "Smith", email="jane@smith.example")
    estate = clio.add_matter(jane, "00012-Smith", "Estate of Smith")
    lease = clio.add_matter(jane, "00013-Smith", "Lease dispute")
    bob = clio.add_contact("Bob", "Jones", email="bob@jones.example")
    jones = clio.add_matter(bob, "00020-Jones", "Jones v. Acme")
    bills = {
        "late": clio.add_bill(
            estate, "INV-101", "1200.10", paid="200.05", due=dt.date(2025, 1, 15)
        ),
        "later": clio.add_bill(lease, "INV-102", "80", due=dt.date(2025, 3, 1)),
        "trust": clio.add_bill(
            estate, "INV-103", "500", due=dt.date(2025, 2, 1), kind="trust_kind"
        ),
        "paid": clio.add_bill(estate, "INV-104", "90", paid="90", state="paid"),
        "zero": clio.add_bill(estate, "INV-105", "40", paid="40"),
        "void": clio.add_bill(estate, "INV-106", "70", state="void"),
        "draft": clio.add_bill(lease, "INV-107", "60", state="draft"),
        "bob": clio.add_bill(jones, "INV-201", "300.99", due=dt.date(2025, 1, 1)),
    }
    return {"jane": jane, "bob": bob, "estate": estate, "lease": lease, "bills": bills}


def test_the_adapter_implements_the_oauth_interface_and_is_registered():
    assert verifyClass(IOAuthMatterAdapter, ClioAdapter)
    [entry] = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "clio"]
    assert entry.load() is ClioAdapter
    capabilities = ClioAdapter.capabilities
    assert (capabilities.search, capabilities.post, capabilities.multi_invoice) == (
        True,
        "manual",
        True,
    )
    assert capabilities.trust is True
    assert capabilities.oauth is True


# OAuth


def test_the_whole_dance_then_a_reused_code_is_refused(clio, firm):
    dance = dance_adapter(clio)
    authorization = authorize(dance, "state-123")
    url = urlsplit(authorization.url)
    query = parse_qs(url.query)
    assert url.path == "/us/oauth/authorize"
    assert query["client_id"] == ["clio-test-client"]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["code_challenge"] == [s256(authorization.code_verifier)]
    assert query["code_challenge_method"] == ["S256"]
    assert authorization.redirected_to.startswith(REDIRECT_URI)
    assert authorization.state == "state-123"

    tokens = dance.exchange_code(authorization.code, authorization.code_verifier)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.expires_at is not None
    # Clio's access tokens live 30 days.
    assert tokens.expires_at - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)

    with pytest.raises(Permanent):
        dance.exchange_code(authorization.code, authorization.code_verifier)
    assert clio.oauth["us"].counts["exchanges"] == 1
    assert clio.oauth["us"].counts["refused"] == 1

    adapter = ClioAdapter(
        AdapterConfig({"region": "us"}, app_settings(clio), tokens=MemoryTokenSource(tokens))
    )
    assert [c.name for c in adapter.search("Jones").clients] == ["Bob Jones"]


def test_a_code_with_the_wrong_pkce_verifier_is_refused(clio):
    dance = dance_adapter(clio)
    authorization = authorize(dance)
    with pytest.raises(Permanent):
        dance.exchange_code(authorization.code, "a-verifier-that-was-never-challenged")


@pytest.mark.parametrize("how", ["expiring", "refused_with_401"])
def test_a_token_is_refreshed_exactly_once_under_ten_concurrent_searches(clio, firm, how):
    adapter, source = connect(clio)
    if how == "expiring":
        # Our side knows the token is about to expire: refresh before calling.
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        source = MemoryTokenSource(replace(source.tokens, expires_at=past))
        adapter = ClioAdapter(replace(adapter.config, tokens=source))
        source.refresh_with(adapter.refresh)
    else:
        # Clio's side ended it: every search meets a 401 first.
        clio.oauth["us"].expire_access_tokens()
    start = threading.Barrier(10)

    def search(_: int) -> list[str]:
        start.wait()
        return [invoice.number for invoice in adapter.search("Jones").invoices]

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(search, range(10)))

    assert answers == [["INV-201"]] * 10
    if how == "refused_with_401":
        assert 401 in [c.status for c in clio.api_calls()]
    assert clio.oauth["us"].refreshes == 1
    assert source.refreshes == 1
    # Clio does not rotate refresh tokens: the one we hold still works.
    assert source.tokens.refresh_token is not None


def test_the_refresh_token_does_not_rotate(clio):
    adapter, source = connect(clio)
    refresh_token = str(source.tokens.refresh_token)
    first = adapter.refresh(refresh_token)
    second = adapter.refresh(refresh_token)
    assert first.refresh_token == second.refresh_token == refresh_token
    assert first.access_token != second.access_token
    assert clio.oauth["us"].refreshes == 2


def test_invalid_grant_means_the_connection_must_be_authorized_again(clio, firm):
    adapter, source = connect(clio)
    clio.oauth["us"].revoke_refresh_tokens()
    clio.oauth["us"].expire_access_tokens()
    with pytest.raises(ReauthorizationRequired):
        adapter.search("Smith")
    with pytest.raises(ReauthorizationRequired):
        adapter.refresh(str(source.tokens.refresh_token))


def test_disconnecting_revokes_the_grant_at_clio(clio, firm):
    adapter, source = connect(clio)
    adapter.revoke(source.tokens)
    assert clio.oauth["us"].counts["revocations"] == 1
    with pytest.raises(ReauthorizationRequired):
        adapter.refresh(str(source.tokens.refresh_token))
    # A dead token revoked again is no error.
    adapter.revoke(source.tokens)


# Limits and failures


def test_a_429_is_waited_out_for_its_retry_after_then_the_call_succeeds(clio, firm):
    clio.rate_limit, clio.rate_window = 2, 1.0
    adapter, _source = connect(clio)
    late = firm["bills"]["late"]
    for _ in range(2):
        adapter.get_invoices([str(late.id)])
    [invoice] = adapter.get_invoices([str(late.id)])

    assert invoice.number == "INV-101"
    statuses = [r.status for r in clio.api_calls("bills")]
    # One refusal only: the adapter waited until the window reset instead of hammering.
    assert statuses == [200, 200, 429, 200]


def test_rate_limited_is_raised_when_the_wait_would_exceed_the_budget(clio, firm):
    clio.rate_limit, clio.rate_window = 1, 30.0
    adapter, _source = connect(clio, **{"clientpay.clio.max_rate_wait": "0"})
    adapter.get_invoices([str(firm["bills"]["late"].id)])
    with pytest.raises(RateLimited) as refused:
        adapter.get_invoices([str(firm["bills"]["late"].id)])
    assert 1 <= refused.value.retry_after <= 30


def test_the_rate_limit_headers_come_with_every_answer(clio, firm):
    clio.rate_limit = 50
    adapter, source = connect(clio)
    answer = requests.get(
        adapter.api_base() + "/contacts.json",
        headers={**adapter.default_headers(), "Authorization": f"Bearer {source.access_token()}"},
        timeout=5,
    )
    assert answer.status_code == 200
    assert answer.headers["X-RateLimit-Limit"] == "50"
    assert answer.headers["X-RateLimit-Remaining"] == "49"
    assert int(answer.headers["X-RateLimit-Reset"]) > 0


def test_a_server_error_is_transient(clio, firm):
    adapter, _source = connect(clio)
    clio.fail_next(1, status=503)
    with pytest.raises(Transient):
        adapter.search("Smith")


def test_an_answer_slower_than_the_timeout_is_transient(clio, firm):
    adapter, _source = connect(clio, **{"clientpay.http_timeout": "0.3"})
    clio.slow_next(1, seconds=5)
    with pytest.raises(Transient):
        adapter.search("Smith")


# What the adapter asks for


def test_paging_walks_every_record_once(clio):
    client = clio.add_contact("Many", "Bills")
    matter = clio.add_matter(client, "00099-Many", "Many bills")
    made = {
        str(clio.add_bill(matter, f"M-{n:03}", "10", due=dt.date(2025, 1, 1) + dt.timedelta(n)).id)
        for n in range(23)
    }
    adapter, _source = connect(clio, **{"clientpay.clio.page_size": "5"})

    result = adapter.search("", client_id=str(client.id))

    ids = [invoice.id for invoice in result.invoices]
    assert sorted(ids) == sorted(made)
    assert len(ids) == len(set(ids))
    calls = clio.api_calls("bills")
    assert len(calls) == 5  # ceil(23 / 5)
    assert all(c.param("order") == "id(asc)" and c.param("limit") == "5" for c in calls)
    page_tokens = [c.param("page_token") for c in calls]
    assert page_tokens[0] is None
    assert len(set(page_tokens[1:])) == 4


def test_get_invoices_reads_any_state_in_chunks_and_skips_unknown_ids(clio, firm):
    adapter, _source = connect(clio, **{"clientpay.clio.page_size": "2"})
    bills = firm["bills"]
    asked = [str(bills[k].id) for k in ("paid", "late", "void", "bob")] + ["999999", "x"]

    invoices = adapter.get_invoices(asked)

    assert [i.number for i in invoices] == ["INV-104", "INV-101", "INV-106", "INV-201"]
    assert [i.state for i in invoices] == ["paid", "open", "void", "open"]
    # Two ids per call at page size 2: the four digit ids and the unknown one in three calls.
    assert [len(c.query["ids[]"]) for c in clio.api_calls("bills")] == [2, 2, 1]


def test_every_call_names_its_fields_and_sends_the_api_version(clio, firm):
    adapter, _source = connect(clio)
    adapter.search("Smith")
    adapter.get_invoices([str(firm["bills"]["late"].id)])

    calls = clio.api_calls()
    wanted = {"contacts": CONTACT_FIELDS, "matters": MATTER_FIELDS, "bills": BILL_FIELDS}
    assert {c.resource for c in calls} == set(wanted)
    assert all(c.param("fields") == wanted[c.resource] for c in calls)
    assert {c.api_version for c in calls} == {"4.0.9"}
    assert all(c.status == 200 for c in calls)


def test_the_api_version_comes_from_the_settings(clio, firm):
    adapter, _source = connect(clio, **{"clientpay.clio.api_version": "3.9.9"})
    # Clio answers 410 Gone to a version it does not know.
    with pytest.raises(Permanent):
        adapter.search("Smith")
    assert [c.status for c in clio.api_calls()] == [410]
    assert clio.api_calls()[0].api_version == "3.9.9"


# Regions


def test_each_connection_keeps_its_region_for_every_call(clio):
    for region, name in (("us", "Usha"), ("eu", "Eva")):
        client = clio.add_contact(name, "Client", region=region)
        matter = clio.add_matter(client, f"{region}-1", "Matter", region=region)
        for n in range(3):
            clio.add_bill(matter, f"{region.upper()}-{n}", "10", region=region)
    us, _ = connect(clio, "us", **{"clientpay.clio.page_size": "2"})
    eu, eu_tokens = connect(clio, "eu", **{"clientpay.clio.page_size": "2"})

    assert [c.name for c in eu.search("Client").clients] == ["Eva Client"]
    assert [i.number for i in eu.search("Client").invoices] == ["EU-0", "EU-1", "EU-2"]
    assert [c.name for c in us.search("Client").clients] == ["Usha Client"]

    # The eu adapter's calls, next pages included, all went to the eu region.
    eu_token_calls = [c for c in clio.api_calls() if c.token == eu_tokens.tokens.access_token]
    assert eu_token_calls
    assert {c.region for c in eu_token_calls} == {"eu"}
    assert clio.oauth["eu"].counts["exchanges"] == 1
    assert clio.oauth["us"].counts["exchanges"] == 1


def test_the_real_hosts_follow_the_region():
    hosts = {}
    for region in ("us", "eu", "ca", "au"):
        adapter = ClioAdapter(AdapterConfig({"region": region}, {}))
        hosts[region] = (adapter.api_base(), adapter.auth_base())
    assert hosts["us"] == ("https://app.clio.com/api/v4", "https://app.clio.com")
    assert hosts["eu"] == ("https://eu.app.clio.com/api/v4", "https://eu.app.clio.com")
    assert hosts["ca"][0] == "https://ca.app.clio.com/api/v4"
    assert hosts["au"][0] == "https://au.app.clio.com/api/v4"
    with pytest.raises(Permanent):
        ClioAdapter(AdapterConfig({"region": "mars"}, {}))


# Search and mapping


def test_a_search_by_name_groups_clients_matters_and_only_open_invoices_oldest_due_first(
    clio, firm
):
    adapter, _source = connect(clio)
    result = adapter.search("smith")

    assert [(c.name, c.email) for c in result.clients] == [("Jane Smith", "jane@smith.example")]
    assert [(m.number, m.name) for m in result.matters] == [
        ("00012-Smith", "Estate of Smith"),
        ("00013-Smith", "Lease dispute"),
    ]
    assert [i.number for i in result.invoices] == ["INV-101", "INV-103", "INV-102"]
    late = result.invoices[0]
    assert (late.total, late.paid, late.balance) == (120010, 20005, 100005)
    assert (late.issued_on, late.due_on) == (dt.date(2025, 1, 1), dt.date(2025, 1, 15))
    assert late.currency == "USD"
    assert late.client_id == str(firm["jane"].id)
    assert late.matter_id == str(firm["estate"].id)
    assert late.version.startswith('"')
    assert [i.account for i in result.invoices] == ["operating", ACCOUNT_TRUST, "operating"]


def test_a_search_by_invoice_number_or_matter_number(clio, firm):
    adapter, _source = connect(clio)
    by_number = adapter.search("INV-201")
    assert [i.number for i in by_number.invoices] == ["INV-201"]
    assert [c.name for c in by_number.clients] == ["Bob Jones"]
    assert [m.number for m in by_number.matters] == ["00020-Jones"]

    by_matter = adapter.search("00013")
    assert [m.number for m in by_matter.matters] == ["00013-Smith"]
    assert "INV-102" in [i.number for i in by_matter.invoices]


def test_a_search_narrowed_to_a_matter_shows_only_its_open_invoices(clio, firm):
    adapter, _source = connect(clio)
    result = adapter.search("", matter_id=str(firm["lease"].id))
    assert [i.number for i in result.invoices] == ["INV-102"]
    assert [m.number for m in result.matters] == ["00013-Smith"]
    assert adapter.search("nothing like it", client_id=str(firm["jane"].id)).invoices == []


def test_an_empty_search_asks_nothing(clio, firm):
    adapter, _source = connect(clio)
    result = adapter.search("   ")
    assert (result.clients, result.matters, result.invoices) == ([], [], [])
    assert clio.api_calls() == []


# Postings: manual


def posting(firm: dict[str, Any]) -> PostingRequest:
    bills = firm["bills"]
    return PostingRequest(
        key="posting-7f3a",
        received_on=dt.date(2025, 4, 2),
        currency="USD",
        allocations=(
            Allocation(str(bills["late"].id), "INV-101", 50000),
            Allocation(str(bills["later"].id), "INV-102", 8000),
        ),
        reference="R-000123",
        payer_name="Jane Smith",
        method="card",
        client_id=str(firm["jane"].id),
        matter_id=str(firm["estate"].id),
    )


def test_a_posting_becomes_a_slip_to_enter_by_hand_and_nothing_is_written(clio, firm):
    adapter, _source = connect(clio)
    result = adapter.record_payment(posting(firm))

    assert result.outcome == "manual_required"
    assert result.external_ids == {}
    slip = result.slip
    assert slip is not None
    assert slip.client == "Jane Smith"
    assert slip.matter == "00012-Smith Estate of Smith"
    assert slip.date == dt.date(2025, 4, 2)
    assert slip.reference == "R-000123"
    assert slip.lines == (("INV-101", 50000), ("INV-102", 8000))
    assert slip.currency == "USD"
    # Only reads reached Clio, and the bills are as they were.
    assert {c.method for c in clio.api_calls()} == {"GET"}
    assert firm["bills"]["late"].paid == Decimal("200.05")
    assert adapter.find_payment(posting(firm)) == {}


def test_the_slip_still_comes_when_clio_cannot_be_asked_for_names(clio, firm):
    adapter, _source = connect(clio)
    clio.fail_next(2, status=503)
    slip = adapter.record_payment(posting(firm)).slip
    assert slip is not None
    assert slip.client == f"Clio contact {firm['jane'].id}"
    assert slip.matter == f"Clio matter {firm['estate'].id}"
    assert slip.lines == (("INV-101", 50000), ("INV-102", 8000))


# The fake's own rules, so the tests above rest on a faithful Clio


def raw_get(adapter: ClioAdapter, token: str, path: str, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "X-API-VERSION": "4.0.9"}
    return requests.get(adapter.api_base() + path, params=params, headers=headers, timeout=5)


def test_the_fake_refuses_what_clio_refuses(clio, firm):
    adapter, source = connect(clio)
    token = source.access_token()
    assert (
        raw_get(adapter, token, "/bills.json", fields="id,matters{client{id}}").status_code == 400
    )
    assert raw_get(adapter, token, "/bills.json", fields="id,nonsense").status_code == 400
    assert raw_get(adapter, token, "/bills.json", limit="201").status_code == 400
    assert raw_get(adapter, token, "/bills.json", limit="2").status_code == 400  # no order
    default = raw_get(adapter, token, "/bills.json", limit="1", order="id(asc)").json()
    assert set(default["data"][0]) == {"id", "etag"}
    no_version = requests.get(
        adapter.api_base() + "/bills.json",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )
    assert no_version.status_code == 410
    eu = adapter.api_base().replace("/us/", "/eu/")
    other_region = requests.get(
        eu + "/bills.json",
        headers={"Authorization": f"Bearer {token}", "X-API-VERSION": "4.0.9"},
        timeout=5,
    )
    assert other_region.status_code == 401
