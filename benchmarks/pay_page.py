"""Benchmark: GET /pay/{token} against a hello-world Pyramid view, both served by waitress on
one core, loaded by 50 concurrent keep-alive clients from another core.

    .venv/bin/python benchmarks/pay_page.py [--duration 10] [--clients 50]

Prints both rates, the ratio and our p95 latency. Targets: ratio >= 0.3, p95 < 200 ms.
Three more lines show where the time goes: our stack around a view that does nothing, around
one that reads only the link's status straight through the engine (no session, no
transaction manager), and around one that reads the link (the page's one query) through
request.dbsession as DESIGN has every view do.
Set CLIENTPAY_BENCH_DATABASE_URL to a PostgreSQL server URL to run on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._load import LoadResult, run_load  # noqa: E402
from benchmarks._setup import bench_session, bench_settings, seed_firm  # noqa: E402
from clientpay_connect.config import resolve_settings  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1


def hello_app() -> object:
    from pyramid.config import Configurator
    from pyramid.response import Response

    def hello(request: object) -> Response:
        return Response("Hello world")

    with Configurator() as config:
        config.add_route("hello", "/hello")
        config.add_view(hello, route_name="hello")
    return config.make_wsgi_app()


def floor_app(settings: dict[str, str]) -> object:
    """Our whole stack (tweens, security, transaction) around views that answer "ok": one
    doing nothing; one reading the link's facts through request.dbsession as the page does
    (what no page that reads the link on every request can beat); and, for scale, one
    reading only the link's status straight through the engine, with no session and no
    transaction manager (what DESIGN's one-transaction-per-request rules out)."""
    from pyramid.config import Configurator
    from pyramid.response import Response
    from sqlalchemy import bindparam, select

    from clientpay_connect import includeme
    from clientpay_connect.crypto import sha256_hex
    from clientpay_connect.links.models import PaymentLink
    from clientpay_connect.pay.facts import link_facts
    from clientpay_connect.security import PUBLIC

    status_only = select(PaymentLink.status).where(
        PaymentLink.token_hash == bindparam("token_hash")
    )

    def nothing(request: object) -> Response:
        return Response("ok")

    def engine_only(request: Any) -> Response:
        token_hash = sha256_hex(request.matchdict["token"])
        with request.registry["dbengine"].connect() as connection:
            status = connection.execute(status_only, {"token_hash": token_hash}).scalar()
        return Response("ok" if status else "unknown")

    def facts_only(request: object) -> Response:
        found = link_facts(request.dbsession, request.matchdict["token"])  # type: ignore[attr-defined]
        return Response("ok" if found else "unknown")

    with Configurator(settings=resolve_settings(settings)) as config:
        config.include(includeme)
        config.add_route("bench.floor", "/bench/floor/{token}")
        config.add_view(facts_only, route_name="bench.floor", permission=PUBLIC)
        config.add_route("bench.empty", "/bench/empty")
        config.add_view(nothing, route_name="bench.empty", permission=PUBLIC)
        config.add_route("bench.engine", "/bench/engine/{token}")
        config.add_view(engine_only, route_name="bench.engine", permission=PUBLIC)
    return config.make_wsgi_app()


def serve(kind: str, port: int, settings_json: str) -> None:
    """Run in the server subprocess: one core, waitress."""
    from waitress import serve as waitress_serve

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {SERVER_CPU})
    if kind == "hello":
        app = hello_app()
    elif kind == "floor":
        app = floor_app(json.loads(settings_json))
    else:
        from clientpay_connect import main

        app = main({}, **json.loads(settings_json))
    waitress_serve(app, host="127.0.0.1", port=port, threads=8, _quiet=True, backlog=1024)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def seed_link(settings: dict[str, str]) -> str:
    from clientpay_connect.crypto import Encryptor, encryption_keys
    from clientpay_connect.links.services import NewLink, create_link

    with bench_session(settings) as session:
        seeded = seed_firm(session)
        new = NewLink(
            seeded["account"], 123450, invoice_number="INV-1001", recipient_name="Pat Payer"
        )
        encryptor = Encryptor(encryption_keys(resolve_settings(settings)))
        _link, token = create_link(session, encryptor, seeded["user"], new)
    return token


def measure(
    kind: str, path: str, settings: dict[str, str], clients: int, duration: float
) -> LoadResult:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        env={**os.environ, "BENCH_SETTINGS": json.dumps(settings)},
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_until_up(url)
        run_load(url, clients, min(2.0, duration), cpu=CLIENT_CPU)  # warm-up
        return run_load(url, clients, duration, cpu=CLIENT_CPU)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--serve", choices=["hello", "floor", "app"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, os.environ.get("BENCH_SETTINGS", "{}"))
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        # With the default limits: only unknown tokens count against them, so the page is
        # measured as the public gets it, the limiter's check included.
        bench_settings(Path(tmp)) as settings,
    ):
        token = seed_link(settings)
        hello = measure("hello", "/hello", settings, args.clients, args.duration)
        empty = measure("floor", "/bench/empty", settings, args.clients, args.duration)
        engine = measure("floor", f"/bench/engine/{token}", settings, args.clients, args.duration)
        floor = measure("floor", f"/bench/floor/{token}", settings, args.clients, args.duration)
        ours = measure("app", f"/pay/{token}", settings, args.clients, args.duration)
    ratio = ours.rps / hello.rps if hello.rps else 0.0
    print(f"hello-world Pyramid view : {hello.summary()}")
    print(f"our stack, empty view    : {empty.summary()}   ratio {empty.rps / hello.rps:.2f}")
    print(f"our stack, engine only   : {engine.summary()}   ratio {engine.rps / hello.rps:.2f}")
    print(f"our stack, one query     : {floor.summary()}   ratio {floor.rps / hello.rps:.2f}")
    print(f"GET /pay/{{token}}         : {ours.summary()}")
    print(f"ratio (ours / hello)     : {ratio:.2f}   target >= 0.30")
    print(f"p95 GET /pay/{{token}}     : {ours.percentile(95):.1f} ms   target < 200 ms")


if __name__ == "__main__":
    main()
