"""Importing a passport's lists (CSV or XLSX): column ``category`` plus the category's fields; every row validated,
all or nothing, errors with line numbers. Rotating the personal-data keys."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from kuzet.services.audit import Actor
from kuzet.services.crime.importing import ImportRejected, RowError, read_table
from kuzet.services.safeyard.passport import CATEGORIES, PassportError, _clean, add_person
from kuzet.services.safeyard.vault import Vault
from kuzet.store.models.safeyard import PersonRecord, SafeYard

ALIASES = {"категория": "category", "фио": "name", "имя": "name", "квартира": "apartment", "телефон": "phone",
           "дата рождения": "birth_date", "иин": "iin", "основание": "basis", "надзор с": "supervision_from",
           "надзор до": "supervision_to", "оружие": "weapon", "разрешение": "permit_number",
           "разрешение до": "permit_expires", "собственник": "owner", "наниматель": "tenant",
           "аренда с": "period_from", "аренда до": "period_to", "роль": "role"}
CATEGORY_ALIASES = {"житель": "resident", "поднадзорный": "supervised", "владелец оружия": "firearm",
                    "аренда": "rental", "помощник": "volunteer"}


def import_people(session: Session, vault: Vault, actor: Actor, yard: SafeYard, path: Path) -> int:
    headers, rows = read_table(path)
    keys = [ALIASES.get(str(h).strip().lower(), str(h).strip().lower()) for h in headers]
    if "category" not in keys:
        raise ImportRejected([RowError(1, "missing column category (категория)")])
    parsed, errors = [], []
    for line, raw in rows:
        values = {k: raw[i] for i, k in enumerate(keys) if i < len(raw) and raw[i] not in (None, "")}
        category = str(values.pop("category", "")).strip().lower()
        category = CATEGORY_ALIASES.get(category, category)
        try:
            parsed.append((category, _clean(category, {k: str(v) for k, v in values.items()})))
        except PassportError as exc:
            errors.append(RowError(line, str(exc)))
    if errors:
        raise ImportRejected(errors)
    with session.begin_nested():
        for category, fields in parsed:
            add_person(session, vault, actor, yard, category, fields)
    return len(parsed)


def rotate_keys(session: Session, vault: Vault) -> dict:
    """New current key; every record re-encrypted with it; older keys dropped. Readable throughout."""
    new_id = vault.add_key()
    count = 0
    for rec in session.scalars(select(PersonRecord)):
        rec.payload = vault.rotate_token(rec.payload)
        rec.key_id = new_id
        count += 1
    session.flush()
    return {"key_id": new_id, "records": count}


__all__ = ["CATEGORIES", "import_people", "rotate_keys"]
