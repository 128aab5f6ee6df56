"""Launch links (POST /api/v1/embed/launch): the matter software's server asks with an admin's
API token; the URL signs that person in once, within a minute, and opens the page asked for."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import select, update

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.connect.models import LinkInvoice
from clientpay_connect.crypto import sha256_hex
from clientpay_connect.db import utcnow
from clientpay_connect.embed.models import EmbedLaunch
from clientpay_connect.embed.tasks import PURGE_JOB
from clientpay_connect.links.models import SOURCE_CONNECT
from tests.conftest import bearer, login
from tests.factories import (
    ConnectionFactory,
    FirmFactory,
    MerchantAccountFactory,
    UserFactory,
)
from tests.support.embedding import attributes, session_set_cookies
from tests.support.matter_adapter import Ledger
from tests.support.sent import make_link

pytestmark = pytest.mark.usefixtures("test_adapter_distribution")

LAUNCH = "/api/v1/embed/launch"


@pytest.fixture
def connection(firm: Any, ledger: tuple[str, Ledger]) -> Any:
    MerchantAccountFactory(firm=firm, name="Operating")
    return ConnectionFactory(firm=firm, name="Our matters", settings={"ledger": ledger[0]})


def launch(
    testapp: webtest.TestApp, auth: dict[str, str], status: int = 201, **body: Any
) -> webtest.TestResponse:
    return testapp.post_json(LAUNCH, body, headers=auth, status=status)


def frame(app: Router, **environ: str) -> webtest.TestApp:
    """A browser of its own: the panel's frame, with no session yet."""
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost", **environ})


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def test_a_launch_signs_the_person_in_and_opens_connect_on_the_client(
    app, testapp, admin_auth, staff, connection, dbsession
):
    answer = launch(
        testapp,
        admin_auth,
        user_email=staff.email.upper(),
        open="connect",
        connection_id=connection.id,
        client_id="c2",
    ).json
    expires_at = dt.datetime.fromisoformat(answer["expires_at"].replace("Z", "+00:00"))
    assert dt.timedelta(0) < expires_at - utcnow() <= dt.timedelta(seconds=60)

    panel = frame(app)
    landed = panel.get(path_of(answer["url"]), status=303)
    location = urlsplit(landed.location)
    assert location.path == "/connect"
    assert parse_qs(location.query) == {"connection_id": [str(connection.id)], "client_id": ["c2"]}
    assert landed.headers["Referrer-Policy"] == "no-referrer"
    page = panel.get(path_of(landed.location), status=200)
    assert [h.text for h in page.html.find_all("h2")] == ["Acme Holdings"]
    # Signed in as that person (the name in the navigation), and no one else.
    assert staff.email in page.html.select_one(".nav-user-name")["title"]

    used = dbsession.execute(select(EmbedLaunch)).scalar_one()
    assert used.user_id == staff.id and used.used_at is not None
    actions = dbsession.execute(select(AuditEvent.action)).scalars().all()
    assert {"embed.launch_created", "embed.launch_used"} <= set(actions)


def test_a_launch_works_once(app, testapp, admin_auth, staff, connection):
    url = launch(testapp, admin_auth, user_email=staff.email, open="connect").json["url"]
    frame(app).get(path_of(url), status=303)
    again = frame(app)
    gone = again.get(path_of(url), status=410)
    assert "has been used or has expired" in gone.text
    assert "clientpay_session" not in again.cookies or again.get("/", status=302)


