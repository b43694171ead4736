"""TLS served by `kuzet serve` itself (issue 17): with a test certificate, `curl --cacert` reaches HTTPS, the session
cookie is Secure, HSTS is sent, and plain HTTP on [http] redirect_port answers 308 to the same path on HTTPS. Bad
certificate settings are refused at start, naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kuzet.api.redirect import HttpsRedirect
from kuzet.cli.main import app as cli_app
from kuzet.installation import Installation
from kuzet.services import accounts
from kuzet.services.audit import SYSTEM
from tests.faults_support import _stop_process, child_env, free_port, wait_port
from tests.tls_support import make_certificate

PASSWORD = "tls-test-password-1"


def _curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "20", *args], capture_output=True,
                          text=True, timeout=60)


def test_https_secure_cookie_hsts_and_redirect(inst: Installation, tmp_path: Path) -> None:
    cert, key, ca = make_certificate(tmp_path / "tls")
    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "admin", PASSWORD, "platform_admin")
    inst.close()
    port, plain_port = free_port(), free_port()
    env = child_env(KUZET_DATA_DIR=str(inst.settings.data_dir), KUZET_HTTP__TLS_CERT=str(cert),
                    KUZET_HTTP__TLS_KEY=str(key), KUZET_HTTP__REDIRECT_PORT=str(plain_port),
                    KUZET_RECORDER__ENABLED="false", KUZET_OPERATIONS__ENABLED="false")
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kuzet.cli.main", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_port(port, 120, "kuzet serve (HTTPS)")
        wait_port(plain_port, 30, "kuzet serve (HTTP redirect)")
        base = f"https://127.0.0.1:{port}"
        # HTTPS with the test CA: the login's session cookie is Secure, and HSTS is promised
        login = _curl("--cacert", str(ca), "-i", "-X", "POST", f"{base}/api/v1/auth/login",
                      "-H", "Content-Type: application/json",
                      "--data", f'{{"username": "admin", "password": "{PASSWORD}"}}')
        assert login.returncode == 0, login.stderr + log.read_text()
        head, _, _body = login.stdout.partition("\r\n\r\n")
        assert head.startswith("HTTP/1.1 200"), head
        cookie = next(line for line in head.splitlines() if line.lower().startswith("set-cookie:"))
        assert "; secure" in cookie.lower() and "httponly" in cookie.lower()
        assert "strict-transport-security: max-age=31536000" in head.lower()
        # without the CA the certificate is not trusted (it is a real TLS handshake)
        assert _curl(f"{base}/api/v1/health").returncode != 0
        # plain HTTP on the TLS port is no way in
        assert _curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/").stdout in ("000", "400")
        # plain HTTP on redirect_port: 308 to the same path and query on HTTPS, with no HSTS (not over TLS)
        redirect = _curl("-i", f"http://127.0.0.1:{plain_port}/cameras?id=7")
        assert redirect.stdout.startswith("HTTP/1.1 308"), redirect.stdout
        assert f"location: https://127.0.0.1:{port}/cameras?id=7" in redirect.stdout.lower()
        assert "strict-transport-security" not in redirect.stdout.lower()
        followed = _curl("--cacert", str(ca), "-L", "-o", "/dev/null", "-w", "%{http_code} %{url_effective}",
                         f"http://127.0.0.1:{plain_port}/login")
        assert followed.stdout == f"200 https://127.0.0.1:{port}/login", followed.stdout
    finally:
        _stop_process(proc)


def test_behind_a_proxy_hsts_and_secure_cookie_only_when_a_trusted_proxy_says_https(inst: Installation) -> None:
    from fastapi.testclient import TestClient

    from kuzet.api.app import create_app

    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "admin", PASSWORD, "platform_admin")
    inst.settings.http.trusted_proxies = ["127.0.0.1"]
    body = {"username": "admin", "password": PASSWORD}
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.4"}
    with TestClient(create_app(inst), client=("127.0.0.1", 50000)) as proxy, \
            TestClient(create_app(inst), client=("203.0.113.9", 50000)) as stranger:
        plain = proxy.post("/api/v1/auth/login", json=body)
        assert plain.status_code == 200 and "strict-transport-security" not in plain.headers
        assert "secure" not in plain.headers["set-cookie"].lower()
        forwarded = proxy.post("/api/v1/auth/login", json=body, headers=https)
        assert forwarded.headers["strict-transport-security"] == "max-age=31536000"
        assert "; secure" in forwarded.headers["set-cookie"].lower()
        # the same headers from an address that is not a configured proxy are not believed
        spoofed = stranger.post("/api/v1/auth/login", json=body, headers=https)
        assert spoofed.status_code == 200 and "strict-transport-security" not in spoofed.headers
        assert "secure" not in spoofed.headers["set-cookie"].lower()


def test_redirect_location_never_repeats_a_hostile_host() -> None:
    redirect = HttpsRedirect(8443, "kuzet.example.kz")
    assert redirect.location("video.example.kz:80", "/a", "b=1") == "https://video.example.kz:8443/a?b=1"
    assert redirect.location("evil.example/\\@x", "/a", "") == "https://kuzet.example.kz:8443/a"
    assert HttpsRedirect(443, "h").location("", "", "") == "https://h/"


@pytest.mark.parametrize(("env", "said"), [
    ({"KUZET_HTTP__TLS_CERT": "/nonexistent/cert.pem", "KUZET_HTTP__TLS_KEY": "/nonexistent/key.pem"},
     "tls_cert: /nonexistent/cert.pem does not exist"),
    ({"KUZET_HTTP__TLS_CERT": "CERT"}, "tls_cert and tls_key go together"),
    ({"KUZET_HTTP__TLS_CERT": "CERT", "KUZET_HTTP__TLS_KEY": "OTHER_KEY"}, "cannot be used together"),
    ({"KUZET_HTTP__REDIRECT_PORT": "8081"}, "redirect_port needs tls_cert and tls_key"),
])
def test_bad_tls_settings_are_refused(inst: Installation, tmp_path: Path, env: dict, said: str) -> None:
    cert, _key, _ca = make_certificate(tmp_path / "a")
    _cert2, other_key, _ca2 = make_certificate(tmp_path / "b")
    env = {k: v.replace("OTHER_KEY", str(other_key)).replace("CERT", str(cert)) for k, v in env.items()}
    env["KUZET_DATA_DIR"] = str(inst.settings.data_dir)
    if inst.settings.database_url:
        env["KUZET_DATABASE_URL"] = inst.settings.database_url
    result = CliRunner().invoke(cli_app, ["serve"], env=env)
    assert result.exit_code == 1 and said in " ".join(result.output.split()), result.output
