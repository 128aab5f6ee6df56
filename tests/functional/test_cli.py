"""The ``clientpay`` command, run as a real subprocess against a copy of development.ini.

The copy lives in a temporary folder: its database (on SQLite), secrets and job queue must all
land beside it, and what the commands make must work in the app built from that copy.
With CLIENTPAY_TEST_DATABASE_URL set, the same runs once more on a fresh PostgreSQL database
given through CLIENTPAY_DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import webtest
from pyramid.paster import get_app
from pyramid.router import Router
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from clientpay_connect.accounts.models import Firm, User
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.config import PATH_SETTINGS
from tests.support import databases

ROOT = Path(__file__).resolve().parents[2]
CLIENTPAY = str(Path(sys.executable).parent / "clientpay")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any CLIENTPAY_* override, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTPAY_")}
    return {**env, **extra}


@dataclass
class Instance:
    folder: Path
    env: dict[str, str]
    database_url: str

    @property
    def ini(self) -> Path:
        return self.folder / "development.ini"

    def run(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [CLIENTPAY, "--config", str(self.ini), *args],
            env=self.env,
            # Somewhere else than the project, so that nothing relies on the working directory.
            cwd=self.folder.parent,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == expect, (result.stdout, result.stderr)
        if expect == 0:
            assert "Traceback" not in result.stderr, result.stderr
        return result

    def engine(self) -> Engine:
        return create_engine(self.database_url)


def new_instance(folder: Path, database_url: str | None = None) -> Instance:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "development.ini", folder / "development.ini")
    if database_url is None:
        return Instance(folder, clean_env(), f"sqlite:///{folder / 'var' / 'clientpay.sqlite'}")
    return Instance(folder, clean_env(CLIENTPAY_DATABASE_URL=database_url), database_url)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def instance(request, tmp_path_factory) -> Iterator[Instance]:
    folder = tmp_path_factory.mktemp("copy") / "instance"
    if request.param == "sqlite":
        made = new_instance(folder)
        made.run("db", "upgrade")
        yield made
        return
    if not databases.using_postgresql():
        pytest.skip("CLIENTPAY_TEST_DATABASE_URL is not set")
    with databases.fresh_database(folder.parent) as url:
        made = new_instance(folder, url)
        made.run("db", "upgrade")
        yield made


@pytest.fixture
def instance_app(instance: Instance, monkeypatch) -> Iterator[Router]:
    """The app ``pserve`` would build from the copied ini, in the instance's environment."""
    for name in [n for n in os.environ if n.startswith("CLIENTPAY_")]:
        monkeypatch.delenv(name)
    for name, value in instance.env.items():
        if name.startswith("CLIENTPAY_"):
            monkeypatch.setenv(name, value)
    app = get_app(str(instance.ini), "main")
    yield app
    app.registry["dbengine"].dispose()


def client(app: Router) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})


def sign_in(app: Router, email: str, password: str, status: int = 303) -> webtest.TestApp:
    browser = client(app)
    form = browser.get("/login").form
    form["email"], form["password"] = email, password
    form.submit(status=status)
    return browser


def password_in(output: str, email: str) -> str:
    match = re.search(re.escape(email) + r"\b.*password: (\S+)", output)
    assert match, output
    return match.group(1)


def test_every_data_path_follows_the_copied_ini(instance: Instance, instance_app: Router):
    settings = instance_app.registry.settings
    for key in PATH_SETTINGS:
        assert settings[key].startswith(str(instance.folder)), key
    secrets = instance.folder / "var" / "secrets.json"
    assert secrets.exists()
    # Readable by the owner only: it holds the session secret and the encryption key.
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert (instance.folder / "var" / "jobs.sqlite").exists()
    if instance.database_url.startswith("sqlite"):
        assert settings["sqlalchemy.url"] == instance.database_url
        assert (instance.folder / "var" / "clientpay.sqlite").exists()
    else:
        assert settings["sqlalchemy.url"] == instance.database_url
        assert not (instance.folder / "var" / "clientpay.sqlite").exists()


