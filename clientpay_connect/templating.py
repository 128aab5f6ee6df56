"""Jinja2 set-up: globals the layout needs."""

from __future__ import annotations

from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    settings = config.get_settings()
    settings.setdefault("jinja2.autoescape", "true")
    settings.setdefault("jinja2.trim_blocks", "true")
    settings.setdefault("jinja2.lstrip_blocks", "true")
    # Templates translate with _("…"): the "clientpay" gettext catalogs (pay/i18n.py), and
    # newstyle gettext so that _("%(name)s", name=value) escapes the values it fills in.
    settings.setdefault("jinja2.i18n.domain", "clientpay")
    settings.setdefault("jinja2.newstyle", "true")
    settings.setdefault(
        "jinja2.globals",
        "nav_modules = clientpay_connect.navigation.nav_modules\n"
        "home_modules = clientpay_connect.navigation.home_modules\n"
        "current_module = clientpay_connect.navigation.current_module\n"
        "staff_test_mode = clientpay_connect.pay.test_mode.staff_test_mode",
    )
    config.include("pyramid_jinja2")
    config.add_jinja2_search_path("clientpay_connect:templates", name=".jinja2")
