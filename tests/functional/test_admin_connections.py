"""Admin > Connections through WebTest: add a SQL database (connects at once) or an OAuth
system (the browser goes to the provider and comes back through the callback), reconnect,
disconnect, and the defaults Connect uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import webtest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.sql.demo import create_demo_matter_database
from clientpay_connect.connect.models import Connection
from tests.conftest import csrf_token, login
from tests.factories import ConnectionFactory, FirmFactory, MerchantAccountFactory
from tests.support.matter_adapter import PROVIDER_URL, REVOKED, issue_code

pytestmark = pytest.mark.usefixtures("test_adapter_distribution")

PAGE = "/admin/connections"


@pytest.fixture
def signed_in(testapp: webtest.TestApp, admin: Any) -> webtest.TestApp:
    login(testapp, admin)
    return testapp


@pytest.fixture(scope="module")
def matter_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small demo matter database (SQLite) for the sql adapter."""
    path: Path = tmp_path_factory.mktemp("matters") / "matters.sqlite"
    url = f"sqlite:///{path}"
    create_demo_matter_database(url, clients=5, matters=8, invoices=20)
    return url


def add_form(app: webtest.TestApp) -> webtest.Form:
    page = app.get(PAGE)
    return next(form for form in page.forms.values() if form.action.endswith(PAGE))


def connections_count(dbsession: Session) -> int:
    return int(dbsession.execute(select(func.count()).select_from(Connection)).scalar_one())


def authorize(app: webtest.TestApp, response: webtest.TestResponse) -> webtest.TestResponse:
    """Play the provider: the admin allows access, and the browser goes back to the callback."""
    location = urlsplit(response.location)
    assert f"{location.scheme}://{location.netloc}{location.path}" == PROVIDER_URL
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    code = issue_code(query["code_challenge"])
    callback = urlsplit(query["redirect_uri"])
    return app.get(callback.path, {"code": code, "state": query["state"]}, status=303)


def test_admins_reach_it_from_admin_home_and_the_admin_menu(signed_in: webtest.TestApp) -> None:
    home = signed_in.get("/admin")
    assert home.html.find("a", string="Connections")["href"].endswith(PAGE)
    assert signed_in.get(PAGE).html.select_one("nav.admin-nav a[aria-current=page]").text == (
        "Connections"
    )


def test_staff_are_kept_out(testapp: webtest.TestApp, staff: Any, firm: Any) -> None:
    connection = ConnectionFactory(firm=firm)
    login(testapp, staff)
    testapp.get(PAGE, status=403)
    testapp.get(f"{PAGE}/{connection.id}", status=403)


def test_the_list_shows_status_capabilities_and_errors(
    signed_in: webtest.TestApp, firm: Any, dbsession: Session
) -> None:
    ConnectionFactory(firm=firm, name="Billing", adapter="memory")
    ConnectionFactory(
        firm=firm,
        name="Cloud",
        adapter="memory_oauth",
        status="needs_reauthorization",
        last_error="invalid_grant",
    )
    page = signed_in.get(PAGE)
    rows = {row.find("a").text: row for row in page.html.select("tr[data-connection]")}
    assert rows["Billing"].select_one("[data-connection-status]").text == "Connected"
    assert "Payments are written back to Memory automatically" in rows["Billing"].text
    cloud = rows["Cloud"]
    assert cloud.select_one("[data-connection-status]").text == "Needs reauthorization"
    assert "Payments are entered by hand (Memory Oauth has no API for it)" in cloud.text
    assert "invalid_grant" in cloud.text
    alert = page.html.select_one("[data-needs-reauthorization]")
    assert "Cloud needs reauthorization" in alert.text
    assert alert.find("button").text == "Reconnect Cloud"


def test_a_sql_database_connects_at_once_with_its_url_kept_encrypted(
    signed_in: webtest.TestApp, dbsession: Session, matter_database: str
) -> None:
    form = add_form(signed_in)
    form["adapter"] = "sql"
    form["name"] = "Billing database"
    form["url"] = matter_database
    page = form.submit(status=303).follow()
    assert page.html.find("h1").text == "Billing database"
    assert page.html.select_one("[data-connection-status]").text == "Connected"
    connection = dbsession.execute(select(Connection)).scalar_one()
    assert connection.settings == {} and connection.secrets_encrypted
    assert matter_database not in connection.secrets_encrypted


def test_a_database_that_does_not_answer_is_refused_and_nothing_is_kept(
    signed_in: webtest.TestApp, dbsession: Session, tmp_path: Path
) -> None:
    form = add_form(signed_in)
    form["adapter"] = "sql"
    form["url"] = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    page = form.submit(status=400)
    assert page.html.find("input", id="url")["aria-invalid"] == "true"
    assert "did not answer as expected" in page.html.find(id="url-error").text
    assert connections_count(dbsession) == 0
    blank = add_form(signed_in)
    blank["adapter"] = "sql"
    missing = blank.submit(status=400)
    assert "Enter the database's URL" in missing.html.find(id="url-error").text


