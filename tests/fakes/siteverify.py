"""A fake of Google's reCAPTCHA siteverify, speaking real HTTP on 127.0.0.1.

It answers ``{"success": true}`` only for ``GOOD_RESPONSE`` sent with ``SECRET``, and records
every request it receives. ``mode`` makes it misbehave: ``"error"`` answers HTTP 500,
``"slow"`` holds the answer back until the server stops (longer than any client timeout),
``"garbage"`` answers 200 with a body that is not JSON. ``hold_answers_until(count)`` makes
every answer wait until that many requests have arrived (or a timeout passed), so that a test
of a race can be sure that many callers were in flight at once, however the machine schedules
them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

from tests.fakes.httpserver import LoopbackServer

SECRET = "siteverify-test-secret"
GOOD_RESPONSE = "the-one-good-response-token"
PATH = "/recaptcha/api/siteverify"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    content_type: str
    form: dict[str, str]


class FakeSiteverify:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.mode = "normal"
        self._release = threading.Event()
        self._arrived = threading.Condition()
        self._hold_until = 0
        self._hold_seconds = 0.0
        self._server = LoopbackServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-siteverify", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def hold_answers_until(self, count: int, timeout: float = 30.0) -> None:
        self._hold_until = count
        self._hold_seconds = timeout

    def _record(self, request: RecordedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()
            self._arrived.wait_for(
                lambda: len(self.requests) >= self._hold_until, timeout=self._hold_seconds
            )

    def answer(self, form: dict[str, str]) -> tuple[int, bytes]:
        if self.mode == "error":
            return 500, b"internal error"
        if self.mode == "garbage":
            return 200, b"<html>not json</html>"
        if self.mode == "slow":
            self._release.wait(timeout=30)
            return 200, json.dumps({"success": True}).encode()
        if form.get("secret") != SECRET:
            body = {"success": False, "error-codes": ["invalid-input-secret"]}
        elif form.get("response") != GOOD_RESPONSE:
            body = {"success": False, "error-codes": ["invalid-input-response"]}
        else:
            body = {
                "success": True,
                "challenge_ts": "2025-01-01T00:00:00Z",
                "hostname": "127.0.0.1",
            }
        return 200, json.dumps(body).encode()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                form = {key: values[-1] for key, values in parse_qs(raw).items()}
                fake._record(
                    RecordedRequest("POST", self.path, self.headers.get("Content-Type", ""), form)
                )
                status, body = fake.answer(form)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    # A client that gave up waiting ("slow" mode): nobody is left to answer.
                    pass

            def log_message(self, format: str, *args: object) -> None:
                # Quiet: pytest shows our own failures, not the fake's access log.
                return None

        return Handler


@contextmanager
def running_siteverify() -> Iterator[FakeSiteverify]:
    fake = FakeSiteverify()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
