"""The plumbing of the fake vendor servers: real HTTP on 127.0.0.1, one thread per request.

A fake subclasses ``FakeHTTPServer`` and answers ``handle(request)`` with a ``FakeResponse``,
or with ``DROP`` to close the connection without any answer (the client sees the connection
cut, as when a proxy dies), after ``hold()``-ing as long as it likes (a slow vendor; every hold
ends when the server stops, so no test waits on a fake that is gone).

http.server rather than a WSGI server because a WSGI application cannot cut its connection,
and "the vendor recorded the payment, then the answer was lost" is what these fakes are for.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar
from urllib.parse import parse_qs, urlsplit


class LoopbackServer(ThreadingHTTPServer):
    """A thread per request, and room for as many waiting connections as a test's crowd
    opens at once: the standard library's backlog of 5 refused some of fifty payers' calls
    on a loaded machine (the kernel drops a connection the full backlog has no room for),
    which the real services they stand for would have taken."""

    daemon_threads = True
    request_queue_size = 128


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str  # without the query
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str  # scheme://host:port of the fake

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def json(self) -> Any:
        """The body as JSON, numbers with a fraction as Decimal (a fake keeps money exact)."""
        return json.loads(self.body or b"null", parse_float=Decimal)

    def form(self) -> dict[str, str]:
        """A form body, or a JSON object's top level (vendors document either)."""
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("application/json"):
            body = self.json()
            return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
        raw = self.body.decode("utf-8")
        return {key: values[-1] for key, values in parse_qs(raw).items()}

    @property
    def bearer(self) -> str | None:
        value = self.headers.get("Authorization", "")
        scheme, _, token = value.partition(" ")
        return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        # Vendors answer amounts as JSON numbers.
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> Self:
        body = json.dumps(data, default=_json_default).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def redirect(cls, location: str) -> Self:
        return cls(302, b"", {"Location": location})


class Drop:
    """Close the connection without an answer."""


DROP = Drop()

ServerT = TypeVar("ServerT", bound="FakeHTTPServer")


class FakeHTTPServer:
    name = "fake"

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._server = LoopbackServer(("127.0.0.1", 0), self._handler_class())
        # A short poll: stopping waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=self.name, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def hold(self, seconds: float) -> None:
        """Answer late: wait ``seconds`` (cut short when the server stops)."""
        self._stopping.wait(timeout=seconds)

    def handle(self, request: FakeRequest) -> FakeResponse | Drop:
        raise NotImplementedError

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = FakeRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers=self.headers,
                    body=body,
                    base_url=fake.base_url,
                )
                answer = fake.handle(request)
                if isinstance(answer, Drop):
                    self.close_connection = True
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    # A client that gave up waiting: nobody is left to answer.
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: object) -> None:
                # Quiet: pytest shows our own failures, not the fake's access log.
                return None

        return Handler


@contextmanager
def running(fake: ServerT) -> Iterator[ServerT]:
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
