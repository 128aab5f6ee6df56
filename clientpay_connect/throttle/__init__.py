from pyramid.config import Configurator

from clientpay_connect.throttle.interfaces import IRateLimiter


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
    # Ahead of the OpenAPI validation (api/openapi.py): see deriver.py.
    config.add_view_deriver(
        "clientpay_connect.throttle.deriver.rate_limited_view", over="openapi_view_deriver"
    )
