"""The modules a signed-in person can open, for the layout's menu and the home page."""

from __future__ import annotations

from pyramid.interfaces import IRoutesMapper
from pyramid.request import Request

# (route name, label, what it is for). A module appears once its feature is installed.
MODULES: list[tuple[str, str, str, bool]] = [
    ("links.quick", "Quick Link", "Send one payment link by email, or copy it.", False),
    ("bulk.upload", "Bulk Upload", "Upload a CSV of invoices and send a link for each.", False),
    ("connect.search", "Connect", "Find invoices in the matter system and request payment.", False),
    ("sent.list", "Sent Pages", "Every link you sent, paid or still outstanding.", False),
    (
        "postings.list",
        "Manage Postings",
        "Write received payments back to the matter system.",
        False,
    ),
    ("admin.home", "Admin", "Users, settings, notifications, merchant accounts, API tokens.", True),
]


# Pages that belong to another module than their route's prefix says: a link's page is
# reached from Sent Pages, the reconciliation report from Manage Postings.
OWNING_MODULE = {
    "links.detail": "sent.list",
    "links.cancel": "sent.list",
    "links.balance": "sent.list",
    "reports.reconciliation": "postings.list",
}


def current_module(request: Request) -> str:
    """The menu entry (a module's route) that the page shown belongs to, or ""."""
    route = request.matched_route.name if request.matched_route is not None else ""
    if route in OWNING_MODULE:
        return OWNING_MODULE[route]
    for module, _label, _blurb, _admin_only in MODULES:
        if route == module or route.startswith(module.split(".")[0] + "."):
            return module
    return "home" if route == "home" else ""


def _installed(request: Request, route: str) -> bool:
    mapper = request.registry.queryUtility(IRoutesMapper)
    return mapper is not None and mapper.get_route(route) is not None


def nav_modules(request: Request) -> list[tuple[str, str]]:
    return [
        (route, label)
        for route, label, _blurb, admin_only in MODULES
        if not admin_only and _installed(request, route)
    ]


def home_modules(request: Request) -> list[tuple[str, str, str]]:
    user = request.user
    return [
        (route, label, blurb)
        for route, label, blurb, admin_only in MODULES
        if _installed(request, route) and (not admin_only or (user is not None and user.is_admin))
    ]
