"""API tokens end with the trust they were made under: deactivating a person revokes them
(reactivating does not bring them back), and so does a new password, whoever sets it."""

from __future__ import annotations

from sqlalchemy import select

from clientpay_connect.accounts.models import ApiToken, AuditEvent
from clientpay_connect.accounts.services import create_api_token, set_password
from tests.conftest import csrf_token, login
from tests.factories import UserFactory

MERCHANT_ACCOUNTS = "/api/v1/merchant-accounts"


def token_of(dbsession, user, name="integration"):
    row, token = create_api_token(dbsession, user, name)
    dbsession.flush()
    return row, {"Authorization": f"Bearer {token}"}


def works(testapp, auth) -> bool:
    answer = testapp.get(MERCHANT_ACCOUNTS, headers=auth, status=[200, 401])
    return answer.status_int == 200


def revoked(dbsession, row) -> bool:
    dbsession.expire_all()
    return dbsession.get(ApiToken, row.id).revoked_at is not None


def test_deactivating_revokes_the_tokens_and_reactivating_leaves_them_revoked(
    testapp, dbsession, admin, staff
):
    row, auth = token_of(dbsession, staff)
    bystander_row, bystander = token_of(dbsession, admin, "admin's own")
    assert works(testapp, auth)

    login(testapp, admin)
    token = csrf_token(testapp)
    testapp.post(f"/admin/users/{staff.id}/deactivate", {"csrf_token": token}, status=303)
    assert revoked(dbsession, row)
    testapp.post(f"/admin/users/{staff.id}/reactivate", {"csrf_token": token}, status=303)
    dbsession.expire_all()
    assert staff.active
    assert not works(testapp, auth)
    assert revoked(dbsession, row)
    assert works(testapp, bystander) and not revoked(dbsession, bystander_row)
    details = dbsession.execute(
        select(AuditEvent.details).where(AuditEvent.action == "user.deactivated")
    ).scalar_one()
    assert details["api_tokens_revoked"] == 1


def test_reactivating_revokes_a_token_left_by_a_deactivation_made_elsewhere(
    testapp, dbsession, admin, staff
):
    """Made inactive straight in the database (or by an older version): the token was only
    refused while inactive, and would otherwise work again on reactivation."""
    row, auth = token_of(dbsession, staff)
    staff.active = False
    dbsession.flush()
    assert not works(testapp, auth)

    answer = testapp.patch_json(
        f"/api/v1/users/{staff.id}", {"active": True}, headers=token_of(dbsession, admin)[1]
    )
    assert answer.json["active"] is True
    assert not works(testapp, auth)
    assert revoked(dbsession, row)


def test_deactivating_through_the_api_revokes_the_tokens(testapp, dbsession, admin, staff):
    row, auth = token_of(dbsession, staff)
    admin_auth = token_of(dbsession, admin)[1]
    testapp.patch_json(f"/api/v1/users/{staff.id}", {"active": False}, headers=admin_auth)
    testapp.patch_json(f"/api/v1/users/{staff.id}", {"active": True}, headers=admin_auth)
    assert not works(testapp, auth)
    assert revoked(dbsession, row)


def test_a_password_reset_revokes_the_tokens(testapp, dbsession, admin, staff):
    row, auth = token_of(dbsession, staff)
    login(testapp, admin)
    testapp.post(
        f"/admin/users/{staff.id}/reset-password", {"csrf_token": csrf_token(testapp)}, status=303
    )
    assert not works(testapp, auth)
    assert revoked(dbsession, row)


def test_any_new_password_revokes_the_tokens(testapp, dbsession, firm):
    """set_password is the one way a password changes (reset, and a person's own change)."""
    person = UserFactory(firm=firm, role="admin")
    row, auth = token_of(dbsession, person)
    other_row, other = token_of(dbsession, UserFactory(firm=firm))
    set_password(person, "a brand new password")
    dbsession.flush()
    assert not works(testapp, auth)
    assert revoked(dbsession, row)
    assert works(testapp, other) and not revoked(dbsession, other_row)
