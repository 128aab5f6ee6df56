"""A loopback proxy in front of localstripe that can lose Stripe's answer.

Every request goes through to localstripe; while ``cut_confirmations`` is set, a
PaymentIntent's confirmation is passed on (localstripe charges the card) and then the
connection is closed without its answer: "the charge was made, the answer was lost". While
``lose_confirmations`` is set, a confirmation never reaches localstripe at all (the
connection is cut before it is passed on): nothing was charged.
"""

from __future__ import annotations

from urllib.parse import urlencode

import requests

from tests.fakes.httpserver import DROP, Drop, FakeHTTPServer, FakeRequest, FakeResponse

# Hop-by-hop or recomputed: not passed on either way.
SKIPPED_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "content-encoding"}


class CuttingStripeProxy(FakeHTTPServer):
    name = "stripe-cutting-proxy"

    def __init__(self, upstream: str):
        super().__init__()
        self.upstream = upstream
        self.cut_confirmations = False
        self.lose_confirmations = False
        self.cut: list[str] = []

    def handle(self, request: FakeRequest) -> FakeResponse | Drop:
        if self.lose_confirmations and request.path.endswith("/confirm"):
            self.cut.append(request.path)
            return DROP
        answer = forward(request, self.upstream)
        if self.cut_confirmations and request.path.endswith("/confirm"):
            self.cut.append(request.path)
            return DROP
        return answer


def forward(request: FakeRequest, upstream: str) -> FakeResponse:
    """Pass ``request`` on to ``upstream`` and answer what it answered."""
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIPPED_HEADERS}
    query = urlencode([(k, v) for k, values in request.query.items() for v in values])
    answer = requests.request(
        request.method,
        upstream + request.path + ("?" + query if query else ""),
        data=request.body,
        headers=headers,
        timeout=30,
    )
    kept = {k: v for k, v in answer.headers.items() if k.lower() not in SKIPPED_HEADERS}
    return FakeResponse(answer.status_code, answer.content, kept)
