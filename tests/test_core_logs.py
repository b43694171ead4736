"""No secret and no national ID number in any log line: the scrubber, a whole process, a whole `kuzet serve` run."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from kuzet.logs import scrub, scrub_record
from kuzet.services.lifecycle import stop_child
from tests.browser_support import free_port
from tests.conftest import make_installation

IIN = "900101300123"


@pytest.mark.parametrize(("line", "secret", "kept"), [
    ('GET /api/v1/cameras/1/live.m3u8?token=Zm9vYmFyLXRva2Vu&x=1 HTTP/1.1', "Zm9vYmFyLXRva2Vu", "x=1"),
    ("GET /api/v1/alarms/live?access_token=YWNjZXNzLXRva2Vu", "YWNjZXNzLXRva2Vu", "/api/v1/alarms/live"),
    ("cannot open rtsp://admin:s3cret@10.0.0.5:554/stream1 (401)", "s3cret", "10.0.0.5:554/stream1"),
    ("cannot open rtsp://admin:p@ss@10.0.0.5/s", "ss@", "10.0.0.5/s"),
    ("connection failed: postgresql+psycopg://kuzet:db-pw@db.internal/kuzet", "db-pw", "db.internal/kuzet"),
    ("{'authorization': 'Bearer dG9rZW4tdG9rZW4tdG9rZW4', 'accept': '*/*'}", "dG9rZW4tdG9rZW4tdG9rZW4", "accept"),
    ("Authorization: Basic YWRtaW46c2VjcmV0", "YWRtaW46c2VjcmV0", "Authorization"),
    ("cookie: kuzet_session=c2Vzc2lvbi10b2tlbg; lang=ru", "c2Vzc2lvbi10b2tlbg", "lang=ru"),
    ('{"username": "alice", "password": "correct horse battery"}', "horse", '"username": "alice"'),
    ("new_password=Longer-Passw0rd&current_password=Old-Passw0rd", "Passw0rd", "new_password="),
    ("X-Api-Key: a1b2c3d4", "a1b2c3d4", "X-Api-Key"),
    ("('alice', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g', 1)", "aGFzaGhhc2g", "'alice'"),
    (f"GET /api/v1/safe-yards/subject-access/{IIN}?purpose=x", IIN, "/subject-access/"),
    (f"person iin={IIN} apartment=12", IIN, "apartment=12"),
])
def test_scrub_redacts_secrets_and_keeps_the_rest(line: str, secret: str, kept: str) -> None:
    clean = scrub(line)
    assert secret not in clean and kept in clean and "***" in clean
    assert scrub(clean) == clean


def test_scrub_leaves_ordinary_lines_alone() -> None:
    for line in ("invalid, expired or revoked token", "password is too short (at least 10 characters)",
                 "camera 12: unreachable (connection refused); retrying in 4 s", "SELECT token_hash FROM api_tokens",
                 "retention deleted 3 files (1234567890123 bytes)"):
        assert scrub(line) == line


def _record(name: str, msg: object, args: tuple | dict | None = None, exc_info=None) -> logging.LogRecord:  # noqa: ANN001
    return logging.LogRecord(name, logging.INFO, "", 0, msg, args, exc_info)


def test_scrub_record_covers_arguments_formats_and_tracebacks() -> None:
    access = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d',
                     ("1.2.3.4:5000", "GET", "/api/v1/cameras/1/live.m3u8?token=SECRETSECRET&x=1", "1.1", 200))
    scrub_record(access)
    # uvicorn's access formatter reads the five arguments one by one: they stay, scrubbed.
    assert len(access.args) == 5 and "SECRETSECRET" not in access.getMessage() and "x=1" in access.getMessage()
    split = _record("kuzet", "token=%s for %s", ("SPLITSECRET", "alice"))
    scrub_record(split)
    assert "SPLITSECRET" not in split.getMessage() and "alice" in split.getMessage()
    number = _record("kuzet", "person %d read", (int(IIN),))
    scrub_record(number)
    assert IIN not in number.getMessage()
    mapping = _record("kuzet", "%(url)s", ({"url": "rtsp://u:MAPSECRET@h/s"},))
    scrub_record(mapping)
    assert "MAPSECRET" not in mapping.getMessage()
    try:
        raise ConnectionError("cannot reach rtsp://admin:TRACESECRET@10.0.0.9/live")
    except ConnectionError:
        failed = _record("kuzet.recording", "camera %s failed", (3,), exc_info=sys.exc_info())
    scrub_record(failed)
    text = logging.Formatter().format(failed)
    assert "TRACESECRET" not in text and "ConnectionError" in text and failed.exc_info is None


PROCESS_SCRIPT = textwrap.dedent(f"""
    import asyncio, logging, threading, warnings
    from kuzet import logs
    logs.configure("debug")
    logging.getLogger("kuzet.recording").warning("open rtsp://admin:S1@10.0.0.1/s")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:1", "GET", "/x?token=S2", "1.1", 200)
    logging.getLogger("uvicorn.error").error("bad header Authorization: Bearer S3S3S3S3S3S3")
    logging.getLogger("httpx").debug("HTTP Request: POST https://hooks.example/x?access_token=S4")
    logging.getLogger("sqlalchemy.engine.Engine").info("[cached] ('$argon2id$v=19$m=65536,t=3,p=4$S5S5$S5S5',)")
    logging.getLogger().info("root sees iin %s", "{IIN}")
    logging.getLogger("some.library").debug("Cookie: kuzet_session=S6S6")
    warnings.warn("deprecated call with password=S7")
    async def fail():
        raise RuntimeError("task lost rtsp://u:S8@h/")
    async def main():
        loop = asyncio.get_running_loop()
        loop.create_task(fail())
        await asyncio.sleep(0.05)
    asyncio.run(main())
    import gc; gc.collect()
    t = threading.Thread(target=lambda: (_ for _ in ()).throw(ValueError("thread saw token=S9")), name="worker")
    t.start(); t.join()
    raise SystemError("the end: rtsp://u:S10@h/")
