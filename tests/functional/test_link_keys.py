"""What payment_links' foreign keys hold on both databases (SQLite's are on: db.py turns
them on for every connection): a link's merchant account is one of the link's own firm's,
whatever path writes the link, and deleting a firm still deletes its links (through its
merchant accounts)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import Firm
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.models import PaymentLink
from tests.factories import FirmFactory, MerchantAccountFactory
from tests.support.sent import make_link


def written_directly(dbsession: Session, firm_id: int, account_id: int) -> PaymentLink:
    """A link inserted as no service of the app would: firm and account as given."""
    link = PaymentLink(
        firm_id=firm_id,
        merchant_account_id=account_id,
        token_hash=uuid.uuid4().hex,
        token_encrypted="-",
        amount_minor=1_000,
    )
    dbsession.add(link)
    dbsession.flush()
    return link


def links_of(dbsession: Session, firm_id: int) -> int:
    statement = select(func.count()).select_from(PaymentLink)
    return int(dbsession.scalar(statement.where(PaymentLink.firm_id == firm_id)) or 0)


def test_a_link_of_the_accounts_own_firm_is_written(dbsession: Session):
    account = MerchantAccountFactory(firm=FirmFactory())
    dbsession.flush()
    link = written_directly(dbsession, account.firm_id, account.id)
    assert link.merchant_account is account
    assert link.firm.id == account.firm_id


def test_the_database_refuses_a_link_whose_account_is_another_firms(dbsession: Session):
    theirs = MerchantAccountFactory(firm=FirmFactory())
    ours = FirmFactory()
    dbsession.flush()
    with pytest.raises(IntegrityError), dbsession.begin_nested():
        written_directly(dbsession, ours.id, theirs.id)
    assert links_of(dbsession, ours.id) == 0


def test_the_database_refuses_moving_a_link_to_another_firm(dbsession: Session, app: Any):
    account = MerchantAccountFactory(firm=FirmFactory())
    other = FirmFactory()
    link = make_link(dbsession, app, account)
    with pytest.raises(IntegrityError), dbsession.begin_nested():
        dbsession.execute(
            update(PaymentLink).where(PaymentLink.id == link.id).values(firm_id=other.id)
        )


def test_deleting_a_firm_deletes_its_links_and_accounts_and_no_one_elses(
    dbsession: Session, app: Any
):
    gone, kept = FirmFactory(), FirmFactory()
    for firm in (gone, kept):
        for kind in ("operating", "trust"):
            account = MerchantAccountFactory(firm=firm, kind=kind)
            for _ in range(2):
                make_link(dbsession, app, account)
    dbsession.flush()
    dbsession.execute(delete(Firm).where(Firm.id == gone.id))  # the database's cascade
    accounts = select(func.count()).select_from(MerchantAccount)
    assert links_of(dbsession, gone.id) == 0
    assert dbsession.scalar(accounts.where(MerchantAccount.firm_id == gone.id)) == 0
    assert links_of(dbsession, kept.id) == 4
    assert dbsession.scalar(accounts.where(MerchantAccount.firm_id == kept.id)) == 2
