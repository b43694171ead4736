"""The audit chain: tampering with or removing one record makes `kuzet audit verify` fail and name it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import delete, update

from kuzet.domain.audit import Action
from kuzet.installation import Installation
from kuzet.services import audit
from kuzet.services.audit import SYSTEM, Actor
from kuzet.store.models import AuditRecord
from tests.conftest import NATS_URL, _unavailable


def _fill(inst: Installation, n: int = 6) -> None:
    with inst.db.session() as s:
        for i in range(n):
            audit.append(s, Actor(None, f"user{i}", "10.0.0.1"), Action.LIVE_VIEWED, object_type="camera",
                         object_id=i, camera_id=i, legal_basis="Подписка 2024-118", details={"n": i})


def _cli(inst: Installation, *args: str) -> subprocess.CompletedProcess:
    env = {"KUZET_DATA_DIR": str(inst.settings.data_dir), "PATH": "/usr/bin:/bin", "COLUMNS": "200",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # the code under test, wherever it is checked out
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


# --- the signed anchor and the witnessed heads --------------------------------------------------------------------

def _tip(inst: Installation) -> tuple[int, str]:
    from kuzet.services.audit.heads import chain_tip

    with inst.db.session() as s:
        return chain_tip(s)


def _record_hash(inst: Installation, seq: int) -> str:
    with inst.db.session() as s:
        return s.query(AuditRecord).filter_by(seq=seq).one().hash


def test_anchor_is_the_signed_head_of_the_chain(inst: Installation) -> None:
    from kuzet.services.audit.heads import SignedHead

    anchor = json.loads(inst.audit_anchor_file.read_text())
    assert (anchor["seq"], anchor["hash"]) == (0, "0" * 64)  # a new installation anchors the empty chain
    _fill(inst)
    anchor = json.loads(inst.audit_anchor_file.read_text())
    assert (anchor["seq"], anchor["hash"]) == _tip(inst) == (6, _record_hash(inst, 6))
    head = SignedHead.parse(anchor)
    assert head.fingerprint == inst.keys.fingerprint()
    assert head.problem(inst.keys.public_key_pem()) is None
    # it never moves backwards: an older tip arriving late is ignored
    assert inst.audit_anchor.advance(4, _record_hash(inst, 4)) is False
    assert json.loads(inst.audit_anchor_file.read_text()) == anchor
    # a rolled-back append leaves no trace in the anchor
    with pytest.raises(RuntimeError), inst.db.session() as s:
        audit.append(s, SYSTEM, Action.GRANT_CREATED)
        raise RuntimeError("the change it describes failed")
    with inst.db.session() as s:
        s.get(AuditRecord, 1)  # a later commit without records
    assert json.loads(inst.audit_anchor_file.read_text()) == anchor
    check = inst.verify_audit()
    assert check.ok and check.anchor["seq"] == 6 and check.fingerprint == inst.keys.fingerprint()


def test_missing_anchor_fails_verification_and_is_not_recreated_silently(inst: Installation) -> None:
    _fill(inst)
    inst.audit_anchor_file.unlink()
    _fill(inst, 2)  # the server goes on appending: the missing anchor stays missing (it is the trace)
    assert not inst.audit_anchor_file.exists()
    check = inst.verify_audit()
    assert not check.ok and "missing" in check.problem and check.anchor["state"] == "missing"
    out = _cli(inst, "audit", "verify")
    assert out.returncode == 1 and "anchor" in out.stderr and "--allow-missing-anchor" in out.stderr
    out = _cli(inst, "audit", "verify", "--allow-missing-anchor", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["ok"] and report["checked"] == 8 and "missing" in report["warnings"][0]
    # an operator re-anchors explicitly, and that act is itself a record of the chain
    out = _cli(inst, "audit", "anchor", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["previous"]["state"] == "missing"
    with inst.db.session() as s:
        last = s.query(AuditRecord).order_by(AuditRecord.seq.desc()).first()
    assert last.seq == 9 and last.action == Action.AUDIT_ANCHORED and last.details["seq"] == 8
    assert json.loads(inst.audit_anchor_file.read_text())["seq"] == 9
    assert _cli(inst, "audit", "verify").returncode == 0


def test_anchor_refuses_a_chain_that_does_not_verify(inst: Installation) -> None:
    _fill(inst)
    with inst.db.session() as s:
        s.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor_name="forged"))
    inst.audit_anchor_file.unlink()
    out = _cli(inst, "audit", "anchor")
    assert out.returncode == 1 and "#2" in out.stderr
    assert not inst.audit_anchor_file.exists()


@pytest.mark.parametrize("forgery", ["signature", "seq", "unsigned", "garbage"])
def test_tampered_anchor_is_detected_and_left_in_place(inst: Installation, forgery: str) -> None:
    _fill(inst)
    anchor = json.loads(inst.audit_anchor_file.read_text())
    if forgery == "signature":
        flipped = "A" if anchor["signature"][0] != "A" else "B"
        anchor["signature"] = flipped + anchor["signature"][1:]
    elif forgery == "seq":  # an older anchor's numbers under the newest signature
        anchor["seq"], anchor["hash"] = 4, _record_hash(inst, 4)
    elif forgery == "unsigned":
        anchor = {"seq": 4, "hash": _record_hash(inst, 4)}
    text = "{not json" if forgery == "garbage" else json.dumps(anchor)
    inst.audit_anchor_file.write_text(text)
    _fill(inst, 1)  # a later commit does not paper over it
    assert inst.audit_anchor_file.read_text() == text
    check = inst.verify_audit()
    assert not check.ok and check.anchor["state"] in ("invalid", "unsigned")
    out = _cli(inst, "audit", "verify")
    assert out.returncode == 1 and "anchor" in out.stderr
    assert _cli(inst, "audit", "verify", "--allow-missing-anchor").returncode == 0


def test_anchor_that_disagrees_with_the_chain_is_named(inst: Installation) -> None:
    """A validly signed anchor whose hash at its seq is not the chain's (the chain was rewritten from there)."""
    _fill(inst)
    inst.audit_anchor.reset(4, "f" * 64)
    check = inst.verify_audit()
    assert not check.ok and check.broken_seq == 4 and "differs from the signed anchor" in check.problem
    out = _cli(inst, "audit", "verify")
    assert out.returncode == 1 and "#4" in out.stderr


