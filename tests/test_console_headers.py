"""The console's defence against hostile data, without a browser: security headers on every response, the
Content-Security-Policy on console pages (and pages that need no inline script under it), names escaped by the
server, the login page never sending anyone off the site, and the console's sources following the rendering rule
(web/README.md, "Rendering user data and CSP"). Browser behaviour: tests/test_console_hostile_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from kuzet.api.headers import console_policy, tile_sources
from kuzet.installation import Installation
from kuzet.store.models import Camera
from kuzet.web.render import same_origin_path

WEB = Path(__file__).resolve().parents[1] / "src" / "kuzet" / "web"
HOSTILE = '<img src=x onerror=alert(1)>"><svg onload=alert(2)></script><script>alert(3)</script>'
OFF_SITE = ["//evil.example/x", "/\\evil.example", "/\\/evil.example", "https://evil.example/", "http:evil.example",
            "javascript:alert(4)", "JaVaScRiPt:alert(4)", "/\t/evil.example", "/\n/evil.example", " //evil.example",
            "evil.example", "", "data:text/html,<script>alert(5)</script>"]


class _Scripts(HTMLParser):
    """The <script> elements of a page: their attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self.event_attributes: list[str] = []
        self.style_attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.event_attributes += [f"{tag}[{k}]" for k, _ in attrs if k.startswith("on")]
        self.style_attributes += [tag for k, _ in attrs if k == "style"]
        if tag == "script":
            self._open = dict(attrs)
            self.scripts.append((self._open, ""))

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


def _scripts(html: str) -> _Scripts:
    parser = _Scripts()
    parser.feed(html)
    return parser


def _directives(policy: str) -> dict[str, list[str]]:
    return {parts[0]: parts[1:] for parts in (d.split() for d in policy.split(";") if d.strip())}


def _sign_in(client: TestClient, username: str) -> None:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": "demo"})
    assert response.status_code == 200, response.text


def test_console_pages_carry_the_policy_and_need_no_inline_script(demo_client: TestClient) -> None:
    _sign_in(demo_client, "admin")
    for path in ("/login", "/cameras", "/map", "/wall", "/admin", "/alarms", "/incidents", "/events",
                 "/operations/rules", "/operations/hotlists", "/operations/kpis", "/safe-yards", "/analytics",
                 "/no-such-page", "/static/js/api.js"):
        response = demo_client.get(path)
        assert response.status_code in (200, 404), path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        policy = _directives(response.headers["content-security-policy"])
        assert policy["script-src"] == ["'self'"], path
        assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
        assert "'unsafe-inline'" not in policy["style-src"] and "'unsafe-eval'" not in policy["default-src"]
        assert {"'self'", "ws://testserver", "wss://testserver"} <= set(policy["connect-src"])
        assert {"blob:", "data:"} <= set(policy["img-src"]) and "blob:" in policy["media-src"]
        if response.headers["content-type"].startswith("text/html"):
            page = _scripts(response.text)
            for attrs, text in page.scripts:
                assert attrs.get("src") or attrs.get("type") == "application/json", f"inline script on {path}: {text}"
            assert not page.event_attributes and not page.style_attributes, path
            boot = [json.loads(text) for attrs, text in page.scripts if attrs.get("id") == "kuzet-boot"]
            assert len(boot) == 1 and boot[0]["lang"] in ("ru", "kk", "en") and boot[0]["texts"]["app.title"]


def test_api_answers_carry_the_plain_headers_only(demo_client: TestClient) -> None:
    for path in ("/api/v1/health", "/api/v1/cameras", "/api/v1/no-such-route"):
        response = demo_client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "content-security-policy" not in response.headers  # the API docs page keeps working


