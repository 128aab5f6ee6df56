"""Secrets at rest: Fernet encryption with key rotation (MultiFernet), and one-way hashes."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from typing import Any

from cryptography.fernet import Fernet, MultiFernet


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_token(prefix: str = "") -> str:
    """A URL-safe token with 256 bits of randomness."""
    return prefix + secrets.token_urlsafe(32)


class Encryptor:
    """Encrypts with the first key, decrypts with any: rotate by putting a new key first."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("clientpay.encryption_keys is empty")
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")


class MissingSecrets(RuntimeError):
    """Start-up stops: a production-like config lacks the session secret or encryption keys."""


class WeakSecret(MissingSecrets):
    """Start-up stops: the session secret is too short to keep session cookies unforgeable."""


# The session cookie's signature is an HMAC keyed by the secret: a short one can be guessed
# offline from a single cookie, and then anyone can sign themselves in as anyone.
MIN_SECRET_BYTES = 32


def ensure_secrets(settings: dict[str, Any]) -> None:
    """Fill in the session secret and encryption keys when the ini leaves them empty, and
    refuse a session secret shorter than ``MIN_SECRET_BYTES``.

    A development instance keeps generated values in ``clientpay.secrets_file`` (beside its
    data, so a copied ini is its own instance); production sets them through the environment
    and has no secrets file, so a missing value stops start-up instead of being invented.
    """
    _fill_in_secrets(settings)
    _refuse_a_short_secret(str(settings["clientpay.secret"]))


def _refuse_a_short_secret(secret: str) -> None:
    length = len(secret.encode("utf-8"))
    if length < MIN_SECRET_BYTES:
        raise WeakSecret(
            f"refusing to start: clientpay.secret (CLIENTPAY_SECRET) is {length} "
            f"byte{'' if length == 1 else 's'} long; "
            f"it signs the session cookies and must be at least {MIN_SECRET_BYTES} bytes of "
            "random text, for example the output of "
            '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.'
        )


def _fill_in_secrets(settings: dict[str, Any]) -> None:
    if settings.get("clientpay.secret") and settings.get("clientpay.encryption_keys"):
        return
    path = settings.get("clientpay.secrets_file")
    if not path:
        missing = [
            env
            for key, env in (
                ("clientpay.secret", "CLIENTPAY_SECRET"),
                ("clientpay.encryption_keys", "CLIENTPAY_ENCRYPTION_KEYS"),
            )
            if not settings.get(key)
        ]
        raise MissingSecrets(
            f"refusing to start: {' and '.join(missing)} not set, and there is no secrets file "
            "(clientpay.secrets_file is empty, as in production). Set them in the environment; "
            "CLIENTPAY_ENCRYPTION_KEYS takes Fernet keys, comma-separated, newest first."
        )
    stored = _load_or_create_secrets(path)
    settings["clientpay.secret"] = settings.get("clientpay.secret") or stored["secret"]
    settings["clientpay.encryption_keys"] = (
        settings.get("clientpay.encryption_keys") or stored["encryption_key"]
    )


def _load_or_create_secrets(path: str) -> dict[str, str]:
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            return dict(json.load(handle))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    values = {
        "secret": secrets.token_urlsafe(48),
        "encryption_key": Fernet.generate_key().decode("ascii"),
    }
    # O_EXCL: two processes starting at once agree on one file instead of overwriting.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, encoding="utf-8") as handle:
            return dict(json.load(handle))
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    return values


def encryption_keys(settings: dict[str, Any]) -> list[str]:
    return [k.strip() for k in str(settings["clientpay.encryption_keys"]).split(",") if k.strip()]