def test_a_launch_does_not_work_after_its_minute(app, testapp, admin_auth, staff, dbsession):
    url = launch(testapp, admin_auth, user_email=staff.email, open="quick_link").json["url"]
    dbsession.execute(update(EmbedLaunch).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    dbsession.flush()
    panel = frame(app)
    panel.get(path_of(url), status=410)
    # Not signed in: the home page sends to the login.
    assert panel.get("/", status=302).location.startswith("http://localhost/login")


def test_only_the_tokens_hash_is_kept(testapp, admin_auth, staff, dbsession):
    url = launch(testapp, admin_auth, user_email=staff.email, open="sent").json["url"]
    token = urlsplit(url).path.rsplit("/", 1)[1]
    row = dbsession.execute(select(EmbedLaunch)).scalar_one()
    assert row.token_hash == sha256_hex(token)
    assert token not in repr({c.name: getattr(row, c.name) for c in EmbedLaunch.__table__.columns})


def test_an_unknown_token_is_not_found(app, db_connection):
    frame(app).get("/embed/launch/not-a-token", status=404)


def test_another_firms_person_is_refused_like_nobody(testapp, admin_auth, dbsession):
    stranger = UserFactory(firm=FirmFactory(), role="staff")
    for email in (stranger.email, "nobody@example.com"):
        refused = launch(testapp, admin_auth, 422, user_email=email, open="connect").json
        assert [e["field"] for e in refused["errors"]] == ["user_email"]
        assert refused["errors"][0]["message"] == "No active user of your firm has it."
        assert refused["message"] == "The launch cannot be made."
    assert dbsession.execute(select(EmbedLaunch)).first() is None


def test_another_firms_connection_is_refused(testapp, admin_auth, staff, ledger):
    theirs = ConnectionFactory(firm=FirmFactory(), settings={"ledger": ledger[0]})
    refused = launch(
        testapp, admin_auth, 422, user_email=staff.email, open="connect", connection_id=theirs.id
    ).json
    assert [e["field"] for e in refused["errors"]] == ["connection_id"]


def test_a_person_deactivated_since_the_launch_is_not_signed_in(
    app, testapp, admin_auth, staff, dbsession
):
    url = launch(testapp, admin_auth, user_email=staff.email, open="connect").json["url"]
    staff.active = False
    dbsession.flush()
    panel = frame(app)
    panel.get(path_of(url), status=410)
    assert panel.get("/", status=302)


def test_fields_the_page_does_not_take_and_bad_amounts_are_refused(testapp, admin_auth, staff):
    refused = launch(
        testapp,
        admin_auth,
        422,
        user_email=staff.email,
        open="connect",
        amount="12.00",
        matter_id="m1",
    ).json
    assert [e["field"] for e in refused["errors"]] == ["amount"]
    refused = launch(
        testapp, admin_auth, 422, user_email=staff.email, open="quick_link", amount="-3"
    ).json
    assert [e["field"] for e in refused["errors"]] == ["amount"]
    refused = launch(testapp, admin_auth, 422, user_email=staff.email, open="elsewhere").json
    assert refused["error"] == "validation_error"


def test_only_an_admins_api_token_makes_launches(testapp, staff, staff_auth, admin, dbsession):
    launch(testapp, staff_auth, 403, user_email=staff.email, open="connect")
    testapp.post_json(LAUNCH, {"user_email": staff.email, "open": "connect"}, status=401)
    # An admin's session in a browser is refused too: a launch signs someone else in.
    login(testapp, admin)
    token = testapp.get("/").html.find("input", {"name": "csrf_token"})["value"]
    refused = testapp.post_json(
        LAUNCH,
        {"user_email": staff.email, "open": "connect"},
        headers={"X-CSRF-Token": token},
        status=403,
    ).json
    assert refused["error"] == "token_required"


def test_quick_link_opens_with_the_amount_and_invoice_filled_in(app, testapp, admin_auth, staff):
    MerchantAccountFactory(firm=staff.firm, name="Operating")
    url = launch(
        testapp,
        admin_auth,
        user_email=staff.email,
        open="quick_link",
        amount="$1,234.5",
        invoice_number="INV-77",
    ).json["url"]
    panel = frame(app)
    landed = panel.get(path_of(url), status=303)
    form = panel.get(path_of(landed.location)).forms["quick-link-form"]
    assert form["amount"].value == "1234.50"
    assert form["invoice_number"].value == "INV-77"


def test_sent_pages_open_filtered_to_the_client(app, testapp, admin_auth, staff, dbsession):
    account = MerchantAccountFactory(firm=staff.firm, name="Operating")
    theirs = make_link(dbsession, app, account, source=SOURCE_CONNECT, recipient_name="Acme")
    make_link(dbsession, app, account, recipient_name="Someone else")
    dbsession.add(
        LinkInvoice(
            firm_id=staff.firm.id,
            link_id=theirs.id,
            invoice_id="201",
            client_id="c2",
            balance_minor=100_00,
            amount_minor=100_00,
        )
    )
    dbsession.flush()
    url = launch(testapp, admin_auth, user_email=staff.email, open="sent", client_id="c2").json[
        "url"
    ]
    panel = frame(app)
    page = panel.get(path_of(panel.get(path_of(url), status=303).location))
    assert "Only the links of client c2" in page.html.select_one("[data-filters]").text
    assert "Acme" in page.text
    assert "Someone else" not in page.text


def test_framed_the_launch_sets_the_partitioned_cookie(
    embedded_app, framed, admin, staff, dbsession
):
    auth = bearer(dbsession, admin)
    url = framed.post_json(
        LAUNCH, {"user_email": staff.email, "open": "connect"}, headers=auth, status=201
    ).json["url"]
    assert url.startswith("https://localhost/embed/launch/")
    panel = webtest.TestApp(
        embedded_app, extra_environ={"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"}
    )
    landed = panel.get(path_of(url), status=303)
    (cookie,) = session_set_cookies(landed)
    assert {"samesite=none", "secure", "partitioned"} <= attributes(cookie)
    assert panel.get("/", status=200)


def test_spent_launches_are_forgotten_an_hour_after_they_expire(
    app, testapp, admin_auth, staff, dbsession
):
    launch(testapp, admin_auth, user_email=staff.email, open="connect")
    row = dbsession.execute(select(EmbedLaunch)).scalar_one()
    queue = app.registry["clientpay.jobs"]
    assert queue.run_now(PURGE_JOB, row.expires_at + dt.timedelta(minutes=59)) == 0
    assert queue.run_now(PURGE_JOB, row.expires_at + dt.timedelta(minutes=61)) == 1
    assert dbsession.execute(select(EmbedLaunch)).first() is None
