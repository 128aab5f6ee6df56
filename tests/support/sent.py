"""Links in any state, for the Sent Pages tests: made as the app makes them (create_link,
so each has a real, encrypted token), then given the fields a test needs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.services import NewLink, create_link

# What NewLink takes; everything else is set on the row afterwards.
NEW_LINK_FIELDS = {
    "source",
    "invoice_number",
    "invoice_date",
    "due_date",
    "recipient_name",
    "emails",
    "message",
    "locale",
    "parent_link_id",
}
T0 = dt.datetime(2025, 3, 1, 15, 30, tzinfo=dt.UTC)


def make_link(
    dbsession: Session, app: Any, account: Any, amount_minor: int = 10_000, **fields: Any
) -> PaymentLink:
    new = {k: v for k, v in fields.items() if k in NEW_LINK_FIELDS}
    link, _token = create_link(
        dbsession,
        app.registry["clientpay.encryptor"],
        fields.pop("creator", None),
        NewLink(merchant_account=account, amount_minor=amount_minor, **new),
    )
    for name, value in fields.items():
        if name not in NEW_LINK_FIELDS:
            setattr(link, name, value)
    dbsession.flush()
    return link
