from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.include(".openapi")
    config.add_route("api.openapi", "/api/v1/openapi.json")
    config.add_route("health", "/healthz")
    config.scan(".views")
