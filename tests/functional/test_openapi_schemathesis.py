"""The OpenAPI document is exact: schemathesis against the live app (house rule 14).

The app is served by waitress on loopback, on a fresh migrated database with the demo firm,
exactly as in production. Every operation of the document it serves at
/api/v1/openapi.json is called with a real API token and, most of the time, real ids (a
merchant account, a link, a bulk upload, a connection, a posting, a user, a payer's link),
so that requests reach the application's own rules and not only its 404. Every schemathesis
check runs: no server error, every status code documented, every answer in its documented
schema and content type, refused what the document refuses (negative data), accepted what it
accepts (positive data), 405 with an Allow header for a method a path does not have, 401
without credentials, and so on.

The generation is derandomized and seeded, and the examples per operation are few, so that
the run is reproducible and short (about 90 seconds on one core).
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.engine import events
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from tests.support.live_server import LiveServer, start_live_server

SEED = 20261206
# Per operation, besides the examples of the document and schemathesis's coverage cases
# (boundaries, missing and wrong values, other methods), which are always all run.
MAX_EXAMPLES = 10
TIMEOUT = 30


@dataclass(frozen=True)
class RealData:
    """Ids of real objects of the demo firm, made through the API before the run."""

    admin_token: str
    staff_token: str
    merchant_account_id: int
    # A merchant account of its own for PATCH /merchant-accounts/{id}, which may deactivate it.
    spare_merchant_account_id: int
    link_id: int
    pay_token: str
    bulk_upload_id: int
    connection_id: int
    # A connection of its own for DELETE /connections/{id}.
    spare_connection_id: int
    posting_id: int
    # A user of its own for PATCH /users/{id}, which may deactivate them.
    spare_user_id: int


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("schemathesis-db")


@pytest.fixture(scope="module")
def live(base_settings: dict[str, Any], folder: Path) -> Iterator[LiveServer]:
    """A live server of this module's own: the run changes its data (settings, users,
    accounts), which the browser tests on the shared one must not see."""
    yield from start_live_server(base_settings, folder)


@pytest.fixture(scope="module")
def real(live: LiveServer, folder: Path) -> RealData:
    with live.dbsession() as session:
        admin = find_user_by_email(session, live.admin.email)
        staff = find_user_by_email(session, live.staff.email)
        assert admin is not None and staff is not None
        admin_token = create_api_token(session, admin, "schemathesis")[1]
        staff_token = create_api_token(session, staff, "schemathesis")[1]
    api = Api(live.url, admin_token)
    accounts = api.get("/merchant-accounts")["items"]
    operating = next(a for a in accounts if a["kind"] == "operating")
    spare_account = api.post(
        "/merchant-accounts",
        {"name": "Spare", "kind": "operating", "currency": "USD", "methods": ["card"]},
    )
    link = api.post(
        "/links",
        {"merchant_account_id": operating["id"], "amount": "125.00", "invoice_number": "ST-1"},
    )
    connection = api.get("/connections")["items"][0]
    spare_connection = api.post(
        "/connections",
        # The demo matter database that start_live_server made in the folder.
        {
            "adapter": "sql",
            "name": "Spare",
            "settings": {"url": f"sqlite:///{folder / 'demo-matters.sqlite'}"},
        },
    )
    return RealData(
        admin_token=admin_token,
        staff_token=staff_token,
        merchant_account_id=operating["id"],
        spare_merchant_account_id=spare_account["id"],
        link_id=link["id"],
        pay_token=link["url"].rsplit("/", 1)[1],
        bulk_upload_id=bulk_upload(api, operating["id"]),
        connection_id=connection["id"],
        spare_connection_id=spare_connection["id"],
        posting_id=paid_posting(api, live.url, connection["id"], operating["id"]),
        spare_user_id=api.post(
            "/users", {"email": "spare@demo.test", "name": "Spare User", "role": "staff"}
        )["id"],
    )


class Api:
    """The few calls that make the real data, each checked."""

    def __init__(self, url: str, token: str):
        self.base = url + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        answer = requests.get(
            self.base + path, params=params, headers=self.headers, timeout=TIMEOUT
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> Any:
        answer = requests.post(
            self.base + path, json=body, headers=self.headers, timeout=TIMEOUT, **kwargs
        )
        assert answer.status_code == 201, answer.text
        return answer.json()


def bulk_upload(api: Api, merchant_account_id: int) -> int:
    rows = (
        "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address\n"
        "ST-B1,2026-01-15,2026-02-14,Jane Doe,1250.00,jane.doe@example.com\n"
        "ST-B2,2026-01-20,2026-02-19,Acme LLC,400.50,ap@acme.example\n"
    )
    answer = requests.post(
        api.base + "/bulk-uploads",
        data={"merchant_account_id": str(merchant_account_id)},
        files={"file": ("invoices.csv", io.BytesIO(rows.encode()), "text/csv")},
        headers=api.headers,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 201, answer.text
    upload_id: int = answer.json()["id"]
    return upload_id


def paid_posting(api: Api, url: str, connection_id: int, merchant_account_id: int) -> int:
    """A Connect link for the demo matter system's first open operating invoice, paid by
    card: its posting."""
    found = api.get("/connect/search", connection_id=connection_id, q="a")
    invoice = next(i for i in found["invoices"] if i["account"] == "operating")
    link = api.post(
        "/connect/links",
        {
            "connection_id": connection_id,
            "merchant_account_id": merchant_account_id,
            "invoices": [{"id": invoice["id"], "amount": "10.00"}],
        },
    )
    card = requests.post(
        url + "/sandbox/tokens",
        json={"card_number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
        timeout=TIMEOUT,
    )
    assert card.status_code == 200, card.text
    paid = requests.post(
        f"{api.base}/pay/{link['url'].rsplit('/', 1)[1]}",
        json={
            "payment_token": card.json()["token"],
            "amount": "10.00",
            "payer_name": "Pat Payer",
            "payer_email": "pat@example.test",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )
    assert paid.status_code == 201, paid.text
    postings = api.get("/postings", status="all")["items"]
    posting_id: int = next(p["id"] for p in postings if p["link_id"] == link["id"])
    return posting_id


def schemathesis_config(real: RealData) -> schemathesis.Config:
    def real_id(path: str, name: str, value: int | str) -> dict[str, Any]:
        # Mostly the real object, sometimes a generated id (which must answer 404).
        dictionary = f"{path}:{name}"
        dictionaries[dictionary] = {"values": [value]}
        return {
            "include-path": path,
            "parameters": {f"path.{name}": {"dictionary": dictionary, "probability": 0.8}},
        }

    dictionaries: dict[str, Any] = {}
    operations = [
        real_id("/merchant-accounts/{id}", "id", real.spare_merchant_account_id),
        real_id("/users/{id}", "id", real.spare_user_id),
        real_id("/links/{id}", "id", real.link_id),
        real_id("/links/{id}/balance-link", "id", real.link_id),
        real_id("/pay/{token}", "token", real.pay_token),
        real_id("/connections/{id}", "id", real.spare_connection_id),
        real_id("/connections/{id}/authorize", "id", real.connection_id),
        real_id("/connections/{id}/callback", "id", real.connection_id),
        real_id("/postings/{id}", "id", real.posting_id),
        real_id("/postings/{id}/remove", "id", real.posting_id),
        real_id("/postings/{id}/entered-by-hand", "id", real.posting_id),
    ]
    for suffix in (
        "",
        "/rows",
        "/rows/{row}",
        "/send",
        "/generate",
        "/links.csv",
        "/links.xlsx",
        "/report.csv",
    ):
        operations.append(real_id("/bulk-uploads/{id}" + suffix, "id", real.bulk_upload_id))
    body_ids = {
        "merchant_account_id": real.merchant_account_id,
        "connection_id": real.connection_id,
    }
    for name, value in body_ids.items():
        dictionaries[name] = {"values": [value]}
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # No cache of earlier runs (.schemathesis/): every run starts from the same place.
            "cache": {"enabled": False},
            "headers": {"Authorization": f"Bearer {real.admin_token}"},
            "request-timeout": TIMEOUT,
            # Every failure of every operation, not only the first.
            "continue-on-failure": True,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "mode": "all"},
            # Replaced by valid_data_accepted_but_for_server_rules, which runs it.
            "checks": {
                "positive_data_acceptance": {"enabled": False},
                # A body above the documented cap is refused whole (413) before it is read.
                "negative_data_rejection": {
                    "expected-statuses": [
                        400,
                        401,
                        403,
                        404,
                        405,
                        406,
                        409,
                        413,
                        415,
                        422,
                        428,
                        429,
                    ]
                },
            },
            "dictionaries": dictionaries,
            "parameters": {
                **{f"body.{name}": {"dictionary": name, "probability": 0.8} for name in body_ids},
                **{f"query.{name}": {"dictionary": name, "probability": 0.8} for name in body_ids},
            },
            "operations": operations,
        }
    )


# A request the document accepts may still break a rule that no JSON Schema can state: it
# depends on the data (an account of your firm, an address not in use, a cursor we gave out,
# an invoice the matter system has) or on two fields together (a period that ends before it
# starts). Each such rule is described in the document beside its field, and answered 422
# naming the field. Here, per operation, the fields whose 422 is such a rule; a 422 for
# valid data on any other field is a schema looser than the server, and fails.
ACCOUNT = "one of the firm's active merchant accounts"
EMAIL = "a deliverable address (the application's own check, stricter than a format)"
MONEY = 'an amount above zero in the currency\'s digits, "$1,234.50" read too'
CURSOR = "a cursor the previous page gave out"
SERVER_RULES: dict[str, dict[str, str]] = {
    "POST /links": {
        "merchant_account_id": ACCOUNT,
        "amount": MONEY,
        "invoice_date": "a real date",
        "due_date": "a real date, not before invoice_date",
        "emails.*": EMAIL,
        "emails": "at most 10 addresses in all; at least one when send_email",
        # Checked by the application with the rest, so that every wrong field of a request
        # is reported at once (the document states the real limits).
        "invoice_number": "at most 100 characters",
        "recipient_name": "at most 200 characters",
        "message": "at most 2000 characters",
        "locale": "en or es",
    },
    "GET /links": {"cursor": CURSOR},
    "GET /links/export.xlsx": {"cursor": CURSOR},
    "GET /postings": {"cursor": CURSOR},
    "GET /reports/reconciliation/postings": {
        "cursor": CURSOR,
        "to": "a period of at most a year, not ending before it starts",
    },
    "GET /reports/reconciliation": {"to": "a period that does not end before it starts"},
    "GET /reports/reconciliation.xlsx": {"to": "a period that does not end before it starts"},
    "POST /bulk-uploads": {
        "merchant_account_id": ACCOUNT + "; may be left out when the firm has only one",
        "file": "a readable CSV or TXT file with invoice rows",
    },
    "POST /bulk-uploads/{id}/rows": {"replaces": "a row of this upload"},
    "POST /connections": {
        "adapter": "an adapter installed here (entry points)",
        "settings": "the adapter's own settings, tried by connecting",
    },
    "PATCH /connections/{id}": {"default_merchant_account_id": ACCOUNT},
    "POST /merchant-accounts": {
        "name": "not the name of another account of the firm",
        "currency": "USD, CAD, EUR, GBP or AUD in any case",
    },
    "PATCH /merchant-accounts/{id}": {
        "name": "not the name of another account of the firm",
        "currency": "USD, CAD, EUR, GBP or AUD in any case",
    },
    "POST /users": {"email": EMAIL + ", not used by anyone yet"},
    "PUT /settings": {
        "time_zone": "an IANA time zone this server knows",
        "reply_to_email": EMAIL,
        "recaptcha_site_key": "given now or stored, to turn reCAPTCHA on",
        "recaptcha_secret": "given now or stored, to turn reCAPTCHA on",
    },
    "PATCH /postings/{id}": {
        "allocations": "the allocations add up to the payment",
        "allocations.*.amount": MONEY,
        "allocations.*.invoice_id": "an invoice of the posting's connection",
    },
    "GET /connect/search": {"q": "q, client_id or matter_id: at least one"},
    "POST /connect/links": {
        "merchant_account_id": ACCOUNT,
        "invoices.*.id": "an invoice the matter system has, open",
        "invoices.*.amount": MONEY + ", at most the invoice's balance",
        "amount": MONEY + ", at most the invoices' balances",
        "payer.emails.*": EMAIL,
        # The rules of payer.emails, under the names the Connect page's form gives them.
        "emails": "at least one address when send_email",
        "emails.*": EMAIL,
        "due_date": "not in the past",
        "message": "at most 2000 characters",
    },
    "POST /embed/launch": {
        "user_email": "an active user of the firm",
        "connection_id": "only for the Connect page; a connection of the firm",
        "client_id": "only for the Connect page",
        "matter_id": "only for the Connect page",
        "amount": "only for Quick Link; " + MONEY,
        "invoice_number": "only for Quick Link",
    },
    "POST /pay/{token}": {
        "amount": MONEY + ", at most what is due",
        "payer_email": EMAIL,
        "payment_token": "a token the processor's fields made",
    },
}


@schemathesis.check
def valid_data_accepted_but_for_server_rules(
    ctx: CheckContext, response: Response, case: Case
) -> bool | None:
    """schemathesis's positive_data_acceptance, except for a 422 that names only fields of
    SERVER_RULES for the operation."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rules = SERVER_RULES.get(case.operation.label, {})
        if response.status_code == 422 and _fields(response) and _fields(response) <= set(rules):
            return None
        raise


