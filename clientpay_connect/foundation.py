"""What every feature stands on: settings, secrets, services, templates, the database, the
security policy, headers, rate limits, the job queue, the JSON API's validation and the
static assets.

``clientpay_connect.includeme`` includes it and then every feature; a host application that
wants only some features includes this, then those features' packages (each feature's jobs
come with its ``includeme``), with ``clientpay_connect.accounts`` wherever pages are served:
the layout and the error page link to its sign-in and home.
"""

from __future__ import annotations

from pyramid.config import Configurator

from clientpay_connect.config import resolve_settings
from clientpay_connect.crypto import ensure_secrets
from clientpay_connect.logs import quiet_secret_loggers


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    # Always: a host's ini may set some clientpay.* keys and not others. Resolving twice (after
    # main()) changes nothing, since paths are absolute by then.
    settings.update(resolve_settings(settings))
    ensure_secrets(settings)
    # After the ini's logging configuration, which pserve and `clientpay` read first.
    quiet_secret_loggers()
    config.include("pyramid_services")
    # Every request method the configuration adds, on one request class (request_type.py).
    config.include(".request_type")
    config.include(".templating")
    # The template helpers every staff page writes dates and names with.
    config.include(".present")
    # Before anything that reads a body: the first tween, and pyramid_retry's activate hook.
    config.include(".body_limits")
    config.include(".db")
    config.include(".security")
    config.include(".headers")
    config.include(".throttle")
    config.include(".jobs")
    config.include(".api")
    config.add_static_view("static", "clientpay_connect:static", cache_max_age=3600)
    config.include(".favicon")
