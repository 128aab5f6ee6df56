from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    """Smart Reminders (their schedule lives in the firm's settings)."""
