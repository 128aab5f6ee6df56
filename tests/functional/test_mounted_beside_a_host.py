"""The add-on mounted beside a host Pyramid application (the README's way): the host keeps its
own ``home`` route, session, security policy and headers; the add-on's pages, sign-in and API
work under the prefix."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.authentication import SessionAuthenticationHelper
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.router import Router
from pyramid.security import Allowed, Denied
from pyramid.session import SignedCookieSessionFactory
from rutter.urlmap import URLMap

from clientpay_connect import main
from tests.conftest import TEST_PASSWORD
from tests.support.databases import sharing_connection

PREFIX = "/payments"


class HostPolicy:
    """The host's own idea of who is signed in: a name in its own session."""

    def __init__(self) -> None:
        self.helper = SessionAuthenticationHelper(prefix="host.")

    def identity(self, request: Request) -> Any:
        return self.helper.authenticated_userid(request)

    def authenticated_userid(self, request: Request) -> Any:
        return self.helper.authenticated_userid(request)

    def permits(self, request: Request, context: Any, permission: str) -> Any:
        if permission == "host.member":
            return Allowed("member") if self.identity(request) else Denied("nobody")
        return Allowed("open")

    def remember(self, request: Request, userid: Any, **kw: Any) -> Any:
        return self.helper.remember(request, userid, **kw)

    def forget(self, request: Request, **kw: Any) -> Any:
        return self.helper.forget(request, **kw)


def host_home(request: Request) -> Response:
    return Response("the host's own home")


def host_sign_in(request: Request) -> Response:
    from pyramid.security import remember

    return Response("welcome", headers=remember(request, request.params["name"]))


def host_me(request: Request) -> Response:
    return Response(f"you are {request.identity}")


def host_application() -> Router:
    with Configurator(settings={}) as config:
        config.set_session_factory(SignedCookieSessionFactory("host-secret", cookie_name="host"))
        config.set_security_policy(HostPolicy())
        config.add_route("home", "/")
        config.add_route("sign_in", "/sign-in")
        config.add_route("me", "/me")
        config.add_view(host_home, route_name="home")
        config.add_view(host_sign_in, route_name="sign_in")
        config.add_view(host_me, route_name="me", permission="host.member")
    return config.make_wsgi_app()


@pytest.fixture(scope="module")
def addon(app_settings: dict[str, Any]) -> Iterator[Router]:
    application = main({}, **app_settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def site(addon: Router, db_connection: Any, client_ip: str) -> Iterator[webtest.TestApp]:
    """The host at /, the add-on at /payments: two WSGI applications behind one URL map."""
    mapping = URLMap()
    mapping[PREFIX] = addon
    mapping["/"] = host_application()
    with sharing_connection(addon, db_connection):
        yield webtest.TestApp(
            mapping, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
        )


def test_the_host_keeps_its_home_route_and_its_headers(site):
    home = site.get("/", status=200)
    assert home.text == "the host's own home"
    # Our security headers are ours: none of them on the host's pages.
    assert "Content-Security-Policy" not in home.headers
    assert "X-Frame-Options" not in home.headers
    assert "Content-Security-Policy" in site.get(f"{PREFIX}/login").headers


def test_the_host_keeps_its_session_and_security_policy(site):
    site.get("/me", status=403)
    signed_in = site.get("/sign-in", {"name": "host-user"})
    assert any(c.startswith("host=") for c in signed_in.headers.getall("Set-Cookie"))
    assert site.get("/me").text == "you are host-user"


def test_the_addons_pages_sign_in_and_api_work_under_the_prefix(site, staff, staff_auth):
    refused = site.get(f"{PREFIX}/", status=302)
    assert refused.location.startswith(f"http://localhost{PREFIX}/login")
    form = site.get(f"{PREFIX}/login").form
    assert form.action == f"http://localhost{PREFIX}/login"
    form["email"], form["password"] = staff.email, TEST_PASSWORD
    assert form.submit(status=303).location == f"http://localhost{PREFIX}/"
    page = site.get(f"{PREFIX}/")
    assert staff.firm.name in page.text
    assert f'href="http://localhost{PREFIX}/static/' in page.text
    # Signed in to the add-on is not signed in to the host, and the other way round.
    site.get("/me", status=403)
    body = site.get(f"{PREFIX}/api/v1/merchant-accounts", headers=staff_auth).json
    assert body["items"] == []


def test_api_requests_under_the_prefix_are_validated(site, admin_auth):
    url = f"{PREFIX}/api/v1/settings"
    invalid = site.put_json(url, {"link_expiry_days": "soon"}, headers=admin_auth, status=422)
    assert any(e["field"] == "link_expiry_days" for e in invalid.json["errors"])
    assert (
        site.put_json(url, {"disclaimer": "Mounted."}, headers=admin_auth).json["disclaimer"]
        == "Mounted."
    )


def test_the_served_document_names_the_mounted_server(site):
    document = site.get(f"{PREFIX}/api/v1/openapi.json").json
    assert document["servers"] == [{"url": f"{PREFIX}/api/v1"}]
    assert "/embed/launch" in document["paths"]
