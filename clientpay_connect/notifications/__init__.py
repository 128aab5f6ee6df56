from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Notifications to the firm's staff: the daily digest's job (the events' notices are
    written by the features where the events happen, through notifications.services.notify)."""
    config.scan(".tasks")
