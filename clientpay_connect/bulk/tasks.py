"""The job that makes a large upload's links (see actions.py for its two phases)."""

from __future__ import annotations

from clientpay_connect.bulk.actions import CREATE_LINKS_JOB, make_links_in_background
from clientpay_connect.jobs import JobContext, job


@job(CREATE_LINKS_JOB)
def create_links(ctx: JobContext, upload_id: int, user_id: int | None = None) -> str:
    # Each phase runs in a transaction of its own (progress must be visible while the links
    # are prepared), so the context's own transaction is left empty.
    return make_links_in_background(ctx.registry, upload_id, user_id)