def _insider_truncates(inst: Installation, keep: int) -> None:
    """Whoever holds the database and the data directory (with the signing key): remove the newest records and sign
    an anchor for the shorter chain."""
    with inst.db.session() as s:
        s.execute(delete(AuditRecord).where(AuditRecord.seq > keep))
    inst.audit_anchor.reset(keep, _record_hash(inst, keep))


def test_truncation_by_an_insider_is_detected_by_the_witness(inst: Installation, tmp_path) -> None:  # noqa: ANN001
    from kuzet.config import AuditConfig
    from kuzet.services.audit.heads import current_head
    from kuzet.services.audit.witness import publish

    witness = tmp_path / "elsewhere" / "heads.jsonl"
    config = AuditConfig(witness_file=witness)
    _fill(inst)
    assert publish(current_head(inst.db, inst.keys), config).delivered == ["file"]
    _fill(inst, 3)
    out = _cli(inst, "audit", "head", "--json")
    assert out.returncode == 0, out.stderr
    with open(witness, "a") as fh:  # the daily printout, typed in: the same line `--json` prints
        fh.write(out.stdout)
    assert [json.loads(line)["seq"] for line in witness.read_text().splitlines()] == [6, 9]
    assert _cli(inst, "audit", "verify", "--witness", str(witness)).returncode == 0

    _insider_truncates(inst, 5)
    assert inst.verify_audit().ok  # inside the installation nothing shows any more…
    check = inst.verify_audit(witness_files=[witness])  # …but the witness still holds #9
    assert not check.ok and check.broken_seq == 6
    assert "heads.jsonl line 2" in check.problem and "#9" in check.problem
    out = _cli(inst, "audit", "verify", "--witness", str(witness))
    assert out.returncode == 1 and "heads.jsonl line 2" in out.stderr and "#6..#9" in out.stderr

    # the insider appends new records to reach the witnessed length again: the hash at #6 gives it away
    _fill(inst, 4)
    check = inst.verify_audit(witness_files=[witness])
    assert not check.ok and check.broken_seq == 6 and "heads.jsonl line 1" in check.problem


