"""The payer's languages: the catalogs cover every string a payer reads, and compile."""

from __future__ import annotations

import gettext
import os
import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from clientpay_connect.pay.i18n import DOMAIN, LOCALE_DIR, compile_stale_catalogs

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ("en", "es")


def _extracted() -> set[str]:
    """Every message the code and templates ask for, as ``make messages`` would find them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog(locale: str) -> Catalog:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=locale, domain=DOMAIN)


def _spanish(locale_dir: Path) -> gettext.GNUTranslations:
    # Read afresh: gettext.translation() would hand back the copy it cached the first time.
    with (locale_dir / "es" / "LC_MESSAGES" / f"{DOMAIN}.mo").open("rb") as handle:
        return gettext.GNUTranslations(handle)


@pytest.fixture(scope="module")
def extracted() -> set[str]:
    return _extracted()


def test_something_is_extracted(extracted):
    # Guards the tests below against passing on an empty extraction.
    assert "Amount due" in extracted
    assert "Your card was declined. Please check the details or use another card." in extracted
    assert len(extracted) > 50


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalogs_hold_exactly_the_messages_in_use(extracted, locale):
    catalog = _catalog(locale)
    ids = {message.id for message in catalog if message.id}
    assert extracted - ids == set(), "run `make messages` and translate what is new"
    assert ids - extracted == set(), "run `make messages` to drop what is no longer used"


def test_every_message_has_a_spanish_translation(extracted):
    catalog = _catalog("es")
    untranslated = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    same = [m.id for m in catalog if m.id and m.string == m.id]
    # A few words are the same in both languages; anything longer was forgotten.
    assert all(len(str(message)) < 12 for message in same), same


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_their_placeholders(locale):
    problems = [(message.id, errors) for message, errors in _catalog(locale).check() if errors]
    assert problems == []


def test_missing_or_stale_catalogs_are_compiled_at_start_up(tmp_path):
    locale_dir = tmp_path / "locale"
    for locale in LOCALES:
        folder = locale_dir / locale / "LC_MESSAGES"
        folder.mkdir(parents=True)
        shutil.copy(LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po", folder)

    written = compile_stale_catalogs(locale_dir)
    assert sorted(path.parent.parent.name for path in written) == ["en", "es"]
    assert _spanish(locale_dir).gettext("Amount due") == "Monto adeudado"
    assert oct(os.stat(written[1]).st_mode & 0o777) == oct(0o644)

    # Up to date: nothing to do.
    assert compile_stale_catalogs(locale_dir) == []

    # An edited catalog is compiled again.
    po_path = locale_dir / "es" / "LC_MESSAGES" / f"{DOMAIN}.po"
    po_path.write_text(
        po_path.read_text(encoding="utf-8").replace(
            'msgstr "Monto adeudado"', 'msgstr "Importe adeudado"'
        ),
        encoding="utf-8",
    )
    later = po_path.stat().st_mtime + 5
    os.utime(po_path, (later, later))
    assert compile_stale_catalogs(locale_dir) == [po_path.with_suffix(".mo")]
    assert _spanish(locale_dir).gettext("Amount due") == "Importe adeudado"
