"""Large uploads: above ``clientpay.bulk.inline_rows`` the links are made by the
``bulk.create_links`` job, with progress; the page can be left and opened again; a job that
fails makes nothing and the upload can be tried again."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import webtest
from pyramid.router import Router
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clientpay_connect import main
from clientpay_connect.bulk.actions import CREATE_LINKS_JOB
from clientpay_connect.bulk.models import BulkUpload
from clientpay_connect.bulk.tasks import RESUME_JOB
from clientpay_connect.db import utcnow
from clientpay_connect.links.models import PaymentLink
from clientpay_connect.mail.models import OutboxMessage
from tests.conftest import login
from tests.factories import MerchantAccountFactory
from tests.support import databases

API = "/api/v1/bulk-uploads"
ROWS = 5


def app_with(settings: dict[str, Any], **overrides: str) -> Router:
    return main({}, **{**settings, "clientpay.bulk.inline_rows": "2", **overrides})


@pytest.fixture(scope="module")
def job_app(app_settings: dict[str, Any]) -> Iterator[Router]:
    """Jobs run at once (after the commit), as in the other tests."""
    application = app_with(app_settings)
    yield application
    application.registry["dbengine"].dispose()


@pytest.fixture(scope="module")
def queued_app(
    app_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Router]:
    """Jobs wait in a real queue of their own until the test runs them."""
    folder = tmp_path_factory.mktemp("bulk-jobs")
    application = app_with(
        app_settings,
        **{
            "clientpay.jobs.immediate": "false",
            "clientpay.jobs.name": "clientpay-bulk-" + uuid.uuid4().hex[:8],
            "clientpay.jobs.sqlite_path": str(folder / "jobs.sqlite"),
        },
    )
    yield application
    application.registry["clientpay.jobs"].huey.flush()
    application.registry["dbengine"].dispose()


def client(application: Router, connection: Any, client_ip: str) -> Iterator[webtest.TestApp]:
    with databases.sharing_connection(application, connection):
        yield webtest.TestApp(
            application, extra_environ={"REMOTE_ADDR": client_ip, "HTTP_HOST": "localhost"}
        )


@pytest.fixture
def jobs_now(job_app: Router, db_connection: Any, client_ip: str) -> Iterator[webtest.TestApp]:
    yield from client(job_app, db_connection, client_ip)


@pytest.fixture
def jobs_later(queued_app: Router, db_connection: Any, client_ip: str) -> Iterator[webtest.TestApp]:
    yield from client(queued_app, db_connection, client_ip)


@pytest.fixture
def account(staff: Any) -> Any:
    return MerchantAccountFactory(firm=staff.firm, name="Operating")


def upload(testapp: webtest.TestApp, auth: dict[str, str], rows: int = ROWS) -> int:
    lines = ["Invoice Number,Recipient Name,Amount,Email"]
    lines += [f"B-{i},Client {i},{10 + i},c{i}@example.com" for i in range(rows)]
    data = "\n".join(lines).encode()
    response = testapp.post(API, {}, upload_files=[("file", "big.csv", data)], headers=auth)
    return int(response.json["id"])


def count(dbsession: Session, model: Any, *where: Any) -> int:
    return int(
        dbsession.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
    )


def run_queued(application: Router, upload_id: int, user_id: int) -> str:
    """What a worker does with the queued job."""
    result: str = application.registry["clientpay.jobs"].run_now(
        CREATE_LINKS_JOB, upload_id, user_id
    )
    return result


def test_a_large_send_all_runs_as_a_job_and_its_progress_reaches_the_total(
    jobs_now, dbsession, staff, staff_auth, account
):
    upload_id = upload(jobs_now, staff_auth)
    answer = jobs_now.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=202)
    assert answer.json["status"] == "processing" and answer.json["links"] is None

    status = jobs_now.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert status["status"] == "sent"
    assert status["progress"] == {"done": ROWS, "total": ROWS}
    assert status["counts"]["links"] == ROWS
    links = dbsession.execute(
        select(PaymentLink).where(PaymentLink.source == "bulk_upload").order_by(PaymentLink.id)
    ).scalars()
    made = list(links)
    assert [link.invoice_number for link in made] == [f"B-{i}" for i in range(ROWS)]
    assert {link.created_by_user_id for link in made} == {staff.id}
    assert (
        count(dbsession, OutboxMessage, OutboxMessage.link_id.in_([link.id for link in made]))
        == ROWS
    )

    # Asked again, the answer is the links already made (too many to list: see links.csv).
    again = jobs_now.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=200)
    assert again.json["links"] is None and again.json["counts"]["links"] == ROWS
    csv_lines = jobs_now.get(f"{API}/{upload_id}/links.csv", headers=staff_auth).text.splitlines()
    assert len(csv_lines) == ROWS + 1
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == ROWS


def test_at_the_threshold_the_links_are_made_in_the_request(jobs_now, staff_auth, account):
    upload_id = upload(jobs_now, staff_auth, rows=2)
    answer = jobs_now.post_json(f"{API}/{upload_id}/generate", {}, headers=staff_auth, status=201)
    assert len(answer.json["links"]) == 2


def test_the_page_shows_progress_until_the_job_has_run_and_can_be_left(
    jobs_later, queued_app, dbsession, staff, staff_auth, account
):
    upload_id = upload(jobs_later, staff_auth)
    jobs_later.post_json(f"{API}/{upload_id}/generate", {}, headers=staff_auth, status=202)

    login(jobs_later, staff)
    listing = jobs_later.get("/bulk")
    row = listing.html.find("tr", attrs={"data-upload-id": str(upload_id)})
    assert "Making links" in row.get_text()
    page = jobs_later.get(f"/bulk/{upload_id}")
    bar = page.html.find("progress")
    assert (bar["max"], bar["value"]) == (str(ROWS), "0")
    assert page.html.select_one("[data-progress-text]").get_text(strip=True).startswith("0 of 5")
    # Without script the page refreshes itself; with it, bulk.js polls the API.
    assert 'http-equiv="refresh"' in page.html.find("noscript").decode_contents()
    assert page.html.find("script", src=lambda src: src and "bulk.js" in src)
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 0
    # What bulk.js polls: the rows' counts, and no links while they are being made.
    polled = jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert (polled["status"], polled["progress"]) == ("processing", {"done": 0, "total": ROWS})
    assert (polled["counts"]["rows"], polled["counts"]["links"]) == (ROWS, 0)

    assert run_queued(queued_app, upload_id, staff.id) == "done"
    done = jobs_later.get(f"/bulk/{upload_id}")
    assert done.html.find("progress") is None
    assert len(done.html.select("[data-copy-target]")) == ROWS
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == ROWS
    # A job delivered twice does nothing the second time.
    assert run_queued(queued_app, upload_id, staff.id) == "skipped"
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == ROWS


def test_while_the_links_are_made_the_status_shows_the_counts_of_the_review(
    jobs_later, queued_app, dbsession, staff, staff_auth, account
):
    lines = ["Invoice Number,Recipient Name,Amount,Email"]
    lines += [f"D-{i % 3},Client {i},{10 + i},c{i}@example.com" for i in range(ROWS)]
    lines.append("D-9,No Address,1.50,")
    response = jobs_later.post(
        API, {}, upload_files=[("file", "d.csv", "\n".join(lines).encode())], headers=staff_auth
    )
    upload_id = int(response.json["id"])
    reviewed = jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert reviewed["counts"]["rows_with_warnings"] == 4
    assert reviewed["counts"]["rows_without_email"] == 1
    jobs_later.post_json(
        f"{API}/{upload_id}/generate", {"confirm_warnings": True}, headers=staff_auth, status=202
    )

    def tallies(status: dict[str, Any]) -> tuple[Any, ...]:
        return (status["counts"], status["warning_count"], status["total_amount"])

    polled = jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert polled["status"] == "processing"
    assert tallies(polled) == tallies(reviewed)
    # An upload claimed before the counts were kept is counted as before.
    dbsession.get(BulkUpload, upload_id).claimed_counts = None
    dbsession.flush()
    assert tallies(jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json) == tallies(
        reviewed
    )

    assert run_queued(queued_app, upload_id, staff.id) == "done"
    made = jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert made["counts"] == {**reviewed["counts"], "links": ROWS + 1}


def test_a_job_that_fails_makes_nothing_and_the_upload_can_be_tried_again(
    jobs_later, queued_app, dbsession, staff, staff_auth, account
):
    upload_id = upload(jobs_later, staff_auth)
    jobs_later.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=202)
    # The account is switched off before a worker gets to the job.
    account.active = False
    dbsession.flush()
    assert run_queued(queued_app, upload_id, staff.id) == "failed"

    status = jobs_later.get(f"{API}/{upload_id}", headers=staff_auth).json
    assert (status["status"], status["action"]) == ("failed", None)
    assert status["error_message"] == "The links could not be made, so none were. Please try again."
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == 0
    assert count(dbsession, OutboxMessage) == 0

    account.active = True
    dbsession.flush()
    jobs_later.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=202)
    assert run_queued(queued_app, upload_id, staff.id) == "done"
    dbsession.expire_all()
    assert dbsession.get(BulkUpload, upload_id).status == "sent"
    assert count(dbsession, PaymentLink, PaymentLink.source == "bulk_upload") == ROWS
    assert count(dbsession, OutboxMessage) == ROWS


def test_a_job_lost_with_its_worker_is_queued_again_and_makes_one_set(
    jobs_later, queued_app, dbsession, staff, staff_auth, account
):
    upload_id = upload(jobs_later, staff_auth)
    busy_id = upload(jobs_later, staff_auth)
    for started in (upload_id, busy_id):
        jobs_later.post_json(f"{API}/{started}/send", {}, headers=staff_auth, status=202)
    # No worker ever runs the first job (it died holding it); the second is under way.
    lost = dbsession.get(BulkUpload, upload_id)
    lost.progress_at = utcnow() - dt.timedelta(minutes=11)
    dbsession.flush()
    queue = queued_app.registry["clientpay.jobs"]
    waiting = queue.pending_count()

    assert queue.run_now(RESUME_JOB) == [upload_id]
    assert queue.pending_count() == waiting + 1
    # The next sweep leaves it alone: it was just queued again.
    assert queue.run_now(RESUME_JOB) == []

    assert run_queued(queued_app, upload_id, staff.id) == "done"
    # Had the first job only been slow, it finds the work done and makes nothing.
    assert run_queued(queued_app, upload_id, staff.id) == "skipped"
    made = count(
        dbsession,
        PaymentLink,
        PaymentLink.source == "bulk_upload",
        PaymentLink.created_at > lost.created_at,
    )
    assert made == ROWS
    dbsession.expire_all()
    assert dbsession.get(BulkUpload, upload_id).status == "sent"
    assert dbsession.get(BulkUpload, busy_id).status == "processing"


def test_a_job_that_is_still_reporting_progress_is_left_alone(
    jobs_later, queued_app, dbsession, staff_auth, account
):
    upload_id = upload(jobs_later, staff_auth)
    jobs_later.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=202)
    queue = queued_app.registry["clientpay.jobs"]
    assert queue.run_now(RESUME_JOB, utcnow() + dt.timedelta(minutes=9)) == []
    assert queue.run_now(RESUME_JOB, utcnow() + dt.timedelta(minutes=11)) == [upload_id]


def test_send_all_queues_its_emails_as_a_few_batches_that_send_each_once(
    jobs_later, queued_app, dbsession, staff, staff_auth, account
):
    huey = queued_app.registry["clientpay.jobs"].huey
    huey.flush()
    upload_id = upload(jobs_later, staff_auth)
    jobs_later.post_json(f"{API}/{upload_id}/send", {}, headers=staff_auth, status=202)
    assert run_queued(queued_app, upload_id, staff.id) == "done"

    # What a worker finds in the queue: the links job it already ran, then one batch.
    tasks = []
    while (task := huey.dequeue()) is not None:
        tasks.append(task)
    assert [task.name for task in tasks] == [
        "bulk.create_links",
        "mail.deliver_many",
    ]
    [batch] = tasks[1:]
    queued = list(dbsession.execute(select(OutboxMessage.id).order_by(OutboxMessage.id)).scalars())
    assert len(queued) == ROWS and list(batch.args[0]) == queued

    for task in tasks:
        huey.execute(task)
    dbsession.expire_all()
    statuses = dbsession.execute(select(OutboxMessage.status, OutboxMessage.attempts)).all()
    assert sorted(statuses) == [("sent", 1)] * ROWS
    # A batch delivered twice (a worker died after sending) sends nothing more.
    huey.execute(batch)
    dbsession.expire_all()
    assert dbsession.execute(select(OutboxMessage.attempts)).scalars().all() == [1] * ROWS
