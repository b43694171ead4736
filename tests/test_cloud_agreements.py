"""Routing agreements make and end their grants; an agreement that ends takes the unit's access away on its own;
the party hands out only what it holds; residents see which of their cameras are routed, to whom and under which
agreement; the signed document is stored, capped and streamed back. The compliance report names the cameras short of
their required depth (JSON, XLSX, PDF in Russian and Kazakh). SQLite and PostgreSQL."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services import access
from kuzet.services.audit import SYSTEM
from kuzet.services.cloud import agreements, compliance
from kuzet.services.cloud.common import end_of_day
from kuzet.services.cloud.common import today as local_today
from kuzet.services.cloud.runtime import check_once
from kuzet.store.models import AuditRecord, Camera, Grant, User
from kuzet.store.models.cloud import Agreement
from kuzet.store.models.recording import Gap, Recording
from tests.conftest import login

TZ = "Asia/Almaty"


def _demo(inst: Installation):  # noqa: ANN202
    from kuzet.services.demo import seed_demo_city

    with inst.db.session() as session:
        return seed_demo_city(session, inst.keys)


def test_an_agreement_that_ends_takes_the_units_access_away_on_its_own(inst: Installation) -> None:
    city = _demo(inst)
    today = local_today(TZ)  # the installation's date: an agreement's days are its time zone's
    with inst.db.session() as session:
        security = city.organisations["security"]
        # The duty unit of district 2 gets the yard of building 1 (district 1) for today only.
        terms = agreements.Terms(number="ЯРД-1", party_org_id=city.organisations["telecom"],
                                 holder_org_id=city.organisations["duty2"], starts_on=today - timedelta(days=3),
                                 ends_on=today, scope=["view_live", "view_archive"], legal_basis="Соглашение ЯРД-1",
                                 place_ids=[city.yards[0]], camera_ids=[])
        made = agreements.create_agreement(session, SYSTEM, None, terms, TZ)
        duty2 = session.scalar(select(User).where(User.username == "duty2"))
        yard = session.get(Camera, city.cameras["b1yard"])
        assert {r.value for r in access.camera_rights(session, duty2, yard)} == {"view_live", "view_archive"}
        assert access.legal_basis_for(session, duty2, yard, access.Right.VIEW_LIVE).startswith("Соглашение № ЯРД-1")
        # The party hands out only what it holds: the security firm holds live and archive on that yard, no export.
        with pytest.raises(agreements.AgreementDenied, match="does not hold export"):
            agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
                number="ЯРД-2", party_org_id=security, holder_org_id=city.organisations["centre"],
                starts_on=today, ends_on=None, scope=["export"], legal_basis="x", place_ids=[city.yards[0]],
                camera_ids=[]), TZ)
        with pytest.raises(agreements.AgreementDenied, match="does not hold view_live"):  # not its yard
            agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
                number="ЯРД-3", party_org_id=security, holder_org_id=city.organisations["centre"],
                starts_on=today, ends_on=None, scope=["view_live"], legal_basis="x", place_ids=[city.yards[1]],
                camera_ids=[]), TZ)
        with pytest.raises(agreements.CloudError, match="not a police unit"):
            agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
                number="ЯРД-4", party_org_id=city.organisations["telecom"], holder_org_id=security,
                starts_on=today, ends_on=None, scope=["view_live"], legal_basis="x", place_ids=[city.yards[0]],
                camera_ids=[]), TZ)
        made_id = made.id
    # The moment its last day is over, the unit's access is gone by itself (the grants' own end) ...
    after = end_of_day(today, TZ) + timedelta(seconds=1)
    with inst.db.session() as session:
        duty2 = session.scalar(select(User).where(User.username == "duty2"))
        yard = session.get(Camera, city.cameras["b1yard"])
        assert access.camera_rights(session, duty2, yard, now=after) == frozenset()
        # ... and the periodic check (what `kuzet serve` runs every minute) closes the agreement on record.
        assert agreements.expire_agreements(session, SYSTEM, TZ, now=after) == 1
    with inst.db.session() as session:
        made = session.get(Agreement, made_id)
        assert made.state == "expired"
        assert session.scalars(select(Grant).where(Grant.source == f"agreement:{made_id}",
                                                   Grant.revoked_at.is_(None))).all() == []
        record = session.scalar(select(AuditRecord).where(AuditRecord.action == "cloud.agreement_expired"))
        assert record.object_id == str(made_id) and record.actor_name == "system"


def test_agreements_through_the_api_residents_see_them_and_ending_one_ends_access(demo_inst: Installation,
                                                                                  demo_client: TestClient) -> None:
    city = demo_inst.city
    client = demo_client
    operator, admin = login(client, "operator"), login(client, "admin")
    today = date.today()
    body = {"number": f"ПРОБА-{today.isoformat()}", "party_org_id": city.organisations["telecom"],
            "holder_org_id": city.organisations["duty2"], "starts_on": (today - timedelta(days=1)).isoformat(),
            "ends_on": (today + timedelta(days=30)).isoformat(), "scope": ["view_live"],
            "legal_basis": "Соглашение о выводе камеры подъезда", "camera_ids": [city.cameras["b1e1"]]}
    made = client.post("/api/v1/cloud/agreements", headers=operator, json=body)
    assert made.status_code == 201, made.text
    agreement = made.json()
    assert agreement["state"] == "active" and agreement["targets"][0]["camera_id"] == city.cameras["b1e1"]
    duty2 = login(client, "duty2")
    assert client.get(f"/api/v1/cameras/{city.cameras['b1e1']}", headers=duty2).status_code == 200
    # The resident sees that their entrance camera is routed, to whom, under which agreement.
    mine = {c["id"]: c for c in client.get("/api/v1/my/cameras", headers=login(client, "resident1")).json()}
    routes = {r["number"]: r for r in mine[city.cameras["b1e1"]]["routed_to"]}
    assert routes[body["number"]]["holder"].startswith("ДЧ УП Южный") and routes[body["number"]]["scope"] == [
        "view_live"]
    assert any(n.startswith("ЦОУ-1") for n in routes) and any(n.startswith("ДЧ-1") for n in routes)
    # Its grant cannot be revoked by hand: it ends with the agreement.
    grant_id = agreement["targets"][0]["grant_id"]
    assert client.delete(f"/api/v1/grants/{grant_id}", headers=admin).status_code == 409
    # The signed document: a PDF, capped, streamed back, its reading audited.
    pdf = b"%PDF-1.4\n% signed\n" + b"0" * 1000
    assert client.put(f"/api/v1/cloud/agreements/{agreement['id']}/document", headers=operator,
                      files={"file": ("signed.pdf", io.BytesIO(b"GIF89a"), "application/pdf")}).status_code == 422
    up = client.put(f"/api/v1/cloud/agreements/{agreement['id']}/document", headers=operator,
                    files={"file": ("signed.pdf", io.BytesIO(pdf), "application/pdf")})
    assert up.status_code == 200 and up.json()["document_bytes"] == len(pdf)
    got = client.get(f"/api/v1/cloud/agreements/{agreement['id']}/document", headers=duty2)
    assert got.status_code == 200 and got.content == pdf
    assert client.get(f"/api/v1/cloud/agreements/{agreement['id']}/document",
                      headers=login(client, "duty1")).status_code == 404
    # The unit reads it but may not end it; the operator ends it and the unit's access is gone at once.
    assert client.post(f"/api/v1/cloud/agreements/{agreement['id']}/end", headers=duty2,
                       json={"reason": "x"}).status_code == 403
    ended = client.post(f"/api/v1/cloud/agreements/{agreement['id']}/end", headers=operator,
                        json={"reason": "камера передана другому договору"})
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    assert client.get(f"/api/v1/cameras/{city.cameras['b1e1']}", headers=duty2).status_code == 404
    mine = {c["id"]: c for c in client.get("/api/v1/my/cameras", headers=login(client, "resident1")).json()}
    assert body["number"] not in {r["number"] for r in mine[city.cameras["b1e1"]]["routed_to"]}


def test_renewals_keep_history_and_sites_are_routed_in_bulk(inst: Installation) -> None:
    city = _demo(inst)
    today = date.today()
    with inst.db.session() as session:
        first = agreements.create_agreement(session, SYSTEM, None, agreements.Terms(
            number="Ш-1", party_org_id=city.organisations["school1"], holder_org_id=city.organisations["duty2"],
            starts_on=today - timedelta(days=10), ends_on=today + timedelta(days=5), scope=["view_live"],
            legal_basis="Соглашение школы", place_ids=[city.schools[0]], camera_ids=[]), TZ)
        second = agreements.renew_agreement(session, SYSTEM, None, first, TZ, number="Ш-2",
                                            ends_on=today + timedelta(days=400))
        assert second.renews_id == first.id and first.renewed_by_id == second.id
        assert second.starts_on == today + timedelta(days=6)
        with pytest.raises(agreements.CloudConflict, match="renewed already"):
            agreements.renew_agreement(session, SYSTEM, None, first, TZ, number="Ш-3", ends_on=None)
        # Both schools to the duty unit of district 2 in one go; the school already routed to it is skipped.
        bulk = agreements.route_sites(session, SYSTEM, None, TZ, root_place_id=city.city_id,
                                      place_kinds=["school"], holder_org_id=city.organisations["duty2"],
                                      scope=["view_live", "view_archive"], starts_on=today, ends_on=None,
                                      legal_basis="План вывода школ", number_prefix="ШКОЛЫ")
        assert [a.party_org_id for a in bulk.created] == [city.organisations["school2"]]
        assert bulk.skipped == [(city.schools[0], "routed to this unit already")]
    assert check_once(inst)["agreements_expired"] == 0


def test_the_compliance_report_names_the_cameras_short_of_their_required_depth(demo_inst: Installation,
                                                                                demo_client: TestClient) -> None:
    city = demo_inst.city
    now = datetime.now(UTC)
    deep, shallow, school = city.cameras["b3e1"], city.cameras["b3e2"], city.cameras["d2school1"]
    with demo_inst.db.session() as session:
        compliance.save_requirement(session, SYSTEM, "school", 60, "Требование к школам")
        for camera_id, days in ((deep, 40), (shallow, 5), (school, 45)):
            for back in range(days, 0, -1):  # a file a day, each a minute long
                start = now - timedelta(days=back)
                session.add(Recording(camera_id=camera_id, path=f"c/{camera_id}/{back}.mp4", start_at=start,
                                      end_at=start + timedelta(minutes=1), bytes=1000, media_seconds=60.0,
                                      state="closed"))
        session.add(Gap(camera_id=shallow, start_at=now - timedelta(hours=2), end_at=None, reason="unreachable"))
    operator = login(demo_client, "operator")
    report = demo_client.get("/api/v1/cloud/compliance", headers=operator).json()
    by_id = {c["camera_id"]: c for c in report["cameras"]}
    assert by_id[deep]["short"] is False and by_id[deep]["required_days"] == 30
    assert by_id[shallow]["short"] is True and by_id[shallow]["missing_days"] > 24
    assert by_id[shallow]["offline_reason"] == "unreachable" and shallow in report["offline"]
    assert by_id[school]["required_days"] == 60 and by_id[school]["short"] is True
    assert "kind:school" in by_id[school]["required_by"]
    assert {shallow, school} <= set(report["short"]) and deep not in report["short"]
    assert any(r.startswith("contract:") for r in by_id[deep]["required_by"])
    names = {c["camera_id"]: c["name"] for c in report["cameras"]}
    # The school's admin sees its own cameras only.
    own = demo_client.get("/api/v1/cloud/compliance", headers=login(demo_client, "school7")).json()
    assert {c["camera_id"] for c in own["cameras"]} == {city.cameras["d1school1"], city.cameras["d1school2"]}
    # Printable in Russian and Kazakh, the short cameras named; the workbook marks them.
    for lang, word in (("ru", "не хватает"), ("kk", "жетпейтін")):
        pdf = demo_client.get("/api/v1/cloud/compliance.pdf", headers=operator, params={"lang": lang})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf.content, capture_output=True,
                              check=True).stdout.decode()
        assert word in text.lower() and names[shallow] in text and names[school].split(",")[0] in text
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(demo_client.get("/api/v1/cloud/compliance.xlsx", headers=operator,
                                                             params={"lang": "kk"}).content))
    rows = [[c.value for c in row] for row in book.worksheets[0].iter_rows()]
    flagged = {r[0] for r in rows[1:] if r[7] == "иә"}
    assert names[shallow] in flagged and names[deep] not in flagged
    assert demo_client.get("/api/v1/cloud/compliance", headers=login(demo_client, "duty1")).status_code == 404
