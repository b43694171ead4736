"""Each role at home: after signing in, ``/`` leads every demo account to the page of its daily work, the menu shows
only what the role can use, and the auditor's page lists the log with the chain's state. Both database backends."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import login

HOMES = {"resident1": "/my", "responder1": "/respond", "inspector1": "/safe-yards", "analyst": "/analytics",
         "auditor": "/audit", "duty1": "/alarms", "center": "/alarms", "operator": "/cameras", "admin": "/cameras",
         "school7": "/cameras"}


def sign_in(client: TestClient, username: str) -> None:
    client.cookies.clear()
    response = client.post("/api/v1/auth/login", json={"username": username, "password": "demo"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("username", "home"), HOMES.items())
def test_each_role_lands_on_its_page(demo_client: TestClient, username: str, home: str) -> None:
    sign_in(demo_client, username)
    response = demo_client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == home
    landed = demo_client.get(home)
    assert landed.status_code == 200, f"{username} lands on {home}, which answers {landed.status_code}"
    menu = re.findall(r'href="(/[^"]*)" data-nav', landed.text)
    assert home in menu, f"{home} is not in {username}'s menu {menu}"


def test_menus_show_only_what_the_role_can_use(demo_client: TestClient) -> None:
    for username in HOMES:
        sign_in(demo_client, username)
        html = demo_client.get(HOMES[username]).text
        for href in re.findall(r'href="(/[^"]*)" data-nav', html):
            assert demo_client.get(href).status_code == 200, f"{username}'s menu offers {href}"
    sign_in(demo_client, "analyst")
    assert 'href="/cameras"' not in demo_client.get("/analytics").text  # no cameras: no empty camera pages offered


def test_login_keeps_a_safe_next(demo_client: TestClient) -> None:
    demo_client.cookies.clear()
    assert 'data-next="/incidents"' in demo_client.get("/login?next=/incidents").text
    assert 'data-next="/"' in demo_client.get("/login?next=//evil.example").text


def test_the_auditor_reads_the_log_and_the_chain(demo_client: TestClient) -> None:
    headers = login(demo_client, "auditor")
    page = demo_client.get("/api/v1/audit?limit=5&offset=0", headers=headers).json()
    assert page["total"] >= 1 and len(page["items"]) <= 5
    check = demo_client.get("/api/v1/audit/verify", headers=headers)
    assert check.status_code == 200 and check.json()["ok"] is True, check.text
    assert check.json()["checked"] >= page["total"]
    resident = login(demo_client, "resident1")
    assert demo_client.get("/api/v1/audit/verify", headers=resident).status_code == 404
    sign_in(demo_client, "resident1")
    assert demo_client.get("/audit").status_code == 404
