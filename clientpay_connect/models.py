"""Every feature's models, imported so that the metadata (and Alembic) sees them all."""

from clientpay_connect.accounts.models import ApiToken, AuditEvent, Firm, User
from clientpay_connect.admin.models import FirmSettings, MerchantAccount, NotificationRecipient
from clientpay_connect.db import Base

__all__ = [
    "ApiToken",
    "AuditEvent",
    "Base",
    "Firm",
    "FirmSettings",
    "MerchantAccount",
    "NotificationRecipient",
    "User",
]
