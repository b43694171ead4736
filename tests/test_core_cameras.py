"""Camera registry: CSV import is all or nothing with line-numbered errors; credentials encrypted at rest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cameras import ImportRejected, import_csv, redact, split_credentials
from kuzet.services.places import create_place
from kuzet.store.models import Camera
from tests.conftest import login

HEADER = "name,place,kind,main_url,sub_url,lat,lon,bearing,field_of_view,retention_days,enabled\n"


def _places(inst: Installation) -> tuple[int, int]:
    with inst.db.session() as s:
        district = create_place(s, SYSTEM, "district", "Район")
        street = create_place(s, SYSTEM, "street", "ул. Абая", parent_id=district.id)
        return district.id, street.id


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "cameras.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def _count(inst: Installation) -> int:
    with inst.db.session() as s:
        return s.scalar(select(func.count()).select_from(Camera))


def test_good_file_imports_every_row(inst: Installation, tmp_path: Path) -> None:
    _, street = _places(inst)
    rows = [f"Cam {i},{street},street,rtsp://u:p@10.0.0.{i}/main,rtsp://10.0.0.{i}/sub,44.8,65.5,90,60,30,yes"
            for i in range(1, 51)]
    with inst.db.session() as s:
        result = import_csv(s, SYSTEM, inst.keys, _csv(tmp_path, rows))
    assert len(result.created) == 50 and _count(inst) == 50


def test_one_bad_row_imports_nothing_and_is_named(inst: Installation, tmp_path: Path) -> None:
    _, street = _places(inst)
    rows = [f"Cam {i},{street},street,rtsp://10.0.0.{i}/main,,44.8,65.5,90,60,30,yes" for i in range(1, 40)]
    rows[16] = f"Cam bad,{street},street,rtsp://10.0.0.99/main,,144.8,65.5,90,60,30,yes"  # latitude out of range
    rows[30] = "Cam worse,ул. Нет такой,street,rtsp://10.0.0.98/main,,,,,,30,yes"
    with pytest.raises(ImportRejected) as info, inst.db.session() as s:
        import_csv(s, SYSTEM, inst.keys, _csv(tmp_path, rows))
    lines = {e.line: e.message for e in info.value.errors}
    assert set(lines) == {18, 32}
    assert "latitude" in lines[18]
    assert "not found" in lines[32]
    assert _count(inst) == 0


def test_cli_import_reports_line_and_exit_code(inst: Installation, tmp_path: Path) -> None:
    _, street = _places(inst)
    rows = [f"Cam {i},{street},street,rtsp://admin:hunter2@10.0.0.{i}/main,,,,,,30,yes" for i in range(1, 6)]
    rows[2] = f"Cam 3,{street},street,ftp://admin:hunter2@10.0.0.3/main,,,,,,30,yes"
    env = {"KUZET_DATA_DIR": str(inst.settings.data_dir), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    out = subprocess.run([sys.executable, "-m", "kuzet.cli.main", "camera", "import", str(_csv(tmp_path, rows))],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1
    assert "line 4" in out.stderr and "scheme" in out.stderr
    assert "hunter2" not in out.stderr + out.stdout
    assert _count(inst) == 0
    rows[2] = f"Cam 3,{street},street,rtsp://admin:hunter2@10.0.0.3/main,,,,,,30,yes"
    ok = subprocess.run([sys.executable, "-m", "kuzet.cli.main", "camera", "import", str(_csv(tmp_path, rows)),
                         "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert _count(inst) == 5
    listing = subprocess.run([sys.executable, "-m", "kuzet.cli.main", "camera", "list", "--json"],
                             capture_output=True, text=True, env=env, timeout=120)
    assert "hunter2" not in listing.stdout and "rtsp://10.0.0.1/main" in listing.stdout


def test_api_import_rejects_whole_file(inst: Installation, client: TestClient) -> None:
    from kuzet.services import accounts

    _, street = _places(inst)
    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "root", "secret-password", "platform_admin")
    headers = login(client, "root", "secret-password")
    body = HEADER + f"A,{street},street,rtsp://10.0.0.1/a,,,,,,30,yes\nB,{street},street,rtsp://10.0.0.2/b,,,,,,0,yes\n"
    response = client.post("/api/v1/cameras/import", headers=headers,
                           files={"file": ("c.csv", body.encode(), "text/csv")})
    assert response.status_code == 422
    assert [{k: r[k] for k in ("line", "message")} for r in response.json()["error"]["rows"]] == [
        {"line": 3, "message": "retention_days must be within 1..3650"}]
    assert _count(inst) == 0


def test_credentials_split_and_redacted() -> None:
    assert split_credentials("rtsp://admin:p%40ss@cam.local:554/s1") == ("rtsp://cam.local:554/s1", "admin:p@ss")
    assert split_credentials("rtsp://cam.local/s1") == ("rtsp://cam.local/s1", None)
    assert redact("failed rtsp://admin:x@1.2.3.4/a and http://u:p@h/b") == "failed rtsp://***@1.2.3.4/a and http://***@h/b"


def test_credentials_never_in_database_plaintext(inst: Installation) -> None:
    from kuzet.services.cameras import create_camera

    _, street = _places(inst)
    with inst.db.session() as s:
        create_camera(s, SYSTEM, inst.keys, name="X", place_id=street, main_url="rtsp://admin:VerySecret1@1.2.3.4/a")
    if inst.db.is_sqlite:
        inst.db.dispose()
        raw = b"".join(p.read_bytes() for p in inst.settings.data_dir.glob("kuzet.db*"))
        assert b"VerySecret1" not in raw
    else:
        with inst.db.session() as s:
            dump = str(s.execute(select(Camera.__table__)).all())
        assert "VerySecret1" not in dump
