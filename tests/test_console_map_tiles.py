"""`[map] tiles`: the configured tile server reaches the map's answer and the console's Content-Security-Policy; a
template that is not an http(s) URL or a path on this site is refused naming the setting."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kuzet.config import ConfigError, load_settings
from kuzet.installation import Installation
from tests.conftest import login

TILES = "https://{s}.tiles.example.kz/osm/{z}/{x}/{y}.png"


def test_configured_tiles_reach_the_map_and_the_policy(inst: Installation) -> None:
    from kuzet.api.app import create_app
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM

    inst.settings.map.tiles = TILES
    inst.settings.map.attribution = "© <b>OpenStreetMap</b>"
    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "chief", "a-long-enough-password", "platform_admin")
    with TestClient(create_app(inst)) as client:
        headers = login(client, "chief", "a-long-enough-password")
        body = client.get("/api/v1/map", headers=headers).json()
        assert body["tiles"] == TILES and body["attribution"] == "© <b>OpenStreetMap</b>" and body["max_zoom"] == 19
        policy = client.get("/login").headers["content-security-policy"]
        img = next(d for d in policy.split("; ") if d.startswith("img-src"))
        assert "https://*.tiles.example.kz" in img.split()
        assert "script-src 'self'" in policy  # pictures only: scripts still from this site alone


def test_without_tiles_the_map_says_so(inst: Installation, client: TestClient) -> None:
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM

    with inst.db.session() as s:
        accounts.create_user(s, SYSTEM, "chief", "a-long-enough-password", "platform_admin")
    body = client.get("/api/v1/map", headers=login(client, "chief", "a-long-enough-password")).json()
    assert body["tiles"] is None and body["attribution"] == ""
    img = next(d for d in client.get("/login").headers["content-security-policy"].split("; ")
               if d.startswith("img-src"))
    assert img == "img-src 'self' data: blob:"


@pytest.mark.parametrize("bad", ["javascript:alert(1)/{z}/{x}/{y}", "https://tiles.example.kz/tile.png",
                                 "//evil.example/{z}/{x}/{y}.png", "https://x.kz/{z}/{x}/{y}.png' onerror"])
def test_bad_tile_templates_are_refused(tmp_path, bad: str) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="map.tiles"):
        load_settings(environ={"KUZET_DATA_DIR": str(tmp_path), "KUZET_MAP__TILES": bad})
