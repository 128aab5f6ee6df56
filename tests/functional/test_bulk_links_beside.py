"""On PostgreSQL the links' job writes half of a large upload's links on a second connection
(bulk/writer.py): every row gets one link and Send All one email each; a failure in either
half leaves nothing; a job cut short between its two commits keeps the half it committed,
the upload stays processing, and the job the sweep queues again makes the rest, once.

The app runs on a fresh, committed database (the second connection must see the upload's
rows), with the threshold lowered to a few rows. The failures are the database's own: a
trigger refuses a write, as a full disk or a lost connection would, and is dropped after.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import transaction
import webtest
from pyramid.router import Router
from sqlalchemy import func, select, text

from clientpay_connect.accounts.services import create_api_token, create_firm, create_user
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.bulk.actions import CREATE_LINKS_JOB
from clientpay_connect.bulk.models import BulkRow, BulkUpload
from clientpay_connect.bulk.tasks import RESUME_JOB
from clientpay_connect.db import get_tm_session, utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from tests.support import databases

pytestmark = pytest.mark.skipif(
    not databases.using_postgresql(), reason="only PostgreSQL writes links on two connections"
)

API = "/api/v1/bulk-uploads"
ROWS = 10
HALF = ROWS // 2


@dataclass
class Firm:
    id: int
    user_id: int
    auth: dict[str, str]


@pytest.fixture(scope="module")
def beside_app(
    base_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    folder: Path = tmp_path_factory.mktemp("links-beside")
    settings = {
        **base_settings,
        "clientpay.bulk.inline_rows": "2",
        "clientpay.bulk.links_beside_from": "4",
        # The job waits in a queue of its own until the test runs it.
        "clientpay.jobs.immediate": "false",
        "clientpay.jobs.name": "clientpay-beside-" + uuid.uuid4().hex[:8],
        "clientpay.jobs.sqlite_path": str(folder / "jobs.sqlite"),
    }
    with databases.app_on_fresh_database(settings, folder) as app:
        try:
            yield app
        finally:
            app.registry["clientpay.jobs"].huey.flush()


class Reader:
    """Reads what the job did, each query in a transaction of its own: none stays open to
    hold up the test's own changes to the schema (refusing)."""

    def __init__(self, engine: Any):
        self.engine = engine

    def all(self, query: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(query).all())

    def scalar(self, query: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()


@pytest.fixture
def session(beside_app: Router) -> Reader:
    return Reader(beside_app.registry["dbengine"])


@pytest.fixture
def firm(beside_app: Router) -> Firm:
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        dbsession = get_tm_session(beside_app.registry["dbsession_factory"], tm)
        made = create_firm(dbsession, "Beside & Co", "beside-" + uuid.uuid4().hex[:8])
        dbsession.add(MerchantAccount(firm_id=made.id, name="Operating", kind="operating"))
        user = create_user(dbsession, made, f"staff-{uuid.uuid4().hex[:8]}@example.test", "staff")
        _row, token = create_api_token(dbsession, user, "beside")
        found = Firm(made.id, user.id, {"Authorization": f"Bearer {token}"})
    return found


@pytest.fixture
def testapp(beside_app: Router, client_ip: str) -> webtest.TestApp:
    return webtest.TestApp(
        beside_app, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
    )


@pytest.fixture
def refusing(beside_app: Router) -> Iterator[Any]:
    """Make the database refuse a write (a trigger) for as long as the test wants."""
    engine = beside_app.registry["dbengine"]
    made: list[tuple[str, str]] = []

    def refuse(table: str, when: str) -> None:
        name = f"refuse_{uuid.uuid4().hex[:8]}"
        with engine.begin() as connection:
            connection.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table}"
                    f" FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}()"
                )
            )
        made.append((name, table))

    def allow() -> None:
        with engine.begin() as connection:
            while made:
                name, table = made.pop()
                connection.execute(text(f"DROP TRIGGER {name} ON {table}"))
                connection.execute(text(f"DROP FUNCTION {name}()"))

    refuse.allow = allow  # type: ignore[attr-defined]
    try:
        yield refuse
    finally:
        allow()


