"""The payer's pages: the payment page (or what became of the link), and the receipt.

The page never sees card or bank numbers: static/pay.js hands them to the processor's
tokenization endpoint and posts only the token to the payment API. Everything here is read
only; the payment itself is the API's business (pay/api.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable
from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.i18n import TranslationString
from pyramid.interfaces import IRoutesMapper
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config
from sqlalchemy import select

from clientpay_connect.admin.models import METHOD_ECHECK
from clientpay_connect.db import utcnow
from clientpay_connect.headers import widened_policy
from clientpay_connect.links.models import (
    LOCALES,
    STATUS_CANCELLED,
    STATUS_EXPIRED,
    STATUS_OUTSTANDING,
    STATUS_PROCESSING,
    USED_UP,
)
from clientpay_connect.links.services import payment_refusal
from clientpay_connect.money import format_amount, minor_digits
from clientpay_connect.pay import processors
from clientpay_connect.pay.facts import LinkFacts, LinkRead
from clientpay_connect.pay.i18n import (
    LANG_PARAM,
    LANGUAGE_NAMES,
    _,
    asked_language,
    choose_locale,
    day,
    moment,
    money,
    translate,
    use_locale,
)
from clientpay_connect.pay.interfaces import IPageCache
from clientpay_connect.pay.models import PAYMENT_SUCCEEDED, Payment
from clientpay_connect.pay.opens import note_open
from clientpay_connect.pay.page_cache import CachedPage
from clientpay_connect.pay.processor import SandboxProcessor
from clientpay_connect.pay.readpath import page_read, process_service
from clientpay_connect.pay.stripe_page import (
    STRIPE_NAME,
    StripeFields,
    stripe_fields,
    stripe_sources,
)
from clientpay_connect.security import PUBLIC
from clientpay_connect.throttle.interfaces import IRateLimiter

# Where reCAPTCHA's script and its challenge frame come from (Google's published CSP advice).
RECAPTCHA_ORIGINS = ("https://www.google.com", "https://www.gstatic.com")
RECAPTCHA_SCRIPT = "https://www.google.com/recaptcha/api.js"

# How card brands are written; the processor reports them in lower case.
CARD_BRANDS = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "amex": "American Express",
    "discover": "Discover",
    "diners": "Diners Club",
    "jcb": "JCB",
    "unionpay": "UnionPay",
}

# The card expiry years offered: cards are issued for at most about fifteen years.
EXPIRY_YEARS_AHEAD = 15


class _Lookup:
    """A link found by its token, and the language to speak."""

    def __init__(self, request: Request, read: LinkRead):
        self.read = read
        self.locale = choose_locale(request, read.locale)
        use_locale(request, self.locale)

    @property
    def facts(self) -> LinkFacts:
        return self.read.facts


def _find(request: Request) -> _Lookup | Response:
    """The link of this URL, or the page to answer with instead (unknown token, rate limited)."""
    limiter = process_service(request, IRateLimiter)
    limit = request.registry.settings["clientpay.limits.token_lookups"]
    # Only misses count, so a payer reloading their own page never uses the allowance up; the
    # check comes before the lookup, so that once over it a guesser learns nothing more.
    key = f"pay-page-miss:{request.client_addr}"
    if not limiter.allowed(limit, key):
        return _unknown(request, status=429)
    read = page_read(request)
    if read is None:
        limiter.hit(limit, key)
        return _unknown(request, status=404)
    return _Lookup(request, read)


def _unknown(request: Request, status: int) -> Response:
    locale = choose_locale(request, None)
    use_locale(request, locale)
    context = {
        **_page_basics(request, locale, firm_name=""),
        "too_many": status == 429,
    }
    response = _render(request, "pay/unknown.jinja2", context)
    response.status = status
    return response


def _render(request: Request, template: str, context: dict[str, Any]) -> Response:
    return render_to_response(f"clientpay_connect:templates/{template}", context, request=request)


def _page_basics(request: Request, locale: str, firm_name: str) -> dict[str, Any]:
    """What every payer page shows: the firm, the language and the English/Español switch."""
    switch = []
    for code in LOCALES:
        switch.append(
            {
                "code": code,
                "name": LANGUAGE_NAMES[code],
                "url": request.current_route_path(_query={LANG_PARAM: code}),
                "current": code == locale,
            }
        )
    return {
        "locale": locale,
        "firm_name": firm_name,
        "language_switch": switch,
        # The sandbox moves no money: say so on every payer page it serves.
        "test_mode": request.registry["clientpay.processor"].name == "sandbox",
    }


def _lang_query(request: Request, locale: str) -> dict[str, str]:
    """Carry the payer's explicit choice of language on to the next page."""
    return {LANG_PARAM: locale} if asked_language(request) in LOCALES else {}


