"""The fast paths of Bulk Upload write exactly what the ordinary ones would: secrets that
the app's Encryptor decrypts and whose hash finds the link, JSON that json.dumps would
write, and columns that the ORM reads back as usual."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from cryptography.fernet import Fernet
from pyramid.router import Router
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.bulk.fastwrite import checkpoint, commit_without_checkpoint, json_strings
from clientpay_connect.bulk.models import BulkRow
from clientpay_connect.bulk.services import ANALYZE_AFTER_ROWS
from clientpay_connect.bulk.writer import WRITE_CHUNK, prepare_secrets
from clientpay_connect.crypto import Encryptor, encryption_keys, sha256_hex
from clientpay_connect.db import get_engine
from clientpay_connect.links.models import PaymentLink
from tests.factories import MerchantAccountFactory
from tests.support import databases

API = "/api/v1/bulk-uploads"


def test_secrets_use_the_current_key_and_hash_the_token(app):
    secrets = prepare_secrets(app.registry, 20)
    encryptor: Encryptor = app.registry["clientpay.encryptor"]
    for secret in secrets:
        token = encryptor.decrypt(secret.token_encrypted)
        assert secret.token_hash == sha256_hex(token)
    # The first key of clientpay.encryption_keys, the one the Encryptor encrypts with.
    first = encryption_keys(app.registry.settings)[0]
    Fernet(first.encode()).decrypt(secrets[0].token_encrypted.encode())


@pytest.mark.parametrize(
    "items",
    [
        [],
        ["plain@example.com"],
        ["a@x.test", "b@y.test"],
        ['quote " and back\\slash', "tab\tnew\nline", "\x00\x1f", "é ü 中 🙂", ""],
    ],
)
def test_json_strings_writes_what_json_dumps_writes(items: list[str]) -> None:
    assert json_strings(items) == json.dumps(items)


def test_rows_and_links_written_by_the_driver_read_back_through_the_orm(
    testapp: Any, dbsession: Any, staff: Any, staff_auth: dict[str, str]
) -> None:
    MerchantAccountFactory(firm=staff.firm, name="Operating")
    data = (
        "Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email Address,Notes\n"
        'F-1,2025-01-15,2/14/2025,"Zoë ""Z"" O\'Neil",12.50,"z@example.com; y@example.com",x\n'
    ).encode()
    created = testapp.post(
        API, {}, upload_files=[("file", "f.csv", data)], headers=staff_auth, status=201
    ).json
    row = dbsession.execute(select(BulkRow).where(BulkRow.upload_id == created["id"])).scalar_one()
    assert (row.invoice_date, row.due_date) == (dt.date(2025, 1, 15), dt.date(2025, 2, 14))
    assert row.emails == ["z@example.com", "y@example.com"]
    assert row.recipient_name == 'Zoë "Z" O\'Neil'
    assert row.raw == {
        "cells": [
            "F-1",
            "2025-01-15",
            "2/14/2025",
            'Zoë "Z" O\'Neil',
            "12.50",
            "z@example.com; y@example.com",
            "x",
        ]
    }
    assert (row.errors, row.warnings, row.deleted, row.added_by_hand) == ([], [], False, False)

    testapp.post_json(f"{API}/{created['id']}/send", {}, headers=staff_auth, status=201)
    dbsession.expire_all()
    link = dbsession.execute(
        select(PaymentLink).where(PaymentLink.source == "bulk_upload")
    ).scalar_one()
    assert link.emails == ["z@example.com", "y@example.com"]
    assert (link.invoice_date, link.due_date) == (dt.date(2025, 1, 15), dt.date(2025, 2, 14))
    assert link.created_at.tzinfo is not None
    assert abs(link.created_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert link.expires_at - link.created_at == dt.timedelta(days=30)
    assert (link.amount_minor, link.amount_paid_minor, link.reminders_sent) == (1_250, 0, 0)
    # Jobs run at once in the tests: the outbox has delivered the email already.
    assert (link.status, link.email_status, link.locale) == ("outstanding", "sent", "en")
    assert link.sent_at is not None
    assert link.paid_at is None and link.parent_link_id is None


@pytest.fixture(scope="module")
def inline_app(app_settings: dict[str, Any]) -> Iterator[Router]:
    """Large uploads made in the request, where no secret is prepared beforehand: the
    links are written in chunks while a thread prepares the next chunk's secrets."""
    application = main({}, **{**app_settings, "clientpay.bulk.inline_rows": "30000"})
    yield application
    application.registry["dbengine"].dispose()


