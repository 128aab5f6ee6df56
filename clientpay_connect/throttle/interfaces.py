from zope.interface import Interface


class IRateLimiter(Interface):
    def hit(limit, *keys):
        """Count one event against ``limit`` (e.g. "5/minute") for ``keys``; False if over."""

    def allowed(limit, *keys):
        """True while another event for ``keys`` would still be within ``limit``."""

    def clear(limit, *keys):
        """Forget the events counted for ``keys``."""