def test_an_oauth_system_sends_the_admin_to_the_provider_and_the_callback_connects_it(
    signed_in: webtest.TestApp, dbsession: Session
) -> None:
    form = add_form(signed_in)
    form["adapter"] = "memory_oauth"
    form["name"] = "Cloud matters"
    to_provider = form.submit(status=303)
    connection = dbsession.execute(select(Connection)).scalar_one()
    assert connection.status == "pending"
    back = authorize(signed_in, to_provider)
    assert back.location.endswith(PAGE)
    page = back.follow()
    assert "Cloud matters is connected." in page.html.find(class_="flash").text
    dbsession.refresh(connection)
    assert connection.status == "connected" and connection.tokens_encrypted


def test_a_tampered_state_is_refused(signed_in: webtest.TestApp, dbsession: Session) -> None:
    form = add_form(signed_in)
    form["adapter"] = "memory_oauth"
    to_provider = form.submit(status=303)
    query = parse_qs(urlsplit(to_provider.location).query)
    code = issue_code(query["code_challenge"][0])
    connection = dbsession.execute(select(Connection)).scalar_one()
    back = signed_in.get(
        f"/api/v1/connections/{connection.id}/callback",
        {"code": code, "state": "not-the-state"},
        status=303,
    ).follow()
    assert "was not started here" in back.html.find(class_="flash-error").text
    dbsession.refresh(connection)
    assert connection.status == "pending"


def test_reconnect_goes_to_the_provider_again(
    signed_in: webtest.TestApp, firm: Any, dbsession: Session
) -> None:
    connection = ConnectionFactory(
        firm=firm, adapter="memory_oauth", status="needs_reauthorization"
    )
    page = signed_in.get(f"{PAGE}/{connection.id}")
    form = next(f for f in page.forms.values() if f.action.endswith("/reconnect"))
    authorize(signed_in, form.submit(status=303))
    dbsession.refresh(connection)
    assert connection.status == "connected"


def test_disconnect_asks_first_then_withdraws_the_grant(
    signed_in: webtest.TestApp, dbsession: Session
) -> None:
    form = add_form(signed_in)
    form["adapter"] = "memory_oauth"
    authorize(signed_in, form.submit(status=303))
    connection = dbsession.execute(select(Connection)).scalar_one()
    page = signed_in.get(f"{PAGE}/{connection.id}")
    disconnect = next(f for f in page.forms.values() if f.action.endswith("/disconnect"))
    assert "Disconnect" in page.html.find("form", action=disconnect.action)["data-confirm"]
    revoked_before = len(REVOKED)
    listed = disconnect.submit(status=303).follow()
    assert "is disconnected" in listed.html.find(class_="flash").text
    dbsession.refresh(connection)
    assert connection.status == "disconnected" and connection.tokens_encrypted is None
    assert len(REVOKED) == revoked_before + 1


def test_the_defaults_are_saved(signed_in: webtest.TestApp, firm: Any, dbsession: Session) -> None:
    connection = ConnectionFactory(firm=firm, name="Billing")
    account = MerchantAccountFactory(firm=firm, name="Operating")
    form = signed_in.get(f"{PAGE}/{connection.id}").forms[1]
    form["default_merchant_account_id"] = str(account.id)
    form["post_automatically"] = True
    form.submit(status=303)
    dbsession.refresh(connection)
    assert connection.default_merchant_account_id == account.id
    assert connection.post_automatically is True


def test_another_firms_merchant_account_is_refused_as_a_default(
    signed_in: webtest.TestApp, firm: Any, dbsession: Session
) -> None:
    connection = ConnectionFactory(firm=firm)
    theirs = MerchantAccountFactory(firm=FirmFactory())
    token = csrf_token(signed_in)
    page = signed_in.post(
        f"{PAGE}/{connection.id}",
        {"csrf_token": token, "name": "X", "default_merchant_account_id": str(theirs.id)},
        status=400,
    )
    error = page.html.find(id="default_merchant_account_id-error")
    assert "Choose one of your firm's" in error.text
    dbsession.refresh(connection)
    assert connection.default_merchant_account_id is None and connection.name != "X"


def test_another_firms_connection_is_404_and_not_listed(
    signed_in: webtest.TestApp, dbsession: Session
) -> None:
    theirs = ConnectionFactory(firm=FirmFactory(), name="Theirs")
    assert "Theirs" not in signed_in.get(PAGE).text
    signed_in.get(f"{PAGE}/{theirs.id}", status=404)
    token = csrf_token(signed_in)
    signed_in.post(f"{PAGE}/{theirs.id}", {"csrf_token": token}, status=404)
    signed_in.post(f"{PAGE}/{theirs.id}/disconnect", {"csrf_token": token}, status=404)
    signed_in.post(f"{PAGE}/{theirs.id}/reconnect", {"csrf_token": token}, status=404)
    dbsession.refresh(theirs)
    assert theirs.status == "connected"


def test_posts_need_the_csrf_token(
    signed_in: webtest.TestApp, firm: Any, dbsession: Session
) -> None:
    connection = ConnectionFactory(firm=firm)
    signed_in.post(PAGE, {"adapter": "memory_oauth"}, status=403)
    signed_in.post(f"{PAGE}/{connection.id}/disconnect", status=403)
    dbsession.refresh(connection)
    assert connection.status == "connected"
    assert connections_count(dbsession) == 1
