"""Browser tests: Debian's chromium, driven by Playwright, against the app served by waitress.

Run them with ``.venv/bin/pytest -m browser`` (``make chromium`` installs the browser).
A failed test leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    ViewportSize,
    sync_playwright,
)

from tests.support.live_server import LiveServer, Login

CHROMIUM = os.environ.get("CLIENTPAY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE: ViewportSize = {"width": 1280, "height": 800}
# The panel the matter software gives us can be this narrow.
NARROW: ViewportSize = {"width": 420, "height": 800}
# Long enough for a slow CI machine, short enough that a missing element fails quickly.
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything in this folder drives the browser, whether or not its author remembered
    # the marker, so that ``-m "not browser"`` really leaves chromium out.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Kept on the item so that the ``page`` fixture's teardown knows whether the test failed.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no chromium at {CHROMIUM}: run `make chromium` (Debian's package)")
    with sync_playwright() as playwright:
        # launch() gives every run a fresh, throw-away profile.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def viewport() -> ViewportSize:
    """The window size of ``page``; a test overrides it (or parametrizes it) for the panel."""
    return WIDE


@pytest.fixture
def context(
    browser: Browser, live_server: LiveServer, viewport: ViewportSize
) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=live_server.url, viewport=viewport)
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context (no cookies). Content-Security-Policy violations, a
    Permissions-Policy the browser cannot read (an unknown feature's name) and uncaught
    script errors fail the test: they mean the page is broken for real users."""
    tab = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(f"CSP violation on {tab.url}: {message.text}")
        # Chromium reports an unreadable Permissions-Policy as a warning, not an error.
        if message.type in ("error", "warning") and "Permissions-Policy" in message.text:
            problems.append(f"Permissions-Policy error on {tab.url}: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(f"script error on {tab.url}: {error}"))
    yield tab
    reports = request.node.stash.get(_REPORTS, {})
    if any(report.failed for report in reports.values()):
        _save_screenshot(tab, request)
    tab.close()
    if problems:
        pytest.fail("\n".join(problems))


def _save_screenshot(tab: Page, request: pytest.FixtureRequest) -> None:
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
    try:
        tab.screenshot(path=str(folder / f"{name}.png"), full_page=True)
    except Exception as exc:  # a crashed page must not hide the test's own failure
        print(f"could not save a screenshot: {exc}")


@pytest.fixture
def sign_in(page: Page) -> Callable[[Login], None]:
    """Sign in through the real form, as a person would, and wait for the start page."""

    def sign_in_as(login: Login) -> None:
        page.goto("/login")
        page.get_by_label("Email").fill(login.email)
        page.get_by_label("Password").fill(login.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/$"))

    return sign_in_as
