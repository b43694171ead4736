"""``kuzet bench api --against URL`` drives a running server with wrk as the demo's control centre and reports the
camera list's figures against the health endpoint (the figures themselves are the machine's: not asserted)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kuzet.services.demo import seed_demo_city
from tests.browser_support import kuzet_server
from tests.conftest import make_installation


@pytest.mark.skipif(shutil.which("wrk") is None, reason="Debian's wrk is not installed")
def test_against_a_running_demo_city(backend: str, tmp_path: Path) -> None:
    inst, schema = make_installation(backend, tmp_path / "data")
    try:
        with inst.db.session() as session:
            seed_demo_city(session, inst.keys)
        env = {"KUZET_DATABASE_URL": schema.url} if schema else {}
        inst.close()
        with kuzet_server(tmp_path / "data", env) as base:
            run = subprocess.run([sys.executable, "-m", "kuzet.cli.main", "bench", "api", "--against", base,
                                  "--seconds", "3", "--connections", "2", "--no-browser", "--json"],
                                 capture_output=True, text=True, timeout=300, env=os.environ | env)
            assert run.returncode == 0, run.stderr
            result = json.loads(run.stdout)
            wrong = subprocess.run([sys.executable, "-m", "kuzet.cli.main", "bench", "api", "--against", base,
                                    "--password", "not-the-password", "--no-browser", "--json"],
                                   capture_output=True, text=True, timeout=300, env=os.environ | env)
    finally:
        if schema:
            schema.drop()
    assert result["user"] == "center" and result["cameras"]["endpoint"] == "/api/v1/cameras?limit=50"
    assert result["cameras"]["requests"] > 0 and result["cameras"]["errors"] == 0
    assert result["ceiling"]["requests"] > 0
    assert set(result["met"]) == {"cameras_rps"} and "live" not in result
    assert wrong.returncode != 0 and "signing in as center" in wrong.stderr + wrong.stdout
