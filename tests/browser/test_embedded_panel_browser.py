"""The panel inside the matter software, in Debian's Chromium as it comes: third-party
cookies blocked (no setting changed). The matter software's page is on one loopback site
(``localhost``), the app on another (``127.0.0.1``): different sites, so the frame is truly
cross-site. Plain http works for both: Chromium counts loopback as a secure context, so it keeps
the app's ``Secure; Partitioned`` cookie without TLS (what the production settings refuse off
loopback).

Partitioned, the panel's session lives in the host site's own cookie jar, and nothing but the
panel's frames there share it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, ConsoleMessage, FrameLocator, Page, expect
from sqlalchemy import create_engine, select, text

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import create_api_token
from clientpay_connect.connect.services import connection_settings, firm_connections
from clientpay_connect.demo import DEMO_SLUG
from clientpay_connect.links.models import SOURCE_CONNECT, SOURCE_QUICK, PaymentLink
from clientpay_connect.work import Work
from tests.browser.conftest import TIMEOUT_MS
from tests.browser.test_connect_browser import CLIENT_WITH_TWO_OPEN, TWO_DUE_FIRST
from tests.support.live_server import LiveServer, serving, start_live_server
from tests.support.matter_host import MatterHost

pytestmark = pytest.mark.browser

SESSION_COOKIE = "clientpay_session"


@dataclass(frozen=True)
class Host:
    """The matter software: its origin, and its server's state."""

    origin: str
    server: MatterHost

    def url(self, page: str, **params: Any) -> str:
        return f"{self.origin}{page}?{urlencode(params)}"


@dataclass(frozen=True)
class DemoClient:
    id: str
    name: str
    email: str
    invoice: str  # the number of an open operating invoice, the oldest due


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    server = MatterHost()
    with serving(server, threads=2) as url:  # type: ignore[arg-type]
        port = urlsplit(url).port
        yield Host(f"http://localhost:{port}", server)


