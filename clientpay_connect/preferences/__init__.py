from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """The signed-in user's own preferences (the Sent Pages grid's layout), through the API."""
    config.add_route("api.me.preferences", "/api/v1/me/preferences")
    config.scan(".api")
