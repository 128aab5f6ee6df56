from pyramid.config import Configurator

from clientpay_connect.api.plain_json import NAME, plain_json


def includeme(config: Configurator) -> None:
    config.include(".openapi")
    config.add_renderer(NAME, plain_json())
    config.add_route("api.openapi", "/api/v1/openapi.json")
    config.add_route("health", "/healthz")
    config.scan(".views")
