"""The admin home's audit trail: the firm's recent events and who acted."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import AuditEvent, User


def recent_audit_events(
    dbsession: Session, firm: int, limit: int = 50
) -> list[tuple[AuditEvent, User | None]]:
    """The firm's newest audit events with the person who acted (None for the system)."""
    rows = dbsession.execute(
        select(AuditEvent, User)
        .outerjoin(User, User.id == AuditEvent.actor_user_id)
        .where(AuditEvent.firm_id == firm)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ).all()
    return [(event, actor) for event, actor in rows]
