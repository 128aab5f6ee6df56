"""Benchmark: GET /pay/{token} against a hello-world Pyramid view, both served by waitress on
one core, loaded by wrk (50 concurrent keep-alive clients) pinned to the other core.

    make bench                                  # installs Debian's wrk first when missing
    .venv/bin/python benchmarks/pay_page.py [--duration 10] [--clients 50]

On SQLite, then (when CLIENTPAY_BENCH_DATABASE_URL names a PostgreSQL server) on PostgreSQL,
in one run. For each: hello-world, and our stack's ceilings: around a view that does
nothing; around one that reads only the link's status straight through the engine (the
"engine ceiling"); and around one that reads the link's facts through request.dbsession as
a view inside the transaction manager does. Then the page, the ratios and its p95.
Targets (issue 13): page >= 0.2x hello-world, >= 0.8x the engine ceiling, p95 < 100 ms.
Under each figure, the CPU a request cost the server's process and the PostgreSQL backends
serving the database (from /proc, over the measured run), and how many connections the
database accepted meanwhile (a pool that closes and reopens connections shows there).
`--only sqlite|postgresql` measures one database.

The machine's other work (other processes on the same two cores) moves every figure: compare
the ratios, which are measured in the same run, rather than the rates between runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy.pool import NullPool  # noqa: E402

from benchmarks._setup import (  # noqa: E402
    bench_database,
    bench_session,
    bench_settings,
    seed_firm,
)
from benchmarks._wrk import WrkResult, missing_tools, run_wrk  # noqa: E402
from clientpay_connect.config import resolve_settings  # noqa: E402

SERVER_CPU = 0
CLIENT_CPU = 1
# How many of the costliest calls --profile lists.
PROFILE_LINES = 70
# How often --profile's sampler looks at the stack (seconds of the process's CPU time; the
# kernel rounds it up to its tick), and how many samples it takes.
SAMPLE_SECONDS = 0.0001
SAMPLES = 3000


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
    import logging

    from waitress import serve as waitress_serve

    # "Task queue depth is 42": that is the load the benchmark means to put on it.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

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


@dataclass(frozen=True)
class Measured:
    """What wrk saw, and the CPU time spent meanwhile by the server and by the database."""

    wrk: WrkResult
    server_cpu_s: float
    database_cpu_s: float
    # Connections PostgreSQL accepted during the run (each a new backend process).
    connects: int

    @property
    def rps(self) -> float:
        return self.wrk.rps

    @property
    def p95_ms(self) -> float:
        return self.wrk.p95_ms

    def summary(self) -> str:
        return self.wrk.summary()

    def cpu_per_request(self) -> str:
        """Microseconds of CPU a request: the server's and the database's own processes'."""
        count = max(1, self.wrk.requests)
        server, database = self.server_cpu_s / count * 1e6, self.database_cpu_s / count * 1e6
        return (
            f"cpu a request: server {server:5.0f} us  PostgreSQL backends {database:5.0f} us"
            f"  ({self.connects} connections made)"
        )


def measure(
    kind: str, path: str, settings: dict[str, str], clients: int, duration: float
) -> Measured:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--port", str(port)],
        env={**os.environ, "BENCH_SETTINGS": json.dumps(settings)},
        cwd=ROOT,
    )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_until_up(url)
        run_wrk(url, clients, min(2.0, duration), cpu=CLIENT_CPU)  # warm-up
        url_of_database = settings["sqlalchemy.url"]
        before = cpu_seconds([server.pid]), backends_cpu(url_of_database)
        sessions = database_sessions(url_of_database)
        result = run_wrk(url, clients, duration, cpu=CLIENT_CPU)
        connects = database_sessions(url_of_database) - sessions
        after = cpu_seconds([server.pid]), backends_cpu(url_of_database)
        database = sum(cpu - before[1].get(pid, 0.0) for pid, cpu in after[1].items())
        return Measured(result, after[0] - before[0], database, connects)
    finally:
        server.terminate()
        server.wait(timeout=30)


