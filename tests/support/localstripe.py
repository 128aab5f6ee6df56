"""localstripe (a stateful fake Stripe API, by others) served on a loopback port in a thread,
behind our fake of what it lacks (tests/fakes/stripe_ach.py: US bank accounts, ACH debits).

Its aiohttp app runs on its own event loop, bound to 127.0.0.1 only; the Stripe processor is
pointed at the fake in front of it through ``clientpay.stripe.api_base``, so that one base
URL serves both. What localstripe does not do (checked with localstripe 1.15.10): it ignores
Idempotency-Key (our claim must stop a second card charge), has no us_bank_account (the
fake in front plays it), brands every card visa, and declines only 4000000000000341 when
charged.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
import stripe
from aiohttp import web

from tests.fakes.httpserver import running
from tests.fakes.stripe_ach import TEST_ROUTING_NUMBER, AchStripe

ACCOUNT_SUCCEEDS = "000123456789"

# Any key will do: localstripe takes every sk_test_….
TEST_SECRET_KEY = "sk_test_clientpay_localstripe"
TEST_PUBLISHABLE_KEY = "pk_test_clientpay_localstripe"


@dataclass
class LocalStripe:
    url: str
    # The fake in front, for what only a test can do: let the days of an ACH debit pass.
    ach: AchStripe

    def client(self, secret_key: str = TEST_SECRET_KEY) -> stripe.StripeClient:
        """A client of our own, as a payer's Stripe.js or a test's check would use."""
        return stripe.StripeClient(
            secret_key,
            base_addresses={"api": self.url},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=10),
        )

    def forget_everything(self) -> None:
        """Empty its store: our tests roll their rows back, and ids (of links, payments) come
        again; so must the PaymentIntents that carry them."""
        requests.delete(f"{self.url}/_config/data", timeout=10).raise_for_status()

    def payment_method(self, number: str) -> str:
        """The PaymentMethod Stripe.js would make of test card ``number`` (its id)."""
        card: Any = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        method = self.client().v1.payment_methods.create(params={"type": "card", "card": card})
        return method.id

    def bank_account_method(
        self, account_number: str = ACCOUNT_SUCCEEDS, name: str = "Pat Payer"
    ) -> str:
        """The PaymentMethod Stripe.js would make of a test bank account (its id), with the
        publishable key, as the page does."""
        bank: Any = {
            "routing_number": TEST_ROUTING_NUMBER,
            "account_number": account_number,
            "account_holder_type": "individual",
            "account_type": "checking",
        }
        params: Any = {
            "type": "us_bank_account",
            "us_bank_account": bank,
            "billing_details": {"name": name},
        }
        method = self.client(TEST_PUBLISHABLE_KEY).v1.payment_methods.create(params=params)
        return method.id

    def clear_bank_debits(self) -> list[dict[str, Any]]:
        """Days pass: every ACH debit in processing clears or is returned; the events."""
        return self.ach.clear()

    def authenticate(self, client_secret: str, *, success: bool) -> None:
        """The payer passes (or fails) their card's 3-D Secure check, as localstripe's
        stand-in Stripe.js does it: with the publishable key and the PaymentIntent's secret."""
        intent_id = client_secret.split("_secret_")[0]
        requests.post(
            f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
            params={"success": "true" if success else "false"},
            json={"key": TEST_PUBLISHABLE_KEY, "client_secret": client_secret},
            timeout=10,
        ).raise_for_status()

    def payment_intents(self, **metadata: str) -> list[stripe.PaymentIntent]:
        """Every PaymentIntent whose metadata has these values, newest first."""
        found = []
        intents = self.client().v1.payment_intents.list(params={"limit": 100})
        for intent in intents.auto_paging_iter():
            kept = intent.metadata.to_dict() if intent.metadata else {}
            if all(kept.get(k) == v for k, v in metadata.items()):
                found.append(intent)
        return found


def _localstripe_app() -> web.Application:
    with warnings.catch_warnings():
        # localstripe 1.15 registers plain functions as handlers, which aiohttp deprecates.
        warnings.simplefilter("ignore", DeprecationWarning)
        from localstripe import server
    return server.app


@contextmanager
def running_localstripe() -> Iterator[LocalStripe]:
    app = _localstripe_app()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()
    address: dict[str, Any] = {}

    async def start() -> None:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        address["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="localstripe", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("localstripe did not start")

    async def stop() -> None:
        await runner.cleanup()
        # localstripe schedules a webhook delivery (after a second's sleep) for every event,
        # registered webhook or not: those still asleep are cancelled, not left to be
        # destroyed with the loop (which Python reports on stderr at exit).
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    try:
        with running(AchStripe(f"http://127.0.0.1:{address['port']}")) as front:
            yield LocalStripe(front.base_url, front)
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()
