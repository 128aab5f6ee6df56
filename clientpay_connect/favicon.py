"""/favicon.ico: browsers ask for it on any page (the payer's too, and JSON answers opened in
a tab) whatever the page links to; without this every such visit logged a 404."""

from __future__ import annotations

from importlib.resources import files

from pyramid.config import Configurator
from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import view_config

from clientpay_connect.security import PUBLIC

ICON = files("clientpay_connect") / "static" / "favicon.svg"


@view_config(route_name="favicon", request_method=("GET", "HEAD"), permission=PUBLIC)
def favicon(request: Request) -> Response:
    response = Response(body=ICON.read_bytes(), content_type="image/svg+xml")
    response.cache_control.max_age = 86400
    response.cache_control.public = True
    return response


def includeme(config: Configurator) -> None:
    config.add_route("favicon", "/favicon.ico")
    config.scan(".favicon")
