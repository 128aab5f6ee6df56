"""Secrets at rest: rotating encryption keys, one-way hashes, and where secrets come from."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
from cryptography.fernet import Fernet, InvalidToken

from clientpay_connect.crypto import (
    MIN_SECRET_BYTES,
    Encryptor,
    MissingSecrets,
    WeakSecret,
    encryption_keys,
    ensure_secrets,
    new_token,
    sha256_hex,
)

SECRET = "s" * MIN_SECRET_BYTES
CONFIGURED = "configured-" + "x" * MIN_SECRET_BYTES


def test_a_key_rotation_keeps_old_ciphertexts_readable():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Encryptor([old]).encrypt("refresh-token-1")
    rotated = Encryptor([new, old])
    assert rotated.decrypt(before) == "refresh-token-1"
    after = rotated.encrypt("refresh-token-2")
    # New ciphertexts use the first key only, so the old key can be retired afterwards.
    assert Encryptor([new]).decrypt(after) == "refresh-token-2"
    with pytest.raises(InvalidToken):
        Encryptor([old]).decrypt(after)


def test_ciphertexts_differ_and_hide_the_plaintext():
    encryptor = Encryptor([Fernet.generate_key().decode()])
    first, second = encryptor.encrypt("secret"), encryptor.encrypt("secret")
    assert first != second
    assert "secret" not in first


def test_no_keys_is_an_error():
    with pytest.raises(ValueError, match="encryption_keys"):
        Encryptor([])


def test_keys_are_read_comma_separated_newest_first():
    assert encryption_keys({"clientpay.encryption_keys": " k1 , k2,, "}) == ["k1", "k2"]


def test_sha256_hex_and_tokens():
    assert sha256_hex("abc") == hashlib.sha256(b"abc").hexdigest()
    token = new_token("cpc_")
    assert token.startswith("cpc_")
    assert len(token) >= 4 + 43  # 32 random bytes, base64url
    assert new_token() != new_token()


def test_development_secrets_are_made_once_and_kept(tmp_path):
    path = tmp_path / "var" / "secrets.json"
    first = {"clientpay.secrets_file": str(path)}
    ensure_secrets(first)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())
    assert first["clientpay.secret"] == stored["secret"]
    assert first["clientpay.encryption_keys"] == stored["encryption_key"]
    Encryptor(encryption_keys(first))  # a valid Fernet key

    second = {"clientpay.secrets_file": str(path)}
    ensure_secrets(second)
    assert second == first


def test_configured_secrets_win_over_the_file(tmp_path):
    path = tmp_path / "secrets.json"
    settings = {"clientpay.secrets_file": str(path), "clientpay.secret": CONFIGURED}
    ensure_secrets(settings)
    assert settings["clientpay.secret"] == CONFIGURED
    assert settings["clientpay.encryption_keys"] == json.loads(path.read_text())["encryption_key"]


def test_without_a_secrets_file_nothing_is_invented():
    with pytest.raises(MissingSecrets, match="CLIENTPAY_SECRET and CLIENTPAY_ENCRYPTION_KEYS"):
        ensure_secrets({"clientpay.secrets_file": ""})
    with pytest.raises(MissingSecrets, match="refusing to start: CLIENTPAY_ENCRYPTION_KEYS not"):
        ensure_secrets({"clientpay.secrets_file": "", "clientpay.secret": SECRET})
    settings = {
        "clientpay.secrets_file": "",
        "clientpay.secret": SECRET,
        "clientpay.encryption_keys": "k",
    }
    ensure_secrets(settings)
    assert settings["clientpay.secret"] == SECRET


@pytest.mark.parametrize("secret", ["x", "s" * (MIN_SECRET_BYTES - 1), "é" * 15 + "x"])
def test_a_session_secret_under_32_bytes_is_refused(secret):
    settings = {
        "clientpay.secrets_file": "",
        "clientpay.secret": secret,
        "clientpay.encryption_keys": Fernet.generate_key().decode(),
    }
    with pytest.raises(WeakSecret) as refused:
        ensure_secrets(settings)
    message = str(refused.value)
    assert message.startswith("refusing to start: clientpay.secret (CLIENTPAY_SECRET) is ")
    length = len(secret.encode())
    assert f"is {length} byte{'' if length == 1 else 's'} long;" in message
    assert "at least 32 bytes" in message
    # The CLI reports what start-up refuses (a MissingSecrets) as an error, not a traceback.
    assert isinstance(refused.value, MissingSecrets)


def test_a_secret_of_32_bytes_is_accepted_and_a_generated_one_is_longer(tmp_path):
    settings = {
        "clientpay.secrets_file": "",
        "clientpay.secret": "é" * 16,  # 16 characters, 32 bytes: bytes are what count
        "clientpay.encryption_keys": Fernet.generate_key().decode(),
    }
    ensure_secrets(settings)
    generated = {"clientpay.secrets_file": str(tmp_path / "secrets.json")}
    ensure_secrets(generated)
    assert len(generated["clientpay.secret"].encode()) >= MIN_SECRET_BYTES
