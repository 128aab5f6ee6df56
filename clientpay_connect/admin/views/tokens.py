"""API tokens: the firm's tokens; an admin creates their own (shown once) and revokes any."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.admin.forms import (
    INVALID_FORM,
    errors_by_field,
    form_text,
    found,
    matched_id,
    pop_revealed,
    stash_for_reveal,
)
from clientpay_connect.admin.services.tokens import (
    firm_token,
    firm_tokens,
    issue_token,
    revoke_token,
)
from clientpay_connect.api.errors import ApiError, FieldErrors
from clientpay_connect.security import ADMIN, firm_id

TOKEN_SECRET = "api_token"  # noqa: S105 (the kind of one-time secret, not a secret)


def _list_page(
    request: Request, values: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "tokens": firm_tokens(request.dbsession, firm_id(request)),
        "values": values or {"name": ""},
        "errors": errors or {},
    }


@view_config(
    route_name="admin.tokens",
    request_method="GET",
    renderer="admin/tokens.jinja2",
    permission=ADMIN,
)
def tokens_page(request: Request) -> dict[str, Any]:
    return _list_page(request)


@view_config(
    route_name="admin.tokens",
    request_method="POST",
    renderer="admin/tokens.jinja2",
    permission=ADMIN,
)
def create_token_from_form(request: Request) -> Any:
    values = {"name": form_text(request.POST, "name")}
    try:
        row, token = issue_token(request, values["name"])
    except FieldErrors as error:
        request.response.status = INVALID_FORM
        return _list_page(request, values, errors_by_field(error))
    stash_for_reveal(request, TOKEN_SECRET, row.id, token)
    return HTTPSeeOther(location=request.route_url("admin.token_created", id=row.id))


@view_config(
    route_name="admin.token_created",
    request_method="GET",
    renderer="admin/token_created.jinja2",
    permission=ADMIN,
)
def token_created_page(request: Request) -> dict[str, Any]:
    row = found(lambda: firm_token(request.dbsession, firm_id(request), matched_id(request)))
    return {"row": row, "token": pop_revealed(request, TOKEN_SECRET, row.id)}


@view_config(route_name="admin.token_revoke", request_method="POST", permission=ADMIN)
def revoke_token_from_form(request: Request) -> HTTPSeeOther:
    row = found(lambda: firm_token(request.dbsession, firm_id(request), matched_id(request)))
    try:
        revoke_token(request, row)
    except ApiError as error:
        request.session.flash(error.message, "error")
    else:
        request.session.flash(f"Revoked the token {row.name} ({row.prefix}…).")
    return HTTPSeeOther(location=request.route_url("admin.tokens"))
