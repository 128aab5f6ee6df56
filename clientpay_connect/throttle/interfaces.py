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


class IBackoff(Interface):
    def wait(key):
        """Seconds ``key`` must still wait before its next attempt (0.0: it may go now)."""

    def failed(key, free, first, longest):
        """Count one failure of ``key``. Past ``free`` failures each one makes it wait: ``first``
        seconds, doubling with every failure, never more than ``longest``. Returns that wait
        (0.0 while failures are still free)."""

    def clear(key):
        """Forget ``key``'s failures and any wait."""
