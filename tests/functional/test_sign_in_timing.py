"""Sign-in spends the same hashing time whatever the address: one argon2 verification with the
hasher's own parameters, whether the address is unknown, its account inactive or without a
password, or real. Counted through argon2 itself (no clock), so the test is exact and fast."""

from __future__ import annotations

import argon2
import pytest
from argon2 import PasswordHasher

from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory


@pytest.fixture
def verifications(monkeypatch) -> list[argon2.Parameters]:
    """The parameters of every hash argon2 verifies a password against, in order."""
    seen: list[argon2.Parameters] = []
    verify = PasswordHasher.verify

    def counted(self, hash, password):
        seen.append(argon2.extract_parameters(hash))
        return verify(self, hash, password)

    # argon2's class, not our code: every hasher, ours included, verifies through it.
    monkeypatch.setattr(PasswordHasher, "verify", counted)
    return seen


def sign_in(testapp, email: str, password: str) -> int:
    form = testapp.get("/login").forms[0]
    form["email"], form["password"] = email, password
    return int(form.submit(status=[303, 400]).status_int)


def current_parameters() -> argon2.Parameters:
    return argon2.extract_parameters(PasswordHasher().hash("anything"))


@pytest.mark.parametrize(
    ("who", "password", "status"),
    [
        ("unknown", "a guess", 400),
        ("inactive", TEST_PASSWORD, 400),
        ("without a password", "a guess", 400),
        ("real", "a wrong guess", 400),
        ("real", TEST_PASSWORD, 303),
    ],
)
def test_every_sign_in_verifies_one_hash_of_the_same_cost(
    testapp, firm, verifications, who, password, status
):
    email = "unknown-person@example.test"
    if who == "inactive":
        email = UserFactory(firm=firm, active=False).email
    elif who == "without a password":
        email = UserFactory(firm=firm, password_hash=None).email
    elif who == "real":
        email = UserFactory(firm=firm).email
    assert sign_in(testapp, email, password) == status
    assert verifications == [current_parameters()]
