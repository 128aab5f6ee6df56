"""Loggers that must never write what they know at DEBUG.

oauthlib and requests-oauthlib log, at DEBUG, the requests and answers of the OAuth dance:
authorization codes, PKCE verifiers, client secrets, access and refresh tokens, in clear.
Anyone who turns the root logger to DEBUG to chase a problem (or copies development.ini's
clientpay_connect section for root) would write a matter system's keys into the log files.
So their level is held at INFO at least, whatever the ini says: the ini files name them at
INFO too, and the app raises them again once the logging configuration has been read
(pserve and ``clientpay`` read it before they build the app).
"""

from __future__ import annotations

import logging

SECRET_LOGGERS = ("oauthlib", "requests_oauthlib")
LOWEST_LEVEL = logging.INFO


def quiet_secret_loggers() -> None:
    """Hold the secret-bearing loggers, and any of their children given a level of their own,
    at INFO or above."""
    for name in SECRET_LOGGERS:
        _at_least(logging.getLogger(name))
        prefix = name + "."
        for child_name, child in list(logging.root.manager.loggerDict.items()):
            # Placeholders (not yet a Logger) and loggers without a level of their own take
            # it from the parent set above.
            if (
                child_name.startswith(prefix)
                and isinstance(child, logging.Logger)
                and child.level != logging.NOTSET
            ):
                _at_least(child)


def _at_least(logger: logging.Logger) -> None:
    if logger.level < LOWEST_LEVEL:
        logger.setLevel(LOWEST_LEVEL)
