"""For tests with a controlled clock: the moments at which the workers are made to run."""

from __future__ import annotations

import datetime as dt


def every(start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> list[dt.datetime]:
    """``start``, ``start + step``, … up to (not including) ``end``."""
    moments = []
    while start < end:
        moments.append(start)
        start += step
    return moments
