"""The add-on included into a host Pyramid application under a route prefix."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import webtest
from openapi_core import OpenAPI
from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.router import Router

from clientpay_connect.security import PUBLIC
from tests.conftest import TEST_PASSWORD
from tests.factories import MerchantAccountFactory
from tests.support.databases import sharing_connection

PREFIX = "/payments"


def host_home(request: Request) -> Response:
    return Response("the host's own page")


@pytest.fixture(scope="module")
def host_app(base_settings, database_url) -> Iterator[Router]:
    """A host application with a page of its own and the add-on under /payments."""
    settings = {**base_settings, "sqlalchemy.url": database_url}
    with Configurator(settings=settings) as config:
        config.add_route("host.home", "/")
        config.add_view(host_home, route_name="host.home", permission=PUBLIC)
        config.include("clientpay_connect", route_prefix=PREFIX)
    application = config.make_wsgi_app()
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture
def host(host_app, db_connection, client_ip) -> Iterator[webtest.TestApp]:
    with sharing_connection(host_app, db_connection):
        yield webtest.TestApp(
            host_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
        )


def test_health_is_served_under_the_prefix_only(host):
    assert host.get(f"{PREFIX}/healthz").json == {"status": "ok"}
    assert host.get("/").text == "the host's own page"
    host.get("/healthz", status=404)


def test_sign_in_under_the_prefix(host, staff):
    page = host.get(f"{PREFIX}/login")
    form = page.form
    assert form.action == f"http://localhost{PREFIX}/login"
    form["email"], form["password"] = staff.email, TEST_PASSWORD
    signed_in = form.submit(status=303)
    assert signed_in.location == f"http://localhost{PREFIX}/"
    home = host.get(f"{PREFIX}/")
    assert staff.firm.name in home.text
    # Assets and links in the page point under the prefix too.
    assert f'href="http://localhost{PREFIX}/static/' in home.text

    # Not signed in: the add-on's pages send to the add-on's login, under the prefix.
    host.reset()
    refused = host.get(f"{PREFIX}/", status=302)
    assert refused.location.startswith(f"http://localhost{PREFIX}/login")


def test_the_api_under_the_prefix(host, staff, staff_auth):
    account = MerchantAccountFactory(firm=staff.firm, name="Operating")
    body = host.get(f"{PREFIX}/api/v1/merchant-accounts", headers=staff_auth).json
    assert [item["id"] for item in body["items"]] == [account.id]
    refused = host.get(f"{PREFIX}/api/v1/merchant-accounts", status=401).json
    assert refused["error"] == "unauthenticated"


def test_the_served_openapi_document_names_the_prefixed_server(host):
    document = host.get(f"{PREFIX}/api/v1/openapi.json").json
    assert document["servers"] == [{"url": f"{PREFIX}/api/v1"}]
    OpenAPI.from_dict(document)  # still a valid OpenAPI document
    assert "/merchant-accounts" in document["paths"]


def test_requests_under_the_prefix_are_validated_against_the_document(host, admin, admin_auth):
    """A body the document forbids is refused with 422 (the request found its operation),
    and a valid one goes through."""
    url = f"{PREFIX}/api/v1/settings"
    invalid = host.put_json(url, {"link_expiry_days": "soon"}, headers=admin_auth, status=422)
    assert invalid.json["error"] == "validation_error"
    assert any(e["field"] == "link_expiry_days" for e in invalid.json["errors"])
    valid = host.put_json(url, {"disclaimer": "Prefixed."}, headers=admin_auth, status=200)
    assert valid.json["disclaimer"] == "Prefixed."


def test_session_writes_under_the_prefix_need_the_csrf_header(host, admin):
    form = host.get(f"{PREFIX}/login").form
    form["email"], form["password"] = admin.email, TEST_PASSWORD
    form.submit(status=303)
    url = f"{PREFIX}/api/v1/settings"
    assert host.put_json(url, {"disclaimer": "x"}, status=403).json["error"] == "csrf"
    # conftest.csrf_token reads "/", which is the host's page here.
    page = host.get(f"{PREFIX}/")
    token = page.html.find("input", {"name": "csrf_token"})["value"]
    host.put_json(url, {"disclaimer": "x"}, headers={"X-CSRF-Token": token}, status=200)


def test_every_validated_view_is_in_the_document(app):
    """A view marked ``openapi=True`` whose path or method the document lacks would go
    unvalidated without a word (the validator lets unknown paths through)."""
    introspector = app.registry.introspector
    patterns = {
        item["introspectable"]["name"]: item["introspectable"]["pattern"]
        for item in introspector.get_category("routes")
    }
    paths = app.registry["clientpay.openapi.spec"]["paths"]
    checked = 0
    for item in introspector.get_category("views"):
        view = item["introspectable"]
        if not view.get("openapi"):
            continue
        pattern = patterns[view["route_name"]]
        assert pattern.startswith("/api/v1/"), pattern
        # Route placeholders carry a regex ({id:\d+}); the document's do not ({id}).
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", pattern.removeprefix("/api/v1"))
        assert path in paths, f"{view['route_name']}: {path} is not documented"
        methods = view["request_methods"]
        assert methods, f"{view['route_name']}: a validated view must name its method"
        for method in [methods] if isinstance(methods, str) else methods:
            assert method.lower() in paths[path], f"{method} {path} is not documented"
        checked += 1
    assert checked > 0
