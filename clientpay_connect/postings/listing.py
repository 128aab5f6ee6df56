"""One page of a firm's postings, newest first, as the API and the Manage Postings page list
them: a view (all, or one status) and a keyset cursor on the id, so that a page never shifts
while postings arrive."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect.postings.models import POSTING_STATUSES, Posting
from clientpay_connect.sent.cursor import decode_cursor, encode_cursor

VIEW_ALL = "all"
VIEWS = (VIEW_ALL, *POSTING_STATUSES)
# The cursor's "sort": newest first, by id.
CURSOR_SORT = "-id"
CURSOR_KIND = "int"


@dataclass
class PostingPage:
    postings: list[Posting]
    next_cursor: str | None
    total: int


def fetch_page(
    dbsession: Session, firm_id: int, view: str, limit: int, cursor_text: str | None = None
) -> PostingPage:
    """The page after ``cursor_text`` (raises ``CursorError`` for one we did not give out)."""
    query = select(Posting).where(Posting.firm_id == firm_id)
    if view != VIEW_ALL:
        query = query.where(Posting.status == view)
    total = dbsession.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    if cursor_text:
        cursor = decode_cursor(cursor_text, CURSOR_SORT, CURSOR_KIND)
        query = query.where(Posting.id < cursor.id)
    rows = list(dbsession.execute(query.order_by(Posting.id.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor(CURSOR_SORT, CURSOR_KIND, rows[-1].id, rows[-1].id)
    return PostingPage(rows, next_cursor, int(total))
