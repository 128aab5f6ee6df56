"""A bulk upload's body is read only once its sender is known, and never past its limit.

The bodies here are real multipart uploads of tens of megabytes, fed to the app as a server
would (a stream the app reads from), so that the tests can tell how much of each was read.
"""

from __future__ import annotations

from typing import Any

import pytest
from pyramid.router import Router
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from webob import Request

from clientpay_connect.bulk.models import BulkUpload
from tests.factories import MerchantAccountFactory
from tests.functional.test_request_limits import CountingStream

UPLOAD_LIMIT = 33 * 1024 * 1024
HEADER = b"Invoice Number,Invoice Date,Due Date,Recipient Name,Amount,Email,Custom Message\n"


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm)


def csv_of_size(size: int) -> bytes:
    row = b"INV-1,,,Jane Doe,10.00,jane@example.test," + b"x" * 200 + b"\n"
    return HEADER + row * (size // len(row))


def multipart(account_id: int, data: bytes) -> tuple[str, bytes]:
    """The form a browser posts: the account and the file."""
    boundary = b"----clientpay-test-boundary"
    body = b"".join(
        [
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="merchant_account_id"\r\n\r\n',
            str(account_id).encode() + b"\r\n",
            b"--" + boundary + b"\r\n",
            b'Content-Disposition: form-data; name="file"; filename="invoices.csv"\r\n',
            b"Content-Type: text/csv\r\n\r\n",
            data + b"\r\n",
            b"--" + boundary + b"--\r\n",
        ]
    )
    return f"multipart/form-data; boundary={boundary.decode()}", body


def send(
    app: Router,
    path: str,
    content_type: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    declare_length: bool = True,
) -> tuple[Any, CountingStream]:
    stream = CountingStream(body)
    request = Request.blank(path, method="POST", headers={**(headers or {})})
    request.environ.update(
        {"wsgi.input": stream, "CONTENT_TYPE": content_type, "HTTP_HOST": "localhost"}
    )
    if declare_length:
        request.environ["CONTENT_LENGTH"] = str(len(body))
    else:
        request.environ.pop("CONTENT_LENGTH", None)
        request.environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        request.environ["wsgi.input_terminated"] = True
    return request.get_response(app), stream


def uploads(dbsession: Session) -> int:
    return int(dbsession.execute(select(func.count()).select_from(BulkUpload)).scalar_one())


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(
    app, dbsession, db_connection, account
):
    before = uploads(dbsession)
    content_type, body = multipart(account.id, csv_of_size(20 * 1024 * 1024))
    response, stream = send(app, "/api/v1/bulk-uploads", content_type, body)
    assert response.status_int == 401
    assert response.json["error"] == "unauthenticated"
    assert stream.taken == 0
    assert uploads(dbsession) == before


def test_an_upload_with_a_revoked_token_is_refused_before_its_body_is_read(
    app, dbsession, db_connection, staff, account
):
    content_type, body = multipart(account.id, csv_of_size(5 * 1024 * 1024))
    headers = {"Authorization": "Bearer cpc_not-a-token"}
    response, stream = send(app, "/api/v1/bulk-uploads", content_type, body, headers)
    assert response.status_int == 401
    assert stream.taken == 0


def test_the_upload_page_sends_a_stranger_to_sign_in_without_reading_the_file(
    app, dbsession, db_connection, account
):
    before = uploads(dbsession)
    content_type, body = multipart(account.id, csv_of_size(20 * 1024 * 1024))
    response, stream = send(app, "/bulk", content_type, body)
    assert response.status_int == 302
    assert "/login" in response.location
    assert stream.taken == 0
    assert uploads(dbsession) == before


def test_a_chunked_upload_over_the_limit_is_cut_off_and_nothing_is_kept(
    app, dbsession, db_connection, staff_auth, account
):
    before = uploads(dbsession)
    content_type, body = multipart(account.id, csv_of_size(UPLOAD_LIMIT + 1024 * 1024))
    response, stream = send(
        app, "/api/v1/bulk-uploads", content_type, body, staff_auth, declare_length=False
    )
    assert response.status_int == 413
    assert response.json["error"] == "request_too_large"
    assert stream.taken == UPLOAD_LIMIT + 1
    assert uploads(dbsession) == before


def test_a_chunked_upload_within_the_limit_is_kept(
    app, dbsession, db_connection, staff_auth, account
):
    before = uploads(dbsession)
    data = csv_of_size(200 * 1024)
    content_type, body = multipart(account.id, data)
    response, stream = send(
        app, "/api/v1/bulk-uploads", content_type, body, staff_auth, declare_length=False
    )
    assert response.status_int == 201, response.text
    assert response.json["counts"]["rows"] == data.count(b"\n") - 1
    assert stream.taken == len(body)
    assert uploads(dbsession) == before + 1
