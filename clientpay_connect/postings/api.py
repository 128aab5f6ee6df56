"""The Manage Postings API (documented in openapi.yaml beside this file)."""

from __future__ import annotations

from typing import Any

from pyramid.request import Request
from pyramid.response import Response
from pyramid.view import exception_view_config, view_config

from clientpay_connect.api.errors import ApiError, FieldErrors, conflict, error_response, not_found
from clientpay_connect.connect.interfaces import AdapterError
from clientpay_connect.connect.models import Connection
from clientpay_connect.connect.workflow import api_error
from clientpay_connect.links.services import possible_link_id
from clientpay_connect.postings.allocating import AllocationRefused, checked_allocations
from clientpay_connect.postings.listing import VIEW_ALL, fetch_page
from clientpay_connect.postings.models import Posting
from clientpay_connect.postings.present import posting_json
from clientpay_connect.postings.services import (
    PostingRefused,
    firm_posting,
    lock_firm_posting,
    mark_entered_by_hand,
    post_postings,
    reallocate,
    remove_posting,
    status_counts,
)
from clientpay_connect.security import STAFF, firm_id
from clientpay_connect.sent.cursor import CursorError
from clientpay_connect.work import Work

API = {"renderer": "json", "permission": STAFF, "openapi": True}
DEFAULT_LIMIT = 100


def _body(request: Request) -> dict[str, Any]:
    if not request.body:
        return {}
    body: dict[str, Any] = request.json_body
    return body


def _posting(request: Request, lock: bool = False) -> Posting:
    text = request.matchdict["id"]
    posting = None
    if text.isdigit() and possible_link_id(int(text)):
        find = lock_firm_posting if lock else firm_posting
        posting = find(request.dbsession, firm_id(request), int(text))
    if posting is None:
        raise not_found("No such posting.")
    return posting


# The services raise; the API answers here (the pages catch them themselves, for a flash).


@exception_view_config(PostingRefused, path_info=r"^/api/v1/postings")
def posting_refused(refused: PostingRefused, request: Request) -> Response:
    return error_response(request, _refused(refused))


@exception_view_config(AllocationRefused, path_info=r"^/api/v1/postings")
def allocation_refused(refused: AllocationRefused, request: Request) -> Response:
    return error_response(request, FieldErrors(refused.errors))


@exception_view_config(AdapterError, path_info=r"^/api/v1/postings")
def matter_system_failed(error: AdapterError, request: Request) -> Response:
    return error_response(request, api_error(error))


def _refused(refused: PostingRefused) -> ApiError:
    # A removal without its reason is a field to fill in, not a state that forbids it.
    if refused.code == "reason_required":
        return FieldErrors([{"field": "reason", "message": refused.message}])
    return conflict(refused.code, refused.message)


@view_config(route_name="api.postings", request_method="GET", **API)
def list_postings_view(request: Request) -> dict[str, Any]:
    firm = firm_id(request)
    try:
        page = fetch_page(
            request.dbsession,
            firm,
            request.params.get("status", VIEW_ALL),
            int(request.params.get("limit", DEFAULT_LIMIT)),
            request.params.get("cursor"),
        )
    except CursorError as error:
        raise FieldErrors([{"field": "cursor", "message": str(error)}]) from error
    return {
        "items": [posting_json(row) for row in page.postings],
        "next_cursor": page.next_cursor,
        "total": page.total,
        "counts": status_counts(request.dbsession, firm),
    }


@view_config(route_name="api.posting", request_method="GET", **API)
def get_posting_view(request: Request) -> dict[str, Any]:
    return posting_json(_posting(request), with_attempts=True)


@view_config(route_name="api.postings.post", request_method="POST", **API)
def post_postings_view(request: Request) -> dict[str, Any]:
    ids = [int(i) for i in _body(request).get("ids", []) if possible_link_id(int(i))]
    batch = post_postings(Work.from_request(request), firm_id(request), ids, request.user.id)
    return {"queued": batch.queued, "skipped": batch.skipped}


@view_config(route_name="api.posting.remove", request_method="POST", **API)
def remove_posting_view(request: Request) -> dict[str, Any]:
    posting = _posting(request, lock=True)
    remove_posting(
        Work.from_request(request),
        posting,
        str(_body(request).get("reason") or ""),
        request.user.id,
    )
    return posting_json(posting, with_attempts=True)


@view_config(route_name="api.posting.entered", request_method="POST", **API)
def entered_by_hand_view(request: Request) -> dict[str, Any]:
    posting = _posting(request, lock=True)
    mark_entered_by_hand(Work.from_request(request), posting, request.user.id)
    return posting_json(posting, with_attempts=True)


@view_config(route_name="api.posting", request_method="PATCH", **API)
def reallocate_view(request: Request) -> dict[str, Any]:
    posting = _posting(request)
    work = Work.from_request(request)
    connection = request.dbsession.get(Connection, posting.connection_id or 0)
    if connection is None:
        raise conflict("no_connection", "This posting's connection no longer exists.")
    posting_id = posting.id
    wanted = list(_body(request).get("allocations") or [])
    allocations = checked_allocations(work, connection, posting, wanted)
    locked = lock_firm_posting(request.dbsession, firm_id(request), posting_id)
    assert locked is not None
    reallocate(work, locked, allocations, request.user.id)
    return posting_json(locked, with_attempts=True)
