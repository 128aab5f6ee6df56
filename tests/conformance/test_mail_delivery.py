"""Every IMailDelivery that delivers (into a maildir, to an SMTP server) hands over the same
message: its headers, its recipients, both bodies byte for byte as composed; and says so
when it cannot. Another delivery (an API-based one, say) joins by adding a ``Mailbox``."""

from __future__ import annotations

import email
import email.policy
import mailbox
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import pytest
from pyramid_mailer.exceptions import InvalidMessage
from pyramid_mailer.message import Message
from zope.interface.verify import verifyObject

from clientpay_connect.mail.interfaces import IMailDelivery
from clientpay_connect.mail.services import FileMailDelivery, SMTPMailDelivery
from tests.support.smtp import SMTPServer

SENDER = "Whitaker & Co <payments@clientpay.test>"


class Mailbox(Protocol):
    """One delivery, and where a test reads what it delivered."""

    delivery: Any

    def received(self) -> list[EmailMessage]: ...

    def break_down(self) -> None:
        """From now on the delivery cannot hand anything over."""


class Maildir:
    def __init__(self, folder: Path):
        self.path = folder / "mail"
        self.delivery = FileMailDelivery(str(self.path))

    def received(self) -> list[EmailMessage]:
        if not self.path.exists():
            return []
        return [parse(stored.as_bytes()) for stored in mailbox.Maildir(str(self.path))]

    def break_down(self) -> None:
        # A file where the maildir's folder would be: nothing can be written under it.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("not a folder")


class SMTPMailbox:
    def __init__(self, server: SMTPServer):
        self.server = server
        settings = {**server.settings(), "clientpay.mail.timeout": "5"}
        self.delivery = SMTPMailDelivery.from_settings(settings)

    def received(self) -> list[EmailMessage]:
        return [received.message for received in self.server.messages]

    def break_down(self) -> None:
        self.server.stop()


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.fixture(params=["file", "smtp"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Mailbox]:
    if request.param == "file":
        yield Maildir(tmp_path)
        return
    server = SMTPServer().start()
    try:
        yield SMTPMailbox(server)
    finally:
        server.stop()


def message(n: int = 1, **changes: Any) -> Message:
    fields: dict[str, Any] = {
        "subject": f"Payment request {n} from Whitaker & Co - invoice Ñ-{n}",
        "sender": SENDER,
        "recipients": ["ana@example.test", "José <jose@example.test>"],
        "body": f"Dear José Pérez,\n\nAmount due: €1,234.50\n{'long line ' * 30}\nEnd {n}\n",
        "html": f"<p>Dear José Pérez,</p>\n<p>Amount due: €1,234.50</p><p>End {n}</p>\n",
        "extra_headers": {
            "Message-ID": f"<conformance-{n}@clientpay.test>",
            "Reply-To": "billing@firm.test",
        },
    }
    return Message(**{**fields, **changes})


def body(parsed: EmailMessage, subtype: str) -> str:
    part = parsed.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    # The wire's CRLF line ends back to "\n", as the message was composed.
    return str(part.get_content()).replace("\r\n", "\n")


def test_the_delivery_provides_the_interface(box):
    assert verifyObject(IMailDelivery, box.delivery)


def test_a_message_arrives_with_its_headers_and_both_bodies_intact(box):
    sent = message()
    box.delivery.send(sent)

    [arrived] = box.received()
    assert arrived["Message-ID"] == "<conformance-1@clientpay.test>"
    assert arrived["Subject"] == "Payment request 1 from Whitaker & Co - invoice Ñ-1"
    [sender] = arrived["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Whitaker & Co", "payments@clientpay.test")
    assert [a.addr_spec for a in arrived["To"].addresses] == [
        "ana@example.test",
        "jose@example.test",
    ]
    assert arrived["Reply-To"] == "billing@firm.test"
    assert arrived.get_content_type() == "multipart/alternative"
    assert body(arrived, "plain") == sent.body
    assert body(arrived, "html") == sent.html


def test_every_message_arrives_once(box):
    for n in range(1, 4):
        box.delivery.send(message(n))

    ids = sorted(str(m["Message-ID"]) for m in box.received())
    assert ids == [f"<conformance-{n}@clientpay.test>" for n in range(1, 4)]


def test_a_message_without_recipients_is_refused_and_nothing_arrives(box):
    with pytest.raises(InvalidMessage):
        box.delivery.send(message(recipients=[]))
    assert box.received() == []


def test_a_delivery_that_cannot_hand_over_raises(box):
    """The outbox learns of a failure from the exception and schedules the retry; a delivery
    that swallowed it would lose the message."""
    box.break_down()
    # A refused connection, a folder that cannot be written: each an OSError.
    with pytest.raises(OSError):
        box.delivery.send(message())
