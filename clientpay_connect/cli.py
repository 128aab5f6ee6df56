"""The ``clientpay`` command: migrate, seed the demo, create firms, users and tokens, serve."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util.exc import CommandError as AlembicCommandError
from pyramid.paster import get_app, setup_logging
from pyramid.router import Router
from sqlalchemy import select
from sqlalchemy.orm import Session

from clientpay_connect.accounts.models import ROLES, Firm
from clientpay_connect.accounts.services import (
    create_api_token,
    create_firm,
    create_user,
    find_user_by_email,
    generate_password,
    record,
    slugify,
)
from clientpay_connect.body_limits import UPLOAD_LIMIT
from clientpay_connect.config import UnsafeSettings
from clientpay_connect.crypto import MissingSecrets
from clientpay_connect.demo import seed_demo
from clientpay_connect.jobs import JobQueue
from clientpay_connect.sweeps import SweepTimer
from clientpay_connect.work import Work

MIGRATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "migrations")


@dataclass
class Context:
    config_path: str
    _app: Router | None = None

    @property
    def app(self) -> Router:
        if self._app is None:
            setup_logging(self.config_path)
            try:
                self._app = get_app(self.config_path, "main")
            except (MissingSecrets, UnsafeSettings) as exc:
                raise click.ClickException(str(exc)) from exc
        return self._app

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.app.registry.settings
        return settings

    @contextmanager
    def dbsession(self) -> Iterator[Session]:
        with Work.fresh(self.app.registry) as work:
            yield work.dbsession


def alembic_config(settings: dict[str, Any], config_path: str) -> AlembicConfig:
    """Alembic pointed at our migrations folder, whatever folder the ini was copied to."""
    cfg = AlembicConfig(config_path)
    cfg.set_main_option("script_location", MIGRATIONS)
    cfg.attributes["settings"] = settings
    return cfg


@contextmanager
def alembic_errors() -> Iterator[None]:
    """Alembic's refusals ("not up to date", "new upgrade operations detected") are answers
    for the operator, not crashes: print them without a traceback and exit 1."""
    try:
        yield
    except AlembicCommandError as exc:
        raise click.ClickException(str(exc)) from exc


pass_context = click.make_pass_decorator(Context)


@click.group()
@click.option(
    "--config",
    "config_path",
    default="development.ini",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The ini file (settings can also come from CLIENTPAY_* variables).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: str) -> None:
    """clientpay-connect: single-use payment links for law firms."""
    if not os.path.exists(config_path):
        raise click.ClickException(f"no such config file: {config_path}")
    ctx.obj = Context(os.path.abspath(config_path))


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@pass_context
def db_upgrade(ctx: Context, revision: str) -> None:
    """Migrate the database to REVISION (the newest by default)."""
    with alembic_errors():
        command.upgrade(alembic_config(ctx.settings, ctx.config_path), revision)
    click.echo(f"database at {revision}")


@db.command("check")
@pass_context
def db_check(ctx: Context) -> None:
    """Fail if the models and the migrations disagree."""
    with alembic_errors():
        command.check(alembic_config(ctx.settings, ctx.config_path))
    click.echo("the database, the migrations and the models agree")


@cli.command()
@click.option("--reset-passwords", is_flag=True, help="Give existing demo users new passwords.")
@pass_context
def demo(ctx: Context, reset_passwords: bool) -> None:
    """Create (once) the demo firm, its two users, its merchant accounts, and the demo
    matter database with the firm's connection to it."""
    with ctx.dbsession() as session:
        result = seed_demo(
            session,
            reset_passwords,
            matter_db=str(ctx.settings.get("clientpay.demo.matter_db") or ""),
            encryptor=ctx.app.registry["clientpay.encryptor"],
        )
    click.echo(f"Demo firm: {result.firm_name}")
    if result.matters:
        click.echo(f"Demo matter system: {result.matters}")
    for email, password in result.logins:
        if password is None:
            click.echo(f"  {email}: exists, password unchanged (--reset-passwords for a new one)")
        else:
            click.echo(f"  {email}  password: {password}")


