"""Last of the suite: no raw link token and no card or bank number in the database or the logs.

It runs after every other test (this folder sorts last), on the live server's database —
where the browser tests created, emailed and paid links for real — and on the file that
kept everything the application logged during the session. It first drives one more money
path itself, so that it never passes for lack of anything to look at.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from pathlib import Path

import requests
from sqlalchemy import select

from clientpay_connect.accounts.services import create_api_token, find_user_by_email
from clientpay_connect.db import Base
from clientpay_connect.links.models import PaymentLink
from tests.support.live_server import LiveServer

CARD_NUMBERS = [
    "4242424242424242",
    "4000000000000002",
    "4000000000009995",
    "4000000000000069",
    "4000000000000127",
    "4000000000000119",
]
BANK_ACCOUNT_NUMBERS = ["000123456789", "000111111116"]
# A link's secret as it would appear in a URL: 43 URL-safe characters after /pay/.
PAY_URL_TOKEN = re.compile(r"/pay/([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")
TIMEOUT = 30


def drive_a_money_path(live_server: LiveServer) -> str:
    """Email a link, fail a card, pay by card; return the link's secret token."""
    with live_server.dbsession() as session:
        staff = find_user_by_email(session, live_server.staff.email)
        assert staff is not None
        _row, api_token = create_api_token(session, staff, "secrets scan")
    auth = {"Authorization": f"Bearer {api_token}"}
    accounts = requests.get(
        f"{live_server.url}/api/v1/merchant-accounts", headers=auth, timeout=TIMEOUT
    ).json()["items"]
    created = requests.post(
        f"{live_server.url}/api/v1/links",
        json={
            "merchant_account_id": accounts[0]["id"],
            "amount": "75.00",
            "invoice_number": "SCAN-" + uuid.uuid4().hex[:6],
            "recipient_name": "Scan Client",
            "emails": ["scan-client@example.test"],
            "send_email": True,
        },
        headers=auth,
        timeout=TIMEOUT,
    )
    assert created.status_code == 201, created.text
    match = PAY_URL_TOKEN.search(created.json()["url"])
    assert match is not None
    token = match.group(1)
    assert requests.get(f"{live_server.url}/pay/{token}", timeout=TIMEOUT).status_code == 200
    _pay(live_server, token, "4000000000000002", expected=402)
    _pay(live_server, token, "4242424242424242", expected=201)
    return token


def _pay(live_server: LiveServer, token: str, card_number: str, expected: int) -> None:
    tokenized = requests.post(
        f"{live_server.url}/sandbox/tokens",
        json={"card_number": card_number, "exp_month": 12, "exp_year": 2099, "cvc": "123"},
        timeout=TIMEOUT,
    )
    assert tokenized.status_code == 200, tokenized.text
    paid = requests.post(
        f"{live_server.url}/api/v1/pay/{token}",
        json={
            "payment_token": tokenized.json()["token"],
            "amount": "75.00",
            "payer_name": "Scan Client",
            "payer_email": "scan-client@example.test",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
        timeout=TIMEOUT,
    )
    assert paid.status_code == expected, paid.text


def every_link_token(live_server: LiveServer) -> list[str]:
    encryptor = live_server.app.registry["clientpay.encryptor"]
    with live_server.dbsession() as session:
        ciphertexts = session.scalars(select(PaymentLink.token_encrypted)).all()
    return [encryptor.decrypt(c) for c in ciphertexts]


def every_stored_value(live_server: LiveServer) -> Iterable[tuple[str, str]]:
    """(table.column, text) for every value in every table of the live database."""
    with live_server.dbsession() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
                    yield f"{table.name}.{column}", text


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def test_no_token_or_account_number_in_the_database_or_the_logs(
    live_server: LiveServer, session_log: Path
) -> None:
    fresh_token = drive_a_money_path(live_server)
    tokens = every_link_token(live_server)
    assert fresh_token in tokens
    # The one place the token belongs is the email to the payer: proof we look for the
    # right thing, in the form it really takes.
    assert any(fresh_token in m.text for m in live_server.smtp.messages)

    numbers = CARD_NUMBERS + BANK_ACCOUNT_NUMBERS
    spaced_cards = [" ".join(n[i : i + 4] for i in range(0, 16, 4)) for n in CARD_NUMBERS]
    forbidden = tokens + numbers + spaced_cards
    found_in_db = [
        (where, found)
        for where, text in every_stored_value(live_server)
        for found in secrets_in(text, forbidden)
    ]
    assert found_in_db == []

    log_text = session_log.read_text(encoding="utf-8")
    # The log really holds the application's and the job engine's records of this very run.
    assert "mail.deliver" in log_text and "outbox" in log_text
    assert secrets_in(log_text, forbidden) == []
    assert PAY_URL_TOKEN.findall(log_text) == []
