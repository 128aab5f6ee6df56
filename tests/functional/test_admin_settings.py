"""Firm settings through the page and the API; the reCAPTCHA secret stays encrypted and hidden."""

from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, text

from clientpay_connect.accounts.models import AuditEvent
from clientpay_connect.admin.models import FirmSettings
from tests.conftest import csrf_token, login

SECRET = "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe"


def form_posting_to(page, path):
    return next(form for form in page.forms.values() if urlsplit(form.action).path == path)


def settings_of(dbsession, firm):
    dbsession.expire_all()
    return dbsession.get(FirmSettings, firm.id)


def raw_secret_column(dbsession, firm):
    return dbsession.execute(
        text("SELECT recaptcha_secret_encrypted FROM firm_settings WHERE firm_id = :firm"),
        {"firm": firm.id},
    ).scalar_one()


def audit_events(dbsession, firm, action):
    return (
        dbsession.execute(
            select(AuditEvent).where(AuditEvent.firm_id == firm.id, AuditEvent.action == action)
        )
        .scalars()
        .all()
    )


@pytest.fixture
def settings_form(testapp, admin):
    login(testapp, admin)
    return form_posting_to(testapp.get("/admin/settings"), "/admin/settings")


class TestSettingsPage:
    def test_saves_every_field_and_says_so(self, testapp, dbsession, admin, settings_form):
        settings_form["default_email_message"] = "Please pay your invoice."
        settings_form["disclaimer"] = "Payments are processed by our bank."
        settings_form["link_expiry_days"] = "14"
        settings_form["time_zone"] = "America/Chicago"
        settings_form["reply_to_email"] = "Billing@Firm.example"
        saved = settings_form.submit(status=303).follow()

        assert "Settings saved." in saved.text
        stored = settings_of(dbsession, admin.firm)
        assert stored.default_email_message == "Please pay your invoice."
        assert stored.disclaimer == "Payments are processed by our bank."
        assert stored.link_expiry_days == 14
        assert stored.time_zone == "America/Chicago"
        assert stored.reply_to_email == "billing@firm.example"
        (event,) = audit_events(dbsession, admin.firm, "settings.updated")
        assert event.actor_user_id == admin.id
        assert event.details["fields"] == [
            "default_email_message",
            "disclaimer",
            "link_expiry_days",
            "reply_to_email",
            "time_zone",
        ]

    def test_the_disclaimer_field_has_its_label(self, testapp, admin):
        login(testapp, admin)
        page = testapp.get("/admin/settings")
        label = page.html.find("label", string="Payment-page disclaimer")
        assert label is not None
        field = page.html.find(id=label["for"])
        assert field.name == "textarea"
        assert field["name"] == "disclaimer"
        assert page.html.find("button", string="Save settings") is not None

    def test_recaptcha_secret_is_stored_encrypted_and_never_shown(
        self, app, testapp, dbsession, admin, settings_form
    ):
        settings_form["recaptcha_enabled"] = True
        settings_form["recaptcha_site_key"] = "site-key-123"
        settings_form["recaptcha_secret"] = SECRET
        page = settings_form.submit(status=303).follow()

        raw = raw_secret_column(dbsession, admin.firm)
        assert SECRET not in raw
        assert app.registry["clientpay.encryptor"].decrypt(raw) == SECRET
        assert SECRET not in page.text
        assert "A secret key is stored" in page.text
        assert form_posting_to(page, "/admin/settings")["recaptcha_secret"].value == ""
        assert settings_of(dbsession, admin.firm).recaptcha_enabled

    def test_an_empty_secret_field_keeps_the_stored_secret(
        self, app, testapp, dbsession, admin, settings_form
    ):
        settings_form["recaptcha_enabled"] = True
        settings_form["recaptcha_site_key"] = "site-key-123"
        settings_form["recaptcha_secret"] = SECRET
        page = settings_form.submit(status=303).follow()

        again = form_posting_to(page, "/admin/settings")
        again["disclaimer"] = "Changed only this."
        again.submit(status=303)

        stored = settings_of(dbsession, admin.firm)
        assert stored.disclaimer == "Changed only this."
        assert stored.recaptcha_enabled
        assert (
            app.registry["clientpay.encryptor"].decrypt(raw_secret_column(dbsession, admin.firm))
            == SECRET
        )

    def test_turning_recaptcha_on_needs_a_key_and_a_secret(
        self, testapp, dbsession, admin, settings_form
    ):
        settings_form["recaptcha_enabled"] = True
        settings_form["disclaimer"] = "Typed before the mistake."
        page = settings_form.submit(status=400)

        for field, message in [
            ("recaptcha_site_key", "Enter the site key to turn reCAPTCHA on."),
            ("recaptcha_secret", "Enter the secret key to turn reCAPTCHA on."),
        ]:
            box = page.html.find(id=field)
            assert box["aria-invalid"] == "true"
            error_id = f"{field}-error"
            assert error_id in box["aria-describedby"].split()
            assert page.html.find(id=error_id).get_text(strip=True) == message
        form = form_posting_to(page, "/admin/settings")
        assert form["disclaimer"].value == "Typed before the mistake."
        assert form["recaptcha_enabled"].checked
        stored = settings_of(dbsession, admin.firm)
        assert not stored.recaptcha_enabled
        assert stored.disclaimer == ""
        assert audit_events(dbsession, admin.firm, "settings.updated") == []

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("link_expiry_days", "0", "Enter a whole number of days from 1 to 365."),
            ("link_expiry_days", "366", "Enter a whole number of days from 1 to 365."),
            ("link_expiry_days", "two weeks", "Enter a whole number of days from 1 to 365."),
            ("link_expiry_days", "²", "Enter a whole number of days from 1 to 365."),
            ("link_expiry_days", "9" * 5000, "Enter a whole number of days from 1 to 365."),
            ("reply_to_email", "not an email", "Enter an email address like name@example.com."),
        ],
    )
    def test_wrong_values_are_explained_and_kept(
        self, testapp, dbsession, admin, settings_form, field, value, message
    ):
        settings_form[field] = value
        page = settings_form.submit(status=400)

        assert page.html.find(id=f"{field}-error").get_text(strip=True) == message
        assert form_posting_to(page, "/admin/settings")[field].value == value
        assert page.html.find(role="alert").find("a", href=f"#{field}") is not None
        stored = settings_of(dbsession, admin.firm)
        assert stored.link_expiry_days == 30
        assert stored.reply_to_email == ""

    def test_an_unknown_time_zone_is_refused(self, testapp, dbsession, admin):
        login(testapp, admin)
        fields = {
            "csrf_token": csrf_token(testapp),
            "default_email_message": "Hello",
            "disclaimer": "",
            "link_expiry_days": "30",
            "time_zone": "Mars/Olympus_Mons",
            "reply_to_email": "",
            "recaptcha_site_key": "",
        }
        page = testapp.post("/admin/settings", fields, status=400)
        assert "Choose a time zone from the list" in page.html.find(id="time_zone-error").text
        assert settings_of(dbsession, admin.firm).time_zone == "America/New_York"


