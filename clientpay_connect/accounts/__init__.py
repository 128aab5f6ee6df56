from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_route("home", "/")
    config.add_route("health", "/healthz")
    config.scan(".views")