def test_a_hostile_camera_name_is_escaped_by_the_server_and_the_boot_data(demo_inst: Installation,
                                                                         demo_client: TestClient) -> None:
    with demo_inst.db.session() as session:
        camera = session.scalars(select(Camera).order_by(Camera.id)).first()
        camera_id, old_name = camera.id, camera.name
        camera.name = HOSTILE
    try:
        _sign_in(demo_client, "admin")
        response = demo_client.get(f"/cameras/{camera_id}")
        assert response.status_code == 200
        assert "<img src=x" not in response.text and "<svg onload" not in response.text
        assert "&lt;img src=x onerror=alert(1)&gt;&#34;&gt;&lt;svg onload=alert(2)&gt;" in response.text
        page = _scripts(response.text)
        assert [attrs.get("src") or attrs.get("id") for attrs, _ in page.scripts] == [
            "kuzet-boot", "/static/js/base.js", "/static/js/camera.js"]
        boot = json.loads(page.scripts[0][1])
        assert boot["user"]["username"] == "admin" and boot["user"]["role"] == "platform_admin"
    finally:
        with demo_inst.db.session() as session:
            session.get(Camera, camera_id).name = old_name


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_sends_anyone_off_the_site(demo_client: TestClient, target: str) -> None:
    assert same_origin_path(target) == "/"
    response = demo_client.get("/login", params={"next": target})
    assert response.status_code == 200
    assert 'data-next="/"' in response.text, target


def test_login_keeps_a_path_on_this_site(demo_client: TestClient) -> None:
    demo_client.cookies.clear()
    for target in ("/cameras/3?at=2025-01-01T10:00:00Z", "/incidents/1", "/operations/rules#new", "/"):
        assert same_origin_path(target) == target
        response = demo_client.get("/login", params={"next": target})
        assert f'data-next="{target.replace("&", "&amp;")}"' in response.text
    response = demo_client.get("/cameras?q=1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=/cameras%3Fq%3D1"


def test_the_policy_names_the_tile_server_and_nothing_a_header_could_smuggle() -> None:
    assert tile_sources("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png") == ["https://*.tile.openstreetmap.org"]
    assert tile_sources("http://tiles.police.local:8081/{z}/{x}/{y}.png") == ["http://tiles.police.local:8081"]
    assert tile_sources("https://a.{s}.example.org/{z}.png") == ["https:"]  # cannot be written as a host source
    assert tile_sources("/tiles/{z}/{x}/{y}.png") == [] and tile_sources(None) == []
    assert tile_sources("javascript:alert(1)//{z}") == []
    policy = _directives(console_policy("kuzet.example:8443", "https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png"))
    assert policy["img-src"] == ["'self'", "data:", "blob:", "https://*.tile.openstreetmap.org"]
    assert policy["connect-src"] == ["'self'", "ws://kuzet.example:8443", "wss://kuzet.example:8443"]
    for host in ("evil; script-src *", "a b", "x\r\nSet-Cookie: a=b", ""):
        assert _directives(console_policy(host))["connect-src"] == ["'self'"]
        assert _directives(console_policy(host))["script-src"] == ["'self'"]


def test_console_sources_build_nodes_and_carry_no_inline_script() -> None:
    """The rendering rule, checked on the sources so that a new page cannot quietly break it."""
    html_sinks = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    leaflet_strings = re.compile(r"\.bind(Popup|Tooltip)\(\s*[`'\"]")
    for path in sorted((WEB / "static" / "js").glob("*.js")):
        text = path.read_text(encoding="utf-8")
        assert not html_sinks.search(text), f"{path.name}: HTML built from strings"
        assert not leaflet_strings.search(text), f"{path.name}: a Leaflet popup or tooltip from a string"
        assert 'setAttribute("style"' not in text and "style: `" not in text, f"{path.name}: a style attribute"
    for path in sorted((WEB / "templates").rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        assert "|safe" not in text and "Markup" not in text, path.name
        page = _scripts(text)
        for attrs, body in page.scripts:
            assert attrs.get("src") or attrs.get("type") == "application/json", f"{path.name}: inline script {body}"
        assert not page.event_attributes and not page.style_attributes, path.name
    for path in sorted((WEB).rglob("*.py")):
        assert "Markup(" not in path.read_text(encoding="utf-8"), path.name
