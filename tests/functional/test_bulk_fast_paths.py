"""The fast paths of Bulk Upload write exactly what the ordinary ones would: secrets that
the app's Encryptor decrypts and whose hash finds the link, JSON that json.dumps would
write, and columns that the ORM reads back as usual."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from clientpay_connect.bulk.actions import prepare_secrets
from clientpay_connect.bulk.fastwrite import json_strings
from clientpay_connect.bulk.models import BulkRow
from clientpay_connect.crypto import Encryptor, encryption_keys, sha256_hex
from clientpay_connect.links.models import PaymentLink
from tests.factories import MerchantAccountFactory

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
