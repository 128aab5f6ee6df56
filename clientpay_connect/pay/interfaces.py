from zope.interface import Attribute, Interface


class IPaymentProcessor(Interface):
    name = Attribute("The processor's name as stored on merchant accounts, e.g. 'sandbox'.")

    def charge(
        token,
        amount_minor,
        currency,
        idempotency_key,
        allowed_methods,
        account=None,
        metadata=None,
        acceptance=None,
    ):
        """Charge once per idempotency_key; return a ChargeResult, or raise Declined.

        A ChargeResult that is not ``settled`` is a charge accepted whose money is still on
        its way (a bank debit): ``lookup`` tells later whether it succeeded or was returned.
        ``acceptance`` (an OnlineAcceptance: the payer's IP address and user agent) is the
        payer's authorization, which a bank debit's mandate records.

        ``account`` (a ProcessorAccount) is the merchant account paid, with its own keys at a
        processor that has some (Stripe; the sandbox has none); ``metadata`` (names to short
        strings) goes with the charge where the processor keeps any (firm, link, payment).

        ``allowed_methods`` ("card", "echeck") are what the merchant account accepts; a token
        of another method is declined with "method_not_accepted" before any money moves.

        Called outside any database transaction of ours. Raises ProcessorUnavailable when the
        outcome is unknown (timeout, network), so the link stays claimed for the resolver.
        """

    def lookup(idempotency_key, account=None):
        """The ChargeResult of an earlier charge with this key (made for ``account``), None if
        there was none (and there never will be), or raise Declined if it was declined; raise
        ProcessorUnavailable while the processor cannot tell yet."""


class ICaptchaVerifier(Interface):
    def verify(secret, response_token, remote_ip):
        """True if the reCAPTCHA response token is valid for this secret."""


class IPageCache(Interface):
    """Rendered payer pages, by everything that went into them (see pay/page_cache.py)."""

    def get(key):
        """The CachedPage stored under ``key`` (a hashable value), or None."""

    def put(key, page):
        """Keep ``page`` (a CachedPage) under ``key``; the least recently used may go."""


# What submitting a payment can raise instead of answering with a payment (pay/services.py
# submit_payment); pay/api.py maps each to its HTTP answer. Raising aborts the transaction:
# whatever must outlast a refusal is committed before it is raised.


class PaymentRefused(Exception):
    """The submission was refused; ``message`` is for the payer, ``errors`` name the fields
    (``{"field", "message"}``) that were wrong."""

    message = "This payment could not be made."

    def __init__(self, message: str | None = None, errors: list[dict[str, str]] | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = errors or []


class InvalidSubmission(PaymentRefused):
    message = "Some fields need attention."

    def __init__(self, errors: list[dict[str, str]]):
        super().__init__(errors=errors)


class IdempotencyKeyReused(PaymentRefused):
    """The key was first used with another submission, whose answer this is not."""

    message = (
        "This Idempotency-Key was already used with other payment details. "
        "Use a new key for a new payment."
    )


class UnknownLink(PaymentRefused):
    message = "There is no payment link at this address."


class LinkExpired(PaymentRefused):
    message = "This payment link has expired."


class LinkNotPayable(PaymentRefused):
    """The link cannot be paid (any more): paid, cancelled, being paid by someone else, or
    its account takes no payments (``reason``)."""

    message = "This link cannot be paid (any more)."

    def __init__(self, link_status: str, reason: str = "link_not_payable", message: str = ""):
        super().__init__(message or None)
        self.link_status = link_status
        self.reason = reason


class CaptchaFailed(PaymentRefused):
    message = "Please confirm that you are not a robot, then try again."

    def __init__(self) -> None:
        field = {"field": "recaptcha_token", "message": "The reCAPTCHA check did not pass."}
        super().__init__(errors=[field])


class PaymentOutcomeUnknown(PaymentRefused):
    """The processor did not answer: the link stays claimed until the resolver job learns
    from the processor whether payment ``payment_id`` went through."""

    message = (
        "We could not get an answer from the payment processor. Do not pay again: we will "
        "check with the processor and email your receipt if the payment went through."
    )

    def __init__(self, payment_id: int):
        super().__init__()
        self.payment_id = payment_id
