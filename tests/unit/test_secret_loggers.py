"""oauthlib's and requests-oauthlib's DEBUG output (codes, client secrets, tokens in clear)
never gets through: not under either ini file's logging, not with root turned to DEBUG, not
with one of their children given DEBUG of its own. (tests/functional/test_connections_oauth.py
runs a real exchange and refresh with root at DEBUG and reads every record.)"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from clientpay_connect.logs import SECRET_LOGGERS, quiet_secret_loggers

ROOT = Path(__file__).resolve().parents[2]
# Children that write the secrets, as the libraries name them.
CHILDREN = (
    "requests_oauthlib.oauth2_session",
    "oauthlib.oauth2.rfc6749.clients.base",
    "oauthlib.oauth2.rfc6749.parameters",
)
PROBE = """
import logging, sys
from pyramid.paster import setup_logging
setup_logging(sys.argv[1])
logging.getLogger().setLevel(logging.DEBUG)
names = sys.argv[2:]
print(" ".join(n for n in names if logging.getLogger(n).isEnabledFor(logging.DEBUG)))
"""


@pytest.mark.parametrize("ini", ["development.ini", "production.ini"])
def test_the_ini_files_hold_them_at_info_with_root_at_debug(ini):
    found = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / ini), *CHILDREN, "urllib3"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    # A library the ini leaves alone does speak at DEBUG then: the probe would see a leak.
    assert found.stdout.split() == ["urllib3"]


@pytest.fixture
def levels() -> Iterator[None]:
    """The loggers' levels as they were, back after the test."""
    names = [*SECRET_LOGGERS, *CHILDREN]
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("levels")
def test_the_app_holds_them_at_info_whatever_was_configured():
    logging.getLogger("oauthlib").setLevel(logging.NOTSET)
    logging.getLogger("requests_oauthlib").setLevel(logging.DEBUG)
    logging.getLogger("oauthlib.oauth2.rfc6749.parameters").setLevel(logging.DEBUG)
    logging.getLogger("requests_oauthlib.oauth2_session").setLevel(logging.WARNING)
    quiet_secret_loggers()
    for name in CHILDREN:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG), name
    assert logging.getLogger("oauthlib").level == logging.INFO
    # A level above INFO is kept: the app only ever raises them.
    assert logging.getLogger("requests_oauthlib.oauth2_session").level == logging.WARNING
