"""API tokens: issued to the acting admin, listed and revoked."""

from __future__ import annotations

from pyramid.request import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import ApiToken
from clientpay_connect.accounts.services import audit, create_api_token
from clientpay_connect.admin.services.checks import Problems, check_name, clean_text, firm_row
from clientpay_connect.api.errors import conflict
from clientpay_connect.db import utcnow


def firm_tokens(dbsession: Session, firm: int) -> list[ApiToken]:
    """The firm's tokens, newest first."""
    return list(
        dbsession.execute(
            select(ApiToken)
            .where(ApiToken.firm_id == firm)
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        ).scalars()
    )


def firm_token(dbsession: Session, firm: int, token_id: int) -> ApiToken:
    return firm_row(dbsession, ApiToken, firm, token_id)


def issue_token(request: Request, name: str) -> tuple[ApiToken, str]:
    """A token for the acting admin; the token itself is returned to be shown once."""
    name = clean_text(name)
    problems = Problems()
    check_name(problems, "name", name)
    problems.raise_if_any()
    row, token = create_api_token(request.dbsession, request.user, name)
    audit(request, "api_token.created", row, name=name, prefix=row.prefix)
    return row, token


def revoke_token(request: Request, token: ApiToken) -> None:
    if token.revoked_at is not None:
        raise conflict("already_revoked", "This token was already revoked.")
    token.revoked_at = utcnow()
    audit(request, "api_token.revoked", token, name=token.name, prefix=token.prefix)
