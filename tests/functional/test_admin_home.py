"""The admin home: links to the sections, and the firm's latest audit events."""

from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.accounts.services import record
from tests.conftest import login
from tests.factories import FirmFactory


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
    shown = [row.find("code").get_text() for row in rows]
    assert len(shown) == 50
    assert "test.elsewhere" not in shown
    # Newest first: the five oldest fell off.
    assert shown == [f"test.event_{n:02d}" for n in range(54, 4, -1)]
    assert rows[0].find_all("td")[1].get_text(strip=True) == admin.email


def test_a_change_made_on_a_page_appears_there(testapp, dbsession, admin):
    login(testapp, admin)
    form = next(f for f in testapp.get("/admin/tokens").forms.values() if "tokens" in f.action)
    form["name"] = "Script"
    form.submit(status=303)
    assert dbsession.execute(
        select(AuditEvent).where(AuditEvent.action == "api_token.created")
    ).scalar_one()
    page = testapp.get("/admin")
    assert "api_token.created" in page.text
    assert "name: Script" in page.text


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
