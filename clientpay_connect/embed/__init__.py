from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Launch links: the matter software's server asks for one, its frame opens it."""
    config.add_route("api.embed.launch", "/api/v1/embed/launch")
    config.add_route("embed.launch", "/embed/launch/{token}")
    config.scan(".api")
    config.scan(".views")
    config.scan(".tasks")
