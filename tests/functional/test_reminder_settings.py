"""Smart Reminders in the firm's settings: the API (at most four, 422 with each field) and
the page (four rows prefilled with the firm's default text, mistakes beside their fields)."""

from __future__ import annotations

from typing import Any

import pytest
import webtest

from clientpay_connect.admin.models import DEFAULT_EMAIL_MESSAGE, FirmSettings
from tests.conftest import login


def test_the_api_refuses_a_fifth_reminder(testapp, dbsession, admin, admin_auth):
    five = [{"days": d, "relative_to": "due_date", "message": "Hi"} for d in range(1, 6)]
    answer = testapp.put_json(
        "/api/v1/settings", {"reminders": five}, headers=admin_auth, status=422
    ).json
    assert [e["field"] for e in answer["errors"]] == ["reminders"]
    assert "at most 4" in answer["errors"][0]["message"]
    dbsession.expire_all()
    assert dbsession.get(FirmSettings, admin.firm_id).reminders == []


def test_the_api_keeps_the_schedule_in_time_order_with_the_default_message(
    testapp, dbsession, admin, admin_auth
):
    given = [
        {"days": 7, "relative_to": "sent", "message": "A week since"},
        {"days": 3, "relative_to": "due_date"},
        {"days": -3, "relative_to": "due_date", "message": "  Soon due  "},
    ]
    body = testapp.put_json("/api/v1/settings", {"reminders": given}, headers=admin_auth).json
    expected = [
        {"days": -3, "relative_to": "due_date", "message": "Soon due"},
        {"days": 3, "relative_to": "due_date", "message": DEFAULT_EMAIL_MESSAGE},
        {"days": 7, "relative_to": "sent", "message": "A week since"},
    ]
    assert body["reminders"] == expected
    assert testapp.get("/api/v1/settings", headers=admin_auth).json["reminders"] == expected
    dbsession.expire_all()
    assert dbsession.get(FirmSettings, admin.firm_id).reminders == expected
    # Empty is off.
    body = testapp.put_json("/api/v1/settings", {"reminders": []}, headers=admin_auth).json
    assert body["reminders"] == []


def test_the_api_says_which_reminder_is_wrong(testapp, admin_auth):
    given = [
        {"days": 3, "relative_to": "due_date", "message": "a"},
        {"days": 0, "relative_to": "sent", "message": "b"},
        {"days": 3, "relative_to": "due_date", "message": "c"},
        {"days": 400, "relative_to": "invoice_date", "message": "d"},
    ]
    answer = testapp.put_json(
        "/api/v1/settings", {"reminders": given}, headers=admin_auth, status=422
    ).json
    fields = [e["field"] for e in answer["errors"]]
    assert fields == [
        "reminders.1.days",
        "reminders.2.days",
        "reminders.3.relative_to",
        "reminders.3.days",
    ]


def test_staff_cannot_change_the_schedule(testapp, staff_auth):
    testapp.put_json("/api/v1/settings", {"reminders": []}, headers=staff_auth, status=403)


def settings_form(app: webtest.TestApp) -> webtest.Form:
    page = app.get("/admin/settings")
    (form,) = [f for f in page.forms.values() if f.action.endswith("/admin/settings")]
    return form


@pytest.fixture
def admin_page(testapp: webtest.TestApp, admin: Any) -> webtest.TestApp:
    login(testapp, admin)
    return testapp


def test_the_settings_page_prefills_four_reminders_with_the_default_text(admin_page, dbsession):
    form = settings_form(admin_page)
    for row in range(4):
        assert form[f"reminder-{row}-days"].value == ""
        assert form[f"reminder-{row}-message"].value == DEFAULT_EMAIL_MESSAGE


def test_the_settings_page_saves_a_schedule(admin_page, dbsession, admin):
    form = settings_form(admin_page)
    form["reminder-0-days"] = "7"
    form["reminder-0-when"] = "after_due"
    form["reminder-0-message"] = "Now a week late"
    form["reminder-2-days"] = "2"
    form["reminder-2-when"] = "before_due"
    form.submit().follow()
    dbsession.expire_all()
    assert dbsession.get(FirmSettings, admin.firm_id).reminders == [
        {"days": -2, "relative_to": "due_date", "message": DEFAULT_EMAIL_MESSAGE},
        {"days": 7, "relative_to": "due_date", "message": "Now a week late"},
    ]
    form = settings_form(admin_page)
    assert (form["reminder-0-days"].value, form["reminder-0-when"].value) == ("2", "before_due")
    assert (form["reminder-1-days"].value, form["reminder-1-when"].value) == ("7", "after_due")
    assert form["reminder-2-days"].value == ""


def test_the_settings_page_shows_a_reminders_mistake_beside_it(admin_page, dbsession, admin):
    form = settings_form(admin_page)
    form["reminder-1-days"] = "soon"
    form["reminder-3-days"] = "0"
    form["reminder-3-when"] = "after_sent"
    page = form.submit(status=400)
    assert "whole number of days" in page.html.find(id="reminder-1-days-error").text
    assert "from 1 to 365 days after sending" in page.html.find(id="reminder-3-days-error").text
    assert page.html.find("input", id="reminder-1-days")["value"] == "soon"
    summary = page.html.find(id="form-errors")
    assert [a["href"] for a in summary.find_all("a")] == ["#reminder-1-days", "#reminder-3-days"]
    dbsession.expire_all()
    assert dbsession.get(FirmSettings, admin.firm_id).reminders == []