def test_witness_lines_that_do_not_verify_are_named(inst: Installation, tmp_path) -> None:  # noqa: ANN001
    from kuzet.services.audit.heads import current_head

    _fill(inst)
    head = current_head(inst.db, inst.keys).as_dict()
    forged = dict(head, seq=3, hash=_record_hash(inst, 3))  # plausible numbers, signature of another head
    witness = tmp_path / "heads.jsonl"
    witness.write_text("\n".join([json.dumps(head), "not json", json.dumps(forged), json.dumps({"seq": 1})]) + "\n")
    check = inst.verify_audit(witness_files=[witness])
    assert not check.ok and check.witness_heads == 1
    assert any("line 2: not valid JSON" in p for p in check.problems)
    assert any("line 3" in p and "signature does not verify" in p for p in check.problems)
    assert any("line 4: missing" in p for p in check.problems)
    out = _cli(inst, "audit", "verify", "--witness", str(tmp_path / "absent.jsonl"))
    assert out.returncode == 1 and "cannot be read" in out.stderr


def test_concurrent_installations_leave_the_anchor_at_the_tip(inst: Installation) -> None:
    """Two Installation objects on one data directory (as two processes would be), appending at once."""
    from concurrent.futures import ThreadPoolExecutor

    others = [Installation.open(settings=inst.settings) for _ in range(2)]

    def work(k: int) -> None:
        for i in range(15):
            with others[k].db.session() as s:
                audit.append(s, Actor(k, f"p{k}"), Action.ARCHIVE_VIEWED, details={"i": i})

    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(work, range(2)))
    finally:
        for other in others:
            other.close()
    anchor = json.loads(inst.audit_anchor_file.read_text())
    assert (anchor["seq"], anchor["hash"]) == _tip(inst) == (30, _record_hash(inst, 30))
    check = inst.verify_audit()
    assert check.ok and check.checked == 30


