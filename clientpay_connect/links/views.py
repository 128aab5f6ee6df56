"""The Quick Link page and a link's own page (staff)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyramid.httpexceptions import HTTPNotFound, HTTPSeeOther
from pyramid.request import Request
from pyramid.view import view_config

from clientpay_connect.connect.linking import link_invoices
from clientpay_connect.links.actions import (
    create_balance_for_staff,
    create_for_staff,
    record_cancelled,
)
from clientpay_connect.links.forms import (
    MAX_EMAILS,
    LinkInput,
    active_accounts,
    check_link_input,
    default_message,
)
from clientpay_connect.links.history import (
    link_emails,
    link_payments,
    link_postings,
    payment_state,
)
from clientpay_connect.links.models import (
    EMAIL_FAILED,
    EMAIL_NOT_SENT,
    EMAIL_QUEUED,
    EMAIL_SENT,
    EMAIL_WITHHELD,
    SOURCE_CONNECT,
    STATUS_OUTSTANDING,
    PaymentLink,
)
from clientpay_connect.links.pages import GENERATE, LANGUAGES, SEND, created_link, done_page
from clientpay_connect.links.services import (
    BalanceLinkRefused,
    balance_due,
    balance_link_of,
    cancel_links,
    get_for_firm,
    link_url,
    lock_for_firm,
    refuse_balance_link,
    status_label,
    was_emailed,
)
from clientpay_connect.money import display_amount
from clientpay_connect.refunds.pages import refund_panel
from clientpay_connect.reminders.services import sent_reminders
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.present import firm_zone, local_timestamp, source_label

ADD_EMAIL = "add_email"
EMAIL_LABELS = {
    EMAIL_NOT_SENT: "Not emailed",
    EMAIL_QUEUED: "Queued",
    EMAIL_SENT: "Sent",
    EMAIL_FAILED: "Failed",
    EMAIL_WITHHELD: "Not sent (link closed first)",
}
FIELD_LABELS = {
    "merchant_account_id": "Merchant account",
    "amount": "Total amount",
    "invoice_number": "Invoice number",
    "due_date": "Due date",
    "recipient_name": "Recipient's name",
    "message": "Message to payer",
    "emails": "Email address",
    "locale": "Language",
}


def email_input_id(index: int) -> str:
    return f"email-{index}"


def field_anchor(name: str) -> str:
    """The id of the input that shows ``name``'s error ("emails.2" is the third address)."""
    if name == "emails":
        return email_input_id(0)
    if name.startswith("emails."):
        return email_input_id(int(name.split(".", 1)[1]))
    return name


def field_label(name: str) -> str:
    if name.startswith("emails."):
        index = int(name.split(".", 1)[1])
        # The same words as the input's own label.
        return "Email address" if index == 0 else f"Email address {index + 1}"
    return FIELD_LABELS.get(name, name)


