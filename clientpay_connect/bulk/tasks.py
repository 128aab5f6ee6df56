"""The job that makes a large upload's links, and the sweep that queues it again when a
worker died on it.

The job works in two phases, each ending with a checkpoint:

1. preparing: the links' secrets are drawn, hashed and encrypted, with the progress
   committed (at most every half second) in a short transaction of its own;
2. writing: every link and email in one transaction (writer.py; on PostgreSQL a large
   upload's in two, committed one just before the other); meanwhile the page shows the
   preparation complete and says the links are being saved.

A job that fails leaves nothing, and the upload goes back to its review with a message;
unless it failed between the two commits: the links made then stay, the upload stays
processing, and the sweep queues the job again, which makes the other rows' links.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from sqlalchemy import or_, select, update

from clientpay_connect.bulk.actions import CREATE_LINKS_JOB
from clientpay_connect.bulk.fastwrite import checkpoint, commit_without_checkpoint
from clientpay_connect.bulk.models import UPLOAD_FAILED, UPLOAD_PROCESSING, BulkUpload
from clientpay_connect.bulk.writer import (
    PreparedSecret,
    live_rows_without_links,
    make_links,
    prepare_secrets,
    upload_has_links,
)
from clientpay_connect.db import utcnow
from clientpay_connect.jobs import job, periodic_job
from clientpay_connect.work import Work

RESUME_JOB = "bulk.resume_stuck"
QUIET_SETTING = "clientpay.bulk.stuck_after_seconds"
# Links prepared between two progress reports of the job.
PROGRESS_BATCH = 2_000
# The share of the links' secrets the job prepares before it starts writing, reporting
# progress, by database. PostgreSQL writes in its own process, so the secrets are better
# prepared meanwhile, on the other core (100,000 links: 4.1 s end to end instead of 4.6).
# SQLite writes in ours: measured, overlapping gains nothing there, and one statement for
# all the rows beats chunks, so everything is prepared first.
UPFRONT_SHARE = {"postgresql": 0.0}
UPFRONT_SHARE_DEFAULT = 1.0
# How often, at most, the job commits its progress.
PROGRESS_SECONDS = 0.5
FAILED_MESSAGE = "The links could not be made, so none were. Please try again."

log = logging.getLogger(__name__)


@job(CREATE_LINKS_JOB)
def create_links(work: Work, upload_id: int, user_id: int | None = None) -> str:
    return make_links_in_background(work, upload_id, user_id)


@periodic_job(RESUME_JOB, minute="*/5")
def resume_stuck(work: Work, now: dt.datetime | None = None) -> list[int]:
    """``now`` is given by tests."""
    quiet_for = dt.timedelta(seconds=int(work.settings.get(QUIET_SETTING) or 600))
    return resume_stuck_uploads(work, now or utcnow(), quiet_for)


def make_links_in_background(work: Work, upload_id: int, user_id: int | None) -> str:
    """The job: prepare the secrets with progress, then write everything at once. Each
    step ends with a checkpoint: the page must see the progress while the links are
    prepared, and no transaction may stay open (on SQLite, holding the write lock) meanwhile."""
    upload = work.dbsession.get(BulkUpload, upload_id)
    if upload is None or upload.status != UPLOAD_PROCESSING:
        # Done already (a job delivered twice), or given up: nothing to do.
        return "skipped"
    total = upload.progress_total
    work.checkpoint()
    try:
        started = time.perf_counter()
        secrets = _prepare_with_progress(work, upload_id, total)
        prepared = time.perf_counter()
        result = _write_links(work, upload_id, secrets, user_id)
        written = time.perf_counter()
        if result == "done":
            commit_without_checkpoint(work.dbsession)
            # Here, not when the job returns: a failed commit is a failure like any other.
            work.checkpoint()
    except Exception:
        log.exception("bulk upload %s: making the links failed", upload_id)
        work.rollback_and_begin()
        _mark_failed(work, upload_id)
        return "failed"
    done = time.perf_counter()
    if result == "done":
        # The links show already; the log they wrote is copied back now (SQLite).
        checkpoint(work.registry["dbengine"])
        # Where a large upload's wait goes, for whoever tunes it (benchmarks/bulk_upload.py).
        log.info(
            "bulk upload %s: %s links made in %.2f s "
            "(preparing %.2f s, writing %.2f s, committing %.2f s)",
            upload_id, total, done - started,
            prepared - started, written - prepared, done - written,
        )  # fmt: skip
    return result


def _prepare_with_progress(work: Work, upload_id: int, total: int) -> list[PreparedSecret]:
    """The secrets to prepare before writing (UPFRONT_SHARE), with progress; any others are
    prepared while the links are written (make_links). Progress then shows the total,
    which the page reads as "saving the links"."""
    dialect = work.registry["dbengine"].dialect.name
    upfront = round(total * UPFRONT_SHARE.get(dialect, UPFRONT_SHARE_DEFAULT))
    secrets: list[PreparedSecret] = []
    published = time.monotonic()
    while len(secrets) < upfront:
        secrets.extend(prepare_secrets(work.registry, min(PROGRESS_BATCH, upfront - len(secrets))))
        # The page asks once a second; a commit per batch would be most of the work.
        if time.monotonic() - published >= PROGRESS_SECONDS:
            _publish_progress(work, upload_id, len(secrets))
            published = time.monotonic()
    _publish_progress(work, upload_id, total)
    return secrets


def _publish_progress(work: Work, upload_id: int, done: int) -> None:
    work.dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
        .values(progress_done=done, progress_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    work.checkpoint()


def _write_links(
    work: Work, upload_id: int, secrets: list[PreparedSecret], user_id: int | None
) -> str:
    upload = work.dbsession.execute(
        select(BulkUpload).where(BulkUpload.id == upload_id).with_for_update()
    ).scalar_one_or_none()
    if upload is None or upload.status != UPLOAD_PROCESSING:
        return "skipped"
    row_ids = live_rows_without_links(work.dbsession, upload_id)
    make_links(work, upload, row_ids, secrets[: len(row_ids)], user_id, beside=True)
    return "done"


def _mark_failed(work: Work, upload_id: int) -> None:
    """Back to review with a message: nothing was made, and the action may be taken again.
    Unless some links were made (committed beside the job's own transaction, writer.py):
    those stay, and the upload stays processing, its clock restarted, for the sweep to
    queue the job again, which makes the rest."""
    if upload_has_links(work.dbsession, upload_id):
        log.warning("bulk upload %s: some links were made; the sweep will make the rest", upload_id)
        _restart_clock(work, upload_id, utcnow())
        return
    work.dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
        .values(status=UPLOAD_FAILED, action=None, progress_done=0, error_message=FAILED_MESSAGE)
        .execution_options(synchronize_session=False)
    )


def resume_stuck_uploads(work: Work, now: dt.datetime, quiet_for: dt.timedelta) -> list[int]:
    """Queue the links' job again for every upload whose job has said nothing for
    ``quiet_for``: its worker died, or the queue lost it. Safe if the first job is merely
    slow: the links are written once, by whichever job locks the upload first; the other
    finds it done and skips it."""
    stuck = work.dbsession.execute(
        select(BulkUpload.id, BulkUpload.created_by_user_id).where(
            BulkUpload.status == UPLOAD_PROCESSING,
            or_(BulkUpload.progress_at.is_(None), BulkUpload.progress_at < now - quiet_for),
        )
    ).all()
    resumed = []
    for upload_id, user_id in stuck:
        # Conditional, and it restarts the clock: one new job per quiet period, not one per
        # sweep, and none if the upload finished meanwhile.
        if _restart_clock(work, upload_id, now):
            log.warning("bulk upload %s: its job went quiet; queued it again", upload_id)
            work.enqueue_after_commit(CREATE_LINKS_JOB, upload_id, user_id)
            resumed.append(upload_id)
    return resumed


def _restart_clock(work: Work, upload_id: int, now: dt.datetime) -> bool:
    """The sweep's clock of a processing upload starts again at ``now``; False if the upload
    is no longer processing."""
    restarted = work.dbsession.execute(
        update(BulkUpload)
        .where(BulkUpload.id == upload_id, BulkUpload.status == UPLOAD_PROCESSING)
        .values(progress_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(restarted.rowcount == 1)  # type: ignore[attr-defined]
