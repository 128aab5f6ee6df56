"""GET /embed/launch/{token}: the matter software's frame opens the URL its server was given;
the launch's person is signed in (a fresh session: the partitioned cookie when framed) and
lands on the page the launch names."""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPSeeOther
from pyramid.renderers import render_to_response
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.accounts.services import record
from clientpay_connect.accounts.sessions import start_session
from clientpay_connect.db import sqlite_may_write
from clientpay_connect.embed.services import (
    OPEN_CONNECT,
    OPEN_QUICK_LINK,
    LaunchUnusable,
    find_launch,
    redeem_launch,
)
from clientpay_connect.security import PUBLIC

GONE = (
    "This sign-in link has been used or has expired. "
    "Open the panel again from your matter software."
)


def landing_url(request: Request, target: dict[str, Any]) -> str:
    """The page a launch opens, with its parameters."""
    opens = target.get("open")
    params = {k: v for k, v in target.items() if k != "open"}
    if opens == OPEN_CONNECT:
        return str(request.route_url("connect.search", _query=params))
    if opens == OPEN_QUICK_LINK:
        return str(request.route_url("links.quick", _query=params))
    sent = {f"filter[{k}]": v for k, v in params.items()}
    return str(request.route_url("sent.list", _query=sent))


def _page(request: Request, status: int, message: str) -> Response:
    response = render_to_response(
        "clientpay_connect:templates/error.jinja2",
        {"status": status, "message": message},
        request=request,
    )
    response.status = status
    return response


@view_config(route_name="embed.launch", request_method="GET", permission=PUBLIC)
def open_launch(request: Request) -> Response:
    # A GET that writes (it uses the launch up): on SQLite take the write lock from the start.
    sqlite_may_write.set(True)
    launch = find_launch(request.dbsession, request.matchdict["token"])
    if launch is None:
        response = _page(request, 404, "We could not find that page.")
    else:
        try:
            user = redeem_launch(request.dbsession, launch)
        except LaunchUnusable:
            response = _page(request, 410, GONE)
        else:
            response = _signed_in(request, user, landing_url(request, launch.target))
            record(
                request.dbsession,
                user.firm_id,
                "embed.launch_used",
                actor=user,
                target=launch,
                ip_address=request.client_addr or "",
            )
    # The token is in this URL: never let it leave in a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def _signed_in(request: Request, user: Any, location: str) -> Response:
    # A fresh session, whoever was signed in before in this frame (session fixation, too).
    headers = start_session(request, user)
    return HTTPSeeOther(location=location, headers=headers)
