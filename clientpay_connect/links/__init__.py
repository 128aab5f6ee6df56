from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Routes, jobs and views of payment links (the API, Quick Link and a link's page)."""
    # The numeric pattern keeps /links/cancel and /links/quick from reading as a link id.
    config.add_route("api.links", "/api/v1/links")
    config.add_route("api.links.cancel", "/api/v1/links/cancel")
    config.add_route("api.link", r"/api/v1/links/{id:\d+}")
    config.add_route("api.link.balance", r"/api/v1/links/{id:\d+}/balance-link")
    config.add_route("links.quick", "/links/quick")
    config.add_route("links.detail", r"/links/{id:\d+}")
    config.add_route("links.cancel", r"/links/{id:\d+}/cancel")
    config.add_route("links.balance", r"/links/{id:\d+}/balance-link")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
