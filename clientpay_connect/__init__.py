"""clientpay-connect: single-use payment links for law firms, as a Pyramid add-on."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.router import Router

from clientpay_connect.config import resolve_settings
from clientpay_connect.crypto import ensure_secrets


def main(global_config: dict[str, Any] | None, **settings: Any) -> Router:
    """The WSGI application for ``pserve`` and ``clientpay serve``."""
    here = (global_config or {}).get("here")
    with Configurator(settings=resolve_settings(settings, here=here)) as config:
        config.include(includeme)
    return config.make_wsgi_app()


def includeme(config: Configurator) -> None:
    """Set the add-on up inside ``config`` (a host may include it under a route prefix)."""
    settings = config.get_settings()
    # Always: a host's ini may set some clientpay.* keys and not others. Resolving twice (after
    # main()) changes nothing, since paths are absolute by then.
    settings.update(resolve_settings(settings))
    ensure_secrets(settings)
    config.include("pyramid_services")
    config.include(".templating")
    config.include(".db")
    config.include(".security")
    config.include(".headers")
    config.include(".throttle")
    config.include(".jobs")
    config.include(".api")
    # First of the features: routes are tried in the order they were added, and the payment
    # page is the one page the public loads, again and again.
    config.include(".pay")
    config.include(".accounts")
    config.include(".admin")
    config.include(".mail")
    config.include(".links")
    config.include(".sent")
    config.include(".bulk")
    config.include(".connect")
    config.include(".postings")
    config.include(".reports")
    config.add_static_view("static", "clientpay_connect:static", cache_max_age=3600)
