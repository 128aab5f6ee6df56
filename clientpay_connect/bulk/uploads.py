"""An upload as a signed-in person reaches it, on the API and the pages alike: the file of
the form, the upload stored for review (and audited), and the firm's upload or a 404."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyramid.httpexceptions import HTTPNotFound
from pyramid.request import Request

from clientpay_connect.accounts.services import audit
from clientpay_connect.admin.models import MerchantAccount
from clientpay_connect.api.errors import is_api_request, not_found
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.bulk.reader import ParsedFile
from clientpay_connect.bulk.services import clean_filename, firm_upload, store_upload
from clientpay_connect.bulk.validation import ValidatedRow
from clientpay_connect.security import firm_id

# Read one byte past the reader's own limit, so that it can say the file is too big.
MAX_UPLOAD_BYTES = 32 * 1024 * 1024 + 1


def save_upload(
    request: Request,
    account: MerchantAccount,
    field: Any,
    parsed: ParsedFile,
    rows: Sequence[ValidatedRow],
) -> BulkUpload:
    """Store the read file's rows for review and audit it: the API's and the page's upload."""
    upload = store_upload(
        request.dbsession,
        firm_id=firm_id(request),
        user_id=request.user.id,
        account=account,
        filename=clean_filename(getattr(field, "filename", "")),
        parsed=parsed,
        rows=rows,
    )
    audit(request, "bulk_upload.created", upload, rows=len(rows), filename=upload.filename)
    return upload


def upload_or_404(request: Request, *, lock: bool = False) -> BulkUpload:
    upload = firm_upload(
        request.dbsession, firm_id(request), int(request.matchdict["id"]), lock=lock
    )
    if upload is None:
        # The API's 404 is its JSON error; a page's is the not-found page.
        raise not_found("No such upload.") if is_api_request(request) else HTTPNotFound()
    return upload


def uploaded_bytes(request: Request) -> bytes | None:
    """The form's file, or None when its file field is missing or empty.

    A large request is spooled to temporary files (webob's copy of the body, then the
    form's file field): the file field's is closed here, the copy when the request ends
    (body_limits), rather than whenever the collector gets to them, so that a busy server
    keeps its file handles."""
    stream = getattr(request.POST.get("file"), "file", None)
    if stream is None:
        return None
    with stream:
        data: bytes = stream.read(MAX_UPLOAD_BYTES)
    return data
