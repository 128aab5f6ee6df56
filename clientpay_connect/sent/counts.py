"""Folding link_counts' deltas (sent/models.py) into one row a group, so that a total sums a
firm's groups rather than every write since the firm began."""

from __future__ import annotations

import zope.sqlalchemy
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from clientpay_connect.sent.models import COUNTED_COLUMNS, LinkCount

_GROUP = [getattr(LinkCount, name) for name in COUNTED_COLUMNS]


def firms_to_compact(dbsession: Session) -> list[int]:
    """The firms with a group of more than one row (or a row that counts nothing)."""
    loose = (
        select(LinkCount.firm_id)
        .group_by(*_GROUP)
        .having((func.count() > 1) | (func.sum(LinkCount.n) == 0))
        .subquery()
    )
    return list(dbsession.scalars(select(loose.c.firm_id).distinct().order_by(loose.c.firm_id)))


def compact_link_counts(dbsession: Session, firm_id: int) -> None:
    """PostgreSQL's (SQLite's link_counts stays empty: firms_to_compact finds none there)."""
    # One statement: the rows it deletes are exactly those it sums (RETURNING), so a delta
    # a writer commits meanwhile is either folded in or left beside the sum, never lost or
    # counted twice; under READ COMMITTED a second compaction that finds a row already
    # deleted skips it. Groups that net to zero (all their links gone or moved) leave no row.
    gone = (
        delete(LinkCount)
        .where(LinkCount.firm_id == firm_id)
        .returning(*_GROUP, LinkCount.n)
        .cte("gone")
    )
    group = [gone.c[name] for name in COUNTED_COLUMNS]
    folded = select(*group, func.sum(gone.c.n)).group_by(*group).having(func.sum(gone.c.n) != 0)
    dbsession.execute(insert(LinkCount).from_select([*COUNTED_COLUMNS, "n"], folded).add_cte(gone))
    # Whether zope.sqlalchemy notices a Core statement depends on its version: say so, or
    # the commit would roll the compaction back.
    zope.sqlalchemy.mark_changed(dbsession)
