from zope.interface import Attribute, Interface


class IPaymentProcessor(Interface):
    name = Attribute("The processor's name as stored on merchant accounts, e.g. 'sandbox'.")

    def charge(token, amount_minor, currency, idempotency_key, allowed_methods):
        """Charge once per idempotency_key; return a ChargeResult, or raise Declined.

        ``allowed_methods`` ("card", "echeck") are what the merchant account accepts; a token
        of another method is declined with "method_not_accepted" before any money moves.

        Called outside any database transaction of ours. Raises ProcessorUnavailable when the
        outcome is unknown (timeout, network), so the link stays claimed for the resolver.
        """

    def lookup(idempotency_key):
        """The ChargeResult of an earlier charge with this key, None if there was none, or
        raise Declined if it was declined."""


class ICaptchaVerifier(Interface):
    def verify(secret, response_token, remote_ip):
        """True if the reCAPTCHA response token is valid for this secret."""


class IPageCache(Interface):
    """Rendered payer pages, by everything that went into them (see pay/page_cache.py)."""

    def get(key):
        """The CachedPage stored under ``key`` (a hashable value), or None."""

    def put(key, page):
        """Keep ``page`` (a CachedPage) under ``key``; the least recently used may go."""
