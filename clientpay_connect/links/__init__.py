from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Routes, services and views of this feature."""
