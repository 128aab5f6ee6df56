from tests.conftest import login


def test_health_answers_when_the_database_does(testapp):
    assert testapp.get("/healthz").json == {"status": "ok"}


def test_staff_signs_in_and_sees_the_home_page(testapp, staff):
    login(testapp, staff)
    page = testapp.get("/")
    assert staff.firm.name in page.text


def test_merchant_accounts_are_the_firms_own(testapp, dbsession, staff, staff_auth):
    from tests.factories import FirmFactory, MerchantAccountFactory

    mine = MerchantAccountFactory(firm=staff.firm, name="Operating")
    MerchantAccountFactory(firm=FirmFactory(), name="Someone else's")
    body = testapp.get("/api/v1/merchant-accounts", headers=staff_auth).json
    assert body == {
        "items": [
            {
                "id": mine.id,
                "name": "Operating",
                "kind": "operating",
                "currency": "USD",
                "methods": ["card", "echeck"],
            }
        ]
    }


def test_api_without_credentials_is_401(testapp):
    body = testapp.get("/api/v1/merchant-accounts", status=401).json
    assert body["error"] == "unauthenticated"


def test_the_favicon_is_served_where_browsers_look_for_it(testapp):
    icon = testapp.get("/favicon.ico", status=200)
    assert icon.content_type == "image/svg+xml"
    assert icon.body.startswith(b"<svg")
    assert "max-age=86400" in icon.headers["Cache-Control"]


def test_the_disclaimer_help_says_where_payers_read_it(testapp, admin):
    login(testapp, admin)
    page = testapp.get("/admin/settings")
    help_text = page.html.find(id="disclaimer-help").get_text(" ", strip=True)
    assert "foot of the payment page, below the Pay button" in help_text
    assert f"“From {admin.firm.name}”" in help_text
