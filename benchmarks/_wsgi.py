"""A request handed to the app as a WSGI server hands it over: for timing the app's own work.

A test client (WebTest) builds a request object, checks the exchange against the WSGI
specification (its lint) and parses the answer into a response object: work of the client,
not of the app, which a server's worker does not do. A benchmark that sets the app against
the bare SQL it runs times this call instead: the environ a server makes from the request
line and headers, the app called, its body joined.
"""

from __future__ import annotations

import io
import sys
from typing import Any
from urllib.parse import urlencode


def wsgi_get(app: Any, path: str, params: dict[str, str], headers: dict[str, str]) -> bytes:
    """The body of GET ``path``?``params``; AssertionError unless the app answers 200."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(params),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()},
    }
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
        statuses.append(status)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert statuses and statuses[-1].startswith("200 "), (statuses, body[:300])
    return body
