"""The command line as a user runs it: init, user add, demo seeding, audit verify, --help everywhere."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from kuzet.installation import Installation

# The code under test, also in subprocesses (a worktree's src/ ahead of an installed copy).
_PYTHONPATH = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def kuzet(*args: str, data: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **_PYTHONPATH, **(env or {})}
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


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_user_add_and_verify(tmp_path: Path) -> None:
    data = tmp_path / "inst"
    assert kuzet("init", "--data", str(data)).returncode == 0
    short = kuzet("user", "add", "boss", "--role", "platform_admin", data=data, env={"KUZET_NEW_PASSWORD": "s3cret"})
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    out = kuzet("user", "add", "boss", "--role", "platform_admin", "--json", data=data,
                env={"KUZET_NEW_PASSWORD": "s3cret-pass"})
    assert out.returncode == 0, out.stderr
    # Everything that holds a secret or personal data is its owner's only.
    assert _mode(data) == 0o700 and _mode(data / "keys") == 0o700
    for name in ("kuzet.toml", "kuzet.db", "audit.anchor", "keys/secrets.key", "keys/signing.ed25519",
                 "keys/personal.keys", "keys/personal-index.key"):
        assert _mode(data / name) == 0o600, name
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
    # The demo marks its installation as one: its short passwords are allowed there only.
    config = data / "kuzet.toml"
    assert "\ndemo = true\n" in config.read_text() and _mode(config) == 0o600
    from kuzet.config import load_settings

    assert load_settings(data=data, environ={}).demo is True
    config.chmod(0o644)
    again = kuzet("demo", "--seed-only", "--data", str(data))
    assert again.returncode == 0
    assert f"warning: {config} is 0644; run: chmod 600 {config}" in again.stderr
    assert len(json.loads(kuzet("camera", "list", "--json", data=data).stdout)) == len(cameras)
    assert kuzet("audit", "verify", data=data).returncode == 0
    visitor = kuzet("user", "add", "visitor", "--role", "resident", data=data, env={"KUZET_NEW_PASSWORD": "demo"})
    assert visitor.returncode == 0, visitor.stderr
    # An account the demo did not make: from now on this is somebody's installation, not a demo.
    refused = kuzet("demo", "--seed-only", "--data", str(data))
    assert refused.returncode == 1 and "visitor" in refused.stderr


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def test_demo_refuses_an_installation_that_is_not_a_demo(tmp_path: Path) -> None:
    data = tmp_path / "real"
    assert kuzet("init", "--data", str(data)).returncode == 0
    before = _snapshot(data)
    out = kuzet("demo", "--seed-only", "--data", str(data))
    assert out.returncode == 1 and "not a demo" in out.stderr and "demo = true" in out.stderr
    assert "admin" not in out.stdout  # no account table: nothing was seeded
    assert _snapshot(data) == before


def test_demo_refuses_a_database_with_real_accounts(inst: Installation, tmp_path: Path) -> None:
    from sqlalchemy import select

    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM
    from kuzet.store.models import User

    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "boss", "boss-password", "platform_admin")
    if inst.settings.database_url:  # a fresh data directory pointed at a real PostgreSQL database
        data, env = tmp_path / "fresh", {"KUZET_DATABASE_URL": inst.settings.database_url}
    else:  # a SQLite database without its kuzet.toml
        data, env = inst.settings.data_dir, {}
        (data / "kuzet.toml").unlink()
    out = kuzet("demo", "--seed-only", "--data", str(data), env=env)
    assert out.returncode == 1 and "boss" in out.stderr and "not demo accounts" in out.stderr
    with inst.db.session() as s:
        assert s.scalars(select(User.username)).all() == ["boss"]
    assert not (data / "kuzet.toml").exists()
    if inst.settings.database_url:
        assert not data.exists()


def test_demo_serves_the_api_apart_from_the_recorder_on_more_than_one_core() -> None:
    """`kuzet demo` starts one API worker process per core above the first unless --api-workers says otherwise
    (tests/test_demo_simulator.py runs the demo with this default)."""
    from kuzet.cli.core import default_api_workers

    assert default_api_workers(1) == 0
    assert default_api_workers(2) == 1
    assert default_api_workers(8) == 7
    assert default_api_workers() == max(0, len(os.sched_getaffinity(0)) - 1)
