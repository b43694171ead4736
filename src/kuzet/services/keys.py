"""The installation's keys, kept as files in ``<data>/keys`` (outside the database).

- ``secrets.key``: Fernet key that encrypts camera credentials at rest.
- ``signing.ed25519``: Ed25519 private key that signs evidence manifests and the audit chain's head (public half in
  ``signing.pub``; its fingerprint is the SHA-256 of that PEM file, see :func:`fingerprint`).
- ``personal.key``: keys for safe-yard personal data (see services/safeyard).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyError_(Exception):
    """A key file is missing or unreadable."""


def fingerprint(public_pem: bytes) -> str:
    """The fingerprint of a public key: SHA-256 (hex) of its PEM bytes, as published by the operator and written into
    evidence manifests (``signing_key_sha256``) and signed audit heads."""
    return hashlib.sha256(public_pem).hexdigest()


def load_public_pem(public_pem: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; KeyError_ if the bytes are not one."""
    try:
        key = serialization.load_pem_public_key(public_pem)
    except ValueError:
        raise KeyError_("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_("not an Ed25519 public key")
    return key


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


class Keyring:
    def __init__(self, keys_dir: Path) -> None:
        self.dir = keys_dir

    @property
    def secrets_file(self) -> Path:
        return self.dir / "secrets.key"

    @property
    def signing_file(self) -> Path:
        return self.dir / "signing.ed25519"

    @property
    def signing_public_file(self) -> Path:
        return self.dir / "signing.pub"

    def ensure(self) -> list[Path]:
        """Create whichever keys do not exist yet; return the files created."""
        created = []
        if not self.secrets_file.exists():
            _write_private(self.secrets_file, Fernet.generate_key())
            created.append(self.secrets_file)
        if not self.signing_file.exists():
            key = Ed25519PrivateKey.generate()
            _write_private(
                self.signing_file,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            self.signing_public_file.write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            created.append(self.signing_file)
        return created

    def _read(self, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise KeyError_(f"key file {path} is missing: run `kuzet init` for this data directory") from None

    def fernet(self) -> Fernet:
        return Fernet(self._read(self.secrets_file).strip())

    def encrypt(self, plaintext: str) -> bytes:
        return self.fernet().encrypt(plaintext.encode("utf-8"))

    def decrypt(self, token: bytes) -> str:
        try:
            return self.fernet().decrypt(token).decode("utf-8")
        except InvalidToken:
            raise KeyError_("stored secret cannot be decrypted with secrets.key (wrong key?)") from None

    def signing_key(self) -> Ed25519PrivateKey:
        key = serialization.load_pem_private_key(self._read(self.signing_file), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key

    def public_key(self) -> Ed25519PublicKey:
        return self.signing_key().public_key()

    def public_key_pem(self) -> bytes:
        return self._read(self.signing_public_file)

    def fingerprint(self) -> str:
        """SHA-256 of ``signing.pub``: what the operator publishes so others can tell this installation's key."""
        return fingerprint(self.public_key_pem())
