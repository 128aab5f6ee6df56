"""Health, the OpenAPI document, and how errors look on the API and on pages."""

from __future__ import annotations

import logging
from typing import Any

from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken
from pyramid.httpexceptions import HTTPException, HTTPForbidden, HTTPFound, HTTPNotFound
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import (
    exception_view_config,
    forbidden_view_config,
    notfound_view_config,
    view_config,
)
from sqlalchemy import text

from clientpay_connect.api.errors import ApiError, error_response, is_api_request
from clientpay_connect.api.openapi import served_document
from clientpay_connect.body_limits import BodyTooLarge, too_large_response
from clientpay_connect.security import PUBLIC

log = logging.getLogger(__name__)


@view_config(route_name="health", renderer="json", permission=PUBLIC, require_csrf=False)
def healthz(request: Request) -> Any:
    request.dbsession.execute(text("SELECT 1"))
    return {"status": "ok"}


@view_config(route_name="api.openapi", permission=PUBLIC)
def openapi_document(request: Request) -> Response:
    response = Response(body=served_document(request))
    response.content_type = "application/json"
    return response


@exception_view_config(ApiError)
def api_error(exc: ApiError, request: Request) -> Response:
    return error_response(request, exc)


@exception_view_config(BodyTooLarge)
def body_too_large(exc: BodyTooLarge, request: Request) -> Response:
    # A body without a declared length, found too large while the view read it.
    return too_large_response(request, exc.limit)


@forbidden_view_config()
def forbidden(exc: HTTPForbidden, request: Request) -> Response:
    signed_in = request.user is not None
    if is_api_request(request):
        if not signed_in:
            return error_response(
                request, ApiError(401, "unauthenticated", "Sign in or send a valid API token.")
            )
        return error_response(request, ApiError(403, "forbidden", "Only admins can do that."))
    if not signed_in:
        login = request.route_url("login", _query={"next": request.path_qs})
        return HTTPFound(location=login)
    request.response.status = 403
    return _render_error_page(request, 403, "You do not have access to this page.")


# Pyramid raises these as 400; the contract says a refused write is 403, on pages and API alike,
# signed in or not (the login form is checked too).
@exception_view_config(BadCSRFToken)
@exception_view_config(BadCSRFOrigin)
def csrf_failed(exc: HTTPException, request: Request) -> Response:
    if is_api_request(request):
        if isinstance(exc, BadCSRFOrigin):
            message = "The request did not come from this site."
        else:
            message = "Missing or wrong CSRF token: send X-CSRF-Token with session writes."
        return error_response(request, ApiError(403, "csrf", message))
    request.response.status = 403
    return _render_error_page(
        request, 403, "This form has expired. Please reload the page and try again."
    )


@notfound_view_config()
def not_found(exc: HTTPNotFound, request: Request) -> Response:
    if is_api_request(request):
        allowed = route_methods(request)
        if allowed and request.method not in allowed:
            return method_not_allowed(request, allowed)
        return error_response(request, ApiError(404, "not_found", "Not found."))
    request.response.status = 404
    return _render_error_page(request, 404, "We could not find that page.")


# Two registrations so that pyramid_retry can still retry a transient error (a serialization
# failure) before we render it: non-retryable errors at once, retryable ones on the last try.
@exception_view_config(Exception, retryable_error=False)
@exception_view_config(Exception, last_retry_attempt=True)
def server_error(exc: Exception, request: Request) -> Response:
    if isinstance(exc, HTTPException):
        return exc
    log.exception(
        "unhandled error on %s %s",
        request.method,
        request.matched_route.name if request.matched_route else "-",
    )
    if is_api_request(request):
        return error_response(
            request,
            ApiError(
                500,
                "server_error",
                "Something went wrong on our side; nothing was charged twice. Please try again.",
            ),
        )
    request.response.status = 500
    return _render_error_page(request, 500, "Something went wrong on our side. Please try again.")


def method_not_allowed(request: Request, allowed: list[str]) -> Response:
    """405 with the Allow header RFC 9110 asks for, for a method the address does not have."""
    message = f"This address answers {', '.join(allowed)} only."
    response = error_response(request, ApiError(405, "method_not_allowed", message))
    response.allow = allowed
    return response


def route_methods(request: Request) -> list[str]:
    """The methods the matched route has views for (Pyramid reports a route that matched but
    has no view for the method as a 404, which a client cannot tell from a wrong address)."""
    route = request.matched_route
    if route is None:
        return []
    cache: dict[str, list[str]] = request.registry.setdefault("clientpay.route_methods", {})
    if route.name not in cache:
        cache[route.name] = _views_methods(request, route.name)
    return cache[route.name]


def _views_methods(request: Request, route_name: str) -> list[str]:
    methods: set[str] = set()
    for view in request.registry.introspector.get_category("views"):
        introspectable = view["introspectable"]
        if introspectable["route_name"] != route_name:
            continue
        declared = introspectable["request_methods"]
        if declared is None:
            # A view for every method: nothing is ever "not allowed" on this route.
            return []
        methods.update([declared] if isinstance(declared, str) else declared)
    if "GET" in methods:
        # Pyramid answers HEAD with a GET view.
        methods.add("HEAD")
    return sorted(methods)


def _render_error_page(request: Request, status: int, message: str) -> Response:
    from pyramid.renderers import render_to_response

    response = render_to_response(
        "clientpay_connect:templates/error.jinja2",
        {"status": status, "message": message},
        request=request,
    )
    response.status = status
    return response
