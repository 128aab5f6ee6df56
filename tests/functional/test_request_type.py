"""Requests carry their extensions on one class made for the app (request_type.py), not on a
class made for each request, and still have every one of them: ours, the libraries', a
host's, and one a host adds after its configuration was committed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.interfaces import IRequestExtensions, IRequestFactory
from pyramid.response import Response
from pyramid.router import Router
from pyramid.scripting import prepare

from clientpay_connect import includeme
from clientpay_connect.config import resolve_settings
from clientpay_connect.security import PUBLIC
from clientpay_connect.throttle.interfaces import IRateLimiter
from clientpay_connect.work import Work
from tests.support.databases import sharing_connection

EXTENSIONS = ("tm", "dbsession", "user", "encryptor", "firm_zone", "services", "find_service")


def host_greeting(request: Any) -> str:
    return "hello from the host"


def late_greeting(request: Any) -> str:
    return "added after the commit"


def describe(request: Any) -> Response:
    """What a view sees of its request."""
    return Response(
        json_body={
            "class_is_the_apps": type(request) is request.registry.queryUtility(IRequestFactory),
            "user": request.user,
            "has_session": request.dbsession is not None,
            "limiter": request.find_service(IRateLimiter) is not None,
            "host": request.host_greeting,
            "late": request.late_greeting(),
        }
    )


@pytest.fixture(scope="module")
def hosted(app_settings: dict[str, Any]) -> Iterator[Router]:
    """Our app in a host's configuration, which adds a reified property of its own, then
    (after a commit) a method."""
    config = Configurator(settings=resolve_settings(dict(app_settings)))
    config.begin()
    try:
        config.include(includeme)
        config.add_request_method(host_greeting, reify=True)
        config.add_route("host.describe", "/host/describe")
        config.add_view(describe, route_name="host.describe", permission=PUBLIC)
        config.commit()
        config.add_request_method(late_greeting)
        application = config.make_wsgi_app()
    finally:
        config.end()
    yield application
    application.registry["dbengine"].dispose()


def test_a_served_request_is_of_the_apps_class_and_has_every_extension(hosted, db_connection):
    with sharing_connection(hosted, db_connection):
        seen = webtest.TestApp(hosted).get("/host/describe").json
    assert seen == {
        "class_is_the_apps": True,
        "user": None,
        "has_session": True,
        "limiter": True,
        "host": "hello from the host",
        "late": "added after the commit",
    }


def test_only_what_was_added_after_the_commit_is_left_to_each_request(hosted):
    request_class = hosted.registry.queryUtility(IRequestFactory)
    for name in (*EXTENSIONS, "host_greeting"):
        assert name in vars(request_class), name
    left = hosted.registry.queryUtility(IRequestExtensions)
    assert set(left.methods) == {"late_greeting"}
    assert not left.descriptors


def test_scripts_and_jobs_get_the_same_extensions(app, db_connection):
    env = prepare(registry=app.registry)
    try:
        request = env["request"]
        assert type(request) is app.registry.queryUtility(IRequestFactory)
        assert request.find_service(IRateLimiter) is not None
    finally:
        env["closer"]()
    with Work.fresh(app.registry) as work:
        assert work.find_service(IRateLimiter) is not None
        assert work.request.encryptor is app.registry["clientpay.encryptor"]
