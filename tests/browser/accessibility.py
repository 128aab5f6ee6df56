"""``assert_accessible(page)``: axe-core's WCAG 2.2 AA rules, run in the page under test.

axe comes from node_modules (npm's axe-core, a devDependency), never from the app's static
folder. The pages forbid inline scripts (CSP ``script-src 'self'``), so rather than turn the
policy off for the test we let the page load axe from a same-origin address that only exists
inside the test's browser: a Playwright route answers it from node_modules. The CSP under
test stays exactly what users get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route

AXE_SCRIPT = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
# A path the app never serves, so a route on it cannot shadow a real page.
AXE_PATH = "/__browser-tests__/axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def _serve_axe(route: Route) -> None:
    route.fulfill(path=AXE_SCRIPT, content_type="application/javascript")


def _load_axe(page: Page) -> None:
    if not AXE_SCRIPT.exists():
        raise AssertionError(f"{AXE_SCRIPT} is missing: run `npm ci` (axe-core is in package.json)")
    if page.evaluate("() => typeof window.axe !== 'undefined'"):
        return
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page.url))
    page.route(origin + AXE_PATH, _serve_axe)
    page.add_script_tag(url=origin + AXE_PATH)


def axe_violations(page: Page, tags: list[str] | None = None) -> list[dict[str, Any]]:
    _load_axe(page)
    result: dict[str, Any] = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        tags or WCAG_TAGS,
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"    at {' '.join(map(str, node['target']))}")
            summary = node.get("failureSummary")
            if summary:
                lines.append("      " + summary.replace("\n", "\n      "))
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    """Fail with every WCAG 2.0/2.1/2.2 A and AA violation axe finds on the page as shown."""
    violations = axe_violations(page)
    assert not violations, f"accessibility violations on {page.url}:\n" + describe(violations)
