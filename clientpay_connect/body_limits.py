"""Every request body is capped before anything reads or parses it (house rule 14).

One limit for every route (``clientpay.limits.json_body_bytes``, 64 KB: the JSON API and the
pages' forms), a larger one for the routes that take a file (``allow_uploads``;
``clientpay.limits.upload_body_bytes``, 33 MB). A body that declares a larger
``Content-Length`` is refused with 413 without a byte of it being read; one without a length
(chunked) is refused as soon as more than the limit has been read.

Two places act before any of our code sees the body:

- pyramid_retry copies the whole body, to replay it on a retry, before the first tween runs.
  Its activate hook (set here) screens the body first and lets only bodies known to be small
  be copied: a large or refused one gets one attempt, and nothing is copied.
- the tween below, the first of all, answers 413 before routing, the session, the CSRF check
  and the OpenAPI validation.

An upload's body is not read before its view: the security check runs first, so an
unauthenticated upload gets its 401 without its file being stored anywhere by us. (A WSGI
server may buffer a body before the application runs: waitress does, up to its
``max_request_body_size``, which ``clientpay serve`` and the ini files set to the upload limit.)
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from typing import Any

from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPRequestEntityTooLarge
from pyramid.interfaces import IRoutesMapper
from pyramid.registry import Registry
from pyramid.request import Request
from pyramid.response import Response
from pyramid.tweens import INGRESS

from clientpay_connect.api.errors import ApiError, error_response, is_api_request

JSON_LIMIT = "clientpay.limits.json_body_bytes"
UPLOAD_LIMIT = "clientpay.limits.upload_body_bytes"
UPLOAD_ROUTES = "clientpay.upload_routes"
# Where a request's verdict is kept: pyramid_retry's hook and the tween both ask.
VERDICT = "clientpay.body_too_large"
READ_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """Raised while reading a body that has no declared length once it passes its limit."""

    def __init__(self, limit: int):
        super().__init__(f"the request body is larger than {limit} bytes")
        self.limit = limit


class CappedInput:
    """A request's input stream that refuses to yield more than ``limit`` bytes."""

    def __init__(self, raw: Any, limit: int):
        self._raw = raw
        self._limit = limit
        self._read = 0

    def _count(self, data: bytes) -> bytes:
        self._read += len(data)
        if self._read > self._limit:
            raise BodyTooLarge(self._limit)
        return data

    def read(self, size: int = -1) -> bytes:
        # One byte past the limit is enough to know; never more than that from the wire.
        room = self._limit - self._read + 1
        wanted = room if size is None or size < 0 else min(size, room)
        return self._count(self._raw.read(wanted))

    def readline(self, size: int = -1) -> bytes:
        room = self._limit - self._read + 1
        wanted = room if size is None or size < 0 else min(size, room)
        return self._count(self._raw.readline(wanted))

    def close(self) -> None:
        self._raw.close()


def allow_uploads(config: Configurator, *route_names: str) -> None:
    """Let POSTs to these routes carry a body up to the upload limit (a file)."""
    config.registry.setdefault(UPLOAD_ROUTES, set()).update(route_names)


def _is_upload(request: Request, registry: Registry) -> bool:
    if request.method != "POST":
        return False
    mapper = registry.queryUtility(IRoutesMapper)
    for name in registry.get(UPLOAD_ROUTES, ()):
        route = mapper.get_route(name) if mapper is not None else None
        if route is not None and route.match(request.path_info) is not None:
            return True
    return False


def body_limit(request: Request, registry: Registry) -> int:
    """The most this request may send: the upload limit on an upload route, else the JSON one."""
    settings = registry.settings
    small = int(settings[JSON_LIMIT])
    length = request.content_length
    # Only a body that may exceed the small limit is worth matching against the routes.
    if (length is None or length > small) and _is_upload(request, registry):
        return int(settings[UPLOAD_LIMIT])
    return small


def body_too_large(request: Request, registry: Registry) -> bool:
    """Whether the body is refused (decided once per request).

    A body without a declared length is read here, up to its limit, when that limit is the
    small one; an upload's is wrapped so that reading it in the view stops at its limit."""
    environ = request.environ
    if VERDICT not in environ:
        environ[VERDICT] = _screen(request, registry)
    verdict: bool = environ[VERDICT]
    return verdict


def _screen(request: Request, registry: Registry) -> bool:
    if not request.is_body_readable:
        # No body at all (no length, or 0, and not chunked): most requests, every GET.
        return False
    limit = body_limit(request, registry)
    length = request.content_length
    if length is not None and length > limit:
        return True
    if request.is_body_seekable:
        return False
    if limit > int(registry.settings[JSON_LIMIT]):
        # A file: read by its view, after the security check, and no further than its limit.
        if length is None:
            request.body_file_raw = CappedInput(request.body_file_raw, limit)
        request.make_tempfile = functools.partial(_closed_at_the_end, request)
        return False
    # A small body is read now, into memory, so that nothing copies it to a temporary file.
    data = _read_at_most(request.body_file, limit + 1)
    if len(data) > limit:
        return True
    request.body = data
    return False


def _closed_at_the_end(request: Request) -> Any:
    """A temporary file for webob's copy of an upload's body, closed when the request ends:
    also when the copy stops half-way (BodyTooLarge), where webob drops it unclosed."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the callback below)
    request.add_finished_callback(lambda _request: spool.close())
    return spool


def _read_at_most(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left > 0:
        part = stream.read(min(left, READ_CHUNK))
        if not part:
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def too_large_response(request: Request, limit: int) -> Response:
    message = f"The request is larger than the {_size(limit)} this address accepts."
    if is_api_request(request):
        return error_response(request, ApiError(413, "request_too_large", message))
    # A plain page: the layout would load the user and the session for an answer to a
    # request that may not even be a person's.
    return HTTPRequestEntityTooLarge(detail=message)


def _size(limit: int) -> str:
    megabyte = 1024 * 1024
    if limit >= megabyte:
        return f"{limit / megabyte:g} MB"
    return f"{limit / 1024:g} KB"


def body_limit_tween_factory(
    handler: Callable[[Request], Response], registry: Registry
) -> Callable[[Request], Response]:
    def body_limit_tween(request: Request) -> Response:
        if body_too_large(request, registry):
            return too_large_response(request, body_limit(request, registry))
        return handler(request)

    return body_limit_tween


def retry_attempts(
    host_hook: Callable[[Request], int | None] | None, request: Request
) -> int | None:
    """pyramid_retry's activate hook: one attempt (so no copy of the body) for a refused body
    and for a file, which only its view may read; otherwise what the host's own hook says."""
    if body_too_large(request, request.registry):
        return 1
    if request.is_body_readable and not request.is_body_seekable:
        return 1
    return host_hook(request) if host_hook is not None else None


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    host_hook = config.maybe_dotted(settings.get("retry.activate_hook"))
    settings["retry.activate_hook"] = functools.partial(retry_attempts, host_hook)
    config.add_tween("clientpay_connect.body_limits.body_limit_tween_factory", under=INGRESS)
