"""Hostile names in real Chromium: an installation whose cameras, places, streets, organisations, users, alarms,
incidents, notes, rules, hot lists, events, safe-yard passports and analytics carry strings such as
``<img src=x onerror=alert(1)>`` is opened page by page, as the roles that see each page. No script may run (no dialog,
no Content-Security-Policy violation reported, no injected element in the DOM), every page response carries the
console's policy, and the names are shown as the characters they are (web/README.md, "Rendering user data and CSP").

Runs on SQLite: a real `kuzet serve` per backend would double a minute of browsing for no rendering difference; the
server-side checks (tests/test_console_headers.py) run on both backends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from kuzet.config import load_settings
from kuzet.installation import Installation
from tests.browser_support import browser, kuzet_server, require_chromium, sign_in

pytestmark = pytest.mark.browser

IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(2)>'
SCRIPT = "</script><script>alert(3)</script>"
JS_URL = "javascript:alert(4)"
HOSTILE = (IMG, SVG, SCRIPT, JS_URL)

# Anything a successful injection would leave in the page; also every inline script and event attribute.
DOM_AUDIT = """() => {
  const found = [];
  for (const sel of ['img[src="x"]', 'svg[onload]', '[onerror]', '[onload]', 'iframe', 'object', 'embed', 'base']) {
    if (document.querySelector(sel)) found.push(sel);
  }
  for (const node of document.querySelectorAll('*')) {
    for (const a of node.attributes) if (a.name.startsWith('on')) found.push(`${node.tagName}[${a.name}]`);
  }
  for (const a of document.querySelectorAll('[href], [src]')) {
    const url = (a.getAttribute('href') || a.getAttribute('src') || '').trim().toLowerCase();
    if (url.startsWith('javascript:') || url.startsWith('data:text')) found.push(`${a.tagName} ${url}`);
  }
  for (const s of document.querySelectorAll('script')) {
    if (!s.src && s.type !== 'application/json') found.push('inline script: ' + s.textContent.slice(0, 60));
  }
  return found;
}"""
REPORT_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (e) =>
  window.__kuzetCsp(`${e.violatedDirective} ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));"""


@dataclass
class Site:
    base: str
    camera_ids: list[int]  # the four hostile cameras, in id order (the first wall tiles)
    incident_id: int
    yard_id: int
    hostile_user: str = SCRIPT
    places: list[str] = field(default_factory=list)  # hostile place and street names on the map


