"""The demo firm that ``clientpay demo`` (and ``make run``) creates once."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.sql.demo import create_demo_matter_database
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
from clientpay_connect.connect.models import CONNECTION_CONNECTED, Connection
from clientpay_connect.crypto import Encryptor
from clientpay_connect.db import utcnow

DEMO_SLUG = "demo-law"
DEMO_NAME = "Demo Law LLP"
DEMO_USERS = (
    ("admin@demo.test", "admin", "Avery Admin"),
    ("staff@demo.test", "staff", "Sam Staff"),
)
DEMO_ACCOUNTS = (("Operating", KIND_OPERATING), ("Trust (IOLTA)", KIND_TRUST))
DEMO_CONNECTION = "Demo matter system"


@dataclass
class DemoResult:
    firm_name: str
    # (email, password) — the password only for a user created now, else None.
    logins: list[tuple[str, str | None]] = field(default_factory=list)
    # What the demo matter database holds, when one was asked for.
    matters: str = ""


def seed_demo(
    dbsession: Session,
    reset_passwords: bool = False,
    *,
    matter_db: str = "",
    encryptor: Encryptor | None = None,
) -> DemoResult:
    """The demo firm, its users and merchant accounts; with ``matter_db`` (a SQLite file)
    also the demo matter database and the firm's connection to it, for Connect."""
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
    if matter_db and encryptor is not None:
        result.matters = seed_demo_matters(dbsession, firm, matter_db, encryptor)
    return result


def seed_demo_matters(dbsession: Session, firm: Firm, path: str, encryptor: Encryptor) -> str:
    """The demo matter database (made once) and a connected ``sql`` connection to it."""
    url = f"sqlite:///{os.path.abspath(path)}"
    made = create_demo_matter_database(url)
    connection = dbsession.execute(
        select(Connection).where(Connection.firm_id == firm.id, Connection.name == DEMO_CONNECTION)
    ).scalar_one_or_none()
    if connection is None:
        connection = Connection(firm_id=firm.id, adapter="sql", name=DEMO_CONNECTION, settings={})
        dbsession.add(connection)
    # The URL is a secret setting (a real one carries a password): kept encrypted.
    connection.secrets_encrypted = encryptor.encrypt(json.dumps({"url": url}))
    connection.status = CONNECTION_CONNECTED
    connection.connected_at = connection.connected_at or utcnow()
    operating = dbsession.execute(
        select(MerchantAccount).where(
            MerchantAccount.firm_id == firm.id, MerchantAccount.kind == KIND_OPERATING
        )
    ).scalar_one_or_none()
    dbsession.flush()
    if connection.default_merchant_account_id is None and operating is not None:
        connection.default_merchant_account_id = operating.id
    return f"{made.clients} clients, {made.matters} matters, {made.invoices} invoices"
