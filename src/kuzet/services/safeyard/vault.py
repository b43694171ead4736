"""Encryption of personal data with keys kept outside the database.

``<data>/keys/personal.keys`` holds one Fernet key per line, ``<id> <key>``, the first being current; older lines are
kept only until ``kuzet keys rotate`` has re-encrypted every record. ``<data>/keys/personal-index.key`` keys the HMACs
of normalised names and national ID numbers, so a search compares hashes and never decrypts the table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    pass


def normalise_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name or "").casefold().replace("ё", "е")
    return " ".join("".join(c for c in text if c.isalnum() or c.isspace()).split())


def normalise_iin(iin: str) -> str:
    return "".join(c for c in (iin or "") if c.isdigit())


def valid_iin(iin: str) -> bool:
    """Kazakhstan's 12-digit individual identification number, with its check digit (two weight series)."""
    digits = [int(c) for c in normalise_iin(iin)]
    if len(digits) != 12:
        return False
    check = sum(d * w for d, w in zip(digits[:11], range(1, 12), strict=True)) % 11
    if check == 10:
        check = sum(d * w for d, w in zip(digits[:11], [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], strict=True)) % 11
        if check == 10:
            return False
    return check == digits[11]


class Vault:
    def __init__(self, keys_dir: Path) -> None:
        self.keys_file = keys_dir / "personal.keys"
        self.index_file = keys_dir / "personal-index.key"

    def ensure(self) -> None:
        self.keys_file.parent.mkdir(parents=True, exist_ok=True)
        if not self.keys_file.exists():
            self._write_keys([(secrets.token_hex(4), Fernet.generate_key().decode())])
        if not self.index_file.exists():
            fd = os.open(self.index_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))

    def _write_keys(self, keys: list[tuple[str, str]]) -> None:
        tmp = self.keys_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(f"{kid} {key}\n" for kid, key in keys))
        os.replace(tmp, self.keys_file)

    def keys(self) -> list[tuple[str, str]]:
        self.ensure()
        out = []
        for line in self.keys_file.read_text().splitlines():
            if line.strip():
                kid, key = line.split()
                out.append((kid, key))
        if not out:
            raise VaultError(f"{self.keys_file} holds no key")
        return out

    @property
    def current_id(self) -> str:
        return self.keys()[0][0]

    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k.encode()) for _, k in self.keys()])

    def seal(self, fields: dict) -> tuple[bytes, str]:
        data = json.dumps(fields, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")
        return self._fernet().encrypt(data), self.current_id

    def open(self, token: bytes) -> dict:
        try:
            return json.loads(self._fernet().decrypt(token))
        except InvalidToken:
            raise VaultError("a personal record cannot be decrypted with the keys in personal.keys") from None

    def blind(self, kind: str, value: str | None) -> str | None:
        if not value:
            return None
        normal = normalise_iin(value) if kind == "iin" else normalise_name(value)
        if not normal:
            return None
        self.ensure()
        key = bytes.fromhex(self.index_file.read_text().strip())
        return hmac.new(key, f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()

    def add_key(self) -> str:
        """Make a new current key (old ones stay until every record is re-encrypted)."""
        kid = secrets.token_hex(4)
        self._write_keys([(kid, Fernet.generate_key().decode())] + self.keys())
        return kid

    def rotate_token(self, token: bytes) -> bytes:
        return self._fernet().rotate(token)

    def drop_old_keys(self) -> None:
        self._write_keys(self.keys()[:1])


def mask(value: str | None) -> str:
    """«Иванов Пётр» → «И***** П****»; numbers keep their last two digits."""
    if not value:
        return ""
    if value.replace(" ", "").isdigit():
        return "*" * max(0, len(value) - 2) + value[-2:]
    return " ".join(w[0] + "*" * (len(w) - 1) for w in value.split())
