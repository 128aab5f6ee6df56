"""The link counts (sent/models.py) that Sent Pages' totals and tabs read on PostgreSQL always
equal counting the links: after every way a link is made, changes or goes, after the
compaction job, and under concurrent writers, who never wait on one another for them.

Each story checks both sides: link_counts' sums against count(*) of payment_links group by
group, and the API's total and /sent/counts against count(*) for the queries the counts
answer (and for one they cannot, which counts the rows). SQLite keeps no counts: there the
API stories still run (they compare with count(*)), and the trigger checks are skipped.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import transaction
from alembic import command
from pyramid.router import Router
from sqlalchemy import create_engine, delete, func, inspect, select, text, update
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import Firm
from clientpay_connect.accounts.services import create_firm
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.db import get_engine, get_tm_session
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.links.tasks import expire_links
from clientpay_connect.sent.counts import compact_link_counts
from clientpay_connect.sent.models import COUNTED_COLUMNS, LinkCount
from clientpay_connect.sent.query import STATUS_VIEWS
from clientpay_connect.sent.tasks import COMPACT_JOB
from clientpay_connect.work import Work
from tests.conftest import login
from tests.factories import FirmFactory, MerchantAccountFactory, UserFactory
from tests.functional.test_bulk_api import csv_bytes, invoice, post_file
from tests.functional.test_migrations import insert_row
from tests.support import databases
from tests.support.payments import card, new_link, pay, submission, tokenize
from tests.support.sent import make_link

POSTGRESQL = databases.using_postgresql()
needs_postgresql = pytest.mark.skipif(not POSTGRESQL, reason="SQLite keeps no link counts")
DECLINED = "4000000000000002"


# --- What is compared ---------------------------------------------------------------------


def _groups(dbsession: Session, firm_id: int, on_counts: bool) -> dict[tuple[Any, ...], int]:
    model: Any = LinkCount if on_counts else PaymentLink
    group = [getattr(model, name) for name in COUNTED_COLUMNS]
    size = func.sum(LinkCount.n) if on_counts else func.count()
    statement = select(*group, size).where(model.firm_id == firm_id).group_by(*group)
    rows = dbsession.execute(statement.having(size != 0)).all()
    return {tuple(row[:-1]): int(row[-1]) for row in rows}


def assert_counts_agree(dbsession: Session, firm_id: int) -> None:
    dbsession.flush()
    if POSTGRESQL:
        assert _groups(dbsession, firm_id, True) == _groups(dbsession, firm_id, False)


def rows_matching(dbsession: Session, firm_id: int, *where: Any) -> int:
    statement = select(func.count()).select_from(PaymentLink)
    return int(dbsession.scalar(statement.where(PaymentLink.firm_id == firm_id, *where)) or 0)


def assert_totals_agree(testapp: Any, auth: dict[str, str], dbsession: Session, firm: Any) -> None:
    """The API's totals and the tabs' counts against count(*), view by view."""
    assert_counts_agree(dbsession, firm.id)
    account = dbsession.scalars(select(MerchantAccount).where(MerchantAccount.firm_id == firm.id))
    account_id = next(iter(account)).id
    filters: list[tuple[dict[str, str], list[Any]]] = [
        ({}, []),
        ({"filter[source]": "bulk_upload"}, [PaymentLink.source == "bulk_upload"]),
        ({"filter[email_status]": "queued"}, [PaymentLink.email_status == "queued"]),
        (
            {"filter[merchant_account_id]": str(account_id)},
            [PaymentLink.merchant_account_id == account_id],
        ),
        # One the counts cannot answer (a search): counted from the rows.
        ({"q": "inv"}, [func.lower(PaymentLink.invoice_number).contains("inv")]),
    ]
    for params, where in filters:
        tabs = testapp.get("/sent/counts", params).json
        for view, statuses in STATUS_VIEWS.items():
            status = [PaymentLink.status.in_(statuses)] if statuses else []
            expected = rows_matching(dbsession, firm.id, *where, *status)
            body = testapp.get("/api/v1/links", {**params, "status": view}, headers=auth).json
            assert (body["total"], tabs[view]) == (expected, expected), (params, view)


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


@pytest.fixture
def signed_in(testapp: Any, staff: Any) -> Any:
    login(testapp, staff)
    return testapp


def _link_with_token(dbsession: Session, app: Router, account: Any) -> str:
    _link, token = new_link(dbsession, app.registry, account, 100_00)
    return token


# --- Every way a link is made, changes or goes --------------------------------------------


def test_quick_links_are_counted(signed_in, dbsession, firm, staff_auth, account):
    for n in range(3):
        body = {"merchant_account_id": account.id, "amount": "10", "invoice_number": f"INV-{n}"}
        signed_in.post_json("/api/v1/links", body, headers=staff_auth, status=201)
    assert rows_matching(dbsession, firm.id) == 3
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


def test_a_bulk_upload_is_counted_when_sent(signed_in, dbsession, firm, staff_auth, account):
    rows = [invoice(f"INV-{n}", email=f"p{n}@example.test") for n in range(25)]
    created = post_file(signed_in, staff_auth, csv_bytes(rows), merchant_account_id=str(account.id))
    signed_in.post_json(f"/api/v1/bulk-uploads/{created['id']}/send", {}, headers=staff_auth)
    assert rows_matching(dbsession, firm.id, PaymentLink.source == "bulk_upload") == 25
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


def test_payments_move_links_between_the_counts(
    signed_in, dbsession, app, firm, staff_auth, account
):
    paid, partly, declined = (_link_with_token(dbsession, app, account) for _ in range(3))
    pay(signed_in, paid, submission(tokenize(signed_in, card()), "100.00"), status=201)
    pay(signed_in, partly, submission(tokenize(signed_in, card()), "40.00"), status=201)
    # Claimed (processing), then declined: back to outstanding.
    pay(signed_in, declined, submission(tokenize(signed_in, card(DECLINED)), "100.00"), status=402)
    statuses = dict(
        dbsession.execute(
            select(PaymentLink.status, func.count())
            .where(PaymentLink.firm_id == firm.id)
            .group_by(PaymentLink.status)
        ).all()
    )
    assert statuses == {"paid": 1, "partially_paid": 1, "outstanding": 1}
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


def test_cancel_and_expiry_are_counted(signed_in, dbsession, app, firm, staff_auth, account):
    links = [make_link(dbsession, app, account) for _ in range(4)]
    ids = [links[0].id, links[1].id]
    signed_in.post_json("/api/v1/links/cancel", {"ids": ids}, headers=staff_auth, status=200)
    links[2].expires_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    dbsession.flush()
    with Work.fresh(app.registry) as work:
        assert expire_links(work, dt.datetime(2021, 1, 1, tzinfo=dt.UTC)) >= 1
    assert rows_matching(dbsession, firm.id, PaymentLink.status == "expired") == 1
    assert rows_matching(dbsession, firm.id, PaymentLink.status == "cancelled") == 2
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


def test_email_status_changes_are_counted(signed_in, dbsession, app, firm, staff_auth, account):
    links = [make_link(dbsession, app, account, email_status="queued") for _ in range(5)]
    # As the mail job does (one link at a time) and as a batch would (one statement).
    links[0].email_status = "sent"
    dbsession.flush()
    moved = [link.id for link in links[1:3]]
    dbsession.execute(
        update(PaymentLink).where(PaymentLink.id.in_(moved)).values(email_status="failed")
    )
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


def test_a_deleted_link_is_no_longer_counted(signed_in, dbsession, app, firm, staff_auth, account):
    links = [make_link(dbsession, app, account) for _ in range(3)]
    dbsession.execute(delete(PaymentLink).where(PaymentLink.id == links[0].id))
    assert rows_matching(dbsession, firm.id) == 2
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)


@needs_postgresql
def test_deleting_a_firm_takes_its_counts_and_leaves_the_others(dbsession, app):
    firms = [FirmFactory(), FirmFactory()]
    for each in firms:
        account = MerchantAccountFactory(firm=each)
        for _ in range(3):
            make_link(dbsession, app, account)
    dbsession.flush()
    gone, kept = firms
    dbsession.execute(delete(Firm).where(Firm.id == gone.id))  # the database's cascade
    assert dbsession.scalar(select(func.count()).where(LinkCount.firm_id == gone.id)) == 0
    assert _groups(dbsession, kept.id, True) == {**_groups(dbsession, kept.id, False)}
    assert sum(_groups(dbsession, kept.id, True).values()) == 3


@needs_postgresql
def test_compaction_leaves_one_row_a_group_and_the_same_sums(
    signed_in, dbsession, app, firm, staff_auth, account
):
    creator = UserFactory(firm=firm)
    links = [make_link(dbsession, app, account, creator=creator) for _ in range(6)]
    for link in links[:4]:
        link.status = "cancelled"
        dbsession.flush()  # a statement each: a delta each
    links[4].status = "cancelled"
    links[4].status = "outstanding"  # there and back: nets to zero
    dbsession.flush()
    before = _groups(dbsession, firm.id, True)
    rows_before = dbsession.scalar(select(func.count()).where(LinkCount.firm_id == firm.id))

    assert app.registry["clientpay.jobs"].run_now(COMPACT_JOB) >= 1  # as Huey runs it

    rows = dbsession.execute(
        select(LinkCount.status, LinkCount.n).where(LinkCount.firm_id == firm.id)
    ).all()
    assert len(rows) == len(before) < rows_before
    assert all(n != 0 for _status, n in rows)
    assert _groups(dbsession, firm.id, True) == before
    assert_totals_agree(signed_in, staff_auth, dbsession, firm)
    assert (
        signed_in.get(
            "/api/v1/links", {"filter[created_by]": str(creator.id)}, headers=staff_auth
        ).json["total"]
        == 6
    )


def test_the_compaction_job_is_registered_to_run_periodically(app, db_connection):
    spec = app.registry["clientpay.jobs"].jobs[COMPACT_JOB]
    assert spec.schedule is not None
    if not POSTGRESQL:  # no counts kept there: the job finds nothing to fold
        assert app.registry["clientpay.jobs"].run_now(COMPACT_JOB) == 0


# --- Concurrent writers (a committed database of their own) --------------------------------


@pytest.fixture(scope="module")
def committed_app(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    if not POSTGRESQL:
        pytest.skip("SQLite keeps no link counts")
    with databases.app_on_fresh_database(base_settings, tmp_path_factory.mktemp("counts")) as app:
        yield app


def _committed(app: Router) -> tuple[transaction.TransactionManager, Session]:
    tm = transaction.TransactionManager(explicit=True)
    tm.begin()
    return tm, get_tm_session(app.registry["dbsession_factory"], tm)


def _committed_firm(app: Router) -> tuple[int, int]:
    tm, session = _committed(app)
    firm = create_firm(session, "Busy LLP", "busy-" + uuid.uuid4().hex[:8])
    account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
    session.add(account)
    session.flush()
    ids = firm.id, account.id
    tm.commit()
    return ids


def test_writers_in_one_group_do_not_wait_for_each_other_or_for_compaction(committed_app):
    """One transaction holds an uncommitted new link and an uncommitted claim; others add,
    claim and compact the same firm's same groups meanwhile, each refusing to wait on a lock
    (lock_timeout): the counts take no shared row."""
    firm_id, account_id = _committed_firm(committed_app)
    engine = create_engine(committed_app.registry["dbengine"].url)
    insert_link = text(
        "INSERT INTO payment_links (firm_id, merchant_account_id, source, token_hash,"
        " token_encrypted, amount_minor, amount_paid_minor, amount_refunded_minor,"
        " refunds_claimed_minor, currency, invoice_number, recipient_name, emails, message,"
        " locale, status, email_status, created_at, reminders_sent, reminders_off)"
        " SELECT :firm, :account, 'quick_link', md5(random()::text || g), '', 100, 0, 0, 0,"
        " 'USD', '', '', '[]', '', 'en', 'outstanding', 'not_sent', now(), 0, false"
        " FROM generate_series(1, :count) AS g RETURNING id"
    )
    claim = text(
        "UPDATE payment_links SET status = 'processing' WHERE id = :id AND status = 'outstanding'"
    )
    params = {"firm": firm_id, "account": account_id}
    try:
        with engine.begin() as setup:
            ids = list(setup.execute(insert_link, {**params, "count": 10}).scalars())
        holder = engine.connect()
        holder.begin()
        holder.execute(insert_link, {**params, "count": 1})
        holder.execute(claim, {"id": ids[0]})
        with engine.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            other.execute(insert_link, {**params, "count": 100})
            other.execute(claim, {"id": ids[1]})
        tm, session = _committed(committed_app)
        session.execute(text("SET LOCAL lock_timeout = '2s'"))
        compact_link_counts(session, firm_id)
        tm.commit()
        holder.commit()
        holder.close()
        tm, session = _committed(committed_app)
        assert _groups(session, firm_id, True) == _groups(session, firm_id, False)
        assert sum(_groups(session, firm_id, True).values()) == 111
        tm.abort()
    finally:
        engine.dispose()


def test_many_writers_and_compactions_at_once_keep_the_counts_exact(committed_app):
    firm_id, account_id = _committed_firm(committed_app)
    tm, session = _committed(committed_app)
    account = session.get(MerchantAccount, account_id)
    ids = [make_link(session, committed_app, account).id for _ in range(40)]
    tm.commit()
    errors: list[BaseException] = []
    start = threading.Barrier(5)

    def writer(mine: list[int], status: str) -> None:
        try:
            start.wait()
            for link_id in mine:
                tm, session = _committed(committed_app)
                session.execute(
                    update(PaymentLink).where(PaymentLink.id == link_id).values(status=status)
                )
                make_link(session, committed_app, session.get(MerchantAccount, account_id))
                tm.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def compactor() -> None:
        try:
            start.wait()
            for _ in range(10):
                tm, session = _committed(committed_app)
                compact_link_counts(session, firm_id)
                tm.commit()
        except BaseException as exc:
            errors.append(exc)

    statuses = ("processing", "cancelled", "paid", "expired")
    threads = [threading.Thread(target=writer, args=(ids[n::4], statuses[n])) for n in range(4)] + [
        threading.Thread(target=compactor)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    tm, session = _committed(committed_app)
    compact_link_counts(session, firm_id)
    assert _groups(session, firm_id, True) == _groups(session, firm_id, False)
    assert sum(_groups(session, firm_id, True).values()) == 80
    tm.abort()


@needs_postgresql
def test_a_plain_query_reads_the_counts_and_a_search_counts_the_rows(
    testapp, dbsession, app, firm, staff_auth, account
):
    """What makes a total cheap: shown by a delta the links do not have."""
    make_link(dbsession, app, account, invoice_number="INV-1")
    dbsession.add(
        LinkCount(
            firm_id=firm.id,
            status="paid",
            source="quick_link",
            merchant_account_id=account.id,
            email_status="not_sent",
            created_by_user_id=None,
            currency="USD",
            n=5,
        )
    )
    dbsession.flush()
    total = testapp.get("/api/v1/links", headers=staff_auth).json["total"]
    searched = testapp.get("/api/v1/links", {"q": "inv"}, headers=staff_auth).json["total"]
    assert (total, searched) == (6, 1)


@needs_postgresql
def test_0028_counts_the_links_already_there_and_goes_back(tmp_path):
    with databases.fresh_database(tmp_path) as url:
        cfg = databases.alembic_config(url)
        command.upgrade(cfg, "0026")
        engine = get_engine({"sqlalchemy.url": url})
        with engine.begin() as conn:
            insert_row(conn, "firms", id=1, slug="f", name="F")
            insert_row(conn, "merchant_accounts", id=1, firm_id=1, name="Op")
            for link_id, status in enumerate(("paid", "paid", "outstanding"), start=10):
                insert_row(
                    conn,
                    "payment_links",
                    id=link_id,
                    firm_id=1,
                    merchant_account_id=1,
                    token_hash=f"h{link_id}",
                    emails=[],
                    status=status,
                )
        command.upgrade(cfg, "0028")
        sums = text("SELECT status, sum(n) FROM link_counts GROUP BY status ORDER BY status")
        with engine.connect() as conn:
            assert conn.execute(sums).all() == [("outstanding", 1), ("paid", 2)]
        command.downgrade(cfg, "0026")
        with engine.connect() as conn:
            assert "link_counts" not in inspect(conn).get_table_names()
            triggers = text(
                "SELECT count(*) FROM pg_trigger"
                " WHERE tgrelid = 'payment_links'::regclass AND NOT tgisinternal"
            )
            assert conn.execute(triggers).scalar() == 0
        engine.dispose()
