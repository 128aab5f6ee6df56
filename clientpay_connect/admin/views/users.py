"""Users: the pages (list, add, edit, deactivate, reset password) and /api/v1/users."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.accounts.models import ROLE_STAFF, User
from clientpay_connect.admin.forms import (
    INVALID_FORM,
    errors_by_field,
    form_text,
    found,
    iso_utc,
    matched_id,
    pop_revealed,
    stash_for_reveal,
)
from clientpay_connect.admin.services.users import (
    add_user,
    firm_user,
    firm_users,
    reset_password,
    update_user,
)
from clientpay_connect.api.errors import ApiError, FieldErrors
from clientpay_connect.security import ADMIN, firm_id

PASSWORD_SECRET = "user_password"  # noqa: S105 (the kind of one-time secret, not a secret)


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "created_at": iso_utc(user.created_at),
        "last_login_at": iso_utc(user.last_login_at),
    }


def _user_from_route(request: Request) -> User:
    return found(lambda: firm_user(request.dbsession, firm_id(request), matched_id(request)))


# ----------------------------------------------------------------------------- pages


def _list_page(
    request: Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "users": firm_users(request.dbsession, firm_id(request)),
        "values": values or {"email": "", "name": "", "role": ROLE_STAFF},
        "errors": errors or {},
    }


def _user_page(
    request: Request,
    user: User,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "user": user,
        "values": values or {"name": user.name, "role": user.role},
        "errors": errors or {},
        "is_self": user.id == request.user.id,
    }


@view_config(
    route_name="admin.users", request_method="GET", renderer="admin/users.jinja2", permission=ADMIN
)
def users_page(request: Request) -> dict[str, Any]:
    return _list_page(request)


@view_config(
    route_name="admin.users",
    request_method="POST",
    renderer="admin/users.jinja2",
    permission=ADMIN,
)
def create_user_from_form(request: Request) -> Any:
    values = {name: form_text(request.POST, name) for name in ("email", "name", "role")}
    try:
        user, password = add_user(request, values["email"], values["name"], values["role"])
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _list_page(request, values, errors_by_field(error))
    # add_user generates a password when none is given, as here.
    stash_for_reveal(request, PASSWORD_SECRET, user.id, password or "")
    return HTTPSeeOther(location=request.route_url("admin.user_password", id=user.id))


@view_config(
    route_name="admin.user_password",
    request_method="GET",
    renderer="admin/user_password.jinja2",
    permission=ADMIN,
)
def one_time_password_page(request: Request) -> dict[str, Any]:
    user = _user_from_route(request)
    return {"user": user, "password": pop_revealed(request, PASSWORD_SECRET, user.id)}


@view_config(
    route_name="admin.user", request_method="GET", renderer="admin/user.jinja2", permission=ADMIN
)
def user_page(request: Request) -> dict[str, Any]:
    return _user_page(request, _user_from_route(request))


@view_config(
    route_name="admin.user", request_method="POST", renderer="admin/user.jinja2", permission=ADMIN
)
def update_user_from_form(request: Request) -> Any:
    user = _user_from_route(request)
    values = {name: form_text(request.POST, name) for name in ("name", "role")}
    try:
        update_user(request, user, name=values["name"], role=values["role"])
    except ApiError as error:
        request.response.status = INVALID_FORM if error.status == 422 else error.status
        return _user_page(request, user, values, errors_by_field(error))
    request.session.flash(f"Saved {user.email}.")
    return HTTPSeeOther(location=request.route_url("admin.users"))


def _set_active_from_form(request: Request, active: bool) -> Any:
    user = _user_from_route(request)
    try:
        update_user(request, user, active=active)
    except ApiError as error:
        request.response.status = error.status
        return _user_page(request, user, errors=errors_by_field(error))
    state = "reactivated" if active else "deactivated; their sessions have ended"
    request.session.flash(f"{user.email} is {state}.")
    return HTTPSeeOther(location=request.route_url("admin.user", id=user.id))


@view_config(
    route_name="admin.user_deactivate",
    request_method="POST",
    renderer="admin/user.jinja2",
    permission=ADMIN,
)
def deactivate_user_from_form(request: Request) -> Any:
    return _set_active_from_form(request, active=False)


@view_config(
    route_name="admin.user_reactivate",
    request_method="POST",
    renderer="admin/user.jinja2",
    permission=ADMIN,
)
def reactivate_user_from_form(request: Request) -> Any:
    return _set_active_from_form(request, active=True)


@view_config(route_name="admin.user_reset_password", request_method="POST", permission=ADMIN)
def reset_password_from_form(request: Request) -> HTTPSeeOther:
    user = _user_from_route(request)
    stash_for_reveal(request, PASSWORD_SECRET, user.id, reset_password(request, user))
    return HTTPSeeOther(location=request.route_url("admin.user_password", id=user.id))


# ----------------------------------------------------------------------------- API


@view_config(
    route_name="api.users", request_method="GET", renderer="json", permission=ADMIN, openapi=True
)
def list_users(request: Request) -> dict[str, Any]:
    users = firm_users(request.dbsession, firm_id(request))
    # A firm has a handful of people: one page holds them all.
    return {"items": [user_json(u) for u in users], "next_cursor": None, "total": len(users)}


@view_config(
    route_name="api.users", request_method="POST", renderer="json", permission=ADMIN, openapi=True
)
def create_user_from_api(request: Request) -> dict[str, Any]:
    body = request.openapi_validated.body
    user, generated = add_user(
        request, body["email"], body["name"], body["role"], body.get("password")
    )
    request.response.status = 201
    answer = user_json(user)
    if generated is not None:
        answer["password"] = generated
        # Shown only this once: no cache on the way may keep a copy, whatever the
        # authentication (a bearer-token call carries no session cookie, which is what
        # otherwise marks an answer no-store).
        request.response.headers["Cache-Control"] = "no-store"
    return answer


@view_config(
    route_name="api.user", request_method="PATCH", renderer="json", permission=ADMIN, openapi=True
)
def update_user_from_api(request: Request) -> dict[str, Any]:
    user = firm_user(request.dbsession, firm_id(request), matched_id(request))
    body = request.openapi_validated.body
    update_user(
        request, user, name=body.get("name"), role=body.get("role"), active=body.get("active")
    )
    return user_json(user)