def _fields(response: Response) -> set[str]:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return set()
    # "emails.2" and "invoices.0.amount" are the rule of "emails.*" and "invoices.*.amount".
    return {re.sub(r"\.\d+(?=\.|$)", ".*", str(e.get("field", ""))) for e in errors}


@pytest.fixture(scope="module")
def api_schema(live: LiveServer, real: RealData) -> Any:
    return schemathesis.openapi.from_url(
        live.url + "/api/v1/openapi.json", config=schemathesis_config(real)
    )


def test_the_served_document_is_exact(api_schema: Any) -> None:
    problems = run_schemathesis(api_schema)
    assert not problems, f"{len(problems)} mismatches:\n\n" + "\n\n".join(problems)


def run_schemathesis(schema: Any) -> list[str]:
    """Run every phase as `st run` does; every failed check and error, one entry each."""
    problems: dict[tuple[str, str, str], str] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        key = (event.recorder.label, failure.title, failure.message[:200])
                        problems.setdefault(
                            key,
                            f"{event.recorder.label}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample[:1000]}\n"
                            f"{answer_of(event.recorder, case_id)}",
                        )
        elif isinstance(event, events.NonFatalError):
            problems[(event.label, "error", str(event.value))] = f"{event.label}: {event.info}"
        elif isinstance(event, events.FatalError):
            raise event.exception
    return list(problems.values())


def answer_of(recorder: Any, case_id: str) -> str:
    """The status and start of the body the failing request got."""
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return ""
    response = interaction.response
    return f"-> {response.status_code} {response.content[:500]!r}"
