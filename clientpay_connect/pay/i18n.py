"""The payer's language: English or Spanish, per link, switchable by the payer.

Messages live in gettext catalogs (``clientpay_connect/locale/<lang>/LC_MESSAGES/clientpay.po``,
domain ``clientpay``), compiled to ``.mo`` by ``make setup`` (``pybabel compile``). Templates
reach them through jinja2's i18n extension (``_()``, installed by pyramid_jinja2 with the
``jinja2.i18n.domain`` setting); Python through ``request.localizer``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from pyramid.config import Configurator
from pyramid.i18n import TranslationString, TranslationStringFactory
from pyramid.request import Request

from clientpay_connect.links.models import LOCALES
from clientpay_connect.money import minor_digits

log = logging.getLogger(__name__)

DOMAIN = "clientpay"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LOCALE = "en"
# The query parameter of the page's English/Español switch.
LANG_PARAM = "lang"
# The firms are American: numbers and dates as written in the United States, in either language.
BABEL_LOCALES = {"en": "en_US", "es": "es_US"}
# How each language names itself, for the switch.
LANGUAGE_NAMES = {"en": "English", "es": "Español"}

_ = TranslationStringFactory(DOMAIN)


def choose_locale(request: Request, link_locale: str | None) -> str:
    """The payer's switch (``?lang=es``) wins; then the link's own locale; then the browser's
    preference (only when there is no link to go by, e.g. a mistyped address)."""
    asked = asked_language(request)
    if asked in LOCALES:
        return asked
    if link_locale is not None:
        return link_locale if link_locale in LOCALES else DEFAULT_LOCALE
    return str(request.accept_language.lookup(LOCALES, default=DEFAULT_LOCALE))


def asked_language(request: Request) -> str:
    """The language the payer's switch asked for (``?lang=``), or "". The query string is
    parsed only when there is one: most requests carry none."""
    if not request.environ.get("QUERY_STRING"):
        return ""
    return str(request.GET.get(LANG_PARAM, ""))


def use_locale(request: Request, locale: str) -> None:
    """Make ``request.localizer`` (and so the templates' ``_``) speak ``locale``."""
    # Pyramid's default negotiator reads this attribute first; the localizer is reified, so a
    # copy made before the locale was known is dropped.
    request._LOCALE_ = locale
    request.__dict__.pop("localizer", None)


def translate(request: Request, message: TranslationString, **values: Any) -> str:
    """``message`` (made with ``_``) in the request's language, ``%(name)s`` values filled in."""
    text = str(request.localizer.translate(message))
    return text % values if values else text


def money(minor: int, currency: str, locale: str) -> str:
    amount = Decimal(minor).scaleb(-minor_digits(currency))
    return str(format_currency(amount, currency, locale=BABEL_LOCALES.get(locale, "en_US")))


def day(value: dt.date | None, locale: str) -> str:
    if value is None:
        return ""
    return str(format_date(value, format="long", locale=BABEL_LOCALES.get(locale, "en_US")))


def moment(value: dt.datetime | None, time_zone: str, locale: str) -> str:
    """A timestamp as the firm's clock showed it, e.g. "March 5, 2025, 3:04 PM EST"."""
    if value is None:
        return ""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    babel_locale = BABEL_LOCALES.get(locale, "en_US")
    local = value.astimezone(zone)
    return "{}, {}".format(
        format_date(local.date(), format="long", locale=babel_locale),
        format_datetime(local, format="h:mm a zzz", tzinfo=zone, locale=babel_locale),
    )


def compile_stale_catalogs(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Compile every ``.po`` whose ``.mo`` is missing or older; return the ``.mo`` files written.

    ``make setup`` compiles them too; this keeps a fresh checkout (or an edited catalog) right
    when the app is started some other way, e.g. straight from pytest. An installed package
    ships its ``.mo`` files and is left alone if its folder cannot be written.
    """
    written = []
    for po_path in sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name, domain=DOMAIN)
        try:
            # Written beside and renamed into place, so that another process starting at the
            # same moment never reads half a file.
            fd, tmp_name = tempfile.mkstemp(dir=mo_path.parent, suffix=".mo.tmp")
            with os.fdopen(fd, "wb") as out:
                write_mo(out, catalog)
            # mkstemp makes it private; a catalog is read by whichever user serves the app.
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, mo_path)
        except OSError as exc:
            log.warning("could not compile %s: %s", po_path, exc)
            continue
        written.append(mo_path)
    return written


def includeme(config: Configurator) -> None:
    compile_stale_catalogs()
    config.add_translation_dirs("clientpay_connect:locale/")