@cli.command("create-firm")
@click.option("--name", required=True)
@click.option("--admin-email", required=True)
@click.option("--slug", default=None, help="Defaults to one made from the name.")
@pass_context
def create_firm_command(ctx: Context, name: str, admin_email: str, slug: str | None) -> None:
    """Create a firm and its first admin (the password is printed once)."""
    password = generate_password()
    slug = slug or slugify(name)
    with ctx.dbsession() as session:
        if session.execute(select(Firm).where(Firm.slug == slug)).first():
            raise click.ClickException(f"a firm with slug {slug!r} already exists")
        firm = create_firm(session, name, slug)
        try:
            user = create_user(session, firm, admin_email, "admin", password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        record(session, firm.id, "firm.created", target=firm, details={"by": "cli"})
        record(
            session, firm.id, "user.created", target=user, details={"by": "cli", "role": "admin"}
        )
        slug_out = firm.slug
    click.echo(f"firm {slug_out}; admin {admin_email} password: {password}")


@cli.command("create-user")
@click.option("--firm", "firm_slug", required=True, help="The firm's slug.")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), default="staff", show_default=True)
@pass_context
def create_user_command(ctx: Context, firm_slug: str, email: str, role: str) -> None:
    """Add a user to a firm (the password is printed once)."""
    password = generate_password()
    with ctx.dbsession() as session:
        firm = session.execute(select(Firm).where(Firm.slug == firm_slug)).scalar_one_or_none()
        if firm is None:
            raise click.ClickException(f"no firm with slug {firm_slug!r}")
        if find_user_by_email(session, email) is not None:
            raise click.ClickException(f"{email} already has an account")
        try:
            user = create_user(session, firm, email, role, password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        record(session, firm.id, "user.created", target=user, details={"by": "cli", "role": role})
    click.echo(f"{email} ({role}) password: {password}")


@cli.command("create-token")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", show_default=True)
@pass_context
def create_token_command(ctx: Context, email: str, name: str) -> None:
    """Create an API token; it is printed once, as the last line."""
    with ctx.dbsession() as session:
        user = find_user_by_email(session, email)
        if user is None or not user.active:
            raise click.ClickException(f"no active user {email}")
        row, token = create_api_token(session, user, name)
        record(
            session,
            user.firm_id,
            "api_token.created",
            actor=user,
            target=row,
            details={"by": "cli"},
        )
    click.echo("Store this token now; it cannot be shown again:", err=True)
    click.echo(token)


def waitress_options(settings: dict[str, Any]) -> dict[str, Any]:
    """How ``clientpay serve`` runs waitress, from the app's settings."""
    options: dict[str, Any] = {
        "threads": 8,
        "ident": "clientpay",
        # Waitress buffers a whole body before the app runs and refuses one of this size or
        # more by its Content-Length, unread: one byte above the largest body a route takes.
        "max_request_body_size": int(settings[UPLOAD_LIMIT]) + 1,
    }
    proxy = str(settings.get("clientpay.serve.trusted_proxy") or "").strip()
    if proxy:
        # As pserve does with production.ini's [server:main]: the proxy's X-Forwarded-For
        # names the client (REMOTE_ADDR, and so the rate limits' keys); from anyone else
        # those headers are dropped (waitress's default).
        options["trusted_proxy"] = proxy
        options["trusted_proxy_count"] = int(settings["clientpay.serve.trusted_proxy_count"])
        options["trusted_proxy_headers"] = settings["clientpay.serve.trusted_proxy_headers"]
    return options


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(0)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=6543, show_default=True, type=int)
@click.option("--workers", default=None, type=int, help="Job worker threads in this process.")
@pass_context
def serve(ctx: Context, host: str, port: int, workers: int | None) -> None:
    """Serve the web app with a job worker in the same process (the embedded default)."""
    from waitress import serve as waitress_serve

    app = ctx.app
    queue: JobQueue = app.registry["clientpay.jobs"]
    consumer = queue.consumer(workers or int(ctx.settings["clientpay.jobs.workers"]))
    sweeps = SweepTimer.for_app(app.registry)
    consumer.start()
    sweeps.start()
    # Huey's consumer installs signal handlers for a main loop of its own, which we do not run;
    # left in place they swallow Ctrl-C and SIGTERM and the server never stops. Both must end
    # waitress's loop (it stops on KeyboardInterrupt and SystemExit), then the worker below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    click.echo(f"Serving on http://{host}:{port} (job worker running in-process)")
    try:
        waitress_serve(app, host=host, port=port, **waitress_options(ctx.settings))
    finally:
        sweeps.stop()
        consumer.stop(graceful=True)


@cli.command()
@click.option("--workers", default=None, type=int)
@pass_context
def worker(ctx: Context, workers: int | None) -> None:
    """Run a job worker only (for more throughput, or on other machines with Redis): its
    consumer threads, and the sweeps on their timers."""
    queue: JobQueue = ctx.app.registry["clientpay.jobs"]
    consumer = queue.consumer(workers or int(ctx.settings["clientpay.jobs.workers"]))
    sweeps = SweepTimer.for_app(ctx.app.registry)
    stop = threading.Event()
    consumer.start()
    sweeps.start()
    # After start(): it installs handlers of its own that would otherwise replace these.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    click.echo("worker running; Ctrl-C to stop", err=True)
    stop.wait()
    sweeps.stop()
    consumer.stop(graceful=True)
    sys.exit(0)
