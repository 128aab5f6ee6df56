"""Which of a firm's MyCase cases and invoices answer a search (pure: no HTTP here).

The rules: ``q`` is matched case-insensitively as a part of a client's name ("first middle
last"), of a case's number or name, or of an invoice's number. An invoice is in the answer
when it is open (a balance, not a draft) and its number matches, or its case matches, or one
of its case's clients matches. ``client_id`` / ``matter_id`` narrow everything to that client's
cases / that case; with either given an empty ``q`` lists all of their open invoices, without
both it finds nothing. Invoices come oldest due first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import replace

from adapters.mycase.records import (
    Json,
    client_from,
    client_name,
    invoice_from,
    is_payable,
    matter_from,
    primary_client_id,
    ref_id,
)
from clientpay_connect.connect.interfaces import Client, Invoice, Matter, SearchResult


def _case_client_ids(case: Json) -> list[str]:
    return [ref_id(c) for c in case.get("clients") or [] if ref_id(c)]


def _in_scope(case: Json, client_id: str | None, matter_id: str | None) -> bool:
    if matter_id is not None and str(case["id"]) != matter_id:
        return False
    return client_id is None or client_id in _case_client_ids(case)


def _case_matches(case: Json, needle: str) -> bool:
    texts = (case.get("case_number"), case.get("name"))
    if any(needle in str(t).casefold() for t in texts if t):
        return True
    return any(needle in client_name(c).casefold() for c in case.get("clients") or [])


def _oldest_due_first(invoice: Invoice) -> tuple[dt.date, dt.date, str, str]:
    far = dt.date.max
    return (invoice.due_on or far, invoice.issued_on or far, invoice.number, invoice.id)


def select(
    q: str,
    client_id: str | None,
    matter_id: str | None,
    cases: Iterable[Json],
    invoices: Iterable[Json],
    currency: str,
) -> SearchResult:
    needle = q.strip().casefold()
    if not needle and client_id is None and matter_id is None:
        return SearchResult()
    scoped = {str(c["id"]): c for c in cases if _in_scope(c, client_id, matter_id)}
    matched_cases = {i for i, c in scoped.items() if _case_matches(c, needle)}
    # Asked about one client: its invoices and matters are shown as its own, even where the
    # case's billing contact is another of the case's clients.
    client_of_case = {i: client_id or primary_client_id(c) for i, c in scoped.items()}
    found: list[Invoice] = []
    for raw in invoices:
        case_id = ref_id(raw.get("case"))
        if case_id not in scoped or not is_payable(raw):
            continue
        if case_id in matched_cases or needle in str(raw.get("invoice_number") or "").casefold():
            invoice = invoice_from(raw, client_of_case, currency)
            if invoice.state == "open":
                found.append(invoice)
    found.sort(key=_oldest_due_first)
    case_ids = matched_cases | {i.matter_id for i in found}
    matters = [
        replace(matter_from(scoped[i]), client_id=client_of_case[i])
        for i in sorted(case_ids, key=int)
    ]
    return SearchResult(
        clients=_clients(scoped.values(), needle, client_id, matters),
        matters=matters,
        invoices=found,
    )


def _clients(
    cases: Iterable[Json], needle: str, client_id: str | None, matters: Sequence[Matter]
) -> list[Client]:
    """The clients whose name matches, and the client of every matter in the answer."""
    wanted = {m.client_id for m in matters if m.client_id}
    by_id: dict[str, Client] = {}
    for case in cases:
        for raw in case.get("clients") or []:
            client = client_from(raw)
            if client_id is not None and client.id != client_id:
                continue
            if client.id in wanted or client_id is not None or needle in client.name.casefold():
                by_id.setdefault(client.id, client)
    return sorted(by_id.values(), key=lambda c: (c.name.casefold(), c.id))
