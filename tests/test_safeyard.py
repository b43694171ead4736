"""Safe-yard passports: need-to-know access with audited purposes, no plaintext in the database, key rotation,
all-or-nothing list import, printable passports in Russian and Kazakh."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from kuzet.installation import Installation
from kuzet.services.safeyard.demo import seed
from kuzet.services.safeyard.vault import Vault, valid_iin
from kuzet.store.models.safeyard import SafeYard
from tests.conftest import login


@pytest.fixture(scope="module")
def yards(demo_inst: Installation) -> dict:
    seed(demo_inst, demo_inst.city)
    with demo_inst.db.session() as s:
        rows = s.scalars(select(SafeYard).order_by(SafeYard.id)).all()
        return {"d1": rows[0].id, "d2": rows[2].id}


def test_iin_check_digit() -> None:
    assert valid_iin("900101300007") is (int("900101300007"[-1]) == _check("900101300007"))
    assert not valid_iin("12345")
    assert not valid_iin("900101300000") or _check("900101300000") == 0


def _check(iin: str) -> int:
    d = [int(c) for c in iin]
    c = sum(x * w for x, w in zip(d[:11], range(1, 12), strict=True)) % 11
    if c == 10:
        c = sum(x * w for x, w in zip(d[:11], [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2], strict=True)) % 11
    return c


def test_need_to_know_and_every_read_audited(demo_client: TestClient, yards: dict) -> None:
    d1 = yards["d1"]
    inspector = login(demo_client, "inspector1")
    people = demo_client.get(f"/api/v1/safe-yards/{d1}/people", params={"purpose": "проверка по заявлению 17"},
                             headers=inspector)
    assert people.status_code == 200, people.text
    names = [p.get("name") for p in people.json()]
    assert any(n and "(демо)" in n for n in names)
    assert demo_client.get(f"/api/v1/safe-yards/{d1}/people", headers=inspector).status_code == 422  # no purpose
    for blank in ("   ", "\x00\x01\x02\x03", " \t\n "):  # not a purpose anyone can read in the audit log
        assert demo_client.get(f"/api/v1/safe-yards/{d1}/people", params={"purpose": blank},
                               headers=inspector).status_code == 422
    for username in ("resident1", "analyst", "duty1", "inspector2"):
        response = demo_client.get(f"/api/v1/safe-yards/{d1}/people", params={"purpose": "любопытство"},
                                   headers=login(demo_client, username))
        assert response.status_code == 404, username
    # inspector1 may not read district 2's passport
    assert demo_client.get(f"/api/v1/safe-yards/{yards['d2']}/people", params={"purpose": "проверка"},
                           headers=inspector).status_code == 404
    # the passport itself: masked values for the district inspector, counts only for duty1, nothing for residents
    passport = demo_client.get(f"/api/v1/safe-yards/{d1}", headers=inspector).json()
    assert passport["counts"]["resident"] == 4 and all("*" in p["name"] for p in passport["people"])
    duty = demo_client.get(f"/api/v1/safe-yards/{d1}", headers=login(demo_client, "duty1")).json()
    assert "people" not in duty and duty["counts"]["firearm"] == 1
    assert demo_client.get(f"/api/v1/safe-yards/{d1}", headers=login(demo_client, "resident1")).status_code == 404
    log = demo_client.get("/api/v1/audit", params={"action": "personal.read", "limit": 50},
                          headers=login(demo_client, "auditor")).json()["items"]
    assert any(r["actor_name"] == "inspector1" and r["purpose"] == "проверка по заявлению 17" for r in log)
    assert not any(r["actor_name"] in ("resident1", "analyst", "duty1") for r in log)


def test_database_holds_no_plaintext_and_rotation_keeps_it_readable(demo_inst: Installation, yards: dict) -> None:
    secrets_to_find = ["Охотник Демо", "Поднадзорный Демо", "Демоев Тест", "DEMO-0", "+7 700 111 22 33"]
    with demo_inst.db.session() as s:
        if demo_inst.db.is_sqlite:
            dump = "\n".join(s.connection().connection.driver_connection.iterdump())
        else:
            dump = str(s.execute(text("SELECT * FROM safe_yard_people")).all())
            dump += str(s.execute(text("SELECT * FROM audit_log")).all())
    for value in secrets_to_find:
        assert value not in dump, value
    if demo_inst.db.is_sqlite:
        demo_inst.db.dispose()
        raw = b"".join(p.read_bytes() for p in demo_inst.settings.data_dir.glob("kuzet.db*"))
        assert "Охотник Демо".encode() not in raw
    from kuzet.services.safeyard.lists import rotate_keys
    from kuzet.services.safeyard.passport import find

    vault = Vault(demo_inst.settings.keys_path)
    old = vault.current_id
    with demo_inst.db.session() as s:
        rotate_keys(s, vault)
    vault.drop_old_keys()
    assert vault.current_id != old and len(vault.keys()) == 1
    with demo_inst.db.session() as s:
        found = find(s, vault, name="охотник  демо")  # normalised: case and spaces
        assert found and all(vault.open(r.payload)["weapon"] for r in found)


def test_bad_import_row_imports_nothing(demo_client: TestClient, yards: dict, tmp_path: Path) -> None:
    body = ("категория,фио,квартира,оружие,разрешение,разрешение до\n"
            "житель,Новый Житель (демо),44,,,\n"
            "владелец оружия,Новый Стрелок (демо),45,карабин,P-1,31.12.2027\n"
            "владелец оружия,Без Разрешения (демо),46,карабин,,\n")
    headers = login(demo_client, "inspector1")
    before = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}", headers=headers).json()["counts"]
    response = demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/import", headers=headers,
                                files={"file": ("lists.csv", body.encode(), "text/csv")})
    assert response.status_code == 422
    rows = response.json()["error"]["rows"]
    assert [r["line"] for r in rows] == [4] and "permit_number" in rows[0]["message"]
    assert demo_client.get(f"/api/v1/safe-yards/{yards['d1']}", headers=headers).json()["counts"] == before
    good = body.rsplit("\n", 2)[0] + "\n"
    ok = demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/import", headers=headers,
                          files={"file": ("lists.csv", good.encode(), "text/csv")})
    assert ok.status_code == 201 and ok.json()["imported"] == 2


def test_house_photo_upload_with_thumbnail(demo_client: TestClient, yards: dict) -> None:
    import cv2
    import numpy as np

    image = np.full((480, 640, 3), 200, np.uint8)
    cv2.rectangle(image, (100, 100), (540, 400), (40, 90, 160), -1)
    ok, jpeg = cv2.imencode(".jpg", image)
    headers = login(demo_client, "inspector1")
    made = demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/photos", headers=headers,
                            files={"file": ("house.jpg", jpeg.tobytes(), "image/jpeg")})
    assert made.status_code == 201, made.text
    thumb = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/photos/{made.json()['id']}",
                            params={"thumbnail": "true"}, headers=headers)
    decoded = cv2.imdecode(np.frombuffer(thumb.content, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape[1] == 320
    bad = demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/photos", headers=headers,
                           files={"file": ("x.jpg", b"not an image", "image/jpeg")})
    assert bad.status_code == 422
    assert demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/photos", headers=login(demo_client, "duty1"),
                            files={"file": ("house.jpg", jpeg.tobytes(), "image/jpeg")}).status_code == 404


def test_passport_shows_the_house_photo_from_the_photo_store(demo_client: TestClient, demo_inst: Installation,
                                                            yards: dict, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    from kuzet.services.safeyard.photos import photo_store
    from kuzet.store.models.safeyard import SafeYardPhoto

    def images() -> int:
        pdf = tmp_path / "passport.pdf"
        pdf.write_bytes(demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/passport.pdf", headers=headers).content)
        listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, timeout=60).stdout
        return len(listed.splitlines()) - 2  # two header lines

    headers = login(demo_client, "inspector1")
    ok, png = cv2.imencode(".png", np.full((300, 400, 3), 90, np.uint8))
    made = demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/photos", headers=headers,
                            files={"file": ("house.png", png.tobytes(), "image/png")})
    assert made.status_code == 201, made.text
    assert images() == 2  # the house photo beside the yard's map
    ok, bmp = cv2.imencode(".bmp", np.full((30, 40, 3), 90, np.uint8))
    assert demo_client.post(f"/api/v1/safe-yards/{yards['d1']}/photos", headers=headers,
                            files={"file": ("house.jpg", bmp.tobytes(), "image/jpeg")}).status_code == 422
    with demo_inst.db.session() as session:  # the file is lost: the passport prints without it, the photo is 404
        photo_store(demo_inst.settings).delete(session.get(SafeYardPhoto, made.json()["id"]))
    assert images() == 1
    assert demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/photos/{made.json()['id']}",
                           headers=headers).status_code == 404


@pytest.mark.parametrize("lang,words", [("ru", ["Паспорт", "Безопасный двор", "Жители"]),
                                        ("kk", ["төлқұжаты", "Қауіпсіз аула", "Тұрғындар", "ә", "ғ", "қ", "ң", "ө",
                                                "ұ", "ү", "һ", "і"])])
def test_printable_passport_renders_with_correct_letters(demo_client: TestClient, yards: dict, tmp_path: Path,
                                                         lang: str, words: list[str]) -> None:
    headers = login(demo_client, "inspector1")
    public = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/passport.pdf", params={"lang": lang}, headers=headers)
    assert public.status_code == 200 and public.content.startswith(b"%PDF")
    pdf = tmp_path / f"passport-{lang}.pdf"
    pdf.write_bytes(public.content)
    textual = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    for word in words:
        assert word in textual, word
    assert "Охотник Демо" not in textual  # the version without personal data
    png = subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf), str(tmp_path / lang)],
                         capture_output=True, timeout=60)
    assert png.returncode == 0 and (tmp_path / f"{lang}.png").stat().st_size > 1000
    restricted = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/passport.pdf",
                                 params={"lang": lang, "personal": "true", "purpose": "печать паспорта"},
                                 headers=headers)
    pdf.write_bytes(restricted.content)
    assert "Охотник Демо" in subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    assert demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/passport.pdf",
                           params={"personal": "true", "purpose": "x" * 5},
                           headers=login(demo_client, "duty1")).status_code == 404


def test_dashboard_and_erasure(demo_client: TestClient, yards: dict) -> None:
    dash = demo_client.get("/api/v1/safe-yards/dashboard", headers=login(demo_client, "analyst")).json()
    assert dash["yards"] == 3 and sum(sum(v.values()) for v in dash["per_district_year"].values()) == 3
    assert {c["category"] for c in dash["to_check"]} == {"supervised", "firearm"}
    headers = login(demo_client, "inspector1")
    people = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}/people", params={"purpose": "запрос субъекта"},
                             headers=headers).json()
    resident = next(p for p in people if p["category"] == "resident")
    mine = demo_client.post("/api/v1/safe-yards/subject-access", json={"iin": resident["iin"], "purpose": "запрос"},
                            headers=headers).json()
    assert [r["name"] for r in mine] == [resident["name"]]
    gone = demo_client.delete(f"/api/v1/safe-yards/{yards['d1']}/people/{resident['id']}",
                              params={"basis": "заявление об удалении № 5"}, headers=headers)
    assert gone.status_code == 204
    log = demo_client.get("/api/v1/audit", params={"action": "personal.erased"},
                          headers=login(demo_client, "auditor")).json()["items"]
    assert log and log[0]["legal_basis"] == "заявление об удалении № 5"


def test_dashboard_counts_incidents_around_a_yard_before_and_after_joining(demo_inst: Installation,
                                                                           demo_client: TestClient,
                                                                           yards: dict) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from kuzet.store.models.operations import Incident

    with demo_inst.db.session() as s:
        yard = s.get(SafeYard, yards["d1"])
        place_id, joined = yard.place_id, yard.joined_on
    duty1 = login(demo_client, "duty1")
    ids = [demo_client.post("/api/v1/incidents", headers=duty1, json={
        "offence_type": "theft", "title": f"Кража во дворе {n}", "place_id": place_id}).json()["id"]
        for n in range(3)]
    when = [joined - timedelta(days=20), joined + timedelta(days=10), joined + timedelta(days=40)]
    with demo_inst.db.session() as s:
        for incident_id, day in zip(ids, when, strict=True):
            s.execute(update(Incident).where(Incident.id == incident_id).values(
                created_at=datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)))
    dash = demo_client.get("/api/v1/safe-yards/dashboard", headers=login(demo_client, "analyst")).json()
    row = next(r for r in dash["items"] if r["id"] == yards["d1"])
    assert row["incidents"]["before"] >= 1 and row["incidents"]["after"] >= 2


def test_crime_effect_of_safe_yards_joining(demo_inst: Installation, demo_client: TestClient, yards: dict) -> None:
    from kuzet.services.crime.demo import seed as seed_crime

    seed_crime(demo_inst, demo_inst.city)
    effect = demo_client.get("/api/v1/crime/effect", params={"installed_from": "2024-01-01",
                                                             "installed_to": "2025-12-31",
                                                             "intervention": "safe_yards", "radius": 200},
                             headers=login(demo_client, "analyst"))
    assert effect.status_code == 200, effect.text
    body = effect.json()
    assert body["sites"] == 3 and body["counts"]["before"]["treated"] + body["counts"]["after"]["treated"] > 0
    assert "cannot rule out" in body["verdict"]


def test_passport_edit_is_kept_in_history(demo_client: TestClient, yards: dict) -> None:
    headers = login(demo_client, "inspector1")
    changed = demo_client.patch(f"/api/v1/safe-yards/{yards['d1']}", headers=headers,
                                json={"characteristics": {"floors": 10, "lighting": "LED"}, "notes": "обход 12.03"})
    assert changed.status_code == 200 and changed.json()["characteristics"]["lighting"] == "LED"
    history = demo_client.get(f"/api/v1/safe-yards/{yards['d1']}", headers=headers).json()["history"]
    assert history[-1]["action"] == "changed" and history[-1]["details"] == {"fields": ["characteristics", "notes"]}
    assert demo_client.patch(f"/api/v1/safe-yards/{yards['d1']}", headers=login(demo_client, "duty1"),
                             json={"notes": "x"}).status_code == 404
    assert demo_client.patch(f"/api/v1/safe-yards/{yards['d1']}", headers=headers,
                             json={"inspector_id": 1}).status_code == 422
