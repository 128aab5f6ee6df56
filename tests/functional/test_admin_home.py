"""The admin home: links to the sections, and the firm's latest audit events."""

import datetime as dt

from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.accounts.services import record
from tests.conftest import csrf_token, login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory


def test_links_every_section(testapp, admin):
    login(testapp, admin)
    page = testapp.get("/admin")
    main = page.html.find("main")
    links = {a.get_text(strip=True): a["href"] for a in main.select(".module-card h2 a")}
    ours = {
        "Users": "http://localhost/admin/users",
        "Settings": "http://localhost/admin/settings",
        "Notifications": "http://localhost/admin/notifications",
        "Merchant accounts": "http://localhost/admin/merchant-accounts",
        "API tokens": "http://localhost/admin/tokens",
    }
    # Other features may add a section (the mail Outbox); ours are all there.
    assert links.items() >= ours.items()
    current = page.html.find("nav", attrs={"aria-label": "Admin sections"}).find(
        attrs={"aria-current": "page"}
    )
    assert current.get_text(strip=True) == "Overview"


def test_shows_the_last_50_events_of_the_firm_only(testapp, dbsession, admin):
    for n in range(55):
        record(dbsession, admin.firm_id, f"test.event_{n:02d}", actor=admin)
    record(dbsession, FirmFactory().id, "test.elsewhere")
    dbsession.flush()
    login(testapp, admin)
    rows = testapp.get("/admin").html.find("tbody").find_all("tr")
    shown = [row["data-action"] for row in rows]
    assert len(shown) == 50
    assert "test.elsewhere" not in shown
    # Newest first: the five oldest fell off.
    assert shown == [f"test.event_{n:02d}" for n in range(54, 4, -1)]
    who = admin.name or admin.email
    assert rows[0].find_all("td")[1].get_text(strip=True) == f"{who}: test event 54"


def test_a_change_made_on_a_page_appears_there(testapp, dbsession, admin):
    login(testapp, admin)
    form = next(f for f in testapp.get("/admin/tokens").forms.values() if "tokens" in f.action)
    form["name"] = "Script"
    form.submit(status=303)
    assert dbsession.execute(
        select(AuditEvent).where(AuditEvent.action == "api_token.created")
    ).scalar_one()
    page = testapp.get("/admin")
    [row] = page.html.select('tr[data-action="api_token.created"]')
    assert row.find_all("td")[1].get_text(strip=True) == (
        f"{admin.name or admin.email} created the API token “Script”"
    )


def test_every_section_marks_itself_in_the_admin_menu(testapp, admin):
    login(testapp, admin)
    for path, label in [
        ("/admin/users", "Users"),
        (f"/admin/users/{admin.id}", "Users"),
        ("/admin/settings", "Settings"),
        ("/admin/notifications", "Notifications"),
        ("/admin/merchant-accounts", "Merchant accounts"),
        ("/admin/tokens", "API tokens"),
    ]:
        menu = testapp.get(path).html.find("nav", attrs={"aria-label": "Admin sections"})
        marked = [a.get_text(strip=True) for a in menu.find_all(attrs={"aria-current": "page"})]
        assert marked == [label], path


def test_recent_changes_are_written_for_people_in_the_firms_time(
    app, testapp, dbsession, admin, firm
):
    admin.name = "Sam Staff"
    account = MerchantAccountFactory(firm=firm)
    dbsession.flush()
    login(testapp, admin)
    token = csrf_token(testapp)
    testapp.post_json(
        "/api/v1/links",
        {
            "merchant_account_id": account.id,
            "amount": "1250",
            "recipient_name": "Jane Client",
            "invoice_number": "INV-1001",
        },
        headers={"X-CSRF-Token": token},
        status=201,
    )
    staff = UserFactory(firm=firm, role="staff", email="kim@firm.test")
    record(
        dbsession,
        firm.id,
        "user.role_changed",
        actor=admin,
        target=staff,
        details={"old": "staff", "new": "admin"},
    )
    event = record(
        dbsession,
        firm.id,
        "settings.updated",
        actor=admin,
        details={"fields": ["time_zone", "disclaimer"]},
    )
    event.created_at = dt.datetime(2026, 1, 15, 15, 4, tzinfo=dt.UTC)
    dbsession.flush()
    rows = testapp.get("/admin").html.select("tbody tr")
    said = {row["data-action"]: row.find_all("td")[1].get_text(strip=True) for row in rows}
    assert said["link.created"] == "Sam Staff created a link for Jane Client, $1,250.00"
    assert said["user.role_changed"] == "Sam Staff made kim@firm.test admin"
    assert said["settings.updated"] == (
        "Sam Staff changed the settings: time zone, payment-page disclaimer"
    )
    settings_row = next(row for row in rows if row["data-action"] == "settings.updated")
    # The firm's zone (New York by default), written as every page writes a time.
    assert settings_row.find("time").get_text() == "Jan 15, 2026, 10:04 AM EST"
    assert "PaymentLink" not in testapp.get("/admin").text
