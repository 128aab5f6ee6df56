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
