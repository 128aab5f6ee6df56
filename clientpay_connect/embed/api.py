"""POST /api/v1/embed/launch (documented in openapi.yaml beside this file)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.accounts.services import audit
from clientpay_connect.api.errors import ApiError, FieldErrors, error_response
from clientpay_connect.embed.services import LaunchRefused, create_launch
from clientpay_connect.links.services import timestamp_json
from clientpay_connect.security import ADMIN, uses_bearer_token


# The service raises; the API answers here (the launch page itself refuses differently).
@exception_view_config(LaunchRefused, path_info=r"^/api/v1/embed/")
def launch_refused(refused: LaunchRefused, request: Request) -> Response:
    return error_response(request, FieldErrors(refused.errors, "The launch cannot be made."))


@view_config(
    route_name="api.embed.launch",
    request_method="POST",
    permission=ADMIN,
    renderer="json",
    openapi=True,
)
def create_launch_view(request: Request) -> dict[str, Any]:
    # A launch signs someone else in: it is for the matter software's server, holding an
    # admin's token, never for a page in a browser riding on an admin's session.
    if not uses_bearer_token(request):
        raise ApiError(
            403, "token_required", "Launch links are asked for with an admin's API token."
        )
    body: dict[str, Any] = request.json_body
    launch = create_launch(request.dbsession, request.user, body)
    audit(
        request,
        "embed.launch_created",
        launch.row,
        user_id=launch.row.user_id,
        open=launch.row.target["open"],
    )
    request.response.status = 201
    return {
        "url": request.route_url("embed.launch", token=launch.token),
        "expires_at": timestamp_json(launch.row.expires_at),
    }
