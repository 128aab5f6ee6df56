"""The processors an instance offers, by the name a merchant account stores (``sandbox``,
``stripe``): each account chooses its own, so that one firm can try the sandbox on a test
account while its operating account takes real money through Stripe.

``clientpay.processors`` lists the processors by dotted name (``config.maybe_dotted``); one
that is for development only (the sandbox) is offered only on an instance that says it is for
development (``clientpay.development``). ``clientpay.processor`` names the instance's default,
which new merchant accounts start on; start-up refuses an instance without one
(pay/__init__.py). A payment goes through the processor of its link's merchant account; an
account on a processor this instance does not offer (the sandbox, on a production instance)
takes no payment, and the admin's Merchant accounts page says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyramid.config import Configurator
from pyramid.registry import Registry

from clientpay_connect.config import as_bool
from clientpay_connect.pay.processor import Processor

PROCESSORS_KEY = "clientpay.processors"
# What a merchant account's processor is called on the admin's pages.
PROCESSOR_LABELS = {"sandbox": "Sandbox (test payments, development only)", "stripe": "Stripe"}


class ProcessorNotOffered(Exception):
    """The merchant account's processor is not one this instance offers."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def offered_classes(config: Configurator, settings: Mapping[str, Any], default: Any) -> list[Any]:
    """The processor classes this instance offers: those ``clientpay.processors`` names (the
    ones for development only, only on an instance for development), and the default."""
    development = as_bool(settings.get("clientpay.development"))
    classes = [default]
    for dotted in str(settings.get(PROCESSORS_KEY) or "").split():
        found = config.maybe_dotted(dotted)
        if found not in classes and (development or not getattr(found, "development_only", False)):
            classes.append(found)
    return classes


def offered(registry: Registry) -> Mapping[str, Processor]:
    """The processors this instance offers, by name (one instance each, shared)."""
    processors: Mapping[str, Processor] = registry[PROCESSORS_KEY]
    return processors


def offers(registry: Registry, name: str) -> bool:
    return name in offered(registry)


def processor_named(registry: Registry, name: str) -> Processor:
    """The processor a merchant account names; ProcessorNotOffered if this instance has none
    by that name (it never falls back to another: money would go where it should not)."""
    try:
        return offered(registry)[name]
    except KeyError:
        raise ProcessorNotOffered(name) from None


def default_name(registry: Registry) -> str:
    """The processor new merchant accounts start on (``clientpay.processor``)."""
    return str(registry["clientpay.processor"].name)


def choices(registry: Registry) -> list[tuple[str, str]]:
    """The processors an admin may choose for a merchant account here, with their labels."""
    return [(name, PROCESSOR_LABELS.get(name, name)) for name in offered(registry)]


def not_offered_reason(name: str) -> str:
    """Why an account on processor ``name`` takes no payment on this instance."""
    return (
        f"This account is on {PROCESSOR_LABELS.get(name, name)}, which this instance does not "
        "offer (the sandbox only on an instance for development): its links cannot be paid "
        "until the account is moved to a processor that takes real payments."
    )
