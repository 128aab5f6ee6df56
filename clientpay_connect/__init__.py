"""clientpay-connect: single-use payment links for law firms, as a Pyramid add-on."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.router import Router

from clientpay_connect.config import resolve_settings


def main(global_config: dict[str, Any] | None, **settings: Any) -> Router:
    """The WSGI application for ``pserve`` and ``clientpay serve``."""
    here = (global_config or {}).get("here")
    with Configurator(settings=resolve_settings(settings, here=here)) as config:
        config.include(includeme)
    return config.make_wsgi_app()


def includeme(config: Configurator) -> None:
    """Set the add-on up inside ``config`` (a host may include it under a route prefix):
    the foundation, then every feature. A host wanting only some features includes
    ``clientpay_connect.foundation`` and those."""
    config.include(".foundation")
    # First of the features: routes are tried in the order they were added, and the payment
    # page is the one page the public loads, again and again.
    config.include(".pay")
    config.include(".accounts")
    config.include(".admin")
    config.include(".mail")
    config.include(".links")
    config.include(".sent")
    config.include(".reminders")
    config.include(".notifications")
    config.include(".bulk")
    config.include(".connect")
    config.include(".postings")
    config.include(".reports")
    config.include(".embed")
    config.include(".preferences")
