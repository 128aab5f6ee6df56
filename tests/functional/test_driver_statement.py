"""db.DriverStatement: a Core SELECT run straight on the driver's cursor answers as
SQLAlchemy's own execution of it would, on SQLite and on PostgreSQL; and db.as_loaded makes
such a row the object a query would have loaded."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Integer, bindparam, event, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import DBAPIError

from clientpay_connect.accounts.models import User
from clientpay_connect.db import DriverStatement, as_loaded
from clientpay_connect.links.models import STATUS_CANCELLED, STATUS_OUTSTANDING, PaymentLink
from tests.factories import MerchantAccountFactory, UserFactory
from tests.support.sent import T0, make_link

AFTER = "after"


@pytest.fixture
def links(dbsession, app) -> list[Any]:
    account = MerchantAccountFactory(firm=UserFactory().firm)
    made = []
    for n in range(6):
        link = make_link(dbsession, app, account, 1_000 + n, created_at=T0 + dt.timedelta(days=n))
        if n % 3 == 0:
            link.status = STATUS_CANCELLED
        made.append(link)
    dbsession.flush()
    return made


def statement(firm_id: int) -> Any:
    return (
        select(PaymentLink.id, PaymentLink.created_at, PaymentLink.emails, PaymentLink.status)
        .where(
            PaymentLink.firm_id == firm_id,
            PaymentLink.status.in_([STATUS_OUTSTANDING, STATUS_CANCELLED]),
            PaymentLink.created_at > bindparam(AFTER, None, type_=PaymentLink.created_at.type),
        )
        .order_by(PaymentLink.id)
        .limit(bindparam("wanted", None, type_=Integer))
    )


def test_the_rows_are_sqlalchemys(dbsession, links):
    query = statement(links[0].firm_id)
    params = {AFTER: T0 + dt.timedelta(hours=1), "wanted": 4}
    connection = dbsession.connection()
    expected = [tuple(row) for row in connection.execute(query, params)]
    driver = DriverStatement(query, connection.dialect)
    assert driver.rows(connection, params) == expected
    assert [row[0] for row in expected] == [link.id for link in links[1:5]]
    assert driver.fields == ("id", "created_at", "emails", "status")
    # Aware timestamps on both databases (UTCDateTime's result processor on SQLite).
    assert all(row[1].utcoffset() == dt.timedelta(0) for row in expected)
    # Run again with other values: the statement is compiled once, its values bound each time.
    assert [row[0] for row in driver.rows(connection, {AFTER: T0, "wanted": 1})] == [links[1].id]


def test_a_bind_processor_still_checks_its_value(dbsession, links):
    connection = dbsession.connection()
    driver = DriverStatement(statement(links[0].firm_id), connection.dialect)
    with pytest.raises(ValueError, match="naive"):
        driver.rows(connection, {AFTER: dt.datetime(2025, 1, 1), "wanted": 1})


def test_listeners_see_the_statement(dbsession, links):
    connection = dbsession.connection()
    driver = DriverStatement(statement(links[0].firm_id), connection.dialect)
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        seen.append(sql)

    event.listen(connection.engine, "before_cursor_execute", note)
    try:
        driver.rows(connection, {AFTER: T0, "wanted": 1})
    finally:
        event.remove(connection.engine, "before_cursor_execute", note)
    assert seen == [driver.sql]


def test_a_drivers_error_is_sqlalchemys(dbsession):
    connection = dbsession.connection()
    wrong = select(PaymentLink.id).where(PaymentLink.id == bindparam("id", None, type_=Integer))
    driver = DriverStatement(wrong, connection.dialect)
    driver.sql = driver.sql.replace("payment_links", "no_such_table")
    with pytest.raises(DBAPIError):
        driver.rows(connection, {"id": 1})


def user_columns(dbsession: Any, user_id: int) -> list[Any]:
    connection = dbsession.connection()
    query = select(*User.__table__.columns).where(User.id == bindparam("id", None, type_=Integer))
    return list(DriverStatement(query, connection.dialect).rows(connection, {"id": user_id})[0])


def test_a_row_made_an_object_is_as_a_query_would_load_it(app, dbsession):
    made = UserFactory(name="Ada")
    dbsession.flush()
    user_id, firm_id = made.id, made.firm_id
    columns = user_columns(dbsession, user_id)
    dbsession.expunge_all()
    user = as_loaded(dbsession, User, columns)
    assert sa_inspect(user).persistent and not dbsession.dirty and not dbsession.new
    assert (user.id, user.name, user.firm_id) == (user_id, "Ada", firm_id)
    assert user.firm.id == firm_id  # a relationship loads through the session, as any
    # The same identity: the object the session holds already, as a query would give.
    assert as_loaded(dbsession, User, columns) is user
    assert dbsession.get(User, user_id) is user
    # A change is a change like any other: flushed, and read back.
    user.name = "Ada L."
    assert user in dbsession.dirty
    dbsession.flush()
    dbsession.expire_all()
    assert dbsession.get(User, user_id).name == "Ada L."