""")


def test_every_logger_and_hook_of_a_process_is_scrubbed(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", PROCESS_SCRIPT], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONWARNINGS": "default"})
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "SystemError" in text  # the uncaught exception went through logging
    for marker in ("kuzet.recording", "uvicorn.access", "uvicorn.error", "httpx", "sqlalchemy", "root", "some.library",
                   "py.warnings", "asyncio", "worker"):
        assert marker in text, marker
    leaked = [s for s in (*(f"S{n}" for n in range(1, 11)), IIN) if re.search(rf"\b{s}\b", text)]
    assert not leaked, text


# --- a whole server run --------------------------------------------------------------------------------------------

def _seed(data: Path) -> dict:
    """A demo city with its safe yards (people with IINs), demo cameras off, and an admin with a long password."""
    from sqlalchemy import update

    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.services.demo import seed_demo_city
    from kuzet.services.safeyard import demo as safeyard_demo
    from kuzet.store.models import Camera

    inst, _ = make_installation("sqlite", data)
    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys)
    safeyard_demo.seed(inst, city)
    with inst.db.session() as session:
        session.execute(update(Camera).values(enabled=False))
        accounts.create_user(session, SYSTEM, "chief", "Chief-Passw0rd-One", "platform_admin")
    inst.close()
    return {"place": city.entrances[0], "camera": city.cameras["b1e1"]}


def test_a_whole_server_run_logs_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    seeded = _seed(data)
    port, closed_port = free_port(), free_port()
    log_file = tmp_path / "server.log"
    env = {**os.environ, "KUZET_DATA_DIR": str(data), "KUZET_OPERATIONS__ENABLED": "false"}
    secrets: list[str] = ["Chief-Passw0rd-One", "Wr0ng-Passw0rd-xyz", "Chief-Passw0rd-Two", "s3cret-cam-pw"]
    with open(log_file, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port),
                                 "--log-level", "debug"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(300):
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise AssertionError(log_file.read_text())
            # A failed login, a session cookie, a bearer token and a personal token.
            assert http.post("/auth/token", data={"username": "chief", "password": "Wr0ng-Passw0rd-xyz"}
                             ).status_code == 401
            session = http.post("/auth/login", json={"username": "chief", "password": "Chief-Passw0rd-One"})
            cookie = session.cookies["kuzet_session"]
            http.cookies.clear()
            bearer = http.post("/auth/token", data={"username": "chief", "password": "Chief-Passw0rd-One"}
                               ).json()["access_token"]
            admin = {"Authorization": f"Bearer {bearer}"}
            personal = http.post("/auth/tokens", json={"name": "vlc"}, headers=admin).json()["token"]
            secrets += [cookie, bearer, personal]
            assert http.get("/auth/me", headers={"Cookie": f"kuzet_session={cookie}"}).status_code == 200
            # ?token= on media URLs, as players send it.
            http.get(f"/cameras/{seeded['camera']}/live.m3u8", params={"token": personal})
            http.get(f"/cameras/{seeded['camera']}/archive.m3u8", params={"token": personal})
            # A camera with credentials in its URL: the recorder tries it and fails.
            camera = http.post("/cameras", headers=admin, json={
                "name": "Ворота", "place_id": seeded["place"], "kind": "gate",
                "main_url": f"rtsp://admin:s3cret-cam-pw@127.0.0.1:{closed_port}/stream"})
            assert camera.status_code == 201, camera.text
            camera_id = camera.json()["id"]
            for _ in range(300):
                if http.get(f"/cameras/{camera_id}/health", headers=admin).json()["reconnects"] >= 1:
                    break
                time.sleep(0.2)
            else:
                raise AssertionError("the recorder never tried the camera")
            # Safe-yard people with their national ID numbers, read by the district's inspector.
            inspector = http.post("/auth/token", data={"username": "inspector1", "password": "demo"}).json()
            secrets.append(inspector["access_token"])
            insp = {"Authorization": f"Bearer {inspector['access_token']}"}
            yard = http.get("/safe-yards", headers=insp).json()["items"][0]["id"]
            people = http.get(f"/safe-yards/{yard}/people", params={"purpose": "проверка по заявлению"},
                              headers=insp)
            assert people.status_code == 200, people.text
            iins = sorted(set(re.findall(r"\b\d{12}\b", people.text)))
            assert iins, "the safe yard holds no IIN: nothing was tested"
            secrets += iins
            http.get(f"/safe-yards/subject-access/{iins[0]}", params={"purpose": "запрос субъекта"}, headers=insp)
            # A password change.
            changed = http.patch("/auth/password", headers=admin, json={"current_password": "Chief-Passw0rd-One",
                                                                        "new_password": "Chief-Passw0rd-Two"})
            assert changed.status_code == 200, changed.text
    finally:
        stop_child(proc, 30, group=True)
    text = log_file.read_text(encoding="utf-8", errors="replace")
    # The run was logged at DEBUG, from uvicorn's access log to SQLAlchemy and the recorder…
    assert "token=***" in text and " DEBUG sqlalchemy" in text and f"camera {camera_id}:" in text
    assert "POST /api/v1/auth/token" in text and "/safe-yards/" in text
    # …and no line holds a password, a token, a camera credential, an argon2 hash or a national ID number.
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"{leaked} in the server's log"
    assert not re.search(r"\$argon2id\$v=\d+\$m=", text)