def _link_summary(found: _Lookup) -> dict[str, Any]:
    link = found.facts
    return {
        "amount_due": money(link.amount_due_minor, link.currency, found.locale),
        "invoice_number": link.invoice_number,
        "invoice_date": day(link.invoice_date, found.locale),
        "due_date": day(link.due_date, found.locale),
        "recipient_name": link.recipient_name,
        "invoices": [
            {
                "number": line.number,
                "matter": line.matter,
                "due_date": day(line.due_on, found.locale),
                "amount": money(line.amount_minor, link.currency, found.locale),
            }
            for line in link.invoices
        ],
    }


@view_config(route_name="pay.page", permission=PUBLIC, request_method="GET")
def payment_page(request: Request) -> Response:
    found = _find(request)
    if isinstance(found, Response):
        return found
    now = utcnow()
    # Before the cache is asked: a page served from it is an open too. A HEAD shows nobody
    # anything (link checkers and mail scanners send them), so it is no open.
    if request.method == "GET":
        note_open(request, found.read.link_id, found.read.last_opened_at, now)
    state = found.read.state(now)
    key = _page_key(request, found, state)
    cache = process_service(request, IPageCache)
    page = cache.get(key)
    if page is not None:
        return page.response()
    response = _render_payment_page(request, found, state, payment_refusal(found.facts, now))
    cache.put(key, CachedPage.of(response))
    return response


def _page_key(request: Request, found: _Lookup, state: str) -> Hashable:
    """Everything the rendered page depends on (see page_cache.py): keep it complete."""
    return (
        # What the facts are made of: the link's row (facts.LinkRead).
        found.read.key,
        state,
        found.locale,
        # Whether the payer chose the language: the receipt's address then carries it on.
        bool(_lang_query(request, found.locale)),
        # Links to static files and to the API are built from the address served at: the
        # parts of the request that address is made of (request.application_url would spend
        # more than the rest of the key putting them together).
        _served_at(request.environ),
        dt.date.today().year,
    )


