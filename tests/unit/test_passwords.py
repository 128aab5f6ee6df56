"""Passwords (argon2) and the small rules of accounts: emails, slugs."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from clientpay_connect.accounts.models import User
from clientpay_connect.accounts.services import (
    check_password,
    generate_password,
    hash_password,
    is_valid_email,
    normalize_email,
    set_password,
    slugify,
)


def test_a_password_hash_is_argon2id_and_salted():
    first, second = hash_password("same password"), hash_password("same password")
    assert first.startswith("$argon2id$")
    assert first != second
    assert "same password" not in first


def test_check_password():
    user = User(password_hash=hash_password("right one"), session_version=1)
    assert check_password(user, "right one")
    assert not check_password(user, "wrong one")
    assert not check_password(User(password_hash=None), "")
    assert not check_password(None, "anything")
    assert not check_password(User(password_hash="not a hash"), "anything")


def test_an_old_hash_is_upgraded_on_sign_in():
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("right one")
    user = User(password_hash=weak)
    assert check_password(user, "right one")
    assert user.password_hash != weak
    assert not PasswordHasher().check_needs_rehash(user.password_hash)
    assert check_password(user, "right one")


def test_set_password_ends_older_sessions():
    user = User(password_hash=hash_password("old password"), session_version=4)
    set_password(user, "new password")
    assert user.session_version == 5
    assert check_password(user, "new password")
    assert not check_password(user, "old password")


def test_generated_passwords_are_long_and_different():
    passwords = {generate_password() for _ in range(20)}
    assert len(passwords) == 20
    assert min(len(p) for p in passwords) >= 16


@pytest.mark.parametrize(
    ("raw", "normal"), [("  Ann@Firm.TEST ", "ann@firm.test"), ("b@c.d", "b@c.d")]
)
def test_normalize_email(raw, normal):
    assert normalize_email(raw) == normal


@pytest.mark.parametrize("email", ["a@b.co", "first.last+tag@law-firm.example"])
def test_valid_emails(email):
    assert is_valid_email(email)


@pytest.mark.parametrize(
    "email", ["", "no-at-sign", "a@b", "two@@b.co", "a b@c.co", "<a@b.co>", "a@b.co,c@d.co"]
)
def test_invalid_emails(email):
    assert not is_valid_email(email)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Hale & Partners LLP", "hale-partners-llp"),
        ("  ", "firm"),
        ("Smith, Jones & Co.", "smith-jones-co"),
    ],
)
def test_slugify(name, slug):
    assert slugify(name) == slug
