"""For mail tests: a real SMTP server on loopback (aiosmtpd) that keeps what it receives,
and the app around it.

The server can be stopped and started again on the same port, to play a mail server that
goes down and comes back.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from pyramid.router import Router

from clientpay_connect import main
from clientpay_connect.accounts.models import User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.links.services import NewLink, create_link
from clientpay_connect.mail.models import KIND_LINK
from clientpay_connect.mail.outbox import queue_email
from clientpay_connect.work import Work

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message as the server got it: the envelope and the parsed content."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage

    @property
    def text(self) -> str:
        return self._body("plain")

    @property
    def html(self) -> str:
        return self._body("html")

    def _body(self, subtype: str) -> str:
        # Decoded, with the wire's CRLF line ends back to "\n" as the templates wrote them.
        part = self.message.get_body(preferencelist=(subtype,))
        return str(part.get_content()).replace("\r\n", "\n") if part is not None else ""


class _Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        # Addresses refused as a real server refuses an unknown mailbox (a hard bounce).
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        with self.lock:
            if address.lower() in self.refused:
                return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(
                Received(
                    envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content, parsed
                )
            )
        return "250 OK"


class SMTPServer:
    """``start()``/``stop()`` as often as needed; ``messages`` survives restarts."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self._recorder = _Recorder()
        self._controller: Controller | None = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SMTPServer:
        if self._controller is None:
            controller = Controller(
                self._recorder,
                hostname=HOST,
                port=self.port,
                # A fixed name: the default looks up this machine's FQDN, which can be slow.
                server_hostname="smtp.test",
            )
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Received]:
        with self._recorder.lock:
            return list(self._recorder.messages)

    def clear(self) -> None:
        with self._recorder.lock:
            self._recorder.messages.clear()
            self._recorder.refused.clear()

    def refuse(self, *addresses: str) -> None:
        """Refuse mail to ``addresses`` for good (550), as for a mailbox that does not exist."""
        with self._recorder.lock:
            self._recorder.refused.update(a.lower() for a in addresses)

    def count_by_message_id(self) -> Counter[str]:
        return Counter(str(m.message["Message-ID"]).strip() for m in self.messages)

    def settings(self) -> dict[str, str]:
        """The app settings that send mail here."""
        return {
            "clientpay.mail.delivery": "clientpay_connect.mail.services.SMTPMailDelivery",
            "mail.host": HOST,
            "mail.port": str(self.port),
            "mail.tls": "false",
            "mail.ssl": "false",
        }


@contextmanager
def bound_to(app: Router, connection: Any) -> Iterator[Router]:
    """Every session of ``app`` on the test's connection (savepoints, rolled back at the
    end), as conftest does for the session-wide app."""
    factory = app.registry["dbsession_factory"]
    factory.configure(bind=connection, join_transaction_mode="create_savepoint")
    try:
        yield app
    finally:
        factory.configure(
            bind=app.registry["dbengine"], join_transaction_mode="conservative_savepoint"
        )


@contextmanager
def smtp_application(
    settings: dict[str, Any], server: SMTPServer, **overrides: str
) -> Iterator[Router]:
    """An app like the tests' own, but mailing through ``server`` over SMTP."""
    application = main({}, **{**settings, **server.settings(), **overrides})
    try:
        yield application
    finally:
        application.registry["dbengine"].dispose()


def send_link(app: Router, user: User, account: MerchantAccount, **fields: Any) -> dict[str, Any]:
    """Create a link and queue its email in one committed unit of work, as Quick Link does;
    ``recipients`` (default: the link's emails) is what the outbox row is addressed to."""
    fields.setdefault("amount_minor", 123450)
    fields.setdefault("emails", ["ana@example.test"])
    recipients = fields.pop("recipients", None)
    with Work.fresh(app.registry) as work:
        link, token = create_link(
            work.dbsession,
            app.registry["clientpay.encryptor"],
            work.dbsession.get(User, user.id),
            NewLink(merchant_account=work.dbsession.get(MerchantAccount, account.id), **fields),
        )
        row = queue_email(
            work,
            firm_id=link.firm_id,
            kind=KIND_LINK,
            recipients=recipients if recipients is not None else list(link.emails),
            link_id=link.id,
        )
        sent = {"link_id": link.id, "outbox_id": row.id, "token": token}
    return sent