def _served_at(environ: dict[str, Any]) -> tuple[Any, ...]:
    return (
        environ.get("wsgi.url_scheme"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME", ""),
    )


def _render_payment_page(
    request: Request, found: _Lookup, state: str, refusal: str | None
) -> Response:
    link = found.facts
    basics = _page_basics(request, found.locale, link.firm_name)
    stripe = _stripe_fields(request, found)
    # Test mode follows the link's own merchant account: on the sandbox, or on Stripe test keys.
    basics["test_mode"] = (
        basics["test_mode"]
        or link.processor == SandboxProcessor.name
        or (stripe is not None and stripe.test_keys)
    )
    if state != STATUS_OUTSTANDING:
        return _closed_page(request, found, state, basics)
    site_key = link.recaptcha_site_key
    # Only card and eCheck: what pay/facts.py reads from the merchant account.
    methods = list(link.methods)
    # The sandbox's stand-in fields only for an account on the sandbox: never for a Stripe
    # account (its numbers would go to the wrong processor).
    tokens_url = _tokenization_url(request) if link.processor == SandboxProcessor.name else None
    # An outstanding link the API would refuse (its account was deactivated) offers no form,
    # nor does one that nothing could turn card numbers into a token for.
    if refusal is not None or (tokens_url is None and stripe is None):
        methods = []
    if not methods:
        # No form: nothing of Stripe's is loaded, and the page keeps the strict policy.
        stripe = None
    token = request.matchdict["token"]
    context = {
        **basics,
        **_link_summary(found),
        "amount_input": format_amount(link.amount_due_minor, link.currency),
        "currency": link.currency,
        "payer_name": link.recipient_name,
        "payer_email": link.first_email,
        "methods": methods,
        "recaptcha_site_key": site_key,
        "recaptcha_script": f"{RECAPTCHA_SCRIPT}?hl={found.locale}" if site_key else "",
        "disclaimer": link.disclaimer,
        "expiry_years": _expiry_years(),
        "pay_data": _script_data(request, found, token, tokens_url or "", methods, bool(site_key)),
        "stripe": stripe,
    }
    context["pay_data"]["stripe"] = stripe.script_data() if stripe is not None else None
    response = _render(request, "pay/page.jinja2", context)
    policy = _page_policy(request, bool(site_key), stripe)
    if policy is not None:
        response.headers["Content-Security-Policy"] = policy
    return response


def _stripe_fields(request: Request, found: _Lookup) -> StripeFields | None:
    """Stripe.js's fields, when the link's merchant account pays through Stripe."""
    return stripe_fields(
        request.registry.settings,
        processors.offers(request.registry, STRIPE_NAME),
        found.facts.processor,
        found.facts.publishable_key,
        found.locale,
    )


def _page_policy(request: Request, recaptcha: bool, stripe: StripeFields | None) -> str | None:
    """The page's Content-Security-Policy when it loads reCAPTCHA or Stripe.js (their
    origins, nothing more); None keeps the site's own."""
    sources: dict[str, list[str]] = {}
    if recaptcha:
        for directive in ("script-src", "frame-src"):
            sources.setdefault(directive, []).extend(RECAPTCHA_ORIGINS)
    if stripe is not None:
        for directive, origins in stripe_sources(stripe.js_url).items():
            sources.setdefault(directive, []).extend(origins)
    if not sources:
        return None
    return widened_policy(request.registry.settings.get("clientpay.frame_ancestors", ""), sources)


def _closed_page(request: Request, found: _Lookup, state: str, basics: dict[str, Any]) -> Response:
    link = found.facts
    context = {
        **basics,
        **_link_summary(found),
        "state": state,
        "amount_paid": money(link.amount_paid_minor, link.currency, found.locale),
        "balance": money(
            max(link.amount_minor - link.amount_paid_minor, 0), link.currency, found.locale
        ),
        "paid_on": moment(link.paid_at, link.time_zone, found.locale),
        "firm_email": link.firm_email,
        "receipt_url": request.route_path(
            "pay.receipt",
            token=request.matchdict["token"],
            _query=_lang_query(request, found.locale),
        ),
    }
    if state not in (*USED_UP, STATUS_CANCELLED, STATUS_EXPIRED, STATUS_PROCESSING):
        # A status this page does not know yet still must not offer the form: the nearest
        # honest message is that the link cannot be used.
        context["state"] = STATUS_CANCELLED
    return _render(request, "pay/closed.jinja2", context)


@view_config(route_name="pay.receipt", permission=PUBLIC, request_method="GET")
def receipt_page(request: Request) -> Response:
    found = _find(request)
    if isinstance(found, Response):
        return found
    link = found.facts
    token = request.matchdict["token"]
    if link.status not in USED_UP:
        # Nothing to show a receipt for yet (or ever): the payment page says why.
        return HTTPSeeOther(
            location=request.route_path(
                "pay.page", token=token, _query=_lang_query(request, found.locale)
            )
        )
    payment = request.dbsession.execute(
        select(Payment)
        .where(Payment.link_id == link.link_id, Payment.status == PAYMENT_SUCCEEDED)
        .order_by(Payment.id)
        .limit(1)
    ).scalar_one_or_none()
    locale = found.locale
    amount_minor = payment.amount_minor if payment is not None else link.amount_paid_minor
    balance_minor = max(link.amount_minor - amount_minor, 0)
    stripe = _stripe_fields(request, found)
    context = {
        **_page_basics(request, locale, link.firm_name),
        **_link_summary(found),
        "receipt_number": payment.receipt_number if payment is not None else "",
        "amount_paid": money(amount_minor, link.currency, locale),
        "balance": money(balance_minor, link.currency, locale) if balance_minor else "",
        "method": _method_description(request, payment),
        "paid_on": moment(
            (payment.completed_at or payment.created_at) if payment is not None else link.paid_at,
            link.time_zone,
            locale,
        ),
        "payer_name": payment.payer_name if payment is not None else "",
        "payer_email": payment.payer_email if payment is not None else "",
    }
    # Paid with Stripe's test keys: no money moved, and the receipt says so too.
    context["test_mode"] = context["test_mode"] or (stripe is not None and stripe.test_keys)
    return _render(request, "pay/receipt.jinja2", context)


def _method_description(request: Request, payment: Payment | None) -> str:
    if payment is None:
        return ""
    if payment.method == METHOD_ECHECK:
        if payment.last4:
            return translate(request, _("Bank account ending in %(last4)s"), last4=payment.last4)
        return translate(request, _("Bank account (eCheck)"))
    brand = CARD_BRANDS.get(payment.brand.lower(), "") or translate(request, _("Card"))
    if payment.last4:
        return translate(
            request, _("%(brand)s ending in %(last4)s"), brand=brand, last4=payment.last4
        )
    return brand


def _expiry_years() -> list[int]:
    this_year = dt.date.today().year
    return list(range(this_year, this_year + EXPIRY_YEARS_AHEAD + 1))


def _tokenization_url(request: Request) -> str | None:
    """Where pay.js sends card and bank numbers: the sandbox's endpoint when it is the processor.

    Stripe brings its own fields (Stripe.js, see stripe_page.py); with any other processor
    the page says that paying online is unavailable rather than offer fields nothing can
    tokenize.
    """
    mapper = request.registry.getUtility(IRoutesMapper)
    if mapper.get_route("pay.sandbox_tokens") is None:
        return None
    return str(request.route_path("pay.sandbox_tokens"))


def _script_data(
    request: Request,
    found: _Lookup,
    token: str,
    tokens_url: str,
    methods: list[str],
    recaptcha: bool,
) -> dict[str, Any]:
    """What pay.js needs: where to send things, and every message it may show, translated."""
    link = found.facts
    firm = link.firm_name
    amount_due = money(link.amount_due_minor, link.currency, found.locale)
    return {
        "tokens_url": tokens_url,
        "pay_url": request.route_path("pay.api", token=token),
        "receipt_url": request.route_path(
            "pay.receipt", token=token, _query=_lang_query(request, found.locale)
        ),
        "locale": {"en": "en-US", "es": "es-US"}.get(found.locale, "en-US"),
        "currency": link.currency,
        "amount_due": format_amount(link.amount_due_minor, link.currency),
        "minor_digits": minor_digits(link.currency),
        "methods": methods,
        "recaptcha": recaptcha,
        "messages": _script_messages(request, firm, amount_due),
    }


def _script_messages(request: Request, firm: str, amount_due: str) -> dict[str, str]:
    def t(message: TranslationString, **values: Any) -> str:
        return translate(request, message, **values)

    return {
        "pay": t(_("Pay %(amount)s")),
        "pay_plain": t(_("Pay now")),
        "processing": t(_("Processing your payment…")),
        "summary": t(_("Please check the highlighted fields.")),
        "payer_name": t(_("Enter your name.")),
        "payer_email": t(_("Enter a valid email address, like name@example.com.")),
        "amount": t(
            _("Enter an amount more than zero and no more than %(amount)s."), amount=amount_due
        ),
        "card_number": t(_("Enter the card number as it appears on your card.")),
        "card_expiry": t(_("Choose the card's expiry month and year.")),
        "card_expired": t(_("That expiry date has passed. Please check it or use another card.")),
        "card_cvc": t(_("Enter the 3- or 4-digit security code (CVC).")),
        "routing_number": t(_("Enter a valid 9-digit routing number.")),
        "account_number": t(_("Enter the account number (4 to 17 digits).")),
        "account_type": t(_("Choose the account type.")),
        "recaptcha": t(_("Please confirm that you are not a robot.")),
        "card_declined": t(
            _("Your card was declined. Please check the details or use another card.")
        ),
        "insufficient_funds": t(
            _(
                "Your payment was declined for insufficient funds. "
                "Please use another card or bank account."
            )
        ),
        "expired_card": t(
            _("Your card has expired. Please check the expiry date or use another card.")
        ),
        "incorrect_cvc": t(
            _("The security code (CVC) is incorrect. Please check it and try again.")
        ),
        "processing_error": t(
            _(
                "An error occurred while processing your payment. You were not charged; "
                "please try again."
            )
        ),
        "account_closed": t(
            _("That bank account is closed. Please use another account or a card.")
        ),
        "no_account": t(
            _(
                "The bank could not find that account. Please check the account number, "
                "or use another account or a card."
            )
        ),
        "debit_not_authorized": t(
            _(
                "The bank refused the debit because the account holder did not authorize it. "
                "Please use another account or a card."
            )
        ),
        "bank_account_unverified": t(
            _(
                "This bank account must be verified before it can be debited. "
                "Please pay by card, or contact %(firm)s."
            ),
            firm=firm,
        ),
        "authentication_failed": t(
            _(
                "Your card's bank did not confirm the payment, so you were not charged. "
                "Please try again, or use another card."
            )
        ),
        "declined": t(_("Your payment was declined. Please use another card or bank account.")),
        "already_paid": t(_("This link has already been paid.")),
        "already_used": t(
            _("A payment has already been made with this link, so it cannot take another.")
        ),
        "view_receipt": t(_("View the receipt")),
        "bank_processing": t(
            _(
                "Thank you. Your bank payment was submitted. Bank payments take a few business "
                "days to clear; you will get the receipt by email once it has."
            )
        ),
        "bank_verification": t(
            _(
                "Thank you. Before your bank account is debited, it must be verified: Stripe "
                "will send two small deposits (or one with a code) to it in 1-2 business days. "
                "When they arrive, follow the link below, also sent to you by email, to "
                "confirm them; the payment then goes through."
            )
        ),
        "verify_bank_account": t(_("Verify your bank account")),
        "in_progress": t(
            _(
                "A payment for this link is already being processed. "
                "Please wait a moment, then reload this page."
            )
        ),
        "not_payable": t(_("This link can no longer be paid. Please contact %(firm)s."), firm=firm),
        "expired": t(
            _("This payment link has expired. Please contact %(firm)s for a new link."), firm=firm
        ),
        "not_found": t(_("We could not find this payment link. Please check the address.")),
        "rate_limited": t(_("Too many attempts. Please wait a minute and try again.")),
        "network": t(
            _(
                "We could not reach the payment service. Please check your connection and "
                "try again; you will not be charged twice."
            )
        ),
        "server": t(
            _(
                "Something went wrong on our side. Please try again in a moment; "
                "you will not be charged twice."
            )
        ),
        "processor_unavailable": t(
            _(
                "We could not get an answer from the payment processor. Please do not pay "
                "again: we will check with the processor and email your receipt if the "
                "payment went through."
            )
        ),
        "field_error": t(_("Please check this field.")),
        "rejected": t(_("Some of the details were not accepted. Please check them and try again.")),
    }
