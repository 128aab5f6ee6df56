from collections.abc import Mapping
from typing import Any

from pyramid.config import Configurator

from clientpay_connect.config import UnsafeSettings, as_bool, named
from clientpay_connect.pay import processors
from clientpay_connect.pay.interfaces import ICaptchaVerifier, IPageCache, IPaymentProcessor
from clientpay_connect.pay.processor import SandboxProcessor
from clientpay_connect.pay.stripe_processor import StripeProcessor


def includeme(config: Configurator) -> None:
    """Routes, services, views and the resolver job of this feature."""
    settings = config.get_settings()
    default_class = processor_class_of(config, settings)
    # One instance of each for requests (through the service) and jobs (through the
    # registry) alike; each merchant account names the one it pays through.
    offered = {
        cls.name: cls.from_settings(settings, config.registry)
        for cls in processors.offered_classes(config, settings, default_class)
    }
    config.registry[processors.PROCESSORS_KEY] = offered
    config.registry["clientpay.processor"] = offered[default_class.name]
    config.register_service_factory(default_class.create_service, IPaymentProcessor)
    for name, processor in offered.items():
        config.register_service_factory(
            type(processor).create_service, IPaymentProcessor, name=name
        )
    # The payer's page first of all the feature's routes (and so of every feature's): the
    # router tries them in order on each request, and this is the one the public loads, again
    # and again. Its pattern matches none of the others' paths.
    config.add_route("pay.page", "/pay/{token}")
    config.add_route("pay.api", "/api/v1/pay/{token}")
    config.scan(".api")
    if SandboxProcessor.name in offered:
        # A real processor tokenizes on its own servers; only the sandbox does it here (and
        # it is offered only on an instance for development).
        config.add_route("pay.sandbox_tokens", "/sandbox/tokens")
        config.scan(".sandbox_api")
    if StripeProcessor.name in offered:
        config.add_route("pay.stripe_webhook", "/webhooks/stripe/{merchant_account_id}")
        config.scan(".stripe_webhooks")
    config.scan(".tasks")
    captcha_class = config.maybe_dotted(settings["clientpay.captcha.verifier"])
    config.register_service_factory(captcha_class.create_service, ICaptchaVerifier)
    # The payer's pages; route names start with "pay" so that headers.py sends no Referer.
    config.include(".i18n")
    cache_class = config.maybe_dotted(settings["clientpay.pay.page_cache"])
    config.registry["clientpay.pay.page_cache"] = cache_class.from_settings(settings)
    config.register_service_factory(cache_class.create_service, IPageCache)
    # When payers open their links: batched, written off the page's requests.
    config.include(".opens")
    # The page's read needs no transaction: pyramid_tm leaves it out (readpath.py says why).
    config.include(".readpath")
    config.add_route("pay.receipt", "/pay/{token}/receipt")
    config.scan(".views")


def processor_class_of(config: Configurator, settings: Mapping[str, Any]) -> Any:
    """The class of the instance's default processor (``clientpay.processor``; new merchant
    accounts start on it). Start-up stops (fails closed) when none is named, or
    when the sandbox, which takes test numbers for real invoices and moves no money, is
    named on an instance that does not say it is for development."""
    dotted = str(settings.get("clientpay.processor") or "").strip()
    if not dotted:
        raise UnsafeSettings(
            f"refusing to start: {named('clientpay.processor')} names no payment processor. "
            "Set it to clientpay_connect.pay.stripe_processor.StripeProcessor (the Stripe keys are "
            "each merchant account's), or, on an instance for development only, to "
            f"clientpay_connect.pay.processor.SandboxProcessor with "
            f"{named('clientpay.development')} = true."
        )
    processor_class = config.maybe_dotted(dotted)
    development = as_bool(settings.get("clientpay.development"))
    if issubclass(processor_class, SandboxProcessor) and not development:
        raise UnsafeSettings(
            f"refusing to start: {named('clientpay.processor')} is the sandbox, which marks "
            "invoices paid without moving money; it is for development only. Name a real "
            f"processor, or set {named('clientpay.development')} = true if this instance is "
            "for development."
        )
    return processor_class
