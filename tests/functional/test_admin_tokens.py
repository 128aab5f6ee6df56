"""API tokens: an admin creates one for themself (shown once, and it works) and revokes any."""

from urllib.parse import urlsplit

from sqlalchemy import select

from clientpay_connect.accounts.models import ApiToken, AuditEvent
from tests.conftest import bearer, csrf_token, login
from tests.factories import FirmFactory, UserFactory


def form_posting_to(page, path):
    return next(form for form in page.forms.values() if urlsplit(form.action).path == path)


def actions(dbsession, firm):
    return list(
        dbsession.execute(
            select(AuditEvent.action).where(AuditEvent.firm_id == firm.id).order_by(AuditEvent.id)
        ).scalars()
    )


def create_token(testapp, name):
    form = form_posting_to(testapp.get("/admin/tokens"), "/admin/tokens")
    form["name"] = name
    return form.submit(status=303).follow()


def test_a_new_token_is_shown_once_and_works_until_revoked(testapp, dbsession, admin):
    login(testapp, admin)
    shown = create_token(testapp, "Matter panel")
    token = shown.html.find(id="new-token")["value"]
    row = dbsession.execute(
        select(ApiToken).where(ApiToken.firm_id == admin.firm_id, ApiToken.name == "Matter panel")
    ).scalar_one()
    assert row.user_id == admin.id
    assert token.startswith(row.prefix)
    assert token not in row.token_hash
    again = testapp.get(shown.request.path)
    assert token not in again.text
    assert "already shown" in again.text

    auth = {"Authorization": f"Bearer {token}"}
    testapp.get("/api/v1/users", headers=auth, status=200)

    testapp.post(f"/admin/tokens/{row.id}/revoke", {"csrf_token": csrf_token(testapp)}, status=303)
    dbsession.expire_all()
    assert row.revoked_at is not None
    testapp.get("/api/v1/users", headers=auth, status=401)
    assert actions(dbsession, admin.firm) == ["api_token.created", "api_token.revoked"]


def test_the_list_shows_the_firms_tokens_with_their_owner(testapp, dbsession, admin, staff):
    bearer(dbsession, staff)
    bearer(dbsession, UserFactory(firm=FirmFactory()))
    login(testapp, admin)
    rows = testapp.get("/admin/tokens").html.find("tbody").find_all("tr")
    assert [r.find_all("td")[1].get_text(strip=True) for r in rows] == [staff.email]


def test_a_token_needs_a_name(testapp, dbsession, admin):
    login(testapp, admin)
    form = form_posting_to(testapp.get("/admin/tokens"), "/admin/tokens")
    page = form.submit(status=400)
    assert page.html.find(id="name-error").get_text(strip=True) == "Enter a name."
    assert dbsession.execute(select(ApiToken).where(ApiToken.user_id == admin.id)).first() is None


def test_another_firms_token_cannot_be_revoked(testapp, dbsession, admin):
    outsider = UserFactory(firm=FirmFactory())
    outsider_auth = bearer(dbsession, outsider)
    theirs = dbsession.execute(select(ApiToken).where(ApiToken.user_id == outsider.id)).scalar_one()
    login(testapp, admin)
    testapp.post(
        f"/admin/tokens/{theirs.id}/revoke", {"csrf_token": csrf_token(testapp)}, status=404
    )
    testapp.get("/api/v1/merchant-accounts", headers=outsider_auth, status=200)
