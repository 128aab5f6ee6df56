from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("admin.home", "/admin")
    config.scan(".views")
