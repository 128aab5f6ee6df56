"""Settings that change what the app sends: CSP frame-ancestors, session cookie flags, and a
production-like config that must not start without its secrets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import plaster
import pytest
import webtest
from cryptography.fernet import Fernet
from pyramid.router import Router

from clientpay_connect import main
from clientpay_connect.config import UnsafeSettings
from clientpay_connect.crypto import MissingSecrets, WeakSecret
from tests.conftest import TEST_PASSWORD
from tests.support.databases import sharing_connection

ROOT = Path(__file__).resolve().parents[2]
STRIPE = "clientpay_connect.pay.stripe_processor.StripeProcessor"
HTTPS = {"wsgi.url_scheme": "https", "HTTP_HOST": "localhost"}


@contextmanager
def built(settings: dict[str, Any]) -> Iterator[Router]:
    app = main({}, **settings)
    try:
        yield app
    finally:
        app.registry["dbengine"].dispose()


def csp_directives(response: webtest.TestResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    parts = [p.strip().split(" ", 1) for p in policy.split(";")]
    return {p[0]: p[1] if len(p) > 1 else "" for p in parts}


def session_cookie(response: webtest.TestResponse) -> list[str]:
    """The flags of the session cookie set by ``response``, lower-cased."""
    cookies = [
        c for c in response.headers.getall("Set-Cookie") if c.startswith("clientpay_session=")
    ]
    assert len(cookies) == 1, response.headers.getall("Set-Cookie")
    return [flag.strip().lower() for flag in cookies[0].split(";")[1:]]


def framed_settings(app_settings: dict[str, Any]) -> dict[str, Any]:
    # Framed by another site, the session cookie must be Secure (start-up refuses otherwise).
    return {**app_settings, "clientpay.cookie_secure": "true"}


def test_frame_ancestors_default_to_self(testapp):
    page = testapp.get("/login")
    assert csp_directives(page)["frame-ancestors"] == "'self'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_frame_ancestors_come_from_the_setting(app_settings):
    origins = "'self' https://matters.example.com https://*.practice.example"
    with built({**framed_settings(app_settings), "clientpay.frame_ancestors": origins}) as app:
        page = webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"}).get("/login")
    assert csp_directives(page)["frame-ancestors"] == origins
    assert csp_directives(page)["default-src"] == "'self'"


def test_frame_ancestors_from_the_environment_win_over_the_ini(app_settings, monkeypatch):
    monkeypatch.setenv("CLIENTPAY_FRAME_ANCESTORS", "https://from-env.example")
    settings = {**framed_settings(app_settings), "clientpay.frame_ancestors": "https://ini.example"}
    with built(settings) as app:
        page = webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"}).get("/login")
    assert csp_directives(page)["frame-ancestors"] == "https://from-env.example"


def test_the_session_cookie_is_httponly_and_samesite(testapp, staff):
    form = testapp.get("/login").form
    form["email"], form["password"] = staff.email, TEST_PASSWORD
    flags = session_cookie(form.submit(status=303))
    assert "httponly" in flags
    assert "samesite=lax" in flags
    # The tests' apps run over http with clientpay.cookie_secure = false.
    assert "secure" not in flags


def test_the_session_cookie_is_secure_when_configured(app_settings, db_connection, staff):
    """Production: Secure, and SameSite=None so that the panel works framed by another site."""
    settings = {
        **app_settings,
        "clientpay.cookie_secure": "true",
        "clientpay.cookie_samesite": "None",
    }
    with built(settings) as app, sharing_connection(app, db_connection):
        browser = webtest.TestApp(app, extra_environ=HTTPS)
        form = browser.get("/login").form
        form["email"], form["password"] = staff.email, TEST_PASSWORD
        signed_in = form.submit(headers={"Origin": "https://localhost"}, status=303)
        flags = session_cookie(signed_in)
        assert {"httponly", "secure", "samesite=none"} <= set(flags)
        assert signed_in.headers["Strict-Transport-Security"].startswith("max-age=")
        assert browser.get("/", status=200)


@pytest.fixture
def production_settings(tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """production.ini as pserve reads it, from a copy, with no CLIENTPAY_* in the environment."""
    for name in [n for n in os.environ if n.startswith("CLIENTPAY_")]:
        monkeypatch.delenv(name)
    ini = tmp_path / "production.ini"
    shutil.copy(ROOT / "production.ini", ini)
    return dict(plaster.get_settings(str(ini), "app:main"))


def test_production_refuses_to_start_without_its_secrets(production_settings, tmp_path):
    with pytest.raises(MissingSecrets) as refused:
        main({"here": str(tmp_path)}, **production_settings)
    assert "CLIENTPAY_SECRET and CLIENTPAY_ENCRYPTION_KEYS not set" in str(refused.value)
    # Nothing was invented in their place.
    assert not (tmp_path / "var" / "secrets.json").exists()


def test_production_refuses_to_start_with_only_the_secret(
    production_settings, tmp_path, monkeypatch
):
    monkeypatch.setenv("CLIENTPAY_SECRET", "a long random production secret, 48 bytes long.")
    with pytest.raises(MissingSecrets) as refused:
        main({"here": str(tmp_path)}, **production_settings)
    assert "CLIENTPAY_ENCRYPTION_KEYS not set" in str(refused.value)
    assert "CLIENTPAY_SECRET and" not in str(refused.value)


@pytest.fixture
def production_secrets(monkeypatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CLIENTPAY_SECRET", "a long random production secret, 48 bytes long.")
    monkeypatch.setenv("CLIENTPAY_ENCRYPTION_KEYS", key)
    return key


def test_production_with_no_processor_refuses_to_start_naming_the_setting(
    production_settings, production_secrets, tmp_path
):
    with pytest.raises(UnsafeSettings) as refused:
        main({"here": str(tmp_path)}, **production_settings)
    assert "clientpay.processor (CLIENTPAY_PROCESSOR) names no payment processor" in str(
        refused.value
    )


def test_production_refuses_the_sandbox(production_settings, production_secrets, tmp_path):
    settings = {
        **production_settings,
        "clientpay.processor": "clientpay_connect.pay.processor.SandboxProcessor",
    }
    with pytest.raises(UnsafeSettings) as refused:
        main({"here": str(tmp_path)}, **settings)
    assert "CLIENTPAY_PROCESSOR) is the sandbox" in str(refused.value)
    assert "clientpay.development (CLIENTPAY_DEVELOPMENT)" in str(refused.value)


def test_the_old_path_of_the_sandbox_is_refused_in_production_too(
    production_settings, production_secrets, tmp_path, monkeypatch
):
    monkeypatch.setenv("CLIENTPAY_PROCESSOR", "clientpay_connect.pay.services.SandboxProcessor")
    with pytest.raises(UnsafeSettings, match="is the sandbox"):
        main({"here": str(tmp_path)}, **production_settings)


def test_development_ini_is_for_development_and_pays_through_the_sandbox(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("CLIENTPAY_")]:
        monkeypatch.delenv(name)
    ini = tmp_path / "development.ini"
    shutil.copy(ROOT / "development.ini", ini)
    settings = dict(plaster.get_settings(str(ini), "app:main"))
    with built({**settings, "here": str(tmp_path)}) as app:
        assert app.registry["clientpay.processor"].name == "sandbox"
        webtest.TestApp(app).post_json("/sandbox/tokens", {}, status=422)


def test_production_starts_with_its_secrets_from_the_environment(
    production_settings, production_secrets, tmp_path, monkeypatch
):
    key = production_secrets
    monkeypatch.setenv("CLIENTPAY_PROCESSOR", STRIPE)
    app = main({"here": str(tmp_path)}, **production_settings)
    try:
        settings = app.registry.settings
        assert app.registry["clientpay.processor"].name == "stripe"
        # The sandbox's tokenization is not there to be called.
        webtest.TestApp(app).post_json("/sandbox/tokens", {}, status=404)
        assert settings["clientpay.secret"] == "a long random production secret, 48 bytes long."
        assert settings["clientpay.encryption_keys"] == key
        encryptor = app.registry["clientpay.encryptor"]
        assert Fernet(key.encode()).decrypt(encryptor.encrypt("x").encode()) == b"x"
    finally:
        app.registry["dbengine"].dispose()
    assert not (tmp_path / "var" / "secrets.json").exists()


def test_production_refuses_a_short_session_secret(production_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENTPAY_SECRET", "x")
    monkeypatch.setenv("CLIENTPAY_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    with pytest.raises(WeakSecret) as refused:
        main({"here": str(tmp_path)}, **production_settings)
    assert "clientpay.secret (CLIENTPAY_SECRET) is 1 byte long;" in str(refused.value)


def test_the_cli_says_why_production_will_not_start(tmp_path):
    ini = tmp_path / "production.ini"
    shutil.copy(ROOT / "production.ini", ini)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIENTPAY_")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "clientpay"), "--config", str(ini), "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Error: refusing to start: CLIENTPAY_SECRET" in result.stderr
    assert "Traceback" not in result.stderr
