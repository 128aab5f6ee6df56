from tests.conftest import login


def test_health_answers_when_the_database_does(testapp):
    assert testapp.get("/healthz").json == {"status": "ok"}


def test_staff_signs_in_and_sees_the_home_page(testapp, staff):
    login(testapp, staff)
    page = testapp.get("/")
    assert staff.firm.name in page.text
