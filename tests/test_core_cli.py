"""The command line as a user runs it: init, user add, demo seeding, audit verify, --help everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def kuzet(*args: str, data: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})}
    if data is not None:
        full_env["KUZET_DATA_DIR"] = str(data)
    return subprocess.run([sys.executable, "-m", "kuzet.cli.main", *args], capture_output=True, text=True,
                          env=full_env, timeout=300)


def test_help_for_every_command() -> None:
    for args in ([], ["init"], ["serve"], ["demo"], ["db", "upgrade"], ["user", "add"], ["camera", "add"],
                 ["camera", "list"], ["camera", "import"], ["audit", "verify"]):
        out = kuzet(*args, "--help")
        assert out.returncode == 0, (args, out.stderr)
        assert "Usage" in out.stdout


def test_commands_need_an_installation(tmp_path: Path) -> None:
    out = kuzet("camera", "list", data=tmp_path / "nothing")
    assert out.returncode == 1 and "kuzet init" in out.stderr


def test_init_user_add_and_verify(tmp_path: Path) -> None:
    data = tmp_path / "inst"
    assert kuzet("init", "--data", str(data)).returncode == 0
    out = kuzet("user", "add", "boss", "--role", "platform_admin", "--json", data=data,
                env={"KUZET_NEW_PASSWORD": "s3cret-pass"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["role"] == "platform_admin"
    dup = kuzet("user", "add", "boss", "--role", "resident", data=data, env={"KUZET_NEW_PASSWORD": "s3cret-pass"})
    assert dup.returncode == 1 and "already exists" in dup.stderr
    verify = kuzet("audit", "verify", "--json", data=data)
    assert verify.returncode == 0 and json.loads(verify.stdout)["ok"] is True


def test_demo_seed_is_idempotent_and_lists_accounts(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    first = kuzet("demo", "--seed-only", "--data", str(data))
    assert first.returncode == 0, first.stderr
    for account in ("admin", "operator", "duty1", "center", "inspector1", "analyst", "resident1", "resident2"):
        assert account in first.stdout
    cameras = json.loads(kuzet("camera", "list", "--json", data=data).stdout)
    assert len(cameras) >= 20
    assert {c["kind"] for c in cameras} >= {"entrance", "yard", "street", "school", "road"}
    again = kuzet("demo", "--seed-only", "--data", str(data))
    assert again.returncode == 0
    assert len(json.loads(kuzet("camera", "list", "--json", data=data).stdout)) == len(cameras)
    assert kuzet("audit", "verify", data=data).returncode == 0


def test_server_logs_never_carry_tokens_or_camera_passwords() -> None:
    import logging

    from kuzet.cli.core import SecretFilter

    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("1.2.3.4", "GET", "/api/v1/cameras/1/live.m3u8?token=SECRET&x=1", "1.1", 200), None)
    SecretFilter().filter(record)
    assert "SECRET" not in record.getMessage() and "x=1" in record.getMessage()
    record = logging.LogRecord("kuzet", logging.ERROR, "", 0, "cannot open rtsp://admin:pw123@10.0.0.5/s", (), None)
    SecretFilter().filter(record)
    assert "pw123" not in record.getMessage()