def test_concurrent_processes_leave_the_anchor_at_the_tip(inst: Installation) -> None:
    script = (
        "import sys\n"
        "from kuzet.installation import Installation\n"
        "from kuzet.services import audit\n"
        "from kuzet.services.audit import Actor\n"
        "inst = Installation.open()\n"
        "for i in range(20):\n"
        "    with inst.db.session() as s:\n"
        "        audit.append(s, Actor(None, 'proc' + sys.argv[1]), 'video.archive', details={'i': i})\n"
    )
    env = {"KUZET_DATA_DIR": str(inst.settings.data_dir), "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], env=env, stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    anchor = json.loads(inst.audit_anchor_file.read_text())
    assert (anchor["seq"], anchor["hash"]) == _tip(inst) == (40, _record_hash(inst, 40))
    assert _cli(inst, "audit", "verify").returncode == 0


@pytest.mark.parametrize("bus_url", ["memory://", NATS_URL])
def test_publisher_sends_the_signed_head_to_every_witness(inst: Installation, tmp_path, bus_url: str) -> None:  # noqa: ANN001
    import asyncio
    import http.server
    import threading

    from kuzet.capabilities import NodeRole, services
    from kuzet.services.audit.heads import SignedHead
    from kuzet.services.audit.runtime import WitnessPublisher
    from kuzet.services.audit.witness import HEAD_SUBJECT
    from kuzet.store.bus import connect_bus

    posted: list[dict] = []

    class Witness(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _fill(inst)
    witness_file = tmp_path / "witness" / "heads.jsonl"
    inst.settings.audit.witness_file = witness_file
    inst.settings.audit.witness_url = f"http://127.0.0.1:{server.server_port}/kuzet-heads"

    async def until(condition, seconds: float = 20) -> None:  # noqa: ANN001
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), seconds)

    async def scenario() -> tuple[list[tuple[str, dict]], object, object]:
        try:
            bus = await connect_bus(bus_url)
        except Exception as exc:  # noqa: BLE001
            _unavailable("NATS", exc)
        got: list[tuple[str, dict]] = []
        arrived = asyncio.Event()

        async def on_head(subject: str, payload: dict) -> None:
            got.append((subject, payload))
            arrived.set()

        sub = await bus.subscribe(HEAD_SUBJECT, on_head)
        inst.running.bus = bus
        # `kuzet serve` finds the publisher like every capability's services
        publisher = next(s for s in services(inst, {NodeRole.WORKER}) if isinstance(s, WitnessPublisher))
        await publisher.start()  # publishes at once, then every witness_interval_minutes
        await asyncio.wait_for(arrived.wait(), 20)
        await until(lambda: publisher.last is not None)  # the pass returns once every witness was tried
        await publisher.stop()
        first = publisher.last
        # one witness down: the others still get the head, the failure is reported
        inst.settings.audit.witness_url = "http://127.0.0.1:9/unreachable"
        await publisher.start()
        await until(lambda: publisher.last is not first)
        await publisher.stop()
        await sub.unsubscribe()
        await bus.close()
        inst.running.bus = None
        return got, first, publisher.last

    try:
        got, first, second = asyncio.run(scenario())
    finally:
        server.shutdown()
    head = first.head.as_dict()
    assert first.delivered == ["file", "url", "bus"] and not first.failed
    assert (head["seq"], head["hash"]) == (6, _record_hash(inst, 6))
    assert SignedHead.parse(head).problem(inst.keys.public_key_pem()) is None
    assert got[0] == (HEAD_SUBJECT, head)
    assert posted == [head]
    lines = [json.loads(line) for line in witness_file.read_text().splitlines()]
    assert lines[0] == head and len(lines) == 2
    assert second.delivered == ["file", "bus"] and set(second.failed) == {"url"}
    check = inst.verify_audit(witness_files=[witness_file])
    assert check.ok and check.witness_heads == 2
    # `kuzet audit verify` reads the configured witness file by itself
    env_config = inst.settings.data_dir / "kuzet.toml"
    env_config.write_text(env_config.read_text().replace("[audit]\n", f'[audit]\nwitness_file = "{witness_file}"\n'))
    out = _cli(inst, "audit", "verify", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["witness_heads"] == 2


def test_audit_head_publish_from_the_command_line(inst: Installation, tmp_path) -> None:  # noqa: ANN001
    _fill(inst, 3)
    out = _cli(inst, "audit", "head", "--publish")
    assert out.returncode == 1 and "no witness configured" in out.stderr
    witness = tmp_path / "heads.jsonl"
    config = inst.settings.data_dir / "kuzet.toml"
    config.write_text(config.read_text().replace("[audit]\n", f'[audit]\nwitness_file = "{witness}"\n'))
    out = _cli(inst, "audit", "head", "--publish", "--json")
    assert out.returncode == 0, out.stderr
    published = json.loads(out.stdout)
    assert published["delivered"] == ["file"] and published["head"]["seq"] == 3
    assert [json.loads(line) for line in witness.read_text().splitlines()] == [published["head"]]
    out = _cli(inst, "audit", "head")
    assert out.returncode == 0 and "#3" in out.stdout and inst.keys.fingerprint() in out.stdout
