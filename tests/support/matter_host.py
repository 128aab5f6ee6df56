"""A stand-in for the matter software's web application, on an origin of its own: its page
frames the panel. Asked for a launch, its server side calls our launch API with its admin's
token (as Clio's or MyCase's server would) and puts the URL it gets into the frame."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from webob import Request, Response

PANEL_WIDTH = 360  # the narrowest panel the matter software gives us


@dataclass
class MatterHost:
    """``app_url``, ``api_token`` and ``user_email`` are set once the app under test is up."""

    app_url: str = ""
    api_token: str = ""
    user_email: str = ""
    launches: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/launch":
            src = self._launch_url(dict(request.GET))
        elif request.path == "/frame":
            src = request.GET.get("src") or self.app_url + request.GET.get("path", "/")
        else:
            return Response(status=404)(environ, start_response)
        page = (
            "<!doctype html><html lang='en'><head><title>Matters</title></head><body>"
            "<h1>The matter software</h1>"
            f"<iframe id='panel' title='Payments' src='{html.escape(src)}' "
            f"width='{PANEL_WIDTH}' height='760'></iframe></body></html>"
        )
        return Response(page, content_type="text/html", charset="utf-8")(environ, start_response)

    def _launch_url(self, params: dict[str, str]) -> str:
        """Server to server, as the host must: the admin's token never reaches a browser."""
        body = {"user_email": self.user_email, **params}
        answer = requests.post(
            f"{self.app_url}/api/v1/embed/launch",
            json=body,
            headers={"Authorization": f"Bearer {self.api_token}"},
            timeout=10,
        )
        answer.raise_for_status()
        launch: dict[str, Any] = answer.json()
        self.launches.append(launch)
        return str(launch["url"])
