from pyramid.config import Configurator

from clientpay_connect.mail.interfaces import IMailDelivery


def includeme(config: Configurator) -> None:
    """Routes, services and views of this feature."""
    # Imported here, not at the top: the jobs render links, and links import the outbox,
    # so a module-level import would go round in a circle.
    from clientpay_connect.mail import tasks  # noqa: F401 (declares mail.deliver, mail.sweep)

    delivery = config.maybe_dotted(config.get_settings()["clientpay.mail.delivery"])
    config.register_service_factory(delivery.create_service, IMailDelivery)
    config.include(".compose")
    config.add_route("admin.outbox", "/admin/outbox")
    config.add_route("admin.outbox.retry", r"/admin/outbox/{id:\d+}/retry")
    config.scan(".views")
