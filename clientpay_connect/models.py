"""Every feature's models, imported so that the metadata (and Alembic) sees them all."""

from clientpay_connect.accounts.models import ApiToken, AuditEvent, Firm, StaffSession, User
from clientpay_connect.admin.models import FirmSettings, MerchantAccount, NotificationRecipient
from clientpay_connect.bulk.models import BulkRow, BulkUpload
from clientpay_connect.connect.models import Connection, LinkInvoice
from clientpay_connect.db import Base
from clientpay_connect.embed.models import EmbedLaunch
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from clientpay_connect.notifications.models import NotificationDigest
from clientpay_connect.pay.models import Payment, SandboxCharge, SandboxRefund, SandboxToken
from clientpay_connect.postings.models import Posting, PostingAttempt
from clientpay_connect.refunds.models import Dispute, Refund
from clientpay_connect.reminders.models import LinkReminder
from clientpay_connect.sent.models import LinkCount

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "BulkRow",
    "BulkUpload",
    "Connection",
    "Dispute",
    "EmbedLaunch",
    "Firm",
    "FirmSettings",
    "LinkCount",
    "LinkInvoice",
    "LinkReminder",
    "MerchantAccount",
    "NotificationDigest",
    "NotificationRecipient",
    "OutboxMessage",
    "Payment",
    "PaymentLink",
    "Posting",
    "PostingAttempt",
    "Refund",
    "SandboxCharge",
    "SandboxRefund",
    "SandboxToken",
    "StaffSession",
    "User",
]