def test_a_second_copy_is_a_separate_instance(tmp_path):
    first, second = new_instance(tmp_path / "first"), new_instance(tmp_path / "second")
    for made in (first, second):
        made.run("db", "upgrade")
    first.run("create-firm", "--name", "Only In First", "--admin-email", "a@first.test")

    def firm_slugs(made: Instance) -> set[str]:
        engine = made.engine()
        with engine.connect() as connection:
            slugs = set(connection.execute(select(Firm.slug)).scalars())
        engine.dispose()
        return slugs

    assert firm_slugs(first) == {"only-in-first"}
    assert firm_slugs(second) == set()
    secrets = [json.loads((m.folder / "var" / "secrets.json").read_text()) for m in (first, second)]
    assert secrets[0]["secret"] != secrets[1]["secret"]
    assert secrets[0]["encryption_key"] != secrets[1]["encryption_key"]


def test_demo_twice_makes_the_demo_firm_once(instance: Instance, instance_app: Router):
    first = instance.run("demo").stdout
    second = instance.run("demo").stdout
    assert "Demo firm: Demo Law LLP" in first
    admin_password = password_in(first, "admin@demo.test")
    staff_password = password_in(first, "staff@demo.test")
    assert second.count("exists, password unchanged") == 2

    engine = instance.engine()
    with engine.connect() as connection:
        firms = connection.execute(select(Firm).where(Firm.name == "Demo Law LLP")).all()
        assert len(firms) == 1
        firm_id = firms[0].id
        users = connection.execute(
            select(User.email, User.role).where(User.firm_id == firm_id)
        ).all()
        accounts = connection.execute(
            select(MerchantAccount.name, MerchantAccount.kind).where(
                MerchantAccount.firm_id == firm_id
            )
        ).all()
        assert connection.execute(select(func.count()).select_from(Firm)).scalar_one() >= 1
    engine.dispose()
    assert sorted(users) == [("admin@demo.test", "admin"), ("staff@demo.test", "staff")]
    assert sorted(accounts) == [("Operating", "operating"), ("Trust (IOLTA)", "trust")]

    # The printed logins work in the app that this ini serves.
    admin = sign_in(instance_app, "admin@demo.test", admin_password)
    names = [a["name"] for a in admin.get("/api/v1/merchant-accounts").json["items"]]
    assert names == ["Operating", "Trust (IOLTA)"]
    sign_in(instance_app, "staff@demo.test", staff_password)

    # ``make run`` asks for new passwords each time: the old ones stop working.
    reset = instance.run("demo", "--reset-passwords").stdout
    new_admin_password = password_in(reset, "admin@demo.test")
    assert new_admin_password != admin_password
    sign_in(instance_app, "admin@demo.test", admin_password, status=400)
    sign_in(instance_app, "admin@demo.test", new_admin_password)


def test_create_firm_user_and_token(instance: Instance, instance_app: Router):
    tag = uuid.uuid4().hex[:6]
    admin_email, staff_email = f"boss-{tag}@hale.test", f"clerk-{tag}@hale.test"
    created = instance.run(
        "create-firm", "--name", f"Hale & Partners {tag}", "--admin-email", admin_email
    ).stdout
    slug = f"hale-partners-{tag}"
    assert f"firm {slug};" in created
    admin_password = password_in(created, admin_email)

    added = instance.run("create-user", "--firm", slug, "--email", staff_email).stdout
    staff_password = password_in(added, staff_email)
    assert "(staff)" in added

    result = instance.run("create-token", "--email", admin_email)
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("cpc_")
    assert "cannot be shown again" in result.stderr

    api = client(instance_app)
    body = api.get("/api/v1/merchant-accounts", headers={"Authorization": f"Bearer {token}"}).json
    assert body == {"items": []}
    api.get("/api/v1/merchant-accounts", headers={"Authorization": "Bearer cpc_nope"}, status=401)
    sign_in(instance_app, admin_email, admin_password)
    staff = sign_in(instance_app, staff_email, staff_password)
    # The staff member belongs to the new firm, so sees its (empty) list, not the demo's.
    assert staff.get("/api/v1/merchant-accounts").json == {"items": []}

    engine = instance.engine()
    with engine.connect() as connection:
        roles = dict(
            connection.execute(
                select(User.email, User.role).where(User.email.in_([admin_email, staff_email]))
            ).all()
        )
    engine.dispose()
    assert roles == {admin_email: "admin", staff_email: "staff"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create-user", "--firm", "no-such-firm", "--email", "x@y.test"), "no firm with slug"),
        (("create-token", "--email", "nobody@nowhere.test"), "no active user"),
        (("create-firm", "--name", "Bad Email", "--admin-email", "not-an-email"), "not a valid"),
    ],
)
def test_refusals_are_messages_not_crashes(instance: Instance, args, message):
    result = instance.run(*args, expect=1)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_firm_slug_and_an_email_are_taken_once(instance: Instance):
    tag = uuid.uuid4().hex[:6]
    instance.run("create-firm", "--name", f"Once {tag}", "--admin-email", f"once-{tag}@x.test")
    again = instance.run(
        "create-firm", "--name", f"Once {tag}", "--admin-email", f"other-{tag}@x.test", expect=1
    )
    assert "already exists" in again.stderr
    taken = instance.run(
        "create-user", "--firm", f"once-{tag}", "--email", f"once-{tag}@x.test", expect=1
    )
    assert "already has an account" in taken.stderr


