"""Settings: defaults, then the ini, then CLIENTPAY_* environment variables; paths anchored."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from clientpay_connect.config import DEFAULTS, PATH_SETTINGS, as_bool, env_name, resolve_settings

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("sqlalchemy.url", "CLIENTPAY_DATABASE_URL"),
        ("clientpay.public_url", "CLIENTPAY_PUBLIC_URL"),
        ("clientpay.sandbox.delay_ms", "CLIENTPAY_SANDBOX_DELAY_MS"),
        ("clientpay.limits.login_failures_per_ip", "CLIENTPAY_LIMITS_LOGIN_FAILURES_PER_IP"),
        ("mail.host", "CLIENTPAY_MAIL_HOST"),
    ],
)
def test_the_environment_name_of_a_setting(key, variable):
    assert env_name(key) == variable


@pytest.mark.parametrize(
    ("variable", "key", "value"),
    [
        ("CLIENTPAY_DATABASE_URL", "sqlalchemy.url", "postgresql+psycopg://u@db/clientpay"),
        ("CLIENTPAY_SANDBOX_DELAY_MS", "clientpay.sandbox.delay_ms", "250"),
        ("CLIENTPAY_REDIS_URL", "clientpay.redis_url", "redis://cache:6379/2"),
        ("CLIENTPAY_SECRET", "clientpay.secret", "from-the-environment"),
        ("CLIENTPAY_COOKIE_SECURE", "clientpay.cookie_secure", "false"),
        ("CLIENTPAY_FRAME_ANCESTORS", "clientpay.frame_ancestors", "https://matters.example"),
        (
            "CLIENTPAY_LIMITS_LOGIN_FREE_FAILURES",
            "clientpay.limits.login_free_failures",
            "3",
        ),
        ("CLIENTPAY_MAIL_HOST", "mail.host", "smtp.example.com"),
    ],
)
def test_the_environment_overrides_the_ini_and_the_default(variable, key, value):
    ini = {key: "from-the-ini"}
    assert resolve_settings(ini, environ={}, here="/srv")[key] == "from-the-ini"
    assert resolve_settings(ini, environ={variable: value}, here="/srv")[key] == value
    assert resolve_settings({}, environ={variable: value}, here="/srv")[key] == value


def test_defaults_fill_what_the_ini_leaves_out():
    resolved = resolve_settings({"clientpay.public_url": "https://pay.example"}, environ={})
    assert resolved["clientpay.public_url"] == "https://pay.example"
    assert set(DEFAULTS) <= set(resolved)
    assert resolved["clientpay.cookie_secure"] == "true"
    assert resolved["clientpay.limits.login_free_failures"] == "5"


def test_a_key_only_the_ini_knows_is_still_overridable():
    resolved = resolve_settings(
        {"clientpay.limits.backend": "x.Y"}, environ={"CLIENTPAY_LIMITS_BACKEND": "a.B"}
    )
    assert resolved["clientpay.limits.backend"] == "a.B"


def test_unrelated_and_test_variables_change_nothing():
    environ = {
        "CLIENTPAY_TEST_DATABASE_URL": "postgresql://elsewhere/test",
        "CLIENTPAY_NO_SUCH_SETTING": "1",
        "DATABASE_URL": "postgresql://not-ours/db",
    }
    assert resolve_settings({}, environ=environ, here="/srv") == resolve_settings(
        {}, environ={}, here="/srv"
    )


def test_relative_paths_are_taken_from_the_ini_folder():
    resolved = resolve_settings({}, environ={}, here="/srv/firm-a")
    for key in PATH_SETTINGS:
        assert resolved[key] == "/srv/firm-a/" + DEFAULTS[key]
    assert resolved["sqlalchemy.url"] == "sqlite:////srv/firm-a/var/clientpay.sqlite"


def test_a_relative_path_from_the_environment_is_anchored_too():
    resolved = resolve_settings(
        {}, environ={"CLIENTPAY_JOBS_SQLITE_PATH": "queue/jobs.db"}, here="/srv/firm-a"
    )
    assert resolved["clientpay.jobs.sqlite_path"] == "/srv/firm-a/queue/jobs.db"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/clientpay/db.sqlite",
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://clientpay@localhost/clientpay",
    ],
)
def test_absolute_and_server_database_urls_are_left_alone(url):
    assert resolve_settings({"sqlalchemy.url": url}, environ={}, here="/srv")["sqlalchemy.url"] == (
        url
    )


def test_absolute_paths_are_left_alone():
    resolved = resolve_settings(
        {"clientpay.mail.maildir": "/var/mail/clientpay"}, environ={}, here="/srv"
    )
    assert resolved["clientpay.mail.maildir"] == "/var/mail/clientpay"


def test_resolving_twice_changes_nothing():
    """includeme resolves again what main() resolved (a host may include us directly)."""
    once = resolve_settings({"sqlalchemy.url": "sqlite:///data/x.sqlite"}, environ={}, here="/a")
    assert resolve_settings(once, environ={}, here="/elsewhere") == once


def test_here_can_come_from_the_settings():
    resolved = resolve_settings({"here": "/srv/firm-b"}, environ={})
    assert resolved["clientpay.secrets_file"] == "/srv/firm-b/var/secrets.json"


TRUE = ("true", "True", " yes ", "1", "on")
FALSE = ("false", "0", "", "off", "no")


@pytest.mark.parametrize(
    ("value", "expected"), [(v, True) for v in TRUE] + [(v, False) for v in FALSE]
)
def test_as_bool(value, expected):
    assert as_bool(value) is expected


def readme_settings_rows() -> list[tuple[str, str]]:
    rows = re.findall(r"^\| `([a-z0-9_.]+)` \| `([A-Z0-9_]+)` \|", README.read_text(), re.M)
    assert rows, "the README has no settings table"
    return rows


def test_the_readme_table_names_real_settings_and_their_variables():
    for key, variable in readme_settings_rows():
        assert key in DEFAULTS, f"README documents {key}, which config.DEFAULTS does not know"
        assert env_name(key) == variable, f"README says {variable} for {key}"


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_pserve_takes_the_largest_body_a_route_takes_and_no_more(ini):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(README.parent / ini)
    largest = int(DEFAULTS["clientpay.limits.upload_body_bytes"])
    # Waitress refuses a body of max_request_body_size bytes or more.
    assert int(parser["server:main"]["max_request_body_size"]) == largest + 1


def test_production_trusts_the_same_proxy_under_both_servers():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(README.parent / "production.ini")
    app, server = parser["app:main"], parser["server:main"]
    assert app["clientpay.serve.trusted_proxy"] == server["trusted_proxy"]
    assert app["clientpay.serve.trusted_proxy_headers"] == server["trusted_proxy_headers"]
