"""The MyCase adapter against the fake MyCase over real HTTP: OAuth, search, paging, rate
limits, and writing payments exactly once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from zope.interface.verify import verifyClass

from adapters.mycase import MyCaseAdapter
from clientpay_connect.connect.interfaces import (
    ENTRY_POINT_GROUP,
    AdapterConfig,
    Allocation,
    Conflict,
    IOAuthMatterAdapter,
    Permanent,
    PostingRequest,
    RateLimited,
    ReauthorizationRequired,
    TokenSet,
    Transient,
)
from tests.fakes.httpserver import running
from tests.fakes.mycase import FIRM_UUID, FakeMyCase
from tests.fakes.oauth import s256
from tests.support.tokens import MemoryTokenSource, authorize, connect

REDIRECT_URI = "https://clientpay.test/admin/connections/callback"
# Adapters a test made; each holds an HTTP session that the test's end closes.
OPENED: list[MyCaseAdapter] = []


@pytest.fixture(autouse=True)
def loopback_oauth(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib refuses plain HTTP unless told; only the fake speaks it, on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def fake() -> Iterator[FakeMyCase]:
    with running(FakeMyCase()) as server:
        yield server
    while OPENED:
        OPENED.pop().close()


def make_adapter(
    fake: FakeMyCase,
    tokens: MemoryTokenSource | None = None,
    identity: str = "",
    **settings: str,
) -> MyCaseAdapter:
    app_settings = {**fake.settings(), "clientpay.http_timeout": "2", **settings}
    config = AdapterConfig(
        settings={},
        app_settings=app_settings,
        tokens=tokens,
        redirect_uri=REDIRECT_URI,
        identity=identity,
    )
    adapter = MyCaseAdapter(config)
    OPENED.append(adapter)
    return adapter


def connected(
    fake: FakeMyCase, identity: str = "", **settings: str
) -> tuple[MyCaseAdapter, MemoryTokenSource]:
    """An adapter for a connection that went through the OAuth dance (``identity``: the
    connection as authorized, as the app names it; empty: the adapter keeps no copy)."""
    source = MemoryTokenSource(connect(make_adapter(fake)))
    adapter = make_adapter(fake, source, identity, **settings)
    source.refresh_with(adapter.refresh)
    return adapter, source


@dataclasses.dataclass
class Firm:
    """A small firm in the fake: two clients, three cases, invoices in every state."""

    ann: int
    bob: int
    estate: int
    divorce: int
    corp: int
    inv: dict[str, int]


@pytest.fixture
def firm(fake: FakeMyCase) -> Firm:
    ann = fake.add_client("Ann", "Whitaker", "ann@example.test")
    bob = fake.add_client("Bob", "Okafor", "bob@example.test")
    estate = fake.add_case("Whitaker Estate", "2025-0041", [ann])
    divorce = fake.add_case("Okafor v. Okafor", "2025-0042", [bob, ann], billing_contact_id=bob)
    corp = fake.add_case("Acme merger", "2025-0050", [bob])
    inv = {
        "W-1": fake.add_invoice(
            estate, "W-1", "1234.56", paid="0.10", due_date=dt.date(2025, 3, 1)
        ),
        "W-2": fake.add_invoice(estate, "W-2", "500", due_date=dt.date(2025, 1, 15)),
        "W-paid": fake.add_invoice(estate, "W-paid", "80", paid="80"),
        "W-draft": fake.add_invoice(estate, "W-draft", "90", draft=True),
        "O-1": fake.add_invoice(
            divorce,
            "O-1",
            "0.29",
            due_date=dt.date(2025, 4, 1),
            account_type="trust",
            allow_online_payments=False,
        ),
        "A-1": fake.add_invoice(corp, "A-1", "2000.00", due_date=None),
    }
    return Firm(ann, bob, estate, divorce, corp, inv)


def posting(key: str, *allocations: tuple[int, str, int]) -> PostingRequest:
    return PostingRequest(
        key=key,
        received_on=dt.date(2025, 6, 2),
        currency="USD",
        allocations=tuple(Allocation(str(i), number, amount) for i, number, amount in allocations),
        reference="R-1001",
        payer_name="Ann Whitaker",
        method="card",
    )


def numbers(result: Any) -> list[str]:
    return [invoice.number for invoice in result.invoices]


# The interface and its registration.


def test_the_adapter_implements_the_oauth_interface_and_is_registered():
    assert verifyClass(IOAuthMatterAdapter, MyCaseAdapter)
    (entry,) = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == "mycase"]
    assert entry.load() is MyCaseAdapter
    capabilities = MyCaseAdapter.capabilities
    assert (capabilities.search, capabilities.post) == (True, "api")
    assert (capabilities.multi_invoice, capabilities.trust, capabilities.oauth) == (
        False,
        True,
        True,
    )


# OAuth.


def test_the_oauth_dance_connects(fake: FakeMyCase, firm: Firm):
    adapter = make_adapter(fake)
    authorization = authorize(adapter, state="the-admins-state")

    url = urlsplit(authorization.url)
    query = parse_qs(url.query)
    assert url.path == "/auth/login_sessions/new"
    assert query["client_id"] == [fake.settings()["clientpay.mycase.client_id"]]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["response_type"] == ["code"]
    assert query["code_challenge"] == [s256(authorization.code_verifier)]
    assert query["code_challenge_method"] == ["S256"]
    assert authorization.redirected_to.startswith(REDIRECT_URI + "?")
    assert authorization.state == "the-admins-state"

    tokens = adapter.exchange_code(authorization.code, authorization.code_verifier)
    assert tokens.access_token and tokens.refresh_token
    assert tokens.extra["firm_uuid"] == FIRM_UUID
    assert tokens.expires_at is not None
    assert tokens.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(hours=23)

    source = MemoryTokenSource(tokens)
    working = make_adapter(fake, source)
    source.refresh_with(working.refresh)
    assert numbers(working.search("whitaker")) == ["W-2", "W-1", "O-1"]
    assert fake.oauth.counts["exchanges"] == 1


def test_a_used_code_is_refused(fake: FakeMyCase):
    adapter = make_adapter(fake)
    authorization = authorize(adapter)
    adapter.exchange_code(authorization.code, authorization.code_verifier)

    with pytest.raises(Permanent):
        adapter.exchange_code(authorization.code, authorization.code_verifier)
    assert fake.oauth.counts["exchanges"] == 1


def test_a_code_with_the_wrong_pkce_verifier_is_refused(fake: FakeMyCase):
    adapter = make_adapter(fake)
    authorization = authorize(adapter)

    with pytest.raises(Permanent):
        adapter.exchange_code(authorization.code, "not-the-verifier-" + "x" * 40)
    # A refused code is spent: the right verifier cannot rescue it afterwards.
    with pytest.raises(Permanent):
        adapter.exchange_code(authorization.code, authorization.code_verifier)
    assert fake.oauth.counts["exchanges"] == 0


def test_a_stale_token_is_refreshed_exactly_once_under_ten_concurrent_searches(
    fake: FakeMyCase, firm: Firm
):
    adapter, source = connected(fake)
    stale = source.tokens.access_token
    fake.oauth.expire_access_tokens()
    start = threading.Barrier(10)

    def search(_: int) -> list[str]:
        start.wait()
        return numbers(adapter.search("2025-0041"))

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(search, range(10)))

    assert answers == [["W-2", "W-1"]] * 10
    assert fake.oauth.refreshes == 1
    assert source.refreshes == 1
    assert source.tokens.access_token != stale
    # Every search met the expired token at most once, then used the one new token.
    assert 1 <= fake.statuses("/v1/cases").count(401) <= 10


def test_a_token_about_to_expire_is_refreshed_once_before_use_by_concurrent_adapters(
    fake: FakeMyCase, firm: Firm
):
    tokens = connect(make_adapter(fake))
    # The connection knows its token expires now; the vendor would still take it.
    expiring = dataclasses.replace(tokens, expires_at=dt.datetime.now(dt.UTC))
    source = MemoryTokenSource(expiring)
    adapters = [make_adapter(fake, source) for _ in range(10)]
    source.refresh_with(adapters[0].refresh)
    start = threading.Barrier(10)

    def search(adapter: MyCaseAdapter) -> list[str]:
        start.wait()
        return numbers(adapter.search("okafor"))

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(search, adapters))

    assert answers == [["O-1", "A-1"]] * 10
    assert fake.oauth.refreshes == 1
    assert 401 not in fake.statuses("/v1/cases")
    assert source.tokens.extra["firm_uuid"] == FIRM_UUID


def test_a_revoked_grant_needs_reauthorization(fake: FakeMyCase, firm: Firm):
    adapter, source = connected(fake)
    refresh_token = source.tokens.refresh_token
    assert refresh_token is not None
    fake.oauth.revoke_refresh_tokens()
    fake.oauth.expire_access_tokens()

    with pytest.raises(ReauthorizationRequired):
        adapter.search("whitaker")
    with pytest.raises(ReauthorizationRequired):
        adapter.refresh(refresh_token)
    assert fake.oauth.refreshes == 0


def test_a_rotated_refresh_token_cannot_be_used_twice(fake: FakeMyCase):
    adapter = make_adapter(fake)
    tokens = connect(adapter)
    assert tokens.refresh_token is not None
    renewed = adapter.refresh(tokens.refresh_token)
    assert renewed.refresh_token not in (None, tokens.refresh_token)

    with pytest.raises(ReauthorizationRequired):
        adapter.refresh(tokens.refresh_token)


def test_without_tokens_the_connection_needs_authorization(fake: FakeMyCase, firm: Firm):
    with pytest.raises(ReauthorizationRequired):
        make_adapter(fake).search("whitaker")


def test_revoke_is_a_no_op_for_mycase(fake: FakeMyCase):
    # MyCase documents no revocation endpoint; revoking must not fail the disconnect.
    adapter = make_adapter(fake)
    tokens = connect(adapter)
    adapter.revoke(tokens)
    adapter.revoke(TokenSet("dead", None, None))
    assert sum(fake.counts.values()) == 0


# Rate limits and failures.


def test_a_429_is_waited_out_for_its_retry_after_then_the_call_succeeds(
    fake: FakeMyCase, firm: Firm
):
    adapter, _source = connected(fake)
    fake.throttle_next(1, retry_after=1, path_prefix="/v1/cases")

    assert numbers(adapter.search("2025-0050")) == ["A-1"]

    cases = [r for r in fake.requests if r.path == "/v1/cases"]
    assert [r.status for r in cases] == [429, 200]
    assert cases[1].at - cases[0].at >= 1.0


def test_a_posting_job_can_ask_to_be_told_at_once(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    impatient = MyCaseAdapter(adapter.config, max_rate_wait=0)
    OPENED.append(impatient)
    fake.throttle_next(1, retry_after=7)

    with pytest.raises(RateLimited) as raised:
        impatient.record_payment(posting("k-429", (firm.inv["W-2"], "W-2", 100_00)))

    assert raised.value.retry_after == 7
    assert fake.ledger == []
    assert sum(fake.counts.values()) == 1


def test_a_wait_longer_than_allowed_raises_rate_limited(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake, **{"clientpay.mycase.max_rate_wait": "2"})
    fake.throttle_next(1, retry_after=60)

    with pytest.raises(RateLimited) as raised:
        adapter.search("whitaker")
    assert raised.value.retry_after == 60


def test_the_vendors_own_rate_limit_is_respected_across_many_pages(fake: FakeMyCase):
    client = fake.add_client("Many", "Invoices")
    case = fake.add_case("Many invoices", "M-1", [client])
    for n in range(12):
        fake.add_invoice(case, f"M-{n:02}", "10")
    fake.rate_limit = (4, 1.0)
    adapter, _source = connected(fake, **{"clientpay.mycase.page_size": "2"})

    assert len(adapter.search("many").invoices) == 12
    served = [r for r in fake.requests if r.status == 200]
    assert len(served) == 1 + 6  # one page of cases, six of invoices
    assert 429 in [r.status for r in fake.requests]


def test_a_5xx_is_transient(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    fake.fail_next(1, status=503)
    with pytest.raises(Transient):
        adapter.search("whitaker")
    assert numbers(adapter.search("2025-0050")) == ["A-1"]


def test_a_slow_answer_times_out_as_transient(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake, **{"clientpay.http_timeout": "0.3"})
    fake.hold_next(1, seconds=5)
    with pytest.raises(Transient):
        adapter.search("whitaker")


# Search and paging.


def test_search_finds_open_invoices_by_client_case_and_invoice_number(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)

    by_name = adapter.search("  WHITA ")
    # Ann is a client of both her estate and (with Bob, the billing contact) the divorce.
    assert numbers(by_name) == ["W-2", "W-1", "O-1"]
    assert [c.name for c in by_name.clients] == ["Ann Whitaker", "Bob Okafor"]
    assert [m.number for m in by_name.matters] == ["2025-0041", "2025-0042"]
    assert by_name.matters[1].client_id == str(firm.bob)

    assert numbers(adapter.search("2025-005")) == ["A-1"]
    assert numbers(adapter.search("merger")) == ["A-1"]
    assert numbers(adapter.search("w-1")) == ["W-1"]
    assert numbers(adapter.search("nobody")) == []
    assert adapter.search("").invoices == []


def test_search_narrows_to_a_client_or_a_matter(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)

    anns = adapter.search("", client_id=str(firm.ann))
    assert numbers(anns) == ["W-2", "W-1", "O-1"]
    assert {i.client_id for i in anns.invoices} == {str(firm.ann)}
    assert [c.id for c in anns.clients] == [str(firm.ann)]

    assert numbers(adapter.search("", matter_id=str(firm.corp))) == ["A-1"]
    assert numbers(adapter.search("w-", matter_id=str(firm.estate))) == ["W-2", "W-1"]
    assert numbers(adapter.search("acme", client_id=str(firm.ann))) == []


def test_invoices_come_in_minor_units_with_their_account_and_version(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    by_number = {i.number: i for i in adapter.search("", client_id=str(firm.ann)).invoices}

    w1 = by_number["W-1"]
    assert (w1.total, w1.paid, w1.balance) == (123456, 10, 123446)
    assert (w1.issued_on, w1.due_on) == (dt.date(2025, 1, 1), dt.date(2025, 3, 1))
    assert (w1.currency, w1.account, w1.state) == ("USD", "operating", "open")
    assert w1.matter_id == str(firm.estate) and w1.version
    # 0.29 as a JSON number is 0.28999… in binary: still exactly 29 cents here.
    o1 = by_number["O-1"]
    assert (o1.total, o1.balance, o1.account) == (29, 29, "trust")
    # The divorce's billing contact is Bob, but asked about Ann, her view is Ann's.
    assert o1.client_id == str(firm.ann)


def test_paging_walks_every_record_once(fake: FakeMyCase):
    client = fake.add_client("Paige", "Turner")
    cases = [fake.add_case(f"Matter {n}", f"P-{n:03}", [client]) for n in range(9)]
    created = {fake.add_invoice(cases[n % 9], f"P-INV-{n:03}", f"{n + 1}.25") for n in range(53)}
    adapter, _source = connected(fake, **{"clientpay.mycase.page_size": "10"})

    result = adapter.search("turner")

    ids = [i.id for i in result.invoices]
    assert sorted(ids) == sorted(str(i) for i in created)
    assert len(set(ids)) == len(ids) == 53
    assert len(result.matters) == 9
    assert fake.counts["GET /v1/invoices"] == 6  # 53 records, 10 a page
    assert fake.counts["GET /v1/cases"] == 1


# The copy of the firm's book kept between searches.


def list_reads(fake: FakeMyCase, since: int) -> list[tuple[str, str | None]]:
    """(list, its filter[updated_after] or None) of each read of a list after ``since``."""
    return [
        (r.path.rsplit("/", 1)[-1], dict(r.query).get("filter[updated_after]"))
        for r in fake.requests[since:]
        if r.method == "GET" and r.path in ("/v1/cases", "/v1/invoices")
    ]


def test_a_second_search_reads_only_the_changes_and_sees_a_payment_made_in_mycase(
    fake: FakeMyCase, firm: Firm
):
    adapter, _source = connected(fake, identity="connection-1@2026-12-01")
    assert numbers(adapter.search("whitaker")) == ["W-2", "W-1", "O-1"]
    first = len(fake.requests)
    fake.set_paid(firm.inv["W-2"], "500")  # paid in full at the firm's office

    assert numbers(adapter.search("whitaker")) == ["W-1", "O-1"]
    reads = list_reads(fake, first)
    assert [name for name, _ in reads] == ["cases", "invoices"]
    # Both from a little before the newest change already seen, never the whole book again.
    assert all(since is not None and since.endswith("Z") for _, since in reads)


def test_a_new_invoice_shows_at_the_next_search(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake, identity="connection-1@2026-12-01")
    assert numbers(adapter.search("2025-0041")) == ["W-2", "W-1"]
    fake.add_invoice(firm.estate, "W-3", "75.00", due_date=dt.date(2025, 1, 1))

    assert numbers(adapter.search("2025-0041")) == ["W-3", "W-2", "W-1"]


def test_a_deleted_invoice_is_gone_once_the_book_is_read_whole_again(fake: FakeMyCase, firm: Firm):
    kept, _ = connected(fake, identity="connection-1@2026-12-01")
    rereading, _ = connected(
        fake, identity="connection-2@2026-12-01", **{"clientpay.mycase.full_read_seconds": "0"}
    )
    assert numbers(kept.search("w-")) == numbers(rereading.search("w-")) == ["W-2", "W-1"]
    fake.remove_invoice(firm.inv["W-2"])

    # A deletion is no change to list: the copy keeps it until its next whole read...
    assert numbers(kept.search("w-")) == ["W-2", "W-1"]
    # ...which a copy older than full_read_seconds makes.
    assert numbers(rereading.search("w-")) == ["W-1"]
    # Until then a payment written to it is refused by MyCase itself (a conflict to resolve).
    with pytest.raises(Conflict, match="no longer in MyCase"):
        kept.record_payment(posting("cp-gone", (firm.inv["W-2"], "W-2", 100_00)))


def test_reconnecting_starts_a_copy_of_its_own(fake: FakeMyCase, firm: Firm):
    before, _ = connected(fake, identity="connection-1@2026-12-01")
    assert numbers(before.search("acme")) == ["A-1"]
    fake.remove_invoice(firm.inv["A-1"])
    start = len(fake.requests)

    after, _ = connected(fake, identity="connection-1@2026-12-06")
    assert numbers(after.search("acme")) == []
    assert list_reads(fake, start) == [("cases", None), ("invoices", None)]


def test_an_invoice_asked_for_by_id_comes_with_its_cases_client_from_the_copy(
    fake: FakeMyCase, firm: Firm
):
    adapter, _source = connected(fake, identity="connection-1@2026-12-01")
    adapter.search("okafor")
    start = len(fake.requests)

    (o1,) = adapter.get_invoices([str(firm.inv["O-1"])])

    assert (o1.number, o1.client_id) == ("O-1", str(firm.bob))
    assert not [r for r in fake.requests[start:] if r.path.startswith("/v1/cases/")]


def test_the_page_size_never_exceeds_mycases_maximum(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake, **{"clientpay.mycase.page_size": "5000"})
    assert numbers(adapter.search("2025-0050")) == ["A-1"]


def test_get_invoices_reads_any_state_and_leaves_unknown_ids_out(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)

    found = adapter.get_invoices([str(firm.inv["W-paid"]), str(firm.inv["O-1"]), "999999"])

    by_number = {i.number: i for i in found}
    assert set(by_number) == {"W-paid", "O-1"}
    assert (by_number["W-paid"].state, by_number["W-paid"].balance) == ("paid", 0)
    assert by_number["O-1"].client_id == str(firm.bob)
    assert adapter.get_invoices([]) == []


# Writing payments.


def test_record_payment_writes_exactly_one_payment_per_allocation(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    request = posting("post-1", (firm.inv["W-2"], "W-2", 120_50), (firm.inv["W-1"], "W-1", 1_01))

    result = adapter.record_payment(request)

    assert result.outcome == "posted"
    ledger = fake.ledger
    assert [(p.invoice_id, p.amount, p.date) for p in ledger] == [
        (firm.inv["W-2"], Decimal("120.5"), "2025-06-02"),
        (firm.inv["W-1"], Decimal("1.01"), "2025-06-02"),
    ]
    assert dict(result.external_ids) == {str(p.invoice_id): str(p.id) for p in ledger}
    assert all("[clientpay:post-1]" in p.notes and "R-1001" in p.notes for p in ledger)
    after = {
        i.number: i for i in adapter.get_invoices([str(firm.inv["W-2"]), str(firm.inv["W-1"])])
    }
    assert (after["W-2"].paid, after["W-2"].balance) == (120_50, 379_50)
    assert after["W-1"].paid == 10 + 1_01
    assert adapter.find_payment(request) == dict(result.external_ids)


def test_allocations_already_written_are_skipped(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    done = Allocation(str(firm.inv["W-2"]), "W-2", 5_00, external_id="written-before")
    request = dataclasses.replace(
        posting("post-2", (firm.inv["W-1"], "W-1", 7_00)),
        allocations=(done, Allocation(str(firm.inv["W-1"]), "W-1", 7_00)),
    )

    result = adapter.record_payment(request)

    assert result.outcome == "posted"
    assert result.external_ids[str(firm.inv["W-2"])] == "written-before"
    assert [p.invoice_id for p in fake.ledger] == [firm.inv["W-1"]]


@pytest.mark.parametrize("how", ["drop", "hold"])
def test_a_lost_answer_is_found_by_its_key_and_never_written_twice(
    fake: FakeMyCase, firm: Firm, how: str
):
    adapter, _source = connected(fake, **{"clientpay.http_timeout": "0.5"})
    request = posting("post-lost", (firm.inv["A-1"], "A-1", 250_00))
    assert adapter.find_payment(request) == {}
    fake.lose_next_payment_answers(1, how=how)  # type: ignore[arg-type]

    with pytest.raises(Transient):
        adapter.record_payment(request)

    (recorded,) = fake.ledger
    found = adapter.find_payment(request)
    assert found == {str(firm.inv["A-1"]): str(recorded.id)}
    # The retry the posting job makes: what find_payment found is marked written.
    retry = dataclasses.replace(
        request,
        allocations=tuple(
            dataclasses.replace(a, external_id=found.get(a.invoice_id)) for a in request.allocations
        ),
    )
    assert adapter.record_payment(retry).outcome == "posted"
    assert len(fake.ledger) == 1
    assert fake.invoice_paid(firm.inv["A-1"]) == Decimal("250")


def test_a_failure_midway_reports_what_was_written_and_the_retry_writes_the_rest(
    fake: FakeMyCase, firm: Firm
):
    adapter, _source = connected(fake)
    request = posting("post-mid", (firm.inv["W-2"], "W-2", 10_00), (firm.inv["A-1"], "A-1", 20_00))
    fake.fail_next(1, status=502, path_prefix=f"/v1/invoices/{firm.inv['A-1']}/payments")

    first = adapter.record_payment(request)

    assert first.outcome == "partially_posted"
    assert list(first.external_ids) == [str(firm.inv["W-2"])]
    assert "502" in first.message or "try again" in first.message
    retry = dataclasses.replace(
        request,
        allocations=tuple(
            dataclasses.replace(a, external_id=first.external_ids.get(a.invoice_id))
            for a in request.allocations
        ),
    )
    second = adapter.record_payment(retry)
    assert second.outcome == "posted"
    assert [p.invoice_id for p in fake.ledger] == [firm.inv["W-2"], firm.inv["A-1"]]
    assert adapter.find_payment(request) == dict(second.external_ids)


def test_a_failure_before_any_write_is_raised_as_it_is(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    fake.fail_next(1, status=500, path_prefix="/v1/invoices/")
    with pytest.raises(Transient):
        adapter.record_payment(posting("post-5xx", (firm.inv["W-2"], "W-2", 10_00)))
    assert fake.ledger == []


def test_a_payment_above_the_balance_is_a_conflict(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    fake.set_paid(firm.inv["W-2"], "450")  # paid at the office meanwhile

    with pytest.raises(Conflict, match="balance"):
        adapter.record_payment(posting("post-over", (firm.inv["W-2"], "W-2", 100_00)))
    assert fake.ledger == []


def test_a_payment_to_an_invoice_gone_from_mycase_is_a_conflict(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    with pytest.raises(Conflict, match="no longer"):
        adapter.record_payment(posting("post-gone", (987654, "X-9", 100)))


def test_a_payment_in_another_currency_is_refused_before_any_call(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    request = dataclasses.replace(
        posting("post-eur", (firm.inv["W-2"], "W-2", 100)), currency="EUR"
    )
    with pytest.raises(Permanent):
        adapter.record_payment(request)
    assert sum(fake.counts.values()) == 0


def test_an_invoice_twice_in_one_payment_is_refused_before_any_call(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    twice = posting("post-twice", (firm.inv["W-2"], "W-2", 100), (firm.inv["W-2"], "W-2", 200))
    with pytest.raises(Permanent):
        adapter.record_payment(twice)
    assert sum(fake.counts.values()) == 0


def test_find_payment_matches_the_whole_key_only(fake: FakeMyCase, firm: Firm):
    adapter, _source = connected(fake)
    adapter.record_payment(posting("p-10", (firm.inv["W-2"], "W-2", 1_00)))

    assert adapter.find_payment(posting("p-1", (firm.inv["W-2"], "W-2", 1_00))) == {}
    assert list(adapter.find_payment(posting("p-10", (firm.inv["W-2"], "W-2", 1_00)))) == [
        str(firm.inv["W-2"])
    ]
