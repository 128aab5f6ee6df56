"""Notification recipients: add, edit, remove, each audited; mistakes explained, typing kept."""

from urllib.parse import urlsplit

from sqlalchemy import select

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.admin.models import NotificationRecipient
from tests.conftest import csrf_token, login
from tests.factories import FirmFactory, UserFactory


def form_posting_to(page, path):
    return next(form for form in page.forms.values() if urlsplit(form.action).path == path)


def check_events(form, *events):
    for checkbox in form.fields["events"]:
        checkbox.checked = checkbox._value in events


def recipients_of(dbsession, firm):
    dbsession.expire_all()
    return list(
        dbsession.execute(
            select(NotificationRecipient).where(NotificationRecipient.firm_id == firm.id)
        ).scalars()
    )


def actions(dbsession, firm):
    return list(
        dbsession.execute(
            select(AuditEvent.action).where(AuditEvent.firm_id == firm.id).order_by(AuditEvent.id)
        ).scalars()
    )


def add_recipient(testapp, email, *events, name=""):
    form = form_posting_to(testapp.get("/admin/notifications"), "/admin/notifications")
    form["email"] = email
    form["name"] = name
    check_events(form, *events)
    return form.submit(status=[303, 400])


def test_add_edit_and_remove_a_recipient(testapp, dbsession, admin):
    login(testapp, admin)
    page = add_recipient(
        testapp, "Books@Firm.example", "payment_received", "link_expired", name="Bookkeeper"
    ).follow()
    assert "books@firm.example will be notified." in page.text
    (recipient,) = recipients_of(dbsession, admin.firm)
    assert (recipient.email, recipient.name, recipient.events) == (
        "books@firm.example",
        "Bookkeeper",
        ["payment_received", "link_expired"],
    )

    path = f"/admin/notifications/{recipient.id}"
    form = form_posting_to(testapp.get(path), path)
    assert [c._value for c in form.fields["events"] if c.checked] == [
        "payment_received",
        "link_expired",
    ]
    check_events(form, "payment_failed")
    form.submit(status=303)
    assert recipients_of(dbsession, admin.firm)[0].events == ["payment_failed"]

    testapp.post(f"{path}/remove", {"csrf_token": csrf_token(testapp)}, status=303)
    assert recipients_of(dbsession, admin.firm) == []
    assert actions(dbsession, admin.firm) == [
        "notification_recipient.created",
        "notification_recipient.updated",
        "notification_recipient.removed",
    ]


def test_mistakes_are_explained_and_the_typing_kept(testapp, dbsession, admin):
    login(testapp, admin)
    page = add_recipient(testapp, "not-an-email", name="Typed Name")
    assert page.status_int == 400
    assert page.html.find(id="email-error") is not None
    assert page.html.find(id="events-error").get_text(strip=True) == (
        "Choose at least one event to be told about."
    )
    assert "events-error" in page.html.find(id="events")["aria-describedby"]
    kept = form_posting_to(page, "/admin/notifications")
    assert (kept["email"].value, kept["name"].value) == ("not-an-email", "Typed Name")
    assert not any(c.checked for c in kept.fields["events"])
    assert recipients_of(dbsession, admin.firm) == []
    assert actions(dbsession, admin.firm) == []


def test_one_address_once_per_firm(testapp, dbsession, admin):
    login(testapp, admin)
    add_recipient(testapp, "books@firm.example", "payment_received")
    page = add_recipient(testapp, "BOOKS@firm.example", "payment_failed")
    assert page.status_int == 400
    assert "already receives notifications" in page.html.find(id="email-error").text
    assert len(recipients_of(dbsession, admin.firm)) == 1


def test_another_firms_recipient_is_not_found(testapp, dbsession, admin):
    other = FirmFactory()
    theirs = NotificationRecipient(
        firm_id=other.id, email="x@other.example", events=["link_expired"]
    )
    dbsession.add(theirs)
    dbsession.flush()
    login(testapp, admin)
    testapp.get(f"/admin/notifications/{theirs.id}", status=404)
    testapp.post(
        f"/admin/notifications/{theirs.id}/remove", {"csrf_token": csrf_token(testapp)}, status=404
    )
    assert len(recipients_of(dbsession, other)) == 1


def test_a_recipient_can_be_one_of_the_firms_active_users(testapp, dbsession, admin):
    colleague = UserFactory(firm=admin.firm, name="Cora Colleague")
    gone = UserFactory(firm=admin.firm, active=False)
    outsider = UserFactory(firm=FirmFactory())
    login(testapp, admin)
    form = form_posting_to(testapp.get("/admin/notifications"), "/admin/notifications")
    offered = [value for value, _selected, _text in form["user_id"].options]
    assert str(colleague.id) in offered and str(admin.id) in offered
    assert str(gone.id) not in offered and str(outsider.id) not in offered

    form["user_id"] = str(colleague.id)
    check_events(form, "daily_digest", "reminder_failed")
    page = form.submit(status=303).follow()
    assert f"{colleague.email} will be notified." in page.text
    (recipient,) = recipients_of(dbsession, admin.firm)
    assert (recipient.user_id, recipient.email, recipient.name, recipient.events) == (
        colleague.id,
        colleague.email,
        "Cora Colleague",
        ["reminder_failed", "daily_digest"],
    )

    # Back to "another address" on its edit page.
    path = f"/admin/notifications/{recipient.id}"
    form = form_posting_to(testapp.get(path), path)
    assert form["user_id"].value == str(colleague.id)
    form["user_id"] = ""
    form["email"] = "shared@firm.example"
    form.submit(status=303)
    (recipient,) = recipients_of(dbsession, admin.firm)
    assert (recipient.user_id, recipient.email) == (None, "shared@firm.example")


def test_another_firms_or_a_deactivated_user_is_refused(testapp, dbsession, admin):
    gone = UserFactory(firm=admin.firm, active=False)
    outsider = UserFactory(firm=FirmFactory())
    login(testapp, admin)
    for user in (gone, outsider):
        page = testapp.post(
            "/admin/notifications",
            {
                "csrf_token": csrf_token(testapp),
                "user_id": str(user.id),
                "email": "",
                "events": "link_expired",
            },
            status=400,
        )
        assert "Choose one of the firm's active users" in page.html.find(id="user_id-error").text
    assert recipients_of(dbsession, admin.firm) == []


def test_the_list_shows_a_users_current_address_and_a_deactivated_user(testapp, dbsession, admin):
    moved = UserFactory(firm=admin.firm)
    gone = UserFactory(firm=admin.firm)
    for user in (moved, gone):
        dbsession.add(
            NotificationRecipient(
                firm_id=admin.firm.id, email=user.email, user_id=user.id, events=["link_expired"]
            )
        )
    moved.email = f"now-{moved.email}"
    gone.active = False
    dbsession.flush()
    login(testapp, admin)
    page = testapp.get("/admin/notifications")
    cells = [row.find("td").get_text(" ", strip=True) for row in page.html.select("tbody tr")]
    assert f"{moved.email} user" in cells
    assert f"{gone.email} user, deactivated: not emailed" in cells
