"""The JSON shapes of connections and search results (API.md's `connections`, `connect/search`),
and the words the pages use for them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clientpay_connect.connect.interfaces import Capabilities, Invoice, SearchResult
from clientpay_connect.connect.models import (
    CONNECTION_CONNECTED,
    CONNECTION_DISCONNECTED,
    CONNECTION_NEEDS_REAUTHORIZATION,
    CONNECTION_PENDING,
    Connection,
)
from clientpay_connect.links.services import timestamp_json
from clientpay_connect.money import format_amount

UNKNOWN_CAPABILITIES = Capabilities(search=False, post="manual", multi_invoice=False, trust=False)


def connection_json(connection: Connection, capabilities: Capabilities | None) -> dict[str, Any]:
    return {
        "id": connection.id,
        "adapter": connection.adapter,
        "name": connection.name,
        "status": connection.status,
        "capabilities": (capabilities or UNKNOWN_CAPABILITIES).as_json(),
        "settings": dict(connection.settings or {}),
        "default_merchant_account_id": connection.default_merchant_account_id,
        "post_automatically": connection.post_automatically,
        "last_error": connection.last_error,
        "connected_at": timestamp_json(connection.connected_at),
        "created_at": timestamp_json(connection.created_at),
    }


def invoice_json(invoice: Invoice, today: dt.date) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "client_id": invoice.client_id,
        "matter_id": invoice.matter_id,
        "issued_on": invoice.issued_on.isoformat() if invoice.issued_on else None,
        "due_on": invoice.due_on.isoformat() if invoice.due_on else None,
        "currency": invoice.currency,
        "total": format_amount(invoice.total, invoice.currency),
        "paid": format_amount(invoice.paid, invoice.currency),
        "balance": format_amount(invoice.balance, invoice.currency),
        "account": invoice.account,
        "past_due": invoice.due_on is not None and invoice.due_on < today,
    }


def search_json(result: SearchResult, today: dt.date) -> dict[str, Any]:
    return {
        "clients": [{"id": c.id, "name": c.name, "email": c.email} for c in result.clients],
        "matters": [
            {"id": m.id, "number": m.number, "name": m.name, "client_id": m.client_id}
            for m in result.matters
        ],
        "invoices": [invoice_json(invoice, today) for invoice in result.invoices],
    }


# For people (the admin's Connections page).

ADAPTER_LABELS = {"sql": "SQL database", "mycase": "MyCase", "clio": "Clio"}
STATUS_LABELS = {
    CONNECTION_CONNECTED: ("Connected", "paid"),
    CONNECTION_PENDING: ("Waiting for authorization", "pending"),
    CONNECTION_NEEDS_REAUTHORIZATION: ("Needs reauthorization", "failed"),
    CONNECTION_DISCONNECTED: ("Disconnected", "cancelled"),
}


def adapter_label(name: str) -> str:
    return ADAPTER_LABELS.get(name, name.replace("_", " ").title())


def status_label(status: str) -> tuple[str, str]:
    """The words for a connection's status, and the badge that shows it."""
    return STATUS_LABELS.get(status, (status.replace("_", " ").capitalize(), "pending"))


def capabilities_in_words(adapter: str, capabilities: Capabilities | None) -> list[str]:
    """What the connection can do, in the words of the people who rely on it."""
    if capabilities is None:
        return [f"The {adapter} adapter is not installed here: nothing runs until it is."]
    label = adapter_label(adapter)
    posting = {
        "api": f"Payments are written back to {label} automatically",
        "file": f"Payments are written to {label}'s payments staging table, for it to import",
        "manual": f"Payments are entered by hand ({label} has no API for it)",
    }
    words = [
        "Searches clients, matters and invoices"
        if capabilities.search
        else f"{label} cannot be searched from here",
        posting[capabilities.post],
        "Tells trust invoices from operating ones"
        if capabilities.trust
        else "Does not tell trust invoices from operating ones",
    ]
    if not capabilities.multi_invoice:
        words.append("Each invoice's payment is written separately")
    return words
