"""Who is emailed about an event: the firm's notification recipients who chose it.

Apart from services.py so that the mail feature can address a notice at send time without
importing what writes notices (which imports the mail feature).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import NotificationRecipient


def subscribers(dbsession: Session, firm_id: int, event: str) -> list[str]:
    """The addresses of the firm's recipients who chose ``event``, each once, in the order
    they were added. A recipient who is one of the firm's users gets it at the user's
    current address, and not at all once the user is deactivated (or moved to another
    firm: the user's firm is checked, not trusted)."""
    rows = dbsession.execute(
        select(NotificationRecipient, User)
        .outerjoin(User, User.id == NotificationRecipient.user_id)
        .where(NotificationRecipient.firm_id == firm_id)
        .order_by(NotificationRecipient.id)
    ).all()
    addresses = []
    # Filtered here rather than in SQL: JSON containment is spelled differently per database.
    for recipient, user in rows:
        if event not in (recipient.events or []):
            continue
        if recipient.user_id is None:
            addresses.append(recipient.email)
        elif user is not None and user.active and user.firm_id == firm_id:
            addresses.append(user.email)
    return list(dict.fromkeys(addresses))