def _hostile_installation(data_dir: Path) -> Site:
    """The demo installation with hostile strings wherever users or imports write text."""
    from kuzet.services.audit import SYSTEM, Actor, append
    from kuzet.services.demo import seed_demo_city
    from kuzet.services.demo_extras import seed_capabilities
    from kuzet.services.operations import alarms, hotlists, incidents, rules
    from kuzet.services.operations.events import EventStore
    from kuzet.services.operations.observations import Observation
    from kuzet.services.safeyard.passport import add_person
    from kuzet.services.safeyard.vault import Vault
    from kuzet.store.db import utcnow
    from kuzet.store.models import Camera, Organisation, Place, User
    from kuzet.store.models.crime import Offence, Population
    from kuzet.store.models.operations import CameraAnalysis
    from kuzet.store.models.safeyard import SafeYard

    inst = Installation.open(settings=load_settings(environ={"KUZET_DATA_DIR": str(data_dir)}))
    inst.init()
    with inst.db.session() as session:
        city = seed_demo_city(session, inst.keys)
    seed_capabilities(inst, city)
    slugs = ("b1e1", "b1e2", "b1yard", "b2e1")  # cameras 1-4: the wall's first four tiles, resident1's entrance
    street, yard_place, district = city.streets[0], city.yards[0], city.districts[0]
    with inst.db.session() as session:
        user = {u.username: u for u in session.scalars(select(User))}
        for slug, name in zip(slugs, HOSTILE, strict=True):
            session.get(Camera, city.cameras[slug]).name = name
        session.add(CameraAnalysis(camera_id=city.cameras["b1e1"], zones=[
            {"name": IMG, "kind": "zone", "points": [[0.0, 0.0], [0.5, 0.0], [0.25, 0.6]]}]))
        session.get(Place, street).name = f"{SVG} {SCRIPT}"
        yard = session.get(Place, yard_place)
        yard.name, yard.address = f"{IMG} двор", f"{JS_URL} {SVG}"
        building = session.get(Place, city.buildings[0])
        building.address = f"{SCRIPT} 11"
        old_district = session.get(Place, district).name
        new_district = f"{IMG} район"
        session.get(Place, district).name = new_district
        session.execute(update(Offence).where(Offence.district == old_district).values(district=new_district))
        session.execute(update(Population).where(Population.district == old_district).values(district=new_district))
        session.get(Organisation, user["duty1"].organisation_id).name = f"{SVG} ДЧ"
        user["responder1"].full_name = f"{IMG} экипаж"
        user["duty2"].username = SCRIPT  # a hostile username signs in and is shown in the header and the boot data
        session.flush()

        duty1 = user["duty1"]
        as_duty1 = Actor(duty1.id, duty1.username, "test")
        camera = session.get(Camera, city.cameras["b1yard"])
        now = utcnow()
        store = EventStore(inst.settings.events_path)
        raised = []
        for n, zone in enumerate((SVG, IMG)):
            applied = store.apply(session, Observation(camera.id, "object", "end", f"hostile-{n}",
                                                       now - timedelta(minutes=10 - n), end=now - timedelta(minutes=9),
                                                       label="person", score=0.9, zones=[zone]))
            raised.append(alarms.raise_alarm(session, applied.event, camera, f"{IMG} тревога {n}", "high",
                                             [duty1.organisation_id]))
        alarms.dismiss(session, as_duty1, duty1, raised[1], f"{SCRIPT} ложная")
        incident = incidents.create_incident(session, as_duty1, duty1, offence_type="hooliganism",
                                             title=f"{SVG} происшествие", description=JS_URL,
                                             alarm_ids=[raised[0].id])
        incidents.add_note(session, as_duty1, incident, f"{IMG} заметка {SCRIPT}")
        incidents.dispatch(session, as_duty1, duty1, incident, [user["responder1"].id], note=f"{SVG} выезд")
        rules.create_rule(session, as_duty1, duty1, name=f"{IMG} правило", place_id=district, event_kind="object",
                          labels=["person"], zone=SVG, priority="high")
        center = user["center"]
        as_center = Actor(center.id, center.username, "test")
        wanted = hotlists.create_list(session, as_center, f"{SVG} розыск", kind="wanted", priority="critical",
                                      organisation_id=center.organisation_id)
        hotlists.add_entry(session, as_center, wanted, "666XSS01", f"{IMG} {JS_URL}")
        safe_yard = session.scalar(select(SafeYard).where(SafeYard.place_id == yard_place))
        safe_yard.notes = f"{SCRIPT} заметки"
        safe_yard.characteristics = {**(safe_yard.characteristics or {}), "management": IMG, SVG: "x"}
        add_person(session, Vault(inst.settings.keys_path), SYSTEM, safe_yard, "resident",
                   {"name": f"{IMG} жилец", "apartment": SVG, "phone": JS_URL})
        append(session, Actor(None, SCRIPT, "10.0.0.9"), "video.live", object_type="camera",
               object_id=city.cameras["b1e1"], camera_id=city.cameras["b1e1"], legal_basis=f"{SVG} основание")
        site = Site(base="", camera_ids=[city.cameras[s] for s in slugs], incident_id=incident.id,
                    yard_id=safe_yard.id, places=[f"{SVG} {SCRIPT}", f"{IMG} двор"])
    inst.close()
    return site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    data = tmp_path_factory.mktemp("hostile") / "data"
    seeded = _hostile_installation(data)
    env = {"KUZET_RECORDER__ENABLED": "false", "KUZET_OPERATIONS__ENABLED": "false"}
    with kuzet_server(data, env) as base:
        seeded.base = base
        yield seeded


