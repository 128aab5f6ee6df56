from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Routes, views and the resolver job of refunds (the API's, and the link page's form)."""
    config.add_route("api.link.refund", r"/api/v1/links/{id:\d+}/refund")
    config.add_route("api.link.refunds", r"/api/v1/links/{id:\d+}/refunds")
    config.add_route("links.refund", r"/links/{id:\d+}/refund")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
