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
from pyramid.interfaces import IRoutesMapper
from schemathesis import Case, CheckContext, Response
from schemathesis.engine import events
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from clientpay_connect.api.json_body import NUL_MESSAGE
from clientpay_connect.api.openapi import ROUTE_PLACEHOLDER
from clientpay_connect.security import ADMIN
from clientpay_connect.sent.query import FILTERS
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
    merchant_account_id: int
    # A merchant account of its own for PATCH /merchant-accounts/{id}, which may deactivate it.
    spare_merchant_account_id: int
    link_id: int
    pay_token: str
    # Uploads of their own: Send All and Generate each use an upload up, and a used upload's
    # rows can no longer be changed.
    bulk_upload_id: int
    bulk_upload_to_send_id: int
    bulk_upload_to_generate_id: int
    connection_id: int
    # A connection of its own for DELETE /connections/{id}.
    spare_connection_id: int
    posting_id: int
    # A user of its own for PATCH /users/{id}, which may deactivate them.
    spare_user_id: int
    staff_email: str


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
        assert admin is not None
        admin_token = create_api_token(session, admin, "schemathesis")[1]
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
        merchant_account_id=operating["id"],
        spare_merchant_account_id=spare_account["id"],
        link_id=link["id"],
        pay_token=link["url"].rsplit("/", 1)[1],
        bulk_upload_id=bulk_upload(api, operating["id"], "R"),
        bulk_upload_to_send_id=bulk_upload(api, operating["id"], "S"),
        bulk_upload_to_generate_id=bulk_upload(api, operating["id"], "G"),
        connection_id=connection["id"],
        spare_connection_id=spare_connection["id"],
        posting_id=paid_posting(api, live.url, connection["id"], operating["id"]),
        staff_email=live.staff.email,
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


