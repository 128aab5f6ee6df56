from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Smart Reminders: the job that sends them, and a link's switch to turn them off."""
    config.add_route("links.reminders", r"/links/{id:\d+}/reminders")
    config.scan(".views")
    config.scan(".tasks")
