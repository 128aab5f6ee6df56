"""The ``sql`` adapter: an on-premise matter database reached by any SQLAlchemy URL.

Reads clients, matters and invoices straight from the firm's tables and writes payments into
a staging table the firm's system imports (``post="file"``). The tables and columns are the
demo matter database's unless the connection's settings map them (``adapters.sql.mapping``).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from zope.interface import implementer

from adapters.sql.convert import INVOICE_FIELDS, Converter
from adapters.sql.engine import WRITES, classify, matter_engine, translated_errors
from adapters.sql.mapping import mapping_from_settings
from adapters.sql.posting import PostingWriter, check_allocations
from adapters.sql.search import Narrowing, SearchQueries
from adapters.sql.tables import MappedTables, reflect
from clientpay_connect.connect.interfaces import (
    AdapterConfig,
    Allocation,
    Capabilities,
    Conflict,
    IMatterAdapter,
    Invoice,
    Permanent,
    PostingRequest,
    PostResult,
    SearchResult,
)

# get_invoices asks for this many ids per statement (servers cap bound parameters).
IDS_PER_QUERY = 500


@implementer(IMatterAdapter)
class SqlAdapter:
    name = "sql"
    capabilities = Capabilities(search=True, post="file", multi_invoice=True, trust=True)

    def __init__(self, config: AdapterConfig):
        self.mapping = mapping_from_settings(config.settings)
        self.engine = matter_engine(self.mapping.url, self.mapping.connect_timeout)
        self.convert = Converter(self.mapping)
        if "account" not in self.mapping.columns["invoices"]:
            self.capabilities = replace(self.capabilities, trust=False)
        self._tables: MappedTables | None = None
        self._queries: SearchQueries | None = None
        self._reflecting = threading.Lock()

    def tables(self) -> MappedTables:
        """The mapped tables, read from the database on first use (then kept)."""
        with self._reflecting:
            if self._tables is None:
                with self.engine.connect() as connection:
                    self._tables = reflect(connection, self.mapping)
            return self._tables

    def _search_queries(self, tables: MappedTables) -> SearchQueries:
        if self._queries is None:
            self._queries = SearchQueries(tables, self.mapping, self.engine.dialect.name)
        return self._queries

    def search(
        self, q: str, client_id: str | None = None, matter_id: str | None = None
    ) -> SearchResult:
        """Clients, matters and open invoices for ``q`` (the rules: ``adapters.sql.search``),
        at most 50 clients, 200 matters and 200 invoices, oldest due first."""
        q = (q or "").strip()
        if not q and client_id is None and matter_id is None:
            return SearchResult()
        with translated_errors():
            tables = self.tables()
            narrowing = Narrowing(
                client=_key_or_none(tables.clients.key("id", client_id), client_id),
                matter=_key_or_none(tables.matters.key("id", matter_id), matter_id),
            )
            if _unmatchable(narrowing, client_id, matter_id):
                return SearchResult()
            with self.engine.connect() as connection:
                found = self._search_queries(tables).run(connection, q, narrowing)
        return SearchResult(
            clients=self.convert.clients(found.clients),
            matters=self.convert.matters(found.matters),
            invoices=self.convert.invoices(found.invoices),
        )

    def get_invoices(self, invoice_ids: list[str]) -> list[Invoice]:
        """The invoices with these ids, in any state; unknown ids are left out."""
        found: list[Invoice] = []
        with translated_errors():
            invoices = self.tables().invoices
            keys = [k for k in (invoices.key("id", i) for i in invoice_ids) if k is not None]
            with self.engine.connect() as connection:
                for start in range(0, len(keys), IDS_PER_QUERY):
                    chunk = keys[start : start + IDS_PER_QUERY]
                    query = select(*invoices.labelled(*INVOICE_FIELDS))
                    rows = connection.execute(query.where(invoices["id"].in_(chunk)))
                    found.extend(self.convert.invoices(rows.all()))
        return found

    def record_payment(self, posting: PostingRequest) -> PostResult:
        """Stage one row per allocation and lower each invoice's balance, in one transaction;
        once per ``posting.key``: a repeat (or a concurrent twin) writes nothing and answers
        posted with the ids first written. Raises Conflict, with nothing written, when an
        invoice is unknown, void, paid, in another currency or owes less than its amount."""
        pending = [a for a in posting.allocations if not a.external_id]
        check_allocations(pending)
        if not pending:
            return self._posted(posting, {})
        try:
            with translated_errors():
                written = self._write_once(posting, pending)
        except Conflict:
            # Another writer of this key may have committed between our reads: its answer.
            if written := self.find_payment(posting):
                return self._posted(posting, written)
            raise
        except _DuplicateKey as duplicate:
            if written := self.find_payment(posting):
                return self._posted(posting, written)
            raise classify(duplicate.error) from duplicate.error
        return self._posted(posting, written)

    def _write_once(self, posting: PostingRequest, pending: list[Allocation]) -> dict[str, str]:
        writer = PostingWriter(self.tables(), self.mapping, self.convert)
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITES: True})
            try:
                with connection.begin():
                    staged = writer.staged(connection, posting.key)
                    if staged:
                        return staged
                    return writer.write(connection, posting, pending)
            except IntegrityError as error:
                # The unique key: a twin of this posting committed first (or a row the table
                # refuses, which the read-back below tells apart).
                raise _DuplicateKey(error) from error

    def _posted(self, posting: PostingRequest, written: dict[str, str]) -> PostResult:
        """Posted, with the external ids of every allocation (those given and those written
        under the key now or before)."""
        done = {a.invoice_id: a.external_id for a in posting.allocations if a.external_id}
        wanted = {a.invoice_id for a in posting.allocations if not a.external_id}
        if not wanted <= set(written):
            raise Permanent(f"The posting key {posting.key!r} was already used for other invoices.")
        return PostResult("posted", external_ids={**done, **written})

    def find_payment(self, posting: PostingRequest) -> dict[str, str]:
        """invoice id -> staging row id of every allocation written under the posting's key."""
        with translated_errors():
            writer = PostingWriter(self.tables(), self.mapping, self.convert)
            with self.engine.connect() as connection:
                return writer.staged(connection, posting.key)

    def close(self) -> None:
        self.engine.dispose()


class _DuplicateKey(Exception):
    def __init__(self, error: IntegrityError):
        super().__init__(str(error))
        self.error = error


def _key_or_none(key: object | None, given: str | None) -> object | None:
    return None if given is None else key


def _unmatchable(narrowing: Narrowing, client_id: str | None, matter_id: str | None) -> bool:
    """An id given that the column cannot hold (a word for an integer key) matches nothing."""
    return (client_id is not None and narrowing.client is None) or (
        matter_id is not None and narrowing.matter is None
    )
