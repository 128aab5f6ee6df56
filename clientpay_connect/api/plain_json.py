"""``json_response``: an API answer of plain values, dates and UTC timestamps, written by
orjson, as a Response.

A list of links is some thirty plain values (str, int, bool, None, lists and dicts with text
keys, dates and timestamps) per link, fifty links a page: the standard library's encoder
took about 0.27 ms to write a page, orjson a tenth of that. It writes the same JSON: keys
in the dict's order, the same numbers and text (UTF-8 rather than \\u escapes, no spaces
between tokens), never NaN. Returned by the view rather than through a renderer: Pyramid's
renderer machinery (its system values, the BeforeRender event, the response made from
request.response) cost a page more than orjson's writing it; the Content-Type is the JSON
renderer's, application/json.
"""

from __future__ import annotations

from typing import Any

import orjson
from pyramid.response import Response

CONTENT_TYPE = "application/json"


# Dates as "2025-03-31"; timestamps, which must be in UTC (links.services.in_utc), as the API
# writes them: to the second, "2025-03-31T19:04:05Z".
OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_OMIT_MICROSECONDS


def json_response(value: Any) -> Response:
    """``value`` (plain values, dates and UTC timestamps only: anything else is a TypeError)
    as a JSON response."""
    return Response(body=orjson.dumps(value, option=OPTIONS), content_type=CONTENT_TYPE)