def test_links_written_in_chunks_each_get_their_own_rows_values_and_secret(
    inline_app: Router, db_connection: Any, dbsession: Any, staff: Any, staff_auth: Any
) -> None:
    rows = WRITE_CHUNK * 2 + 7
    MerchantAccountFactory(firm=staff.firm, name="Operating")
    lines = ["Invoice Number,Recipient Name,Amount"]
    lines += [f"C-{n},Client {n},{1 + n % 900}.{n % 100:02d}" for n in range(rows)]
    with databases.sharing_connection(inline_app, db_connection):
        client = webtest.TestApp(inline_app, extra_environ={"HTTP_HOST": "localhost"})
        data = "\n".join(lines).encode()
        created = client.post(
            API, {}, upload_files=[("file", "c.csv", data)], headers=staff_auth, status=201
        ).json
        client.post_json(f"{API}/{created['id']}/generate", {}, headers=staff_auth, status=201)

    made = dbsession.execute(
        select(
            PaymentLink.id, PaymentLink.token_hash, PaymentLink.token_encrypted,
            PaymentLink.invoice_number, PaymentLink.amount_minor, BulkRow.invoice_number,
            BulkRow.amount_minor, BulkRow.row_number,
        )
        .join(BulkRow, PaymentLink.bulk_row_id == BulkRow.id)
        .where(BulkRow.upload_id == created["id"])
        .order_by(BulkRow.row_number)
    ).all()  # fmt: skip
    assert len(made) == rows
    assert all(m[3] == m[5] and m[4] == m[6] for m in made)
    assert [m[3] for m in made] == [f"C-{n}" for n in range(rows)]
    assert len({m[1] for m in made}) == rows
    encryptor: Encryptor = inline_app.registry["clientpay.encryptor"]
    for m in made[:: WRITE_CHUNK // 4]:
        assert sha256_hex(encryptor.decrypt(m[2])) == m[1]
    # Made in row order, chunk after chunk.
    assert [m[0] for m in made] == sorted(m[0] for m in made)
    if databases.using_postgresql():
        # Analyzed before the commit: the planner knows the tables hold the new rows (an
        # unanalyzed payment_links had the first page of links planned as a nested loop
        # over every link for every row).
        planned = dict(
            dbsession.execute(
                select(text("relname"), text("reltuples"))
                .select_from(text("pg_class"))
                .where(text("relname IN ('payment_links', 'bulk_rows')"))
            ).all()
        )
        assert planned == {
            "payment_links": pytest.approx(rows, rel=0.05),
            "bulk_rows": pytest.approx(rows, rel=0.05),
        }
        # The columns the pages look the upload's rows and links up by have statistics.
        analyzed = set(
            dbsession.execute(
                select(text("tablename"), text("attname"))
                .select_from(text("pg_stats"))
                .where(text("tablename IN ('payment_links', 'bulk_rows')"))
            ).all()
        )
        assert {
            ("bulk_rows", "upload_id"),
            ("bulk_rows", "row_number"),
            ("payment_links", "bulk_row_id"),
            ("payment_links", "firm_id"),
        } <= analyzed


def test_a_large_commit_on_sqlite_leaves_its_log_to_the_checkpoint_after_it(tmp_path):
    """The links show as soon as they are committed; the copy of the write-ahead log into the
    database comes after, and the connection goes back to the pool as it was."""
    database = tmp_path / "bulk.sqlite"
    engine = get_engine({"sqlalchemy.url": f"sqlite:///{database}"})
    try:
        with Session(engine) as dbsession:
            dbsession.execute(text("CREATE TABLE blobs (data BLOB)"))
            dbsession.commit()
            # More pages than wal_autocheckpoint (1,000 of 4 KiB): the commit would copy them.
            dbsession.execute(
                text("INSERT INTO blobs VALUES (randomblob(:size))"),
                [{"size": 64 * 1024}] * 100,
            )
            commit_without_checkpoint(dbsession)
            dbsession.commit()
        assert database.stat().st_size < 6 * 2**20
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
        checkpoint(engine)
        assert database.stat().st_size > 6 * 2**20
    finally:
        engine.dispose()


@pytest.mark.skipif(
    not databases.using_postgresql(), reason="SQLite plans without gathered statistics"
)
def test_a_large_uploads_rows_are_analyzed_before_its_review_is_planned(
    testapp: Any, dbsession: Any, staff: Any, staff_auth: dict[str, str]
) -> None:
    rows = ANALYZE_AFTER_ROWS
    MerchantAccountFactory(firm=staff.firm, name="Operating")
    lines = ["Invoice Number,Recipient Name,Amount"]
    lines += [f"R-{n},Client {n},{1 + n % 900}.00" for n in range(rows)]
    created = testapp.post(
        API, {}, upload_files=[("file", "r.csv", "\n".join(lines).encode())],
        headers=staff_auth, status=201,
    ).json  # fmt: skip

    # Under review still, no link made: what the planner knows of the rows is the upload's.
    assert created["status"] == "review"
    known = dbsession.execute(
        text("SELECT reltuples FROM pg_class WHERE relname = 'bulk_rows'")
    ).scalar_one()
    assert known == pytest.approx(rows, rel=0.05)
    page = dbsession.execute(
        text(
            "EXPLAIN SELECT * FROM bulk_rows WHERE upload_id = :upload AND deleted IS FALSE "
            "ORDER BY row_number LIMIT 100"
        ),
        {"upload": created["id"]},
    ).scalars()
    # A page of the review reads its rows in order from the index, not all of them sorted.
    assert not any("Sort" in line for line in page)
