"""The fake MyCase keeps the documented rules the adapter's tests rely on: a test against a
fake that is laxer than MyCase would prove nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from adapters.mycase import MyCaseAdapter
from clientpay_connect.connect.interfaces import AdapterConfig
from tests.fakes.httpserver import running
from tests.fakes.mycase import FakeMyCase
from tests.support.tokens import connect


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMyCase]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with running(FakeMyCase()) as server:
        yield server


@pytest.fixture
def api(fake: FakeMyCase) -> Iterator[requests.Session]:
    adapter = MyCaseAdapter(
        AdapterConfig(settings={}, app_settings=fake.settings(), redirect_uri="https://x.test/cb")
    )
    tokens = connect(adapter)
    adapter.close()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {tokens.access_token}"
        yield session


def get(session: requests.Session, fake: FakeMyCase, path: str, **params: str) -> requests.Response:
    return session.get(fake.api_url + path, params=params, timeout=5)


def test_every_call_needs_a_live_token(fake: FakeMyCase, api: requests.Session):
    assert requests.get(fake.api_url + "/invoices", timeout=5).status_code == 401
    assert get(api, fake, "/invoices").status_code == 200
    fake.oauth.expire_access_tokens()
    assert get(api, fake, "/invoices").status_code == 401


def test_pages_have_a_next_link_and_an_item_count(fake: FakeMyCase, api: requests.Session):
    client = fake.add_client("Page", "Count")
    case = fake.add_case("Paging", "PG-1", [client])
    for n in range(30):
        fake.add_invoice(case, f"PG-{n}", "1")

    first = get(api, fake, "/invoices")
    assert len(first.json()) == 25  # MyCase's default page size
    assert first.headers["Item-Count"] == "30"
    second = api.get(first.links["next"]["url"], timeout=5)
    assert len(second.json()) == 5 and "next" not in second.links
    assert {i["id"] for i in first.json()}.isdisjoint({i["id"] for i in second.json()})
    assert get(api, fake, "/invoices", page_size="1001").status_code == 422
    assert get(api, fake, "/invoices", page_size="0").status_code == 422
    assert get(api, fake, "/invoices", page_token="garbage!").status_code == 422


def test_invoices_that_refuse_online_payment_are_listed_only_when_asked(
    fake: FakeMyCase, api: requests.Session
):
    client = fake.add_client("Off", "Line")
    case = fake.add_case("Offline", None, [client])
    fake.add_invoice(case, "ON", "1")
    fake.add_invoice(case, "OFF", "1", allow_online_payments=False)

    by_default = [i["invoice_number"] for i in get(api, fake, "/invoices").json()]
    everything = get(api, fake, "/invoices", only_allowed_online_payments="false").json()
    assert by_default == ["ON"]
    assert [i["invoice_number"] for i in everything] == ["ON", "OFF"]


def test_a_cases_clients_carry_only_their_id_unless_fields_are_asked(
    fake: FakeMyCase, api: requests.Session
):
    client = fake.add_client("Fiona", "Fields", "f@example.test")
    fake.add_case("Fields", "F-1", [client])

    (bare,) = get(api, fake, "/cases").json()
    (named,) = get(api, fake, "/cases", **{"field[client]": "id,first_name,last_name"}).json()
    assert bare["clients"] == [{"id": client}]
    assert named["clients"] == [{"id": client, "first_name": "Fiona", "last_name": "Fields"}]


def test_a_payment_is_validated_recorded_and_listed_by_invoice(
    fake: FakeMyCase, api: requests.Session
):
    client = fake.add_client("Pay", "Er")
    case = fake.add_case("Payments", "PA-1", [client])
    invoice = fake.add_invoice(case, "PA-1", "100.00", due_date=None)
    other = fake.add_invoice(case, "PA-2", "100.00")
    url = f"{fake.api_url}/invoices/{invoice}/payments"

    assert api.post(url, json={"date": "2025-06-02"}, timeout=5).status_code == 422
    assert api.post(url, json={"amount": 1.001, "date": "2025-06-02"}, timeout=5).status_code == 422
    assert (
        api.post(url, json={"amount": 100.01, "date": "2025-06-02"}, timeout=5).status_code == 422
    )
    assert api.post(url, json={"amount": 1, "date": "June 2"}, timeout=5).status_code == 422
    paid = api.post(url, json={"amount": 40.5, "date": "2025-06-02", "notes": "n"}, timeout=5)

    assert paid.status_code == 200
    assert paid.json()["invoice"] == {"id": invoice} and paid.json()["amount"] == 40.5
    listed = get(api, fake, "/invoice_payments", **{"filter[payable_id]": str(invoice)}).json()
    assert [p["id"] for p in listed] == [paid.json()["id"]]
    assert get(api, fake, "/invoice_payments", **{"filter[payable_id]": str(other)}).json() == []
    (row,) = [i for i in get(api, fake, "/invoices").json() if i["id"] == invoice]
    assert (row["paid_amount"], row["status"]) == (40.5, "partial")


def test_the_rate_limit_answers_429_with_retry_after(fake: FakeMyCase, api: requests.Session):
    fake.rate_limit = (3, 60.0)
    statuses = [get(api, fake, "/clients").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    retry_after = int(get(api, fake, "/clients").headers["Retry-After"])
    assert 1 <= retry_after <= 60