@dataclass
class QuickForm:
    """What the Quick Link form shows: the values as typed, and the errors by field."""

    values: dict[str, Any]
    emails: list[str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def blank(cls, account_ids: list[int]) -> QuickForm:
        # With one account there is nothing to choose, so it is chosen.
        only = str(account_ids[0]) if len(account_ids) == 1 else ""
        values = {"merchant_account_id": only, "send_email": "yes", "locale": "en"}
        return cls(values=values, emails=[""])

    @classmethod
    def posted(cls, params: Any) -> QuickForm:
        names = ("merchant_account_id", "amount", "invoice_number", "due_date")
        values = {name: params.get(name, "") for name in names}
        values.update(
            recipient_name=params.get("recipient_name", ""),
            message=params.get("message", ""),
            send_email="no" if params.get("send_email") == "no" else "yes",
            locale=params.get("locale", "en"),
        )
        return cls(values=values, emails=list(params.getall("emails")) or [""])

    def summary(self) -> list[tuple[str, str, str]]:
        return [(field_anchor(n), field_label(n), m) for n, m in self.errors.items()]

    def email_error(self, index: int) -> str | None:
        """The error shown beside address input ``index`` (the first also carries the
        group's own, such as "enter at least one")."""
        own = self.errors.get(f"emails.{index}")
        if index == 0:
            return " ".join(e for e in (self.errors.get("emails"), own) if e) or None
        return own


PREFILLED = ("amount", "invoice_number")
MAX_PREFILL = 100


def _mode(params: Any) -> str:
    """Which button was pressed; Enter (the form's hidden default button) follows the radio."""
    action = params.get("action", "")
    if action in (SEND, GENERATE, ADD_EMAIL):
        return str(action)
    return GENERATE if params.get("send_email") == "no" else SEND


def _link_input(form: QuickForm, mode: str) -> LinkInput:
    values = form.values
    sending = mode == SEND
    # Generate Link ignores the email half of the form (shown too when scripts are off).
    return LinkInput(
        merchant_account_id=values["merchant_account_id"],
        amount=values["amount"],
        invoice_number=values["invoice_number"],
        due_date=values["due_date"],
        recipient_name=values["recipient_name"] if sending else "",
        message=values["message"] if sending else "",
        emails=form.emails if sending else [],
        send_email=sending,
        locale=values["locale"],
    )


def _form_page(request: Request, form: QuickForm) -> dict[str, Any]:
    accounts = active_accounts(request.dbsession, firm_id(request))
    return {
        "form": form,
        "accounts": accounts,
        "default_message": default_message(request.dbsession, firm_id(request)),
        "languages": LANGUAGES,
        "max_emails": MAX_EMAILS,
    }


@view_config(
    route_name="links.quick",
    request_method="GET",
    renderer="links/quick.jinja2",
    permission=STAFF,
)
def quick_link_form(request: Request) -> dict[str, Any]:
    created = created_link(request)
    if created is not None:
        request.override_renderer = "links/quick_done.jinja2"
        return done_page(request, created)
    accounts = active_accounts(request.dbsession, firm_id(request))
    form = QuickForm.blank([a.id for a in accounts])
    # Filled in from the URL: the matter software opens the panel on an invoice it shows.
    for name in PREFILLED:
        form.values[name] = str(request.GET.get(name, ""))[:MAX_PREFILL]
    return _form_page(request, form)


@view_config(
    route_name="links.quick",
    request_method="POST",
    renderer="links/quick.jinja2",
    permission=STAFF,
)
def quick_link_submit(request: Request) -> Any:
    form = QuickForm.posted(request.POST)
    mode = _mode(request.POST)
    if mode == ADD_EMAIL:
        # Without scripts "Add another address" comes to us; nothing is checked or kept yet.
        form.emails.append("")
        form.values["send_email"] = "yes"
        return _form_page(request, form)
    form.values["send_email"] = "yes" if mode == SEND else "no"
    checked = check_link_input(request.dbsession, firm_id(request), _link_input(form, mode))
    if checked.new is None:
        for error in checked.errors:
            form.errors.setdefault(error["field"], error["message"])
        request.response.status = 422
        return _form_page(request, form)
    link, _token = create_for_staff(request, checked.new, send_email=mode == SEND)
    # Redirect after POST: reloading the result page must not make a second link.
    return HTTPSeeOther(location=request.route_url("links.quick", _query={"created": link.id}))


def _firm_link(request: Request) -> PaymentLink:
    link = get_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if link is None:
        raise HTTPNotFound()
    return link


@view_config(
    route_name="links.detail",
    request_method="GET",
    renderer="links/detail.jinja2",
    permission=STAFF,
)
def link_detail(request: Request) -> dict[str, Any]:
    link = _firm_link(request)
    zone = firm_zone(request.dbsession, firm_id(request))
    balance_link = balance_link_of(request.dbsession, link)
    parent = (
        get_for_firm(request.dbsession, link.firm_id, link.parent_link_id)
        if link.parent_link_id
        else None
    )
    return {
        "link": link,
        "url": link_url(request, link),
        "status_label": status_label(link.status),
        "email_label": EMAIL_LABELS.get(link.email_status, link.email_status),
        "money": lambda minor: display_amount(minor, link.currency),
        "when": lambda value: local_timestamp(value, zone),
        "balance_due": balance_due(link),
        "balance_link": balance_link,
        "parent": parent,
        "can_cancel": link.status == STATUS_OUTSTANDING,
        "can_make_balance_link": balance_due(link) > 0 and balance_link is None,
        "can_email_balance_link": was_emailed(link),
        "payments": link_payments(request.dbsession, link.firm_id, link.id),
        "payment_state": payment_state,
        "invoices": link_invoices(request.dbsession, link.id)
        if link.source == SOURCE_CONNECT
        else [],
        "invoice_money": lambda minor: display_amount(minor, link.currency),
        "source": source_label(link.source),
        "reminders": sent_reminders(request.dbsession, link.firm_id, link.id),
        # notify: the client's emails and the postings (links/history.py).
        "emails": link_emails(request.dbsession, link.firm_id, link.id),
        "postings": link_postings(request.dbsession, link.firm_id, link.id),
        **refund_panel(request.dbsession, link),
    }


@view_config(route_name="links.cancel", request_method="POST", permission=STAFF)
def cancel_link(request: Request) -> HTTPSeeOther:
    link = _firm_link(request)
    result = cancel_links(request.dbsession, link.firm_id, [link.id])
    if result.cancelled:
        record_cancelled(request, result.cancelled)
        request.session.flash("The link was cancelled; it can no longer be paid.")
    else:
        label = status_label(result.skipped[0].get("status", link.status))
        message = f"Only an outstanding link can be cancelled; this one is “{label.lower()}”."
        request.session.flash(message, "error")
    return HTTPSeeOther(location=request.route_url("links.detail", id=link.id))


@view_config(route_name="links.balance", request_method="POST", permission=STAFF)
def make_balance_link(request: Request) -> HTTPSeeOther:
    parent = lock_for_firm(request.dbsession, firm_id(request), int(request.matchdict["id"]))
    if parent is None:
        raise HTTPNotFound()
    here = request.route_url("links.detail", id=parent.id)
    try:
        refuse_balance_link(request.dbsession, parent)
    except BalanceLinkRefused as refused:
        request.session.flash(refused.message, "error")
        return HTTPSeeOther(location=here)
    send_email = request.POST.get("send_email") == "on" and was_emailed(parent)
    link = create_balance_for_staff(request, parent, send_email=send_email)
    amount = display_amount(link.amount_minor, link.currency)
    sent = " and emailed it" if send_email else ""
    request.session.flash(f"Created a balance link for {amount}{sent}.")
    return HTTPSeeOther(location=request.route_url("links.detail", id=link.id))
