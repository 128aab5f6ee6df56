from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("login", "/login")
    config.add_route("logout", "/logout")
    config.add_route("logout_everywhere", "/logout/everywhere")
    config.add_route("account", "/account")
    config.add_route("home", "/")
    config.scan(".views")
    config.scan(".tasks")
