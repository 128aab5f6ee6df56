from pyramid.config import Configurator

from clientpay_connect.throttle.interfaces import IBackoff, IPacer, IRateLimiter


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    limiter_class = config.maybe_dotted(
        settings.get(
            "clientpay.limits.backend", "clientpay_connect.throttle.services.LimitsRateLimiter"
        )
    )
    limiter = limiter_class.from_settings(settings)
    config.registry["clientpay.rate_limiter"] = limiter
    config.register_service_factory(limiter_class.create_service, IRateLimiter)
    # The growing wait after failed sign-ins (the same storage as the rate limits).
    backoff_class = config.maybe_dotted(
        settings.get(
            "clientpay.limits.backoff", "clientpay_connect.throttle.services.LimitsBackoff"
        )
    )
    config.registry["clientpay.backoff"] = backoff_class.from_settings(settings)
    config.register_service_factory(backoff_class.create_service, IBackoff)
    # The pace of calls to the vendors' APIs (matter systems), shared by every worker.
    pacer_class = config.maybe_dotted(
        settings.get("clientpay.limits.pacer", "clientpay_connect.throttle.services.LimitsPacer")
    )
    config.registry["clientpay.pacer"] = pacer_class.from_settings(settings)
    config.register_service_factory(pacer_class.create_service, IPacer)
    # Ahead of the OpenAPI validation (api/openapi.py): see deriver.py.
    config.add_view_deriver(
        "clientpay_connect.throttle.deriver.rate_limited_view", over="openapi_view_deriver"
    )