class Guard:
    """Watches one browser context: dialogs, CSP violations (the page's events and Chromium's console), errors."""

    def __init__(self, context) -> None:  # noqa: ANN001
        self.problems: list[str] = []
        context.expose_binding("__kuzetCsp", lambda _source, text: self.problems.append(f"CSP violation: {text}"))
        context.add_init_script(REPORT_VIOLATIONS)
        self.context = context

    def page(self):  # noqa: ANN201
        page = self.context.new_page()
        page.on("dialog", lambda d: (self.problems.append(f"dialog {d.type}: {d.message}"), d.dismiss()))
        page.on("console", lambda m: self.problems.append(f"console: {m.text}")
                if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        return page

    def open(self, page, url: str, status: int = 200) -> None:  # noqa: ANN001
        """Go to a console page; its answer must carry the policy: scripts from this site only."""
        response = page.goto(url)
        assert response is not None and response.status == status, url
        policy = response.headers.get("content-security-policy", "")
        scripts = next((d.split()[1:] for d in policy.split(";") if d.split()[:1] == ["script-src"]), None)
        assert scripts == ["'self'"], f"{url}: {policy!r}"
        assert "unsafe-inline" not in policy.split("style-src")[0] and response.headers["x-frame-options"] == "DENY"

    def check(self, page, where: str) -> None:  # noqa: ANN001
        page.wait_for_timeout(300)  # a late error or handler would show now
        injected = page.evaluate(DOM_AUDIT)
        assert not injected, f"{where}: injected into the DOM: {injected}"
        assert not self.problems, f"{where}: {self.problems}"


def _texts(page, selector: str) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all(selector, "(nodes) => nodes.map((n) => n.textContent)")


def _wait_for_text(page, selector: str, text: str) -> None:  # noqa: ANN001
    """Until a node matching selector holds exactly text (as characters)."""
    page.wait_for_function("([sel, text]) => [...document.querySelectorAll(sel)].some((n) => n.textContent === text)",
                           arg=[selector, text])


@pytest.fixture
def chromium() -> Iterator:
    with browser() as b:
        yield b


def _guarded(chromium, site: Site, username: str, **context_options) -> tuple[Guard, object]:  # noqa: ANN001
    guard = Guard(chromium.new_context(**context_options))
    page = guard.page()
    sign_in(page, site.base, username)
    return guard, page


def test_map_cameras_camera_page_wall_and_admin_show_hostile_names_as_text(chromium, site: Site) -> None:  # noqa: ANN001
    guard, page = _guarded(chromium, site, "admin")
    base = site.base

    guard.open(page, f"{base}/map")
    page.wait_for_function("() => window.KUZET.mapFeatures > 0 && window.KUZET.map", timeout=15000)
    shown = page.evaluate("""() => {
      const out = {popups: [], links: [], tooltips: [], titles: []};
      for (const m of window.KUZET.mapMarkers) {  // camera markers (clustered): their popups are DOM nodes
        const content = m.getPopup().getContent();
        out.popups.push(content.textContent);
        out.links.push([content.querySelector('a').textContent, content.querySelector('a').getAttribute('href')]);
        out.titles.push(m.options.title);
      }
      window.KUZET.map.eachLayer((l) => {
        const p = l.feature && l.feature.properties;
        if (!p) return;
        if (l.getTooltip()) {
          l.openTooltip();
          out.tooltips.push(l.getTooltip().getElement().textContent);
        }
      });
      return out;
    }""")
    for camera_id, name in zip(site.camera_ids, HOSTILE, strict=True):
        assert [name, f"/cameras/{camera_id}"] in shown["links"]
    assert any(p.startswith(f"{SCRIPT}{IMG} двор") for p in shown["popups"])  # the camera's name, then its place
    assert set(HOSTILE) <= set(shown["titles"])
    for name in site.places:  # each place's name, then its kind
        assert any(tip == name or tip.startswith(f"{name} · ") for tip in shown["tooltips"]), name
    guard.check(page, "/map")

    guard.open(page, f"{base}/cameras")
    page.wait_for_selector("#camera-table tbody tr")
    assert set(HOSTILE) <= set(_texts(page, "#camera-table tbody td:first-child a"))
    assert f"{IMG} двор" in _texts(page, "#camera-table tbody td:nth-child(2)")
    page.fill("#camera-search", "<img")  # the search filters on the literal characters
    page.wait_for_function("() => document.querySelectorAll('#camera-table tbody tr').length === 2")
    guard.check(page, "/cameras")

    guard.open(page, f"{base}/cameras/{site.camera_ids[0]}")
    assert page.locator("h1").inner_text() == IMG
    assert page.title().startswith(IMG)
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": "demo"}).json()
    key = httpx.get(f"{base}/api/v1/exports/public-key",
                    headers={"Authorization": f"Bearer {token['access_token']}"})
    page.click("details.card:has(#export-form) summary")  # the export form, with the signing key beside it
    if key.status_code == 404:  # the endpoint lands with the evidence work: until then nothing is shown
        page.wait_for_timeout(500)
        assert page.locator("#signing-key").is_hidden()
    else:
        fingerprint = key.json()["fingerprint"]
        assert re.fullmatch(r"[0-9a-f]{64}", fingerprint)
        grouped = " ".join(fingerprint[i:i + 4] for i in range(0, 64, 4))
        page.wait_for_selector("#signing-key [data-testid=key-fingerprint]")
        assert page.locator("#signing-key [data-testid=key-fingerprint]").inner_text() == grouped
    page.click("#analysis summary")  # zones drawn over the picture: named by users, placed by style properties
    page.wait_for_function("() => window.KUZET.analysis && window.KUZET.analysis.loaded")
    assert _texts(page, "#zone-labels .zone-label") == [IMG]
    assert page.eval_on_selector("#zone-labels .zone-label", "(n) => n.style.left") == "25%"
    assert page.input_value("#zone-list input[name=zone-name]") == IMG
    guard.check(page, "camera page")

    guard.open(page, f"{base}/wall?grid=4")
    page.wait_for_function("() => document.querySelectorAll('[data-tile] select').length === 4")
    tiles = page.eval_on_selector_all("[data-tile] select", "(s) => s.map((x) => x.selectedOptions[0].textContent)")
    assert tiles == list(HOSTILE)
    page.fill("#layout-name", SVG)
    page.click("#save-layout")
    _wait_for_text(page, "#layouts option", SVG)
    guard.check(page, "/wall")

    guard.open(page, f"{base}/admin")
    page.wait_for_function("() => window.KUZET.admin && window.KUZET.admin.loaded")
    for text in (IMG, SCRIPT, f"{IMG} двор"):  # names in the lists, as their characters
        _wait_for_text(page, "table[data-list] td", text)
    cells = _texts(page, "table[data-list] td")
    assert IMG in cells and SCRIPT in cells and f"{IMG} двор" in cells
    options = _texts(page, "select[data-picker=place] option")  # the place picker: names as text
    assert any(IMG in o for o in options)
    if key.status_code != 404:
        page.wait_for_selector("#signing-key [data-testid=key-fingerprint]")
        assert page.locator("#signing-key [data-testid=key-fingerprint]").inner_text() == grouped
        assert key.json()["public_key_pem"].strip() in page.locator("#signing-key pre").text_content()
    else:
        assert page.locator("#signing-key").is_hidden()
    guard.check(page, "/admin")


def test_operations_pages_show_hostile_alarms_incidents_rules_and_lists_as_text(chromium, site: Site) -> None:  # noqa: ANN001
    guard, page = _guarded(chromium, site, "duty1", viewport={"width": 1400, "height": 1000})
    base = site.base

    guard.open(page, f"{base}/alarms")
    page.wait_for_function("() => window.KUZET.alarms.loaded && window.KUZET.feed === 'open'", timeout=15000)
    page.click("[data-filter=all]")
    page.wait_for_selector("#alarms li[data-state=dismissed]")
    text = page.locator("#alarms").inner_text()
    assert f"{IMG} тревога 1" in text and f"{SCRIPT} ложная" in text and SCRIPT in text  # title, reason, camera
    assert f"{IMG} двор" in text and SVG in text  # place, zone
    dismissed = page.locator("#alarms li[data-state=dismissed]")
    dismissed.locator("[data-act=live]").click()
    assert page.locator("#viewer-title").inner_text().endswith(SCRIPT)
    guard.check(page, "/alarms")

    guard.open(page, f"{base}/incidents")
    page.wait_for_function("() => window.KUZET.incidentsLoaded")
    assert f"{SVG} происшествие" in _texts(page, "#incidents tbody td a")
    guard.check(page, "/incidents")

    guard.open(page, f"{base}/incidents/{site.incident_id}")
    page.wait_for_function("() => window.KUZET.incident && window.KUZET.feed === 'open'", timeout=15000)
    assert page.locator("#inc-title").inner_text().endswith(f"{SVG} происшествие")
    facts = page.locator("#inc-facts").inner_text()
    assert JS_URL in facts and f"{IMG} двор" in facts and f"{SVG} ДЧ" in facts
    assert f"{IMG} заметка {SCRIPT}" in page.locator("#inc-timeline").inner_text()
    assert f"{IMG} экипаж" in page.locator("#inc-crews").inner_text()
    assert SCRIPT in _texts(page, "#inc-cameras a")
    page.fill("#note-form input[name=text]", SVG)  # typed by the operator: back from the server, still text
    page.click("#note-form button")
    page.wait_for_function(f"() => document.querySelector('#inc-timeline').textContent.includes({SVG!r})")
    guard.check(page, "one incident")

    guard.open(page, f"{base}/events")
    page.wait_for_function("() => window.KUZET.eventsLoaded >= 1")
    rows = page.locator("#events tbody").inner_text()
    assert SCRIPT in rows and SVG in rows and IMG in rows  # camera name, zones
    assert SCRIPT in _texts(page, "#event-form select[name=camera] option")
    guard.check(page, "/events")

    guard.open(page, f"{base}/operations/rules")
    page.wait_for_function("() => window.KUZET.rules > 0")
    assert f"{IMG} правило" in _texts(page, "#rules tbody td:first-child")
    page.locator("#rules tbody tr", has_text="правило").first.locator("[data-act=edit]").click()
    assert page.locator("#rule-form-title").inner_text().endswith(f"{IMG} правило")
    assert page.input_value("#rule-form input[name=zone]") == SVG
    assert IMG in _texts(page, "#rule-form select[name=camera_id] option")
    guard.check(page, "/operations/rules")

    guard.open(page, f"{base}/operations/kpis")
    page.wait_for_function("() => window.KUZET.kpis")
    assert f"{SVG} ДЧ" in _texts(page, "#kpi-units tbody th")  # the unit's name
    assert SCRIPT in _texts(page, "#kpi-cameras tbody td:first-child")
    guard.check(page, "/operations/kpis")

    guard, page = _guarded(chromium, site, "center")
    guard.open(page, f"{base}/operations/hotlists")
    page.wait_for_selector("#lists tbody tr")
    page.locator("#lists button.link", has_text="розыск").filter(has_text=SVG).click()
    page.wait_for_selector("#entries tbody tr")
    assert f"{IMG} {JS_URL}" in _texts(page, "#entries tbody td:nth-child(2)")
    assert page.locator("#entries-title").inner_text().endswith(f"{SVG} розыск")
    guard.check(page, "/operations/hotlists")


def test_safe_yard_pages_show_hostile_passport_fields_as_text(chromium, site: Site) -> None:  # noqa: ANN001
    guard, page = _guarded(chromium, site, "inspector1")
    guard.open(page, f"{site.base}/safe-yards")
    page.wait_for_selector("#yards tbody tr")
    assert f"{IMG} двор" in _texts(page, "#yards tbody td a")
    assert any(f"{IMG} район" in text for text in _texts(page, "#yards tbody td:nth-child(2)"))  # in the address
    guard.check(page, "/safe-yards")

    guard.open(page, f"{site.base}/safe-yards/{site.yard_id}")
    page.wait_for_selector("#people tbody tr")
    assert page.locator("#yard-title").inner_text().startswith(f"{IMG} двор")
    assert f"{JS_URL} {SVG}" in page.locator("main").inner_text()  # the hostile street, in the full address
    assert SCRIPT in _texts(page, "#yard-cameras a")
    assert page.input_value("#edit-form textarea[name=notes]") == f"{SCRIPT} заметки"
    assert f"Управляющая организация: {IMG}" in page.input_value("#edit-form textarea[name=characteristics]")
    page.fill("#open-form input[name=purpose]", f"{SCRIPT} проверка")  # the purpose is hostile text too
    page.click("#open-form button")
    _wait_for_text(page, "#people .person", f"{IMG} жилец")
    assert any(SVG in row and JS_URL in row for row in _texts(page, "#people tbody tr"))
    guard.check(page, "passport")


def test_resident_crew_analyst_and_a_hostile_username_see_text_only(chromium, site: Site) -> None:  # noqa: ANN001
    guard, page = _guarded(chromium, site, "resident1")
    guard.open(page, f"{site.base}/my")
    page.wait_for_selector("#access-log li .actor", timeout=15000)
    assert IMG in _texts(page, "#my-cameras .portal-camera h3 a")
    assert SCRIPT in _texts(page, "#access-log .actor")
    assert f"{SVG} основание" in page.locator("#access-log").inner_text()
    guard.check(page, "/my")
    guard.open(page, f"{site.base}/analytics", status=404)  # not a resident's page: the 404 page, same policy
    page.wait_for_selector("[data-testid=not-found]")
    guard.check(page, "404 page")

    guard, page = _guarded(chromium, site, "responder1", viewport={"width": 390, "height": 844}, is_mobile=True)
    guard.open(page, f"{site.base}/respond")
    page.wait_for_selector("[data-testid=dispatch]")
    card = page.locator("[data-testid=dispatch]").first.inner_text()
    assert f"{SVG} происшествие" in card and f"{IMG} двор" in card and f"{SVG} выезд" in card
    guard.check(page, "/respond")

    guard, page = _guarded(chromium, site, "analyst")
    guard.open(page, f"{site.base}/analytics")
    page.wait_for_function("() => document.querySelector('#press').textContent.length > 20", timeout=30000)
    page.wait_for_function("() => (window.KUZET.hotCells || 0) > 0", timeout=30000)
    assert f"{IMG} район" in _texts(page, "#breakdowns td")
    page.click("#plan-form button")
    page.wait_for_selector("#plan tbody tr")
    guard.check(page, "/analytics")

    guard, page = _guarded(chromium, site, SCRIPT)
    guard.open(page, f"{site.base}/cameras")
    page.wait_for_selector("#camera-table tbody tr")
    assert page.locator("header .who").inner_text() == SCRIPT
    assert page.evaluate("window.KUZET.user.username") == SCRIPT and page.evaluate("window.KUZET.lang") == "ru"
    assert page.locator("nav a[data-nav='nav.cameras']").count() == 1  # the boot data and the texts still work
    guard.check(page, "hostile username")


def test_login_follows_only_paths_on_this_site(chromium, site: Site) -> None:  # noqa: ANN001
    guard = Guard(chromium.new_context())
    page = guard.page()
    for target in ("//evil.example/", "/\\evil.example", "https://evil.example/", JS_URL, "/\t/evil.example"):
        guard.open(page, f"{site.base}/login?{httpx.QueryParams({'next': target})}")
        page.fill("input[name=username]", "duty1")
        page.fill("input[name=password]", "demo")
        page.click("button[type=submit]")
        page.wait_for_url(f"{site.base}/alarms", timeout=15000)  # "/" sends the duty unit to its alarm queue
        page.wait_for_selector("#alarms", state="attached")
        page.goto("about:blank")  # the alarm queue, signed out under it, would send itself to /login?next=/alarms
        page.context.clear_cookies()
    page.goto(f"{site.base}/login?next=%2Foperations%2Frules%3Fx%3D1")
    page.fill("input[name=username]", "duty1")
    page.fill("input[name=password]", "demo")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.base}/operations/rules?x=1", timeout=15000)
    # The browser's own check, should a page ever hand it something else; el() refuses javascript: links.
    verdicts = page.evaluate("""async (targets) => {
      const m = await import('/static/js/api.js');
      return {next: targets.map((x) => m.sameOriginPath(x)),
              link: m.el('a', {href: 'javascript:alert(6)'}).hasAttribute('href'),
              handler: m.el('a', {onclick: 'alert(7)'}).hasAttribute('onclick'),
              ok: m.el('a', {href: '/cameras/1'}).getAttribute('href')};
    }""", ["//evil.example", "/\\evil.example", "https://evil.example", JS_URL, "/\t/evil", "/x?y=1#z"])
    assert verdicts == {"next": ["/", "/", "/", "/", "/", "/x?y=1#z"], "link": False, "handler": False,
                        "ok": "/cameras/1"}
    guard.check(page, "login")