@pytest.fixture(scope="module")
def embedded_server(
    base_settings: dict[str, Any], host: Host, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app with the host's origin in frame-ancestors, as a firm embedding it sets it."""
    settings = {
        **base_settings,
        "clientpay.frame_ancestors": host.origin,
        "clientpay.cookie_secure": "true",
        "clientpay.limits.key_prefix": base_settings["clientpay.limits.key_prefix"] + "-embed",
    }
    for live in start_live_server(settings, tmp_path_factory.mktemp("embedded-db")):
        with live.dbsession() as session:
            admin = session.execute(select(User).where(User.email == live.admin.email)).scalar_one()
            _row, token = create_api_token(session, admin, "the matter software")
        host.server.app_url = live.url
        host.server.api_token = token
        host.server.user_email = live.staff.email
        yield live


@pytest.fixture(scope="module")
def demo_client(embedded_server: LiveServer) -> tuple[int, DemoClient]:
    """The demo connection's id, and a client with open operating invoices."""
    registry = embedded_server.app.registry
    with Work.fresh(registry) as work:
        firm = work.dbsession.execute(
            text("SELECT id FROM firms WHERE slug = :slug"), {"slug": DEMO_SLUG}
        ).scalar_one()
        (connection,) = [c for c in firm_connections(work.dbsession, firm) if c.adapter == "sql"]
        connection_id = connection.id
        url = connection_settings(registry["clientpay.encryptor"], connection)["url"]
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            client_id, name, email = db.execute(CLIENT_WITH_TWO_OPEN).first()
            number, _balance = db.execute(TWO_DUE_FIRST, {"client": client_id}).first()
    finally:
        engine.dispose()
    return connection_id, DemoClient(str(client_id), name, email, number)


@pytest.fixture
def host_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[tuple[Page, list[str]]]:
    """A tab in a fresh context (as it comes: nothing about cookies changed), and what its
    console said. The ``page`` fixture would fail on the refused frame's CSP report, which one
    test here wants to see."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    said: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        said.append(f"{message.type}: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: said.append(f"pageerror: {error}"))
    try:
        yield tab, said
    finally:
        if any(report.failed for report in _reports(request)):
            tab.screenshot(path=str(_artifact(request)), full_page=True)
        context.close()


def _reports(request: pytest.FixtureRequest) -> list[Any]:
    from tests.browser.conftest import _REPORTS

    return list(request.node.stash.get(_REPORTS, {}).values())


def _artifact(request: pytest.FixtureRequest) -> Any:
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:] + ".png")


def problems(said: list[str]) -> list[str]:
    """Script errors, CSP violations and blocked autofocus: the panel is broken for users."""
    signs = ("pageerror", "Content Security Policy", "autofocus")
    return [line for line in said if any(sign in line for sign in signs)]


def panel_session(page: Page, app_url: str) -> list[dict[str, Any]]:
    app_host = urlsplit(app_url).hostname
    return [
        c for c in page.context.cookies() if c["name"] == SESSION_COOKIE and c["domain"] == app_host
    ]


# The innermost elements that reach past the panel's right edge, to say what to fix.
WIDER_THAN_THE_PANEL = """html => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > html.clientWidth + 0.5)
  .filter(e => ![...e.children].some(c => c.getBoundingClientRect().right > html.clientWidth + 0.5))
  .slice(0, 8)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${[...e.classList].join('.')}`
    + ` right=${Math.round(e.getBoundingClientRect().right)}`)"""


def no_sideways_scroll(panel: FrameLocator) -> None:
    """Everything fits the panel's width: nothing needs scrolling sideways."""
    overflow = panel.locator("html").evaluate("html => html.scrollWidth - html.clientWidth")
    if overflow > 0:
        wide = panel.locator("html").evaluate(WIDER_THAN_THE_PANEL)
        raise AssertionError(f"the page is {overflow}px wider than the panel: {wide}")


def test_launched_in_the_frame_staff_land_on_connect_and_send_a_link(
    host_page: tuple[Page, list[str]],
    host: Host,
    embedded_server: LiveServer,
    demo_client: tuple[int, DemoClient],
) -> None:
    page, said = host_page
    connection_id, client = demo_client
    page.goto(host.url("/launch", open="connect", connection_id=connection_id, client_id=client.id))
    panel = page.frame_locator("#panel")
    expect(panel.get_by_role("heading", name="Connect", level=1)).to_be_visible()
    # Opened on the client the matter software showed: its invoices are listed already.
    expect(panel.get_by_role("heading", name=client.name, level=2)).to_be_visible()
    # The frame's session is the partitioned cookie, in the host site's partition.
    (cookie,) = panel_session(page, embedded_server.url)
    # Keyed by the top-level site: the scheme and host, no port.
    assert cookie["partitionKey"] == "http://localhost"
    assert cookie["sameSite"] == "None" and cookie["secure"] and cookie["httpOnly"]

    panel.get_by_label(client.invoice, exact=True).check()
    expect(panel.get_by_label("Payer's email address")).to_have_value(client.email)
    panel.get_by_label("Merchant account").select_option(label="Operating (operating account)")
    no_sideways_scroll(panel)
    panel.get_by_role("button", name="Send Link").click()
    expect(panel.get_by_role("heading", name="Link sent")).to_be_visible()
    expect(panel.locator("[data-recipients] li")).to_have_text([client.email])

    with embedded_server.dbsession() as session:
        link = session.execute(
            select(PaymentLink).order_by(PaymentLink.id.desc()).limit(1)
        ).scalar_one()
        assert link.source == SOURCE_CONNECT
        assert link.invoice_number == client.invoice or link.invoice_number == ""
        assert (
            link.created_by_user_id
            == session.execute(
                select(User.id).where(User.email == embedded_server.staff.email)
            ).scalar_one()
        )
    # The launch URL was used up by the frame: opening it again is refused.
    used = host.server.launches[-1]["url"]
    again = page.context.new_page()
    assert again.goto(used).status == 410
    assert problems(said) == []


def test_signed_in_inside_the_frame_staff_make_a_quick_link_and_preview_it_in_a_new_tab(
    host_page: tuple[Page, list[str]], host: Host, embedded_server: LiveServer
) -> None:
    page, said = host_page
    page.goto(host.url("/frame", path="/login"))
    panel = page.frame_locator("#panel")
    # Not focused by the page itself: a frame must not take the host page's focus.
    expect(panel.get_by_label("Email")).not_to_have_attribute("autofocus", re.compile(".*"))
    panel.get_by_label("Email").fill(embedded_server.staff.email)
    panel.get_by_label("Password").fill(embedded_server.staff.password)
    panel.get_by_role("button", name="Sign in").click()
    panel.get_by_role("link", name="Quick Link").first.click()
    expect(panel.get_by_role("heading", name="Quick Link", level=1)).to_be_visible()
    no_sideways_scroll(panel)
    panel.get_by_label("Merchant account").select_option(label="Operating (operating account)")
    panel.get_by_label("Total amount").fill("42.50")
    panel.get_by_label("No").check()
    panel.get_by_role("button", name="Generate Link").click()
    expect(panel.get_by_role("heading", name="Your link is ready")).to_be_visible()
    payer_url = panel.get_by_label("Payment link").input_value()

    # The payer's page leaves the panel: a tab of its own, not the frame.
    with page.context.expect_page() as opened:
        panel.get_by_role("link", name="Open the payer's page").click()
    payer = opened.value
    payer.wait_for_load_state()
    assert payer.url == payer_url
    expect(payer.locator(".pay-amount")).to_have_text("$42.50")
    expect(panel.get_by_role("heading", name="Your link is ready")).to_be_visible()

    with embedded_server.dbsession() as session:
        link = session.execute(
            select(PaymentLink).order_by(PaymentLink.id.desc()).limit(1)
        ).scalar_one()
        assert (link.source, link.amount_minor) == (SOURCE_QUICK, 42_50)
    assert problems(said) == []


def test_a_download_inside_the_frame_carries_the_panels_session(
    host_page: tuple[Page, list[str]], host: Host, embedded_server: LiveServer
) -> None:
    """A download stays in the frame (a new tab would be another cookie partition, signed
    out): the export arrives, not the sign-in page."""
    page, said = host_page
    page.goto(host.url("/launch", open="sent"))
    panel = page.frame_locator("#panel")
    expect(panel.get_by_role("heading", name="Sent Pages", level=1)).to_be_visible()
    no_sideways_scroll(panel)
    with page.expect_download() as downloading:
        panel.get_by_role("link", name="Export to Excel").click()
    download = downloading.value
    assert download.suggested_filename.endswith(".xlsx")
    with open(download.path(), "rb") as workbook:
        assert workbook.read(2) == b"PK"  # a zip: the .xlsx, not an HTML sign-in page
    assert problems(said) == []


def test_without_frame_ancestors_the_frame_is_refused(
    host_page: tuple[Page, list[str]], host: Host, live_server: LiveServer
) -> None:
    """The default settings: only the app's own pages may frame it."""
    page, said = host_page
    page.goto(host.url("/frame", src=f"{live_server.url}/login"))
    refused = "frame-ancestors 'self'"
    for _ in range(TIMEOUT_MS // 100):
        if any(refused in line for line in said):
            break
        page.wait_for_timeout(100)
    assert any(refused in line for line in said), said
    # Nothing of the app is shown in the frame.
    expect(page.frame_locator("#panel").get_by_label("Email")).to_have_count(0)
    (framed,) = page.main_frame.child_frames
    assert not framed.url.startswith(live_server.url), framed.url
