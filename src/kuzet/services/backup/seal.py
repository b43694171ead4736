"""Sealing the parts of a backup that are secret (the keys, the configuration) with a passphrase.

The passphrase goes through scrypt (memory-hard: n=2**17, r=8 — 128 MiB per guess) into 64 bytes: the first 32 are an
AES-256-GCM key that encrypts each sealed part (the part's name is the associated data, so parts cannot be swapped),
the last 32 an HMAC-SHA256 key that seals the manifest (so a changed hash, date or list of parts is noticed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
NONCE_BYTES = 12
MIN_PASSPHRASE = 12


class SealError(Exception):
    """A sealed part does not open with the passphrase, or the KDF parameters are unusable."""


@dataclass(frozen=True)
class Kdf:
    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def new(cls) -> Kdf:
        return cls(os.urandom(16))

    def as_dict(self) -> dict[str, Any]:
        return {"name": "scrypt", "salt": base64.b64encode(self.salt).decode("ascii"), "n": self.n, "r": self.r,
                "p": self.p}

    @classmethod
    def from_dict(cls, value: Any) -> Kdf:
        try:
            if value["name"] != "scrypt":
                raise SealError(f"unknown key derivation {value['name']!r}")
            n, r, p = int(value["n"]), int(value["r"]), int(value["p"])
            salt = base64.b64decode(value["salt"], validate=True)
        except (KeyError, TypeError, ValueError) as exc:
            raise SealError(f"the manifest's kdf is malformed ({exc})") from None
        if not (2**14 <= n <= 2**18 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and len(salt) >= 16):
            raise SealError("the manifest's kdf parameters are out of range")
        return cls(salt, n, r, p)


class Sealer:
    """Keys derived from one passphrase and one salt."""

    def __init__(self, passphrase: str, kdf: Kdf) -> None:
        if not passphrase:
            raise SealError("the passphrase is empty")
        self.kdf = kdf
        derived = Scrypt(salt=kdf.salt, length=64, n=kdf.n, r=kdf.r, p=kdf.p).derive(passphrase.encode("utf-8"))
        self._cipher = AESGCM(derived[:32])
        self._mac_key = derived[32:]

    def seal(self, name: str, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, data, name.encode("utf-8"))

    def open(self, name: str, sealed: bytes) -> bytes:
        try:
            return self._cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise SealError(f"{name} does not open with this passphrase (wrong passphrase?)") from None

    def mac(self, data: bytes) -> str:
        return hmac.new(self._mac_key, data, hashlib.sha256).hexdigest()

    def mac_ok(self, data: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.mac(data), mac or "")