def upload(testapp: webtest.TestApp, firm: Firm, prefix: str) -> int:
    lines = ["Invoice Number,Recipient Name,Amount,Email"]
    lines += [f"{prefix}-{i},Client {i},{10 + i},c{i}@example.com" for i in range(ROWS)]
    data = "\n".join(lines).encode()
    answer = testapp.post(API, {}, upload_files=[("file", "big.csv", data)], headers=firm.auth)
    return int(answer.json["id"])


def run_job(app: Router, upload_id: int, firm: Firm) -> str:
    result: str = app.registry["clientpay.jobs"].run_now(CREATE_LINKS_JOB, upload_id, firm.user_id)
    return result


def links_of(session: Reader, upload_id: int) -> list[tuple[int, str, int]]:
    """(row id, invoice number, inserting transaction) of each of the upload's links."""
    rows = session.all(
        select(PaymentLink.bulk_row_id, PaymentLink.invoice_number, text("payment_links.xmin"))
        .join(BulkRow, BulkRow.id == PaymentLink.bulk_row_id)
        .where(BulkRow.upload_id == upload_id)
        .order_by(BulkRow.row_number)
    )
    return [(int(row_id), number, int(xmin)) for row_id, number, xmin in rows]


def live_row_ids(session: Reader, upload_id: int) -> list[int]:
    rows = session.all(
        select(BulkRow.id)
        .where(BulkRow.upload_id == upload_id, BulkRow.deleted.is_(False))
        .order_by(BulkRow.row_number)
    )
    return [row_id for (row_id,) in rows]


def upload_state(session: Reader, upload_id: int) -> tuple[str, int, int, str]:
    [(status, done, total, message)] = session.all(
        select(
            BulkUpload.status,
            BulkUpload.progress_done,
            BulkUpload.progress_total,
            BulkUpload.error_message,
        ).where(BulkUpload.id == upload_id)
    )
    return status, done, total, message


def test_generate_writes_half_the_links_in_a_transaction_beside_and_every_row_gets_one(
    beside_app, testapp, session, firm
):
    upload_id = upload(testapp, firm, "G")
    testapp.post_json(f"{API}/{upload_id}/generate", {}, headers=firm.auth, status=202)

    assert run_job(beside_app, upload_id, firm) == "done"

    links = links_of(session, upload_id)
    assert [row_id for row_id, _n, _x in links] == live_row_ids(session, upload_id)
    assert [number for _r, number, _x in links] == [f"G-{i}" for i in range(ROWS)]
    # Two transactions wrote them: the rows' first half in one, the second in the other.
    writers = [xmin for _r, _n, xmin in links]
    assert len(set(writers[:HALF])) == 1 and len(set(writers[HALF:])) == 1
    assert writers[0] != writers[-1]
    # Yet their ids follow the file's rows, as one transaction's would: a page sorted by
    # time (all alike) and then by id lists them in the file's order.
    ids = [
        link_id
        for (link_id,) in session.all(
            select(PaymentLink.id)
            .join(BulkRow, BulkRow.id == PaymentLink.bulk_row_id)
            .where(BulkRow.upload_id == upload_id)
            .order_by(BulkRow.row_number)
        )
    ]
    assert ids == sorted(ids)
    listed = testapp.get("/api/v1/links", {"sort": "created_at"}, headers=firm.auth).json
    assert [item["invoice_number"] for item in listed["items"]] == [f"G-{i}" for i in range(ROWS)]
    assert upload_state(session, upload_id) == ("generated", ROWS, ROWS, "")
    # Both transactions' links are counted: the firm's total (read from the link counts the
    # triggers keep on PostgreSQL) and its search (counted from the links) agree.
    assert testapp.get("/api/v1/links", headers=firm.auth).json["total"] == ROWS
    searched = testapp.get("/api/v1/links", {"q": "G-"}, headers=firm.auth).json
    assert searched["total"] == ROWS


