"""The audit chain: tampering with or removing one record makes `kuzet audit verify` fail and name it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import delete, update

from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.audit import SYSTEM, Actor
from kuzet.store.models import AuditRecord


def _fill(inst: Installation, n: int = 6) -> None:
    with inst.db.session() as s:
        for i in range(n):
            audit.append(s, Actor(None, f"user{i}", "10.0.0.1"), Action.LIVE_VIEWED, object_type="camera",
                         object_id=i, camera_id=i, legal_basis="Подписка 2024-118", details={"n": i})


def _cli(inst: Installation, *args: str) -> subprocess.CompletedProcess:
    env = {"KUZET_DATA_DIR": str(inst.settings.data_dir), "PATH": "/usr/bin:/bin"}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    return subprocess.run([sys.executable, "-m", "kuzet.cli.main", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_intact_chain_verifies(inst: Installation) -> None:
    _fill(inst)
    result = audit.verify(inst.db)
    assert result.ok and result.checked == 6
    out = _cli(inst, "audit", "verify", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["checked"] == 6


@pytest.mark.parametrize("field,value", [("actor_name", "someone-else"), ("legal_basis", "none"),
                                         ("details", {"n": 99})])
def test_altered_record_is_named(inst: Installation, field: str, value) -> None:  # noqa: ANN001
    _fill(inst)
    with inst.db.session() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 4).values({field: value}))
    result = audit.verify(inst.db)
    assert not result.ok and result.broken_seq == 4
    assert "altered" in result.problem
    out = _cli(inst, "audit", "verify")
    assert out.returncode == 1
    assert "#4" in out.stderr


def test_removed_record_is_named(inst: Installation) -> None:
    _fill(inst)
    with inst.db.session() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
    result = audit.verify(inst.db)
    assert not result.ok and result.broken_seq == 3
    assert "missing" in result.problem
    assert _cli(inst, "audit", "verify").returncode == 1


def test_rewritten_hash_breaks_the_next_link(inst: Installation) -> None:
    """Someone who alters record 2 and recomputes its hash still breaks record 3's link."""
    from kuzet.domain.audit import record_hash

    _fill(inst)
    with inst.db.session() as s:
        rec = s.query(AuditRecord).filter_by(seq=2).one()
        rec.actor_name = "forged"
        fields = {k: getattr(rec, k) for k in ("seq", "at", "actor_id", "actor_name", "action", "object_type",
                                               "object_id", "camera_id", "ip", "legal_basis", "purpose", "details")}
        rec.hash = record_hash(rec.prev_hash, fields)
    result = audit.verify(inst.db)
    assert not result.ok and result.broken_seq == 3
    assert "does not link" in result.problem


def test_each_append_links_to_the_previous(inst: Installation) -> None:
    _fill(inst, 3)
    with inst.db.session() as s:
        rows = s.query(AuditRecord).order_by(AuditRecord.seq).all()
        first = audit.append(s, SYSTEM, Action.GRANT_CREATED)
        assert first.prev_hash == rows[-1].hash
    assert [r.seq for r in rows] == [1, 2, 3]


def test_concurrent_writers_keep_one_chain(inst: Installation) -> None:
    """Threads appending at once never fork the chain (unique prev_hash + serialised appends)."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> None:
        for _ in range(5):
            with inst.db.session() as s:
                audit.append(s, Actor(i, f"t{i}"), Action.ARCHIVE_VIEWED)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    result = audit.verify(inst.db)
    assert result.ok and result.checked == 20


def test_removing_the_newest_records_is_detected_by_the_anchor(inst: Installation) -> None:
    _fill(inst)
    assert inst.verify_audit().ok
    with inst.db.session() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq >= 5))
    result = inst.verify_audit()
    assert not result.ok and result.broken_seq == 5
    out = _cli(inst, "audit", "verify")
    assert out.returncode == 1 and "#5" in out.stderr
