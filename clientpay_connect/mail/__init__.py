from pyramid.config import Configurator

from clientpay_connect.mail.interfaces import IMailDelivery


def includeme(config: Configurator) -> None:
    """Routes, services, views and jobs of this feature."""
    delivery = config.maybe_dotted(config.get_settings()["clientpay.mail.delivery"])
    config.register_service_factory(delivery.create_service, IMailDelivery)
    config.include(".compose")
    config.add_route("admin.outbox", "/admin/outbox")
    config.add_route("admin.outbox.retry", r"/admin/outbox/{id:\d+}/retry")
    config.scan(".views")
    config.scan(".tasks")