def test_send_all_beside_queues_one_email_for_each_link(beside_app, testapp, session, firm):
    upload_id = upload(testapp, firm, "S")
    testapp.post_json(f"{API}/{upload_id}/send", {}, headers=firm.auth, status=202)

    assert run_job(beside_app, upload_id, firm) == "done"

    link_ids = {
        link_id
        for (link_id,) in session.all(
            select(PaymentLink.id)
            .join(BulkRow, BulkRow.id == PaymentLink.bulk_row_id)
            .where(BulkRow.upload_id == upload_id)
        )
    }
    emailed = [
        link_id
        for (link_id,) in session.all(
            select(OutboxMessage.link_id).where(OutboxMessage.link_id.in_(link_ids))
        )
    ]
    assert len(link_ids) == ROWS
    assert sorted(emailed) == sorted(link_ids)
    assert upload_state(session, upload_id)[0] == "sent"


def test_a_job_cut_short_between_its_commits_keeps_its_half_and_the_sweep_makes_the_rest(
    beside_app, testapp, session, firm, refusing
):
    upload_id = upload(testapp, firm, "C")
    testapp.post_json(f"{API}/{upload_id}/generate", {}, headers=firm.auth, status=202)
    # The half beside commits; then marking the upload done fails.
    refusing("bulk_uploads", f"NEW.id = {upload_id} AND NEW.status = 'generated'")

    assert run_job(beside_app, upload_id, firm) == "failed"

    kept = links_of(session, upload_id)
    assert [number for _r, number, _x in kept] == [f"C-{i}" for i in range(HALF, ROWS)]
    status, _done, _total, message = upload_state(session, upload_id)
    # Not "none were made": it waits for the sweep, which queues the job again.
    assert (status, message) == ("processing", "")

    refusing.allow()
    queue = beside_app.registry["clientpay.jobs"]
    later = utcnow() + dt.timedelta(minutes=11)
    assert upload_id in queue.run_now(RESUME_JOB, later)
    assert run_job(beside_app, upload_id, firm) == "done"

    links = links_of(session, upload_id)
    assert [row_id for row_id, _n, _x in links] == live_row_ids(session, upload_id)
    assert [number for _r, number, _x in links] == [f"C-{i}" for i in range(ROWS)]
    assert upload_state(session, upload_id) == ("generated", ROWS, ROWS, "")


def test_a_half_that_fails_undoes_both_and_the_upload_can_be_tried_again(
    beside_app, testapp, session, firm, refusing
):
    upload_id = upload(testapp, firm, "F")
    testapp.post_json(f"{API}/{upload_id}/send", {}, headers=firm.auth, status=202)
    # A row of the half beside is refused.
    refusing("payment_links", "NEW.invoice_number = 'F-8'")

    assert run_job(beside_app, upload_id, firm) == "failed"

    assert links_of(session, upload_id) == []
    assert upload_state(session, upload_id) == (
        "failed",
        0,
        ROWS,
        "The links could not be made, so none were. Please try again.",
    )
    emails = select(func.count()).where(OutboxMessage.firm_id == firm.id)
    assert session.scalar(emails) == 0

    refusing.allow()
    testapp.post_json(f"{API}/{upload_id}/send", {}, headers=firm.auth, status=202)
    assert run_job(beside_app, upload_id, firm) == "done"
    assert len(links_of(session, upload_id)) == ROWS


def test_a_bulk_row_has_one_link_at_most_in_the_database_too(beside_app, testapp, session, firm):
    upload_id = upload(testapp, firm, "U")
    testapp.post_json(f"{API}/{upload_id}/generate", {}, headers=firm.auth, status=202)
    assert run_job(beside_app, upload_id, firm) == "done"
    row_id, _number, _xmin = links_of(session, upload_id)[0]
    engine = beside_app.registry["dbengine"]

    with pytest.raises(Exception, match="uq_payment_links_bulk_row_id"), engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO payment_links (firm_id, merchant_account_id, source, token_hash,"
                " token_encrypted, amount_minor, amount_paid_minor, amount_refunded_minor,"
                " refunds_claimed_minor, currency, invoice_number, recipient_name, emails,"
                " message, locale, status, email_status, created_at, reminders_sent,"
                " reminders_off, bulk_row_id)"
                " SELECT firm_id, merchant_account_id, source, md5(random()::text) || 'x',"
                " token_encrypted, amount_minor, 0, 0, 0, currency, invoice_number,"
                " recipient_name, emails, message, locale, status, email_status, created_at,"
                " 0, false, bulk_row_id FROM payment_links WHERE bulk_row_id = :row"
            ),
            {"row": row_id},
        )
