from zope.interface import Interface


class IRateLimiter(Interface):
    def hit(limit, *keys):
        """Count one event against ``limit`` (e.g. "5/minute") for ``keys``; False if over."""

    def allowed(limit, *keys):
        """True while another event for ``keys`` would still be within ``limit``."""

    def clear(limit, *keys):
        """Forget the events counted for ``keys``."""


class IPacer(Interface):
    def wait(limit, key, max_wait):
        """Take one slot of ``limit`` (e.g. "600/minute") for ``key``, waiting for it up to
        ``max_wait`` seconds. Returns 0.0 once a slot is taken, or (taking nothing) the
        seconds still to wait when that is longer than ``max_wait``."""

    def pause(key, seconds):
        """Hold every caller of ``key`` back for ``seconds`` (the vendor said so)."""
