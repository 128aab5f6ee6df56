from pyramid.config import Configurator

from clientpay_connect.pay.interfaces import ICaptchaVerifier, IPageCache, IPaymentProcessor
from clientpay_connect.pay.processor import SandboxProcessor


def includeme(config: Configurator) -> None:
    """Routes, services, views and the resolver job of this feature."""
    settings = config.get_settings()
    processor_class = config.maybe_dotted(settings["clientpay.processor"])
    # One instance for requests (through the service) and jobs (through the registry) alike.
    config.registry["clientpay.processor"] = processor_class.from_settings(
        settings, config.registry
    )
    config.register_service_factory(processor_class.create_service, IPaymentProcessor)
    config.add_route("pay.api", "/api/v1/pay/{token}")
    config.scan(".api")
    if issubclass(processor_class, SandboxProcessor):
        # A real processor tokenizes on its own servers; only the sandbox does it here.
        config.add_route("pay.sandbox_tokens", "/sandbox/tokens")
        config.scan(".sandbox_api")
    config.scan(".tasks")
    captcha_class = config.maybe_dotted(settings["clientpay.captcha.verifier"])
    config.register_service_factory(captcha_class.create_service, ICaptchaVerifier)
    # The payer's pages; route names start with "pay" so that headers.py sends no Referer.
    config.include(".i18n")
    cache_class = config.maybe_dotted(settings["clientpay.pay.page_cache"])
    config.registry["clientpay.pay.page_cache"] = cache_class.from_settings(settings)
    config.register_service_factory(cache_class.create_service, IPageCache)
    config.add_route("pay.page", "/pay/{token}")
    config.add_route("pay.receipt", "/pay/{token}/receipt")
    config.scan(".views")
