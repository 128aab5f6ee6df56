"""The JSON shapes of connections and search results (API.md's `connections`, `connect/search`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clientpay_connect.connect.interfaces import Capabilities, Invoice, SearchResult
from clientpay_connect.connect.models import Connection
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
