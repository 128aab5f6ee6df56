"""Telling the firm's admins that a connection needs them."""

from __future__ import annotations

from clientpay_connect.connect.models import Connection
from clientpay_connect.mail.outbox import queue_firm_notice
from clientpay_connect.work import Work

REAUTHORIZATION_EVENT = "connection_needs_reauthorization"


def queue_reauthorization_notice(work: Work, connection: Connection) -> None:
    """An email to the admins who asked for it: the grant is gone, connect again."""
    queue_firm_notice(
        work,
        firm_id=connection.firm_id,
        event=REAUTHORIZATION_EVENT,
        subject=f"Reconnect {connection.name}: the matter system needs authorization",
        lines=[
            f"The connection {connection.name!s} ({connection.adapter}) can no longer reach "
            "the matter system: its authorization was refused or has expired.",
            "Until an admin connects it again, searches in Connect fail and payments wait "
            "to be posted; nothing is lost.",
            "Open Admin > Connections and choose Reconnect.",
        ],
        path="/admin/connections",
    )
