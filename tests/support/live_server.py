"""The real application served by waitress on loopback, for tests that drive a browser.

It has its own database (not the one the WebTest fixtures roll back after every test): a
browser's requests arrive on waitress's threads, each with its own connection and its own
committed transaction, exactly as in production.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import transaction
from pyramid.router import Router
from sqlalchemy.orm import Session
from waitress import create_server, wasyncore

from clientpay_connect import main
from clientpay_connect.db import get_tm_session
from clientpay_connect.demo import DEMO_USERS, seed_demo
from tests.support import databases
from tests.support.smtp import SMTPServer


@dataclass(frozen=True)
class Login:
    email: str
    password: str


@dataclass
class LiveServer:
    """What a browser test needs: where the app is, the app itself, and who can sign in."""

    url: str
    app: Router
    logins: dict[str, Login]
    # The real SMTP server on loopback that the app's mail goes to.
    smtp: SMTPServer
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _stop: threading.Event = field(repr=False)

    @property
    def admin(self) -> Login:
        return self.logins["admin"]

    @property
    def staff(self) -> Login:
        return self.logins["staff"]

    @contextmanager
    def dbsession(self) -> Iterator[Session]:
        """A session on the server's database, committed at the end (as ``clientpay`` does)."""
        tm = transaction.TransactionManager(explicit=True)
        with tm:
            yield get_tm_session(self.app.registry["dbsession_factory"], tm)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            raise RuntimeError("the live server's loop did not stop")
        self._server.task_dispatcher.shutdown()
        self.app.registry["dbengine"].dispose()


def serve_until(server: Any, socket_map: dict[int, Any], stop: threading.Event) -> None:
    """Run a waitress server made with ``map=socket_map`` until ``stop`` is set."""
    # One short poll at a time, so that the loop notices ``stop``; everything that touches
    # the socket map (serving and closing) then happens on this one thread, never racing it.
    while not stop.is_set():
        wasyncore.loop(timeout=0.05, map=socket_map, use_poll=True, count=1)
    server.close()
    for channel in list(socket_map.values()):
        # Keep-alive connections the browser left open; closing them here keeps pytest
        # (filterwarnings = error) free of ResourceWarnings about unclosed sockets. An HTTP
        # channel's handle_close also closes the files it was still sending (a static file
        # served through wsgi.file_wrapper), which a bare close() would leave to the garbage
        # collector.
        getattr(channel, "handle_close", channel.close)()


@contextmanager
def serving(app: Router, threads: int) -> Iterator[str]:
    """Serve ``app`` with waitress on a free loopback port; yield its URL, stop afterwards."""
    socket_map: dict[int, Any] = {}
    server = create_server(app, map=socket_map, listen="127.0.0.1:0", threads=threads)
    stop = threading.Event()
    thread = threading.Thread(target=serve_until, args=(server, socket_map, stop), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        stop.set()
        thread.join(timeout=10)
        server.task_dispatcher.shutdown()


@contextmanager
def served_app(
    settings: dict[str, Any], folder: Path, threads: int
) -> Iterator[tuple[str, Router]]:
    """The app with ``settings``, on a fresh, migrated database of its own (committed, not
    shared with the test), served by waitress; its URL and the app."""
    with databases.fresh_database(folder) as database_url:
        databases.migrate(database_url)
        app = main({}, **{**settings, "sqlalchemy.url": database_url})
        try:
            with serving(app, threads=threads) as url:
                yield url, app
        finally:
            app.registry["dbengine"].dispose()


def start_live_server(base_settings: dict[str, Any], folder: Path) -> Iterator[LiveServer]:
    """Yield a running server on a fresh, migrated, demo-seeded database; stop it afterwards."""
    smtp = SMTPServer().start()
    try:
        with databases.fresh_database(folder) as database_url:
            databases.migrate(database_url)
            # Bound before the app is built, so that the app's public URL (the payer links it
            # hands out) is this server's own address rather than one the browser cannot reach.
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            port = listener.getsockname()[1]
            url = f"http://127.0.0.1:{port}"
            settings = {
                **base_settings,
                "sqlalchemy.url": database_url,
                "clientpay.public_url": url,
                # Every browser test signs in from 127.0.0.1: one test's deliberate failures
                # must not lock the next test out (the limits themselves have their own tests).
                "clientpay.limits.login_failures_per_ip": "1000/15minutes",
                # Likewise every payer of every test pays from 127.0.0.1.
                "clientpay.limits.pay_attempts": "1000/minute",
                "clientpay.limits.sandbox_tokens": "1000/minute",
                "clientpay.limits.token_lookups": "1000/minute",
                "clientpay.limits.key_prefix": base_settings["clientpay.limits.key_prefix"]
                + "-live",
                **smtp.settings(),
            }
            app = main({}, **settings)
            logins = _seed(app, folder)
            socket_map: dict[int, Any] = {}
            server = create_server(app, map=socket_map, sockets=[listener], threads=4)
            stop = threading.Event()
            thread = threading.Thread(
                target=serve_until, args=(server, socket_map, stop), name="live-server", daemon=True
            )
            thread.start()
            live = LiveServer(url, app, logins, smtp, server, thread, stop)
            try:
                yield live
            finally:
                live.close()

    finally:
        smtp.stop()


def _seed(app: Router, folder: Path) -> dict[str, Login]:
    tm = transaction.TransactionManager(explicit=True)
    with tm:
        session = get_tm_session(app.registry["dbsession_factory"], tm)
        # With the demo matter database and its connection, as `clientpay demo` makes them.
        result = seed_demo(
            session,
            matter_db=str(folder / "demo-matters.sqlite"),
            encryptor=app.registry["clientpay.encryptor"],
        )
    passwords = dict(result.logins)
    logins: dict[str, Login] = {}
    for email, role, _name in DEMO_USERS:
        password = passwords[email]
        if password is None:
            raise RuntimeError(f"the fresh database already had {email}")
        logins[role] = Login(email, password)
    return logins
