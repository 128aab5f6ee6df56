"""The demo firm that ``clientpay demo`` (and ``make run``) creates once."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import Firm
from clientpay_connect.accounts.services import (
    create_firm,
    create_user,
    find_user_by_email,
    generate_password,
    record,
    set_password,
)
from clientpay_connect.admin.models import KIND_OPERATING, KIND_TRUST, MerchantAccount

DEMO_SLUG = "demo-law"
DEMO_NAME = "Demo Law LLP"
DEMO_USERS = (
    ("admin@demo.test", "admin", "Avery Admin"),
    ("staff@demo.test", "staff", "Sam Staff"),
)
DEMO_ACCOUNTS = (("Operating", KIND_OPERATING), ("Trust (IOLTA)", KIND_TRUST))


@dataclass
class DemoResult:
    firm_name: str
    # (email, password) — the password only for a user created now, else None.
    logins: list[tuple[str, str | None]] = field(default_factory=list)


def seed_demo(dbsession: Session, reset_passwords: bool = False) -> DemoResult:
    firm = dbsession.execute(select(Firm).where(Firm.slug == DEMO_SLUG)).scalar_one_or_none()
    if firm is None:
        firm = create_firm(dbsession, DEMO_NAME, DEMO_SLUG)
        record(dbsession, firm.id, "firm.created", target=firm, details={"by": "demo"})
    result = DemoResult(firm.name)
    for email, role, name in DEMO_USERS:
        user = find_user_by_email(dbsession, email)
        if user is not None:
            new_password = generate_password() if reset_passwords else None
            if new_password:
                set_password(user, new_password)
            result.logins.append((email, new_password))
            continue
        password = generate_password()
        create_user(dbsession, firm, email, role, password, name=name)
        result.logins.append((email, password))
    existing = set(
        dbsession.execute(
            select(MerchantAccount.name).where(MerchantAccount.firm_id == firm.id)
        ).scalars()
    )
    for name, kind in DEMO_ACCOUNTS:
        if name not in existing:
            dbsession.add(MerchantAccount(firm_id=firm.id, name=name, kind=kind, currency="USD"))
    return result