def test_a_missing_config_file_is_named(tmp_path):
    result = subprocess.run(
        [CLIENTPAY, "--config", str(tmp_path / "nope.ini"), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(),
    )
    assert result.returncode != 0
    assert "nope.ini" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_health(url: str, process: subprocess.Popen[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.communicate()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return dict(json.load(response))
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_and_stops_on_a_signal(instance: Instance, stop_signal):
    """``make run`` ends with ``clientpay serve``: Ctrl-C (and a service manager's SIGTERM)
    must stop it, job worker included."""
    port = free_port()
    process = subprocess.Popen(
        [CLIENTPAY, "--config", str(instance.ini), "serve", "--port", str(port)],
        env=instance.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_health(f"http://127.0.0.1:{port}/healthz", process) == {"status": "ok"}
        process.send_signal(stop_signal)
        _stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert "All workers have stopped" in stderr


def test_worker_stops_on_sigterm(instance: Instance):
    process = subprocess.Popen(
        [CLIENTPAY, "--config", str(instance.ini), "worker"],
        env=instance.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        started = ""
        while "worker running" not in started and time.monotonic() < deadline:
            started += process.stderr.readline()
            assert process.poll() is None, started
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, started + stderr
    assert "Traceback" not in stderr


def ask_with_headers_only(port: int, request: bytes) -> bytes:
    """Send a request's head but none of its body; return what the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_serve_refuses_a_body_over_the_upload_limit_without_reading_it(instance: Instance):
    port = free_port()
    process = subprocess.Popen(
        [CLIENTPAY, "--config", str(instance.ini), "serve", "--port", str(port)],
        env=instance.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
        # 200 MB announced, not one byte sent: only a refusal by the length answers at all.
        answer = ask_with_headers_only(
            port,
            b"POST /api/v1/bulk-uploads HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            b"Content-Length: 209715200\r\n\r\n",
        )
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_serve_behind_a_proxy_limits_each_client_by_its_forwarded_address(instance: Instance):
    port = free_port()
    env = {
        **instance.env,
        "CLIENTPAY_SERVE_TRUSTED_PROXY": "127.0.0.1",
        "CLIENTPAY_SERVE_TRUSTED_PROXY_HEADERS": "x-forwarded-for",
        "CLIENTPAY_LIMITS_TOKEN_LOOKUPS": "2/minute",
    }
    process = subprocess.Popen(
        [CLIENTPAY, "--config", str(instance.ini), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def look_up(client: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/pay/no-such-token",
            # What the proxy on this machine adds: the client's address after any the
            # client sent itself (which is not to be believed).
            headers={"X-Forwarded-For": f"198.51.100.7, {client}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    try:
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process)
        first_client = [look_up("203.0.113.1") for _ in range(3)]
        second_client = look_up("203.0.113.2")
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert first_client == [404, 404, 429]
    # Its own bucket: not the one every client behind the proxy used to share.
    assert second_client == 404
