"""A fresh, migrated database and the settings of an app on it, for the benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy.orm import Session

from tests.support.databases import fresh_database, migrate


@contextmanager
def bench_database(server_url: str | None) -> Iterator[None]:
    """Let bench_settings create its database on ``server_url`` (None: SQLite), restoring the
    environment afterwards: a benchmark measures both databases in one run."""
    names = ("CLIENTPAY_BENCH_DATABASE_URL", "CLIENTPAY_TEST_DATABASE_URL")
    saved = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    if server_url:
        os.environ["CLIENTPAY_BENCH_DATABASE_URL"] = server_url
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def bench_settings(folder: Path, **extra: str) -> Iterator[dict[str, str]]:
    """Settings on a new database (PostgreSQL when CLIENTPAY_BENCH_DATABASE_URL names a
    server, else SQLite in ``folder``), dropped when the block ends."""
    server_url = os.environ.get("CLIENTPAY_BENCH_DATABASE_URL")
    if server_url:
        os.environ["CLIENTPAY_TEST_DATABASE_URL"] = server_url
    with fresh_database(folder) as url:
        migrate(url)
        yield {
            "sqlalchemy.url": url,
            "clientpay.secret": "bench-secret-long-enough-to-be-accepted-at-start-up",
            "clientpay.encryption_keys": Fernet.generate_key().decode(),
            "clientpay.secrets_file": "",
            "clientpay.jobs.sqlite_path": str(folder / "jobs.sqlite"),
            "clientpay.mail.maildir": str(folder / "mail"),
            "clientpay.public_url": "http://127.0.0.1",
            "clientpay.development": "true",
            "clientpay.processor": "clientpay_connect.pay.processor.SandboxProcessor",
            **extra,
        }


@contextmanager
def bench_session(settings: dict[str, str]) -> Iterator[Session]:
    """A session on the benchmark's database, committed when the block ends."""
    import transaction

    from clientpay_connect.config import resolve_settings
    from clientpay_connect.db import get_engine, get_session_factory, get_tm_session

    engine = get_engine(resolve_settings(settings))
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        yield get_tm_session(get_session_factory(engine), tm)
    engine.dispose()


def seed_firm(session: Session) -> dict[str, Any]:
    """A firm, a staff user and an operating merchant account, as the benchmarks use them."""
    from clientpay_connect.accounts.services import create_firm, create_user
    from clientpay_connect.admin.models import MerchantAccount

    firm = create_firm(session, "Benchmark Law LLP", "bench-law")
    user = create_user(session, firm, "bench@example.test", "staff", "bench-password-123")
    account = MerchantAccount(firm_id=firm.id, name="Operating", kind="operating")
    session.add(account)
    session.flush()
    return {"firm": firm, "user": user, "account": account}