def bulk_upload(api: Api, merchant_account_id: int, series: str) -> int:
    """Two good rows, with invoice numbers of their own (a number already asked for by an
    outstanding link would need confirming)."""
    rows = (
        "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address\n"
        f"ST-{series}1,2026-01-15,2026-02-14,Jane Doe,1250.00,jane.doe@example.com\n"
        f"ST-{series}2,2026-01-20,2026-02-19,Acme LLC,400.50,ap@acme.example\n"
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


def schemathesis_config(
    real: RealData, token: str = "", max_examples: int = MAX_EXAMPLES, stateful: bool = True
) -> schemathesis.Config:
    def real_id(path: str, name: str, value: int | str, probability: float = 0.8) -> dict[str, Any]:
        # Mostly the real object, sometimes a generated id (which must answer 404).
        dictionary = f"{path}:{name}"
        dictionaries[dictionary] = {"values": [value]}
        return {
            "include-path": path,
            "parameters": {f"path.{name}": {"dictionary": dictionary, "probability": probability}},
        }

    # Where a generated id could be one of the demo firm's own objects (the admin, the
    # connection and account every other operation uses), only the spare one: deactivating
    # or disconnecting those would leave the rest of the run nothing to work on.
    only = 1.0

    dictionaries: dict[str, Any] = {}
    # DELETE /connections/{id} disconnects (API.md): the connection stays, disconnected, so
    # that the links and postings that name it keep their history. Reading it afterwards is
    # no "use after free".
    kept = {"checks": {"use_after_free": {"enabled": False}}}
    operations = [
        real_id("/merchant-accounts/{id}", "id", real.spare_merchant_account_id, only),
        real_id("/users/{id}", "id", real.spare_user_id, only),
        real_id("/links/{id}", "id", real.link_id),
        real_id("/links/{id}/balance-link", "id", real.link_id),
        real_id("/links/{id}/refund", "id", real.link_id),
        real_id("/links/{id}/refunds", "id", real.link_id),
        real_id("/pay/{token}", "token", real.pay_token),
        {**real_id("/connections/{id}", "id", real.spare_connection_id, only), **kept},
        {**real_id("/connections/{id}/authorize", "id", real.connection_id), **kept},
        {**real_id("/connections/{id}/callback", "id", real.connection_id), **kept},
        real_id("/postings/{id}", "id", real.posting_id),
        real_id("/postings/{id}/remove", "id", real.posting_id),
        real_id("/postings/{id}/entered-by-hand", "id", real.posting_id),
    ]
    uploads = {
        "": real.bulk_upload_id,
        "/rows": real.bulk_upload_id,
        "/rows/{row}": real.bulk_upload_id,
        "/report.csv": real.bulk_upload_id,
        "/send": real.bulk_upload_to_send_id,
        "/generate": real.bulk_upload_to_generate_id,
        "/links.csv": real.bulk_upload_to_generate_id,
        "/links.xlsx": real.bulk_upload_to_generate_id,
    }
    for suffix, upload_id in uploads.items():
        operation = real_id("/bulk-uploads/{id}" + suffix, "id", upload_id)
        if suffix == "/rows/{row}":
            # The upload's second row (of two).
            row = real_id("/bulk-uploads/{id}" + suffix, "row", 2)
            operation["parameters"].update(row["parameters"])
        operations.append(operation)
    body_ids: dict[str, int | str] = {
        "merchant_account_id": real.merchant_account_id,
        "connection_id": real.connection_id,
        # Embed's launch signs a real person in.
        "user_email": real.staff_email,
    }
    for name, value in body_ids.items():
        dictionaries[name] = {"values": [value]}
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # No cache of earlier runs (.schemathesis/): every run starts from the same place.
            "cache": {"enabled": False},
            "headers": {"Authorization": f"Bearer {token or real.admin_token}"},
            "request-timeout": TIMEOUT,
            # Every failure of every operation, not only the first.
            "continue-on-failure": True,
            "generation": {"max-examples": max_examples, "deterministic": True, "mode": "all"},
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
            "phases": {
                "stateful": {"enabled": stateful},
                # Not the ids of earlier answers (the admin's own, the demo connection's):
                # the ids a run may change are the spare ones above.
                "coverage": {"extra-data-sources": {"responses": False}},
                "fuzzing": {"extra-data-sources": {"responses": False}},
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
# Sent Pages' ranges: a range's upper end is refused (422) when it is below its lower end.
SENT_RANGES = {
    f"filter[{spec.field}_{'max' if spec.test == 'min' else 'to'}]": "not below the range's start"
    for spec in FILTERS.values()
    if spec.test in ("min", "from")
}
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
    "GET /links": {"cursor": CURSOR, **SENT_RANGES},
    "GET /links/export.xlsx": {"cursor": CURSOR, **SENT_RANGES},
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
        # Smart Reminders: checked with the rest of the schedule, so that every wrong row of
        # the settings page is marked at once (the document states the real limits).
        "reminders": "at most 4, none at the same moment as another",
        "reminders.*.days": "from -365 to 365; from 1 after sending",
        "reminders.*.relative_to": "due_date or sent",
        "reminders.*.message": "at most 5000 characters",
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
    "POST /links/{id}/refund": {
        "amount": MONEY + ", at most what was paid and not yet refunded",
        "reason": "at most 500 characters",
    },
    "POST /pay/{token}": {
        "amount": MONEY + ", at most what is due",
        "payer_email": EMAIL,
        "payment_token": "a token the processor's fields made",
        # Checked with the rest, so that the payer's page can mark every wrong field at once.
        "payer_name": "not blank, at most 200 characters",
    },
}
# Statuses other than 422 that valid data may get for a reason the document gives.
SERVER_REFUSALS: dict[str, dict[int, str]] = {
    "POST /pay/{token}": {402: "the processor refused the payment token (invalid_payment_token)"},
}
# Refusals of a whole request (no field) that depend on an earlier one, by error code.
SERVER_REQUEST_RULES: dict[str, dict[str, str]] = {
    "POST /pay/{token}": {
        "idempotency_key_reused": "an Idempotency-Key already used with another body (422)",
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
        label = case.operation.label
        if response.status_code in SERVER_REFUSALS.get(label, {}):
            return None
        rules = SERVER_RULES.get(label, {})
        if response.status_code == 422 and _fields(response) and _fields(response) <= set(rules):
            return None
        if response.status_code == 422 and _error(response) in SERVER_REQUEST_RULES.get(label, {}):
            return None
        if response.status_code == 422 and _only_nul_refused(response):
            # The document's own rule (its info): no text anywhere may hold NUL.
            return None
        raise


def _only_nul_refused(response: Response) -> bool:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return False
    return bool(errors) and all(e.get("message") == NUL_MESSAGE for e in errors)


def _error(response: Response) -> str:
    try:
        return str(response.json().get("error") or "")
    except ValueError:
        return ""


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
    run = run_schemathesis(api_schema)
    assert not run.problems, f"{len(run.problems)} mismatches:\n\n" + "\n\n".join(run.problems)
    # Real ids and a real token, or the run proves little: each operation did its work at
    # least once, but for those where fuzzed data cannot, each said why.
    unreached = {
        label: sorted(statuses)
        for label, statuses in run.statuses.items()
        if not any(200 <= status < 400 for status in statuses) and label not in NO_SUCCESS
    }
    assert not unreached, "\n".join(f"{k}: {v}" for k, v in sorted(unreached.items()))
    assert set(run.statuses) >= set(operation_labels(api_schema)) - {"Stateful tests"}


# Operations that generated requests cannot complete, and what they answer instead.
NO_SUCCESS = {
    # The payer's payment needs a token from the processor's fields (POST /sandbox/tokens,
    # outside the API): a generated payment_token is refused (422/402), the link stays payable.
    "POST /pay/{token}": "422 or 402 for a token the processor did not make",
    # Only a partially paid link has a balance; the real link is outstanding (409).
    "POST /links/{id}/balance-link": "409 not_partially_paid",
    # Only a paid link has anything to refund; the real link is outstanding (409 not_paid).
    "POST /links/{id}/refund": "409 not_paid",
    # The demo connection is a database (sql), not OAuth (409 not_oauth).
    "POST /connections/{id}/authorize": "409 not_oauth",
    # What these make needs real data no generator can guess: a readable CSV of invoices, a
    # reachable matter database, an open invoice's id in the matter system. The real_data
    # fixture makes each once through the API (and the server checks its own answers against
    # the document: clientpay.openapi.validate_responses), so they are known to work.
    "POST /bulk-uploads": "422 for a generated file",
    "POST /connections": "422 for generated settings",
    "POST /connect/links": "422 for generated invoice ids",
    # The real posting is synced at once (jobs run in-process) and is then past the states
    # these act on (409); only an incomplete posting takes allocations, which must name its
    # invoices and add up to the payment (422).
    "POST /postings/{id}/remove": "409 for a posting in another state",
    "POST /postings/{id}/entered-by-hand": "409 for a posting in another state",
    "PATCH /postings/{id}": "422 or 409",
}


def test_staff_are_refused_every_admin_operation(live: LiveServer, real: RealData) -> None:
    admin_only = admin_operations(live)
    schema = schemathesis.openapi.from_url(
        live.url + "/api/v1/openapi.json",
        # Without the stateful phase: chains of calls that are all refused say nothing more.
        config=schemathesis_config(
            real, token=fresh_staff_token(live, real), max_examples=2, stateful=False
        ),
    ).include(func=lambda context: context.operation.label in admin_only)
    run = run_schemathesis(schema)
    assert not run.problems, f"{len(run.problems)} mismatches:\n\n" + "\n\n".join(run.problems)
    # schemathesis may also call other operations for ids; those are not the question here.
    assert set(run.statuses) >= admin_only
    # Refused (403: the token is good, the role is not), and never done.
    not_refused = {
        label: statuses
        for label, statuses in run.statuses.items()
        if label in admin_only and (403 not in statuses or min(statuses) < 400)
    }
    assert not not_refused, not_refused


def fresh_staff_token(live: LiveServer, real: RealData) -> str:
    """A staff member of this test's own: the admin run may have deactivated the others."""
    created = Api(live.url, real.admin_token).post(
        "/users", {"email": "refused@demo.test", "name": "Refused Staff", "role": "staff"}
    )
    with live.dbsession() as session:
        user = find_user_by_email(session, created["email"])
        assert user is not None
        return create_api_token(session, user, "schemathesis")[1]


def admin_operations(live: LiveServer) -> set[str]:
    """ "METHOD /path" of every API view that needs the admin permission, from the app."""
    mapper = live.app.registry.getUtility(IRoutesMapper)
    labels = set()
    for view in live.app.registry.introspector.get_category("views"):
        introspectable = view["introspectable"]
        permissions = [r["value"] for r in view["related"] if r.category_name == "permissions"]
        route_name = introspectable["route_name"]
        if ADMIN not in permissions or not route_name or not route_name.startswith("api."):
            continue
        pattern = ROUTE_PLACEHOLDER.sub(r"{\1}", mapper.get_route(route_name).pattern)
        labels.add(f"{introspectable['request_methods']} {pattern.split('/api/v1', 1)[1]}")
    return labels


def operation_labels(schema: Any) -> list[str]:
    return [result.ok().label for result in schema.get_all_operations()]


@dataclass
class Run:
    problems: list[str]
    # The statuses each operation answered.
    statuses: dict[str, set[int]]


def run_schemathesis(schema: Any) -> Run:
    """Run every phase as `st run` does; every failed check and error, one entry each."""
    problems: dict[tuple[str, str, str], str] = {}
    statuses: dict[str, set[int]] = {}
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            label = event.recorder.label
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    statuses.setdefault(label, set()).add(interaction.response.status_code)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.failure_info is not None:
                        failure = check.failure_info.failure
                        key = (label, failure.title, failure.message[:200])
                        problems.setdefault(
                            key,
                            f"{label}: {failure.title}\n{failure.message}\n"
                            f"{check.failure_info.code_sample[:1000]}\n"
                            f"{answer_of(event.recorder, case_id)}",
                        )
        elif isinstance(event, events.NonFatalError):
            problems[(event.label, "error", str(event.value))] = f"{event.label}: {event.info}"
        elif isinstance(event, events.FatalError):
            raise event.exception
    return Run(list(problems.values()), statuses)


def answer_of(recorder: Any, case_id: str) -> str:
    """The status and start of the body the failing request got."""
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return ""
    response = interaction.response
    return f"-> {response.status_code} {response.content[:500]!r}"
