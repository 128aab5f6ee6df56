"""A fresh, migrated database and the settings of an app on it, for the benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet

from tests.support.databases import fresh_database, migrate


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
            "clientpay.secret": "bench-secret",
            "clientpay.encryption_keys": Fernet.generate_key().decode(),
            "clientpay.secrets_file": "",
            "clientpay.jobs.sqlite_path": str(folder / "jobs.sqlite"),
            "clientpay.mail.maildir": str(folder / "mail"),
            "clientpay.public_url": "http://127.0.0.1",
            **extra,
        }