def on_postgresql(url: str, query: str) -> list[Any]:
    """The rows of ``query`` on ``url``'s database (none on SQLite, which runs inside the
    server's own process)."""
    if not url.startswith("postgresql"):
        return []
    from sqlalchemy import create_engine, text

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)))
    finally:
        engine.dispose()


def backends_cpu(url: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``url``'s database but ours. A
    backend that ends during the run is missed: hence the count of connections made."""
    rows = on_postgresql(
        url,
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    return {int(pid): cpu_seconds([int(pid)]) for (pid,) in rows}


def database_sessions(url: str) -> int:
    """How many connections the database has been given so far (ours included)."""
    rows = on_postgresql(
        url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(rows[0][0]) - 1 if rows else 0


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of these processes (all their threads), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name may hold spaces: the fields counted from after its ")".
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def run_on(label: str, server_url: str | None, clients: int, duration: float) -> None:
    with (
        bench_database(server_url),
        tempfile.TemporaryDirectory() as tmp,
        # With the default limits: only unknown tokens count against them, so the page is
        # measured as the public gets it, the limiter's check included.
        bench_settings(Path(tmp)) as settings,
    ):
        token = seed_link(settings)
        hello = measure("hello", "/hello", settings, clients, duration)
        empty = measure("floor", "/bench/empty", settings, clients, duration)
        engine = measure("floor", f"/bench/engine/{token}", settings, clients, duration)
        floor = measure("floor", f"/bench/floor/{token}", settings, clients, duration)
        ours = measure("app", f"/pay/{token}", settings, clients, duration)
    print(
        f"== {label}: {clients} clients, {duration:g} s each (wrk on core {CLIENT_CPU}, "
        f"server on core {SERVER_CPU}); load average {load_average()}"
    )
    print(f"hello-world Pyramid view : {hello.summary()}")
    print(f"                           {hello.cpu_per_request()}")
    for name, result in (
        ("our stack, empty view   ", empty),
        ("engine ceiling          ", engine),
        ("facts via dbsession     ", floor),
        ("GET /pay/{token}        ", ours),
    ):
        print(f"{name} : {result.summary()}   x hello {ratio(result, hello):.2f}")
        print(f"                           {result.cpu_per_request()}")
    print(f"ratio page / hello-world     : {ratio(ours, hello):.2f}   target >= 0.20")
    print(f"ratio page / engine ceiling  : {ratio(ours, engine):.2f}   target >= 0.80")
    print(f"p95 GET /pay/{{token}}         : {ours.p95_ms:.1f} ms   target < 100 ms")
    sys.stdout.flush()


def wsgi_get(app: Any, path: str) -> None:
    """GET ``path`` straight from the WSGI application, with the environ a server gives (no
    server, no network, no test client: only the application's own work is measured)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8080",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    if statuses[0][:3] != "200":
        raise RuntimeError(f"{path} answered {statuses[0]}")


def cpu_per_request(app: Any, path: str, count: int) -> float:
    """Microseconds of this thread's CPU a request: the best of five runs of ``count``."""
    best = float("inf")
    for _ in range(5):
        started = time.thread_time()
        for _ in range(count):
            wsgi_get(app, path)
        best = min(best, (time.thread_time() - started) / count * 1e6)
    return best


class Sampler:
    """Where the CPU goes, sampled: every SAMPLE_SECONDS of the process's CPU time the stack
    being run is noted. Unlike cProfile, which adds its own cost to every call (and so
    inflates the steps made of many small calls several times over), this leaves the
    figures as they are: each function's share of the samples in which it is on the stack."""

    def __init__(self) -> None:
        self.samples = 0
        self.inclusive: Counter[str] = Counter()

    def _sample(self, _signum: int, frame: Any) -> None:
        self.samples += 1
        seen = set()
        while frame is not None:
            code = frame.f_code
            name = f"{Path(code.co_filename).name}:{code.co_firstlineno}({code.co_name})"
            if name not in seen:
                seen.add(name)
                self.inclusive[name] += 1
            frame = frame.f_back

    @contextmanager
    def sampling(self) -> Iterator[None]:
        previous = signal.signal(signal.SIGPROF, self._sample)
        signal.setitimer(signal.ITIMER_PROF, SAMPLE_SECONDS, SAMPLE_SECONDS)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, previous)

    def table(self, per_request_us: float, lines: int) -> str:
        rows = [
            f"  {count / self.samples * per_request_us:7.1f} us  {name}"
            for name, count in self.inclusive.most_common(lines)
            if name.split(":", 1)[0] != Path(__file__).name
        ]
        return "\n".join(rows)


def profile_requests(count: int) -> None:
    """Where one request's CPU goes, in process (no server, no network): the CPU a request of
    hello-world, of our stack's empty view and of the page; then, for the empty view and the
    page, each function's CPU a request, sampled (``Sampler``), and cProfile's table (whose
    own cost inflates it, most for the steps made of many small calls)."""
    import cProfile
    import pstats

    from clientpay_connect import main as app_main

    with tempfile.TemporaryDirectory() as tmp, bench_settings(Path(tmp)) as settings:
        token = seed_link(settings)
        database = settings["sqlalchemy.url"].split(":", 1)[0]
        hello = hello_app()
        print(f"== in process, on {database}; load average {load_average()}")
        print(
            f"hello-world       : {cpu_per_request(hello, '/hello', count):6.0f} us CPU a request"
        )
        for kind, path in (("floor", "/bench/empty"), ("app", f"/pay/{token}")):
            app: Any = floor_app(settings) if kind == "floor" else app_main({}, **settings)
            for _ in range(200):
                wsgi_get(app, path)  # warm: compiled statements, templates, the page cache
            each = cpu_per_request(app, path, count)
            label = "our stack, empty  " if kind == "floor" else "GET /pay/{token}  "
            print(f"{label}: {each:6.0f} us CPU a request")
            sampler = Sampler()
            with sampler.sampling():
                # The kernel's timer ticks every few milliseconds: enough requests for
                # SAMPLES samples.
                while sampler.samples < SAMPLES:
                    for _ in range(count):
                        wsgi_get(app, path)
            print(f"-- {path}: CPU a request by function (inclusive), {sampler.samples} samples")
            print(sampler.table(each, PROFILE_LINES))
            profiler = cProfile.Profile(time.thread_time)
            profiler.enable()
            for _ in range(count):
                wsgi_get(app, path)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative")
            stats.print_stats(PROFILE_LINES)
            print(f"-- {path}: cProfile over {count} requests (CPU time; inflated by the profiler)")
            print(out.getvalue())
            app.registry["dbengine"].dispose()


def load_average() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def ratio(ours: Measured, baseline: Measured) -> float:
    return ours.rps / baseline.rps if baseline.rps else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--only", choices=["sqlite", "postgresql"], help="measure on this database only"
    )
    parser.add_argument("--serve", choices=["hello", "floor", "app"])
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="instead: the CPU a request of the empty view and of the page, in process, and"
        " where it goes (sampled, and cProfile's table), over N requests",
    )
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, os.environ.get("BENCH_SETTINGS", "{}"))
        return
    if args.profile:
        profile_requests(args.profile)
        return
    missing = missing_tools()
    if missing:
        sys.exit(f"{' and '.join(missing)} missing: run `make wrk` (Debian's wrk) first")
    if args.only != "postgresql":
        run_on("SQLite", None, args.clients, args.duration)
    server_url = os.environ.get("CLIENTPAY_BENCH_DATABASE_URL")
    if args.only == "sqlite":
        return
    if server_url:
        run_on("PostgreSQL", server_url, args.clients, args.duration)
    else:
        print("(PostgreSQL skipped: set CLIENTPAY_BENCH_DATABASE_URL to a server URL)")


if __name__ == "__main__":
    main()