class TestSettingsApi:
    def test_get_shows_whether_a_secret_is_set_but_not_the_secret(
        self, testapp, dbsession, admin, admin_auth
    ):
        body = testapp.get("/api/v1/settings", headers=admin_auth).json
        assert body == {
            "default_email_message": settings_of(dbsession, admin.firm).default_email_message,
            "disclaimer": "",
            "recaptcha_enabled": False,
            "recaptcha_site_key": "",
            "recaptcha_secret_set": False,
            "link_expiry_days": 30,
            "time_zone": "America/New_York",
            "reply_to_email": "",
            "reminders": [],
        }

    def test_put_changes_only_the_given_fields(self, testapp, dbsession, admin, admin_auth):
        before = testapp.get("/api/v1/settings", headers=admin_auth).json
        body = testapp.put_json(
            "/api/v1/settings", {"link_expiry_days": 7, "disclaimer": "Hi"}, headers=admin_auth
        ).json
        assert body == {**before, "link_expiry_days": 7, "disclaimer": "Hi"}
        stored = settings_of(dbsession, admin.firm)
        assert (stored.link_expiry_days, stored.disclaimer) == (7, "Hi")
        (event,) = audit_events(dbsession, admin.firm, "settings.updated")
        assert event.details == {"fields": ["disclaimer", "link_expiry_days"]}

    def test_put_stores_the_secret_encrypted_and_never_returns_it(
        self, app, testapp, dbsession, admin, admin_auth
    ):
        response = testapp.put_json(
            "/api/v1/settings",
            {"recaptcha_enabled": True, "recaptcha_site_key": "key", "recaptcha_secret": SECRET},
            headers=admin_auth,
        )
        assert SECRET not in response.text
        assert response.json["recaptcha_secret_set"] is True
        assert "recaptcha_secret" not in response.json
        assert SECRET not in testapp.get("/api/v1/settings", headers=admin_auth).text
        raw = raw_secret_column(dbsession, admin.firm)
        assert SECRET not in raw
        assert app.registry["clientpay.encryptor"].decrypt(raw) == SECRET
        (event,) = audit_events(dbsession, admin.firm, "settings.updated")
        assert SECRET not in str(event.details)

    def test_an_empty_secret_removes_it_once_recaptcha_is_off(
        self, testapp, dbsession, admin, admin_auth
    ):
        testapp.put_json(
            "/api/v1/settings",
            {"recaptcha_enabled": True, "recaptcha_site_key": "key", "recaptcha_secret": SECRET},
            headers=admin_auth,
        )
        refused = testapp.put_json(
            "/api/v1/settings", {"recaptcha_secret": ""}, headers=admin_auth, status=422
        ).json
        assert [e["field"] for e in refused["errors"]] == ["recaptcha_secret"]

        body = testapp.put_json(
            "/api/v1/settings",
            {"recaptcha_enabled": False, "recaptcha_secret": ""},
            headers=admin_auth,
        ).json
        assert body["recaptcha_secret_set"] is False
        assert raw_secret_column(dbsession, admin.firm) is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"link_expiry_days": 0}, "link_expiry_days"),
            ({"link_expiry_days": 400}, "link_expiry_days"),
            ({"link_expiry_days": "14"}, "link_expiry_days"),
            ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
            ({"time_zone": "localtime"}, "time_zone"),
            ({"reply_to_email": "nobody"}, "reply_to_email"),
            ({"recaptcha_enabled": True}, "recaptcha_site_key"),
            ({"recaptcha_enabled": True, "recaptcha_site_key": "k"}, "recaptcha_secret"),
            ({"disclaimer": "x" * 10001}, "disclaimer"),
        ],
    )
    def test_wrong_values_are_422_naming_the_field(
        self, testapp, dbsession, admin, admin_auth, body, field
    ):
        answer = testapp.put_json("/api/v1/settings", body, headers=admin_auth, status=422).json
        assert answer["error"] == "validation_error"
        assert field in [e["field"] for e in answer["errors"]]
        stored = settings_of(dbsession, admin.firm)
        assert (stored.link_expiry_days, stored.recaptcha_enabled) == (30, False)
        assert audit_events(dbsession, admin.firm, "settings.updated") == []

    def test_a_field_that_is_not_a_setting_is_refused(self, testapp, admin_auth):
        answer = testapp.put_json(
            "/api/v1/settings", {"recaptcha_secret_set": True}, headers=admin_auth, status=422
        ).json
        assert answer["error"] == "validation_error"
        assert "recaptcha_secret_set" in str(answer["errors"])

    def test_a_signed_in_admin_needs_the_csrf_header(self, testapp, dbsession, admin):
        login(testapp, admin)
        # Refused either way; which 4xx a bad CSRF token gets is the foundation's choice.
        testapp.put_json("/api/v1/settings", {"link_expiry_days": 3}, status=[400, 403])
        assert settings_of(dbsession, admin.firm).link_expiry_days == 30
        token = csrf_token(testapp)
        testapp.put_json(
            "/api/v1/settings", {"link_expiry_days": 3}, headers={"X-CSRF-Token": token}
        )
        assert settings_of(dbsession, admin.firm).link_expiry_days == 3


def test_the_time_zone_picker_offers_the_likely_zones_first_by_their_names(testapp, admin):
    login(testapp, admin)
    picker = testapp.get("/admin/settings").html.find("select", id="time_zone")
    likely, everything = picker.find_all("optgroup")
    assert likely["label"] == "United States"
    assert [o.get_text(strip=True) for o in likely.find_all("option")] == [
        "Eastern Time (New York)",
        "Central Time (Chicago)",
        "Mountain Time (Denver)",
        "Arizona (Mountain Time, no daylight saving)",
        "Pacific Time (Los Angeles)",
        "Alaska Time (Anchorage)",
        "Hawaii Time (Honolulu)",
    ]
    assert picker.find("option", selected=True)["value"] == "America/New_York"
    rest = [o["value"] for o in everything.find_all("option")]
    assert len(rest) > 300 and "Europe/London" in rest and "America/New_York" not in rest
    values = [o["value"] for o in picker.find_all("option")]
    assert len(values) == len(set(values))
