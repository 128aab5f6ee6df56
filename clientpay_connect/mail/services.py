"""Where finished messages go: an SMTP server, a maildir on disk, or nowhere."""

from __future__ import annotations

import logging
import mailbox
import os
import re
import smtplib
import ssl
import threading
from typing import Any

from pyramid_mailer.mailer import Mailer
from pyramid_mailer.message import Message
from repoze.sendmail.encoding import encode_message
from repoze.sendmail.mailer import SMTPMailer
from zope.interface import implementer

from clientpay_connect.config import as_bool
from clientpay_connect.mail.interfaces import IMailDelivery

log = logging.getLogger(__name__)


_BARE_LF = re.compile(rb"(?<!\r)\n")


class _CRLFMixin:
    """repoze hands smtplib the message as bytes with bare LF line ends, and smtplib fixes
    line ends only in str: a strict server sees one endless line and refuses it."""

    def sendmail(self, from_addr: str, to_addrs: Any, msg: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(msg, bytes):
            msg = _BARE_LF.sub(b"\r\n", msg)
        return super().sendmail(from_addr, to_addrs, msg, *args, **kwargs)  # type: ignore[misc]


class _SMTP(_CRLFMixin, smtplib.SMTP):
    def starttls(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        # smtplib's default context does not check the server's certificate.
        kwargs.setdefault("context", ssl.create_default_context())
        return super().starttls(*args, **kwargs)


class _SMTP_SSL(_CRLFMixin, smtplib.SMTP_SSL):
    pass


class _TimedSMTPMailer(SMTPMailer):
    """repoze's SMTP mailer with our timeout: its own is fixed at 10 s, and its SSL variant
    has none at all, so a server that accepts the connection and then stalls would hold a
    worker for ever."""

    def __init__(self, *, timeout: float, **kwargs: Any):
        super().__init__(**kwargs)
        self.timeout = timeout
        # The connection of the send under way in this thread (one mailer serves them all).
        self._sending = threading.local()

    def send(self, fromaddr: Any, toaddrs: Any, message: Any) -> None:
        """repoze closes the connection only after a successful send: a refusal (a bounced
        address, a failed login) would leave the socket open, one more per failed message."""
        self._sending.connection = None
        try:
            super().send(fromaddr, toaddrs, message)
        except BaseException:
            connection = self._sending.connection
            if connection is not None:
                connection.close()
            raise
        finally:
            self._sending.connection = None

    def smtp_factory(self) -> smtplib.SMTP:
        connection: smtplib.SMTP
        if self.ssl:
            connection = _SMTP_SSL(
                self.hostname,
                int(self.port),
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            connection = _SMTP(self.hostname, int(self.port), timeout=self.timeout)
        connection.set_debuglevel(self.debug_smtp)
        self._sending.connection = connection
        return connection


def _mailer_from_settings(settings: dict[str, Any]) -> Mailer:
    username = settings.get("mail.username") or None
    password = settings.get("mail.password") or None
    tls = as_bool(settings.get("mail.tls", "false"))
    smtp = _TimedSMTPMailer(
        timeout=float(settings["clientpay.mail.timeout"]),
        hostname=settings.get("mail.host") or "localhost",
        port=int(settings.get("mail.port") or 25),
        # Authenticate only when both are given (empty strings would still try to log in).
        username=username if username and password else None,
        password=password if username and password else None,
        no_tls=not tls,
        force_tls=tls,
        ssl=as_bool(settings.get("mail.ssl", "false")),
    )
    return Mailer(smtp_mailer=smtp)


@implementer(IMailDelivery)
class SMTPMailDelivery:
    """Production: hand each message to the SMTP server in the mail.* settings."""

    def __init__(self, mailer: Mailer):
        self.mailer = mailer

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> SMTPMailDelivery:
        return cls(_mailer_from_settings(settings))

    @classmethod
    def create_service(cls, context: Any, request: Any) -> SMTPMailDelivery:
        return cls.from_settings(request.registry.settings)

    def send(self, message: Message) -> None:
        # Not the transactional send: the outbox row is our transaction, and the caller
        # must learn of a failure now to schedule the retry.
        self.mailer.send_immediately(message, fail_silently=False)


@implementer(IMailDelivery)
class FileMailDelivery:
    """Development and demos: each message becomes a file in a maildir, readable by any
    mail client, so the product works without a mail server."""

    def __init__(self, maildir: str):
        self.maildir = maildir

    @classmethod
    def create_service(cls, context: Any, request: Any) -> FileMailDelivery:
        return cls(request.registry.settings["clientpay.mail.maildir"])

    def send(self, message: Message) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.maildir)), exist_ok=True)
        box = mailbox.Maildir(self.maildir, create=True)
        # The same bytes an SMTP server would receive.
        box.add(encode_message(message.to_message()))


@implementer(IMailDelivery)
class NullMailDelivery:
    """Discards every message (an instance that must never send email)."""

    @classmethod
    def create_service(cls, context: Any, request: Any) -> NullMailDelivery:
        return cls()

    def send(self, message: Message) -> None:
        message.validate()
        log.debug("mail discarded (NullMailDelivery): %d recipient(s)", len(message.send_to))
