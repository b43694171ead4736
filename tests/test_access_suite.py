"""The adversarial access suite: every route of the API × every demo account (and accounts the delegated admins made)
× objects inside and outside their grants.

The policy is written here, independently of the code that enforces it: which cameras each demo account holds which
rights on (from the demo's grants), who sees which alarm, incident, safe yard, export, rule, hot list or webhook, who
administers whom. Every route of the OpenAPI schema (and the two WebSockets) must have an access decision in
``SPECS``; a new route without one fails ``test_every_route_has_an_access_decision``.

For each route and account the suite asks with one object the account may use (it must work: no 401/403, and no 404
that looks like a missing object) and one it may not: that answer must be *exactly* the answer for an object that
does not exist (404, same body), so ids cannot be probed — or, where the account sees the object but lacks the right
for this action, a 403. Changes asked of objects outside a grant change nothing (row counts and the audit chain are
the same before and after). Every route but the sign-in ones answers 401 without a token and with a revoked one.
Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, text

from kuzet.installation import Installation
from kuzet.store.db import utcnow

PASSWORD = "a-long-enough-password"
MISSING = 2_000_000_000  # an id no object has
MISSING_EXPORT = "f" * 32

ALL = frozenset({"view_live", "view_archive", "export", "ptz", "manage"})
WATCH = frozenset({"view_live", "view_archive", "export"})
NONE: frozenset[str] = frozenset()


class D(enum.Enum):
    """What an account may do with an object on a route."""

    ALLOW = "allow"
    HIDDEN = "hidden"  # must look exactly like an object that does not exist
    FORBIDDEN = "forbidden"  # 403, or a 404 like HIDDEN (the account may see the object but not do this)


# --- the policy of the demo city, written down -----------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    name: str
    role: str
    org: str | None  # key of city.organisations


ACCOUNTS = [Account(*a) for a in (
    ("admin", "platform_admin", None), ("operator", "operator_admin", "telecom"),
    ("duty1", "police_operator", "duty1"), ("duty2", "police_operator", "duty2"),
    ("center", "police_operator", "centre"), ("inspector1", "inspector", "duty1"),
    ("inspector2", "inspector", "duty2"), ("analyst", "analyst", None), ("resident1", "resident", None),
    ("resident2", "resident", None), ("school7", "organisation_admin", "school1"),
    ("responder1", "responder", "duty1"), ("auditor", "auditor", None),
    # made by the delegated admins in the fixture, through the API
    ("schoolstaff", "responder", "school1"),  # by school7
    ("subscriber", "resident", None),  # by operator, who grants it view_live on b1e2
    ("unitadmin", "organisation_admin", "duty1"),  # by admin: the admin of duty unit 1
    ("unitinspector", "inspector", "duty1"),  # by unitadmin, assigned to district 1 by unitadmin
)]
BY_NAME = {a.name: a for a in ACCOUNTS}
POLICE_ORGS = {"duty1", "duty2", "centre"}
DISTRICT_OF_UNIT = {"duty1": 1, "duty2": 2}


def district_of(slug: str) -> int:
    """b1…b2 and d1… are district 1; b3…b4 and d2… district 2 (services/demo.py)."""
    return (1 if int(slug[1]) <= 2 else 2) if slug.startswith("b") else int(slug[1])


def camera_rights(account: str, slug: str) -> frozenset[str]:
    """Rights from the demo's grants (services/demo.py) and the fixture's."""
    in_district = {"duty1": 1, "inspector1": 1, "responder1": 1, "unitadmin": 1, "unitinspector": 1,
                   "duty2": 2, "inspector2": 2}
    if account == "admin":
        return ALL
    if account == "operator":
        return frozenset({"manage", "view_live"})
    if account == "center":
        return frozenset({"view_live", "view_archive", "export", "ptz"})
    if account in in_district:
        return WATCH if district_of(slug) == in_district[account] else NONE
    own = {"resident1": ({"b1e1", "b1yard"}, WATCH), "resident2": ({"b2e1", "b2yard"}, WATCH),
           "school7": ({"d1school1", "d1school2"}, WATCH | {"manage"}),
           "schoolstaff": ({"d1school1", "d1school2"}, WATCH | {"manage"}),
           "subscriber": ({"b1e2"}, frozenset({"view_live"}))}
    if account in own:
        slugs, rights = own[account]
        return rights if slug in slugs else NONE
    return NONE


def sees_yard(account: str, district: int) -> bool:
    """The passport without personal data: analysts, whoever needs to know, police staff of a unit serving it."""
    return (account in ("admin", "analyst") or needs_to_know(account, district)
            or account in ("center", f"duty{district}", f"inspector{district}")
            or (district == 1 and account == "unitinspector"))


def needs_to_know(account: str, district: int) -> bool:
    """Personal data: platform admins and district assignments (demo: inspectors and the centre; unitinspector)."""
    return account in ("admin", "center", f"inspector{district}") or (district == 1 and account == "unitinspector")


QUEUE = {"platform_admin", "police_operator", "organisation_admin"}
MANAGERS = {"organisation_admin", "operator_admin"}
ADMINISTERED = {"operator": {"resident1", "resident2", "subscriber"}, "school7": {"schoolstaff"},
                "unitadmin": {"duty1", "inspector1", "responder1", "unitinspector"}}
GRANT_ROOTS = {  # place keys each account holds grants on (camera grants: the camera's place)
    "duty1": {"district1"}, "inspector1": {"district1"}, "responder1": {"district1"}, "unitadmin": {"district1"},
    "unitinspector": {"district1"}, "duty2": {"district2"}, "inspector2": {"district2"}, "center": {"city"},
    "resident1": {"entrance_b1e1"}, "resident2": set(), "school7": {"school1"}, "schoolstaff": {"school1"},
    "subscriber": set()}
PLACE_ANCESTORS = {"region": set(), "city": {"region"}, "district1": {"city", "region"},
                   "district2": {"city", "region"}, "entrance_b1e1": {"district1", "city", "region", "building1"},
                   "school1": {"district1", "city", "region"}, "building1": {"district1", "city", "region"}}


def _is(ok: bool) -> D:
    return D.ALLOW if ok else D.HIDDEN


# --- objects the probes use -------------------------------------------------------------------------------------------

@dataclass
class Obj:
    ids: dict[str, Any]  # path parameters (and ids a body carries)
    facts: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["facts"][name]
        except KeyError:
            raise AttributeError(name) from None


def missing_ids(ids: dict[str, Any]) -> dict[str, Any]:
    return {k: (MISSING_EXPORT if k == "export_id" else 0 if k == "sequence" else MISSING) for k in ids}


# --- decisions per kind of object -------------------------------------------------------------------------------------

def camera(right: str | None, seen_but_not_allowed: D = D.HIDDEN) -> Callable[[Account, Obj], D]:
    def decide(a: Account, o: Obj) -> D:
        rights = camera_rights(a.name, o.slug)
        if (right is None and rights) or (right is not None and right in rights):
            return D.ALLOW
        return seen_but_not_allowed if rights else D.HIDDEN
    return decide


def alarm_seen(a: Account, o: Obj) -> D:
    return _is(a.role == "platform_admin" or (a.role in QUEUE and a.org in o.routes
                                              and "view_live" in camera_rights(a.name, o.slug)))


def incident_seen(a: Account, o: Obj) -> D:
    return _is(a.role == "platform_admin" or (a.role == "responder" and a.name in o.responders)
               or (a.role in QUEUE and a.org in ({o.org} | o.routes)))


def incident_operated(a: Account, o: Obj) -> D:
    return _is(a.role in QUEUE and incident_seen(a, o) is D.ALLOW)


def yard(personal: bool) -> Callable[[Account, Obj], D]:
    return lambda a, o: _is((needs_to_know if personal else sees_yard)(a.name, o.district))


def export_seen(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", o.creator) or all("export" in camera_rights(a.name, s) for s in o.slugs))


def user_seen(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", "auditor", o.account) or o.account in ADMINISTERED.get(a.name, set()))


def user_changed(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", o.account) or o.account in ADMINISTERED.get(a.name, set()))


def grant_revoked(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", *o.revokers))


def place_seen(a: Account, o: Obj) -> D:
    if a.role in ("platform_admin", "operator_admin", "auditor", "analyst"):
        return D.ALLOW
    roots = GRANT_ROOTS.get(a.name, set())
    return _is(o.key in roots or bool(PLACE_ANCESTORS[o.key] & roots))


def rule_seen(a: Account, o: Obj) -> D:
    return _is(a.role == "platform_admin" or (a.role in QUEUE and a.org is not None and a.org == o.org))


def hotlist(change: bool) -> Callable[[Account, Obj], D]:
    def decide(a: Account, o: Obj) -> D:
        reads = a.role == "platform_admin" or (a.role == "police_operator" and a.org in POLICE_ORGS)
        if not reads:
            return D.HIDDEN
        if change and not (a.role == "platform_admin" or a.org == o.org):
            return D.FORBIDDEN
        return D.ALLOW
    return decide


def webhook_seen(a: Account, o: Obj) -> D:
    return _is(a.role == "platform_admin" or (a.role in MANAGERS and a.org is not None and a.org == o.org))


def owned(a: Account, o: Obj) -> D:
    return _is(a.name == o.owner)


def dispatch_reported(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", o.responder))


def assignment_ended(a: Account, o: Obj) -> D:
    return _is(a.name == "admin" or (a.name == "unitadmin" and o.unit == "duty1"))


def create_yard(a: Account, o: Obj) -> D:
    return _is(needs_to_know(a.name, o.district))


def assign_inspector2(a: Account, o: Obj) -> D:
    return _is(a.name == "admin")


BUSINESS = {"platform_admin", "operator_admin"}  # who runs the telecom's business (services/cloud)


def business_object(a: Account, o: Obj) -> D:
    """Plans, contracts, subscribers, entrances' notices: the demo's operator manages the whole city."""
    return _is(a.role in BUSINESS)


def agreement_seen(a: Account, o: Obj) -> D:
    return _is(a.role in ("platform_admin", "auditor", "operator_admin") or a.org in (o.party, o.holder))


def agreement_changed(a: Account, o: Obj) -> D:
    if a.role in BUSINESS:
        return D.ALLOW
    return D.FORBIDDEN if agreement_seen(a, o) is D.ALLOW else D.HIDDEN


def subscribed(a: Account, o: Obj) -> D:
    """Cameras the account watches through its flat's subscription (the demo residents' entrance and yard)."""
    return _is({"resident1": {"b1e1", "b1yard"}, "resident2": {"b2e1", "b2yard"}}.get(a.name, set()).__contains__(
        o.slug))


# Body-worn cameras (services/bodycams/demo.py): responder1 is an officer of duty unit 1, duty1 its supervisor, duty2
# the evidence custodian of duty unit 2; unitadmin administers duty unit 1.
BODYCAM_KEEPERS = {"duty1": "duty1", "duty2": "duty2"}  # account → the unit it keeps
BODYCAM_STAFF = {"duty1": {"responder1", "duty1", "unitadmin"}, "duty2": {"duty2"}}  # who sees a unit's devices


def bodycam_device_seen(a: Account, o: Obj) -> D:
    return _is(a.name == "admin" or a.name in BODYCAM_STAFF[o.unit])


def bodycam_device_managed(a: Account, o: Obj) -> D:
    if a.name == "admin" or BODYCAM_KEEPERS.get(a.name) == o.unit or (a.name == "unitadmin" and o.unit == "duty1"):
        return D.ALLOW
    return D.FORBIDDEN if bodycam_device_seen(a, o) is D.ALLOW else D.HIDDEN


def bodycam_unit_administered(a: Account, o: Obj) -> D:
    return _is(a.name == "admin" or (a.name == "unitadmin" and o.unit == "duty1"))


def bodycam_recording_seen(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", o.officer) or BODYCAM_KEEPERS.get(a.name) == o.unit)


def bodycam_recording_kept(a: Account, o: Obj) -> D:
    if a.name == "admin" or BODYCAM_KEEPERS.get(a.name) == o.unit:
        return D.ALLOW
    return D.FORBIDDEN if bodycam_recording_seen(a, o) is D.ALLOW else D.HIDDEN


def bodycam_upload_seen(a: Account, o: Obj) -> D:
    return _is(a.name in ("admin", o.creator) or BODYCAM_KEEPERS.get(a.name) == o.unit
               or (a.name == "unitadmin" and o.unit == "duty1"))


def bodycam_device_registrar(a: Account, o: Obj) -> D:
    return _is(a.name == "admin" or BODYCAM_KEEPERS.get(a.name) == o.unit or (a.name == "unitadmin"
                                                                              and o.unit == "duty1"))


# --- gates on whole routes (no object) --------------------------------------------------------------------------------

def everyone(a: Account) -> bool:
    return True


def roles(*names: str) -> Callable[[Account], bool]:
    return lambda a: a.role in names


def hotlist_users(a: Account) -> bool:
    return a.role == "platform_admin" or (a.role == "police_operator" and a.org in POLICE_ORGS)


def webhook_managers(a: Account) -> bool:
    return a.role == "platform_admin" or (a.role in MANAGERS and a.org is not None)


def kpi_readers(a: Account) -> bool:
    return a.role in ("platform_admin", "analyst", "auditor") or (
        a.role in ("police_operator", "organisation_admin") and a.org is not None)


def crime_city(a: Account) -> bool:
    """City-wide analytics: analysts, platform admins and the Operational Control Centre's staff."""
    return a.role in ("platform_admin", "analyst") or (
        a.role in ("police_operator", "inspector") and a.org == "centre")


def crime_district(a: Account) -> bool:
    """City-wide for analysts and the centre; a police unit's district for its operators and inspectors."""
    return crime_city(a) or (a.role in ("police_operator", "inspector") and a.org in DISTRICT_OF_UNIT)


def incident_exporters(a: Account) -> bool:
    return a.role in QUEUE or a.role in ("analyst", "auditor")


def storage_readers(a: Account) -> bool:
    return a.role == "platform_admin" or any("manage" in camera_rights(a.name, s) for s in ("d1school1", "b1e1"))


def dashboard_readers(a: Account) -> bool:
    return a.role in ("platform_admin", "analyst") or any(sees_yard(a.name, d) for d in (1, 2))


def place_creators(a: Account) -> bool:
    return a.role in ("platform_admin", "operator_admin")


def camera_creators_in_district2(a: Account) -> bool:
    return a.role in ("platform_admin", "operator_admin")


def onboarders(a: Account) -> bool:
    return a.role in ("platform_admin", "operator_admin")


def grant_makers_district2(a: Account) -> bool:
    return a.role in ("platform_admin", "operator_admin")


def business(a: Account) -> bool:
    return a.role in BUSINESS


def compliance_readers(a: Account) -> bool:
    return a.role in ("platform_admin", "operator_admin", "organisation_admin")


# --- the access decision of every route ------------------------------------------------------------------------------

@dataclass
class Spec:
    kind: str | None = None  # the object kind whose ids fill the path (None: the route has no object)
    decide: Callable[[Account, Obj], D] | None = None  # with kind
    gate: Callable[[Account], bool] | None = None  # without kind: who passes; others get 403/404
    query: dict[str, Any] | Callable[[dict], dict] = field(default_factory=dict)
    body: dict[str, Any] | Callable[[dict], dict] | None = None
    files: dict[str, Any] | None = None
    form: dict[str, Any] | None = None
    writes: bool = False  # allowed calls are not made (they would change the shared demo)
    public: bool = False  # no token needed


def window() -> dict[str, str]:
    end = utcnow() - timedelta(minutes=1)
    return {"start": (end - timedelta(minutes=5)).isoformat(), "end": end.isoformat()}


def csv_file(content: bytes = b"plate,reason\n") -> dict:
    return {"file": ("list.csv", content, "text/csv")}


def _jpeg() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8))[1].tobytes()


JPEG = _jpeg()
DATES = {"from": "2024-01-01", "to": "2024-12-31"}
SPECS: dict[str, Spec] = {
    # sign-in and one's own account
    "GET /health": Spec(public=True),
    "GET /ready": Spec(public=True),
    "POST /auth/token": Spec(public=True),
    "POST /auth/login": Spec(public=True),
    "PATCH /auth/password": Spec(gate=everyone, writes=True,
                                 body={"current_password": "x" * 12, "new_password": "y" * 12}),
    "POST /auth/logout": Spec(gate=everyone, writes=True),
    "GET /auth/me": Spec(gate=everyone),
    "GET /auth/tokens": Spec(gate=everyone),
    "POST /auth/tokens": Spec(gate=everyone, writes=True, body={"name": "probe"}),
    "DELETE /auth/tokens/{token_id}": Spec("token", owned, writes=True),
    # directory
    "GET /places": Spec(gate=everyone),
    "POST /places": Spec(gate=place_creators, writes=True, body=lambda c: {
        "kind": "district", "name": "probe", "parent_id": c["places"]["city"]}),
    "GET /places/{place_id}": Spec("place", place_seen),
    "GET /places/{place_id}/children": Spec(gate=everyone),  # a filtered list
    "GET /organisations": Spec(gate=everyone),
    "POST /organisations": Spec(gate=roles("platform_admin"), writes=True, body={"name": "probe", "kind": "school"}),
    "GET /users": Spec(gate=everyone),
    "POST /users": Spec(gate=roles("platform_admin"), writes=True, body=lambda c: {
        "username": f"probe{uuid.uuid4().hex[:6]}", "password": PASSWORD, "role": "inspector",
        "organisation_id": c["orgs"]["duty2"], "place_id": c["places"]["district2"]}),
    "GET /users/{user_id}": Spec("user", user_seen),
    "PATCH /users/{user_id}": Spec("user", user_changed, writes=True, body={"full_name": "probe"}),
    "GET /grants": Spec(gate=everyone),
    "POST /grants": Spec(gate=grant_makers_district2, writes=True, body=lambda c: {
        "organisation_id": c["orgs"]["duty2"], "place_id": c["places"]["district2"], "rights": ["view_live"],
        "legal_basis": "probe"}),
    "DELETE /grants/{grant_id}": Spec("grant", grant_revoked, writes=True),
    # cameras
    "GET /cameras": Spec(gate=everyone),
    "POST /cameras": Spec(gate=camera_creators_in_district2, writes=True, body=lambda c: {
        "name": "probe", "place_id": c["places"]["district2"], "main_url": "rtsp://192.0.2.1/probe"}),
    "GET /cameras/{camera_id}": Spec("camera", camera(None)),
    "PATCH /cameras/{camera_id}": Spec("camera", camera("manage", D.FORBIDDEN), writes=True, body={"name": "x"}),
    "DELETE /cameras/{camera_id}": Spec("camera", camera("manage", D.FORBIDDEN), writes=True),
    "POST /cameras/import": Spec(gate=roles("platform_admin"), writes=True,
                                 files=csv_file(b"name,place_id,main_url\n")),
    "GET /cameras/{camera_id}/health": Spec("camera", camera(None)),
    "GET /cameras/{camera_id}/timeline": Spec("camera", camera("view_archive"), query=window),
    "GET /storage": Spec(gate=storage_readers),
    "GET /cameras/{camera_id}/analysis": Spec("camera", camera("view_live")),
    "PUT /cameras/{camera_id}/analysis": Spec("camera", camera("manage", D.FORBIDDEN), writes=True, body={}),
    "GET /cameras/{camera_id}/snapshot.jpg": Spec("camera", camera("view_live")),
    # watching
    "GET /cameras/{camera_id}/live.m3u8": Spec("camera", camera("view_live")),
    "GET /cameras/{camera_id}/live/init.mp4": Spec("camera", camera("view_live")),
    "GET /cameras/{camera_id}/live/{sequence}.m4s": Spec("segment", camera("view_live")),
    "GET /cameras/{camera_id}/archive.m3u8": Spec("camera", camera("view_archive"), query=window),
    "GET /cameras/{camera_id}/recordings/{recording_id}.mp4": Spec("recording", camera("view_archive")),
    "GET /cameras/{camera_id}/clip.mp4": Spec("camera", camera("view_archive"), query=window),
    "GET /layouts": Spec(gate=everyone),
    "POST /layouts": Spec(gate=everyone, writes=True, body={"name": "probe", "grid": 4, "cameras": []}),
    "DELETE /layouts/{layout_id}": Spec("layout", owned, writes=True),
    "GET /map": Spec(gate=everyone),
    # evidence
    "GET /exports/public-key": Spec(gate=everyone),
    "POST /exports": Spec("camera", camera("export"), writes=True, body=lambda c, ids: {
        "cameras": [ids["camera_id"]], "reason": "probe", **window()}),
    "GET /exports": Spec(gate=everyone),
    "GET /exports/{export_id}": Spec("export", export_seen),
    "GET /exports/{export_id}/bundle": Spec("export", export_seen),
    # operations: events, hot lists, rules
    "GET /events": Spec(gate=everyone),
    "GET /events/{event_id}": Spec("event", camera("view_archive")),
    "GET /events/{event_id}/snapshot.jpg": Spec("event", camera("view_archive")),
    "GET /events/{event_id}/crop.jpg": Spec("event", camera("view_archive")),
    "GET /hotlists": Spec(gate=hotlist_users),
    "POST /hotlists": Spec(gate=hotlist_users, writes=True, body={"name": "probe"}),
    "PATCH /hotlists/{list_id}": Spec("hotlist", hotlist(change=True), writes=True, body={"name": "x"}),
    "DELETE /hotlists/{list_id}": Spec("hotlist", hotlist(change=True), writes=True),
    "GET /hotlists/{list_id}/entries": Spec("hotlist", hotlist(change=False)),
    "POST /hotlists/{list_id}/entries": Spec("hotlist", hotlist(change=True), writes=True,
                                             body={"plate": "123ABC02"}),
    "DELETE /hotlists/{list_id}/entries/{entry_id}": Spec("entry", hotlist(change=True), writes=True),
    "POST /hotlists/{list_id}/import": Spec("hotlist", hotlist(change=True), writes=True, files=csv_file()),
    "GET /alarm-rules": Spec(gate=roles(*QUEUE)),
    "POST /alarm-rules": Spec(gate=roles(*QUEUE), writes=True, body=lambda c: {
        "name": "probe", "camera_id": c["cameras"]["d2street1"], "event_kind": "motion"}),
    "GET /alarm-rules/{rule_id}": Spec("rule", rule_seen),
    "PATCH /alarm-rules/{rule_id}": Spec("rule", rule_seen, writes=True, body={"name": "x"}),
    "DELETE /alarm-rules/{rule_id}": Spec("rule", rule_seen, writes=True),
    # alarms, incidents, crews
    "GET /alarms": Spec(gate=roles(*QUEUE)),
    "GET /alarms/{alarm_id}": Spec("alarm", alarm_seen),
    "POST /alarms/{alarm_id}/acknowledge": Spec("alarm", alarm_seen, writes=True),
    "POST /alarms/{alarm_id}/dismiss": Spec("alarm", alarm_seen, writes=True, body={"reason": "probe"}),
    "POST /alarms/{alarm_id}/incident": Spec("alarm", alarm_seen, writes=True, body={}),
    "GET /incidents/types": Spec(gate=everyone),
    "GET /incidents": Spec(gate=everyone),  # a filtered list
    "POST /incidents": Spec(gate=roles(*QUEUE), writes=True, body={"offence_type": "theft"}),
    "GET /incidents/export": Spec(gate=incident_exporters, query=window),
    "GET /incidents/{incident_id}": Spec("incident", incident_seen),
    "PATCH /incidents/{incident_id}": Spec("incident", incident_operated, writes=True, body={"title": "x"}),
    "POST /incidents/{incident_id}/notes": Spec("incident", incident_seen, writes=True, body={"text": "x"}),
    "POST /incidents/{incident_id}/cameras": Spec("incident", incident_operated, writes=True, body=lambda c: {
        "camera_id": c["cameras"]["d1street1"], "start_at": window()["start"], "end_at": window()["end"]}),
    "GET /incidents/{incident_id}/responders": Spec("incident", incident_operated),
    "POST /incidents/{incident_id}/dispatches": Spec("incident", incident_operated, writes=True,
                                                     body=lambda c: {"responder_ids": [c["users"]["responder1"]]}),
    "POST /incidents/{incident_id}/close": Spec("incident", incident_operated, writes=True,
                                                body={"resolution": "x"}),
    "GET /dispatches/mine": Spec(gate=everyone),
    "POST /dispatches/{dispatch_id}/status": Spec("dispatch", dispatch_reported, writes=True,
                                                  body={"status": "en_route"}),
    "GET /operations/kpis": Spec(gate=kpi_readers),
    # integrations
    "GET /webhooks": Spec(gate=webhook_managers),
    "POST /webhooks": Spec(gate=webhook_managers, writes=True,
                           body={"name": "probe", "url": "https://example.org/hook"}),
    "GET /webhooks/{webhook_id}": Spec("webhook", webhook_seen),
    "PATCH /webhooks/{webhook_id}": Spec("webhook", webhook_seen, writes=True, body={"name": "x"}),
    "DELETE /webhooks/{webhook_id}": Spec("webhook", webhook_seen, writes=True),
    "GET /webhooks/{webhook_id}/deliveries": Spec("webhook", webhook_seen),
    "POST /webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": Spec("delivery", webhook_seen, writes=True),
    "POST /webhooks/{webhook_id}/test": Spec("webhook", webhook_seen, writes=True),
    # safe yards
    "GET /safe-yards": Spec(gate=everyone),
    "POST /safe-yards": Spec("yard_place", create_yard, writes=True, body=lambda c, ids: {
        "place_id": ids["place_id"], "joined_on": "2024-01-01"}),
    "PATCH /safe-yards/{yard_id}": Spec("yard", yard(personal=True), writes=True, body={"notes": "x"}),
    "GET /safe-yards/{yard_id}": Spec("yard", yard(personal=False)),
    "GET /safe-yards/assignments": Spec(gate=everyone),
    "POST /safe-yards/assignments": Spec("inspector2", assign_inspector2, writes=True, body=lambda c, ids: {
        "user_id": ids["user_id"], "place_id": c["places"]["district2"], "legal_basis": "probe"}),
    "DELETE /safe-yards/assignments/{assignment_id}": Spec("assignment", assignment_ended, writes=True),
    "POST /safe-yards/subject-access": Spec(gate=everyone, body={"iin": "900101300005", "purpose": "проверка"}),
    "GET /safe-yards/dashboard": Spec(gate=dashboard_readers),
    "GET /safe-yards/{yard_id}/people": Spec("yard", yard(personal=True), query={"purpose": "проверка"}),
    "POST /safe-yards/{yard_id}/people": Spec("yard", yard(personal=True), writes=True,
                                              body={"category": "volunteer", "fields": {"name": "x"}}),
    "GET /safe-yards/{yard_id}/people/{person_id}": Spec("person", yard(personal=True),
                                                         query={"purpose": "проверка"}),
    "DELETE /safe-yards/{yard_id}/people/{person_id}": Spec("person", yard(personal=True), writes=True,
                                                            query={"basis": "probe"}),
    "POST /safe-yards/{yard_id}/import": Spec("yard", yard(personal=True), writes=True,
                                              files={"file": ("p.csv", b"category,name\n", "text/csv")}),
    "GET /safe-yards/{yard_id}/passport.pdf": Spec("yard", yard(personal=False)),
    "POST /safe-yards/{yard_id}/photos": Spec("yard", yard(personal=True), writes=True,
                                              files={"file": ("p.jpg", JPEG, "image/jpeg")}),
    "GET /safe-yards/{yard_id}/photos/{photo_id}": Spec("photo", yard(personal=False)),
    # crime analytics
    "GET /crime/report": Spec(gate=crime_district, query=DATES),
    "GET /crime/hotspots": Spec(gate=crime_district, query=DATES),
    "GET /crime/effect": Spec(gate=crime_city,
                              query={"installed_from": "2024-01-01", "installed_to": "2024-06-30"}),
    "GET /crime/coverage": Spec(gate=crime_city),
    "GET /crime/plan": Spec(gate=crime_city, query={"cameras": 2, **DATES}),
    # the audit log: auditors and platform admins; the records of a camera to whoever holds a grant on it
    "GET /audit": Spec(gate=roles("platform_admin", "auditor")),
    "GET /audit/verify": Spec(gate=roles("platform_admin", "auditor")),
    # onboarding at scale: the telecom's and the platform's admins; a camera's push key and tier to its managers
    "POST /onboarding/installations": Spec(gate=onboarders, writes=True,
                                           files=csv_file(b"parent,building,camera,main_url\n")),
    "POST /onboarding/onvif/discover": Spec(gate=onboarders, body={
        "addresses": ["127.0.0.1"], "port": 9, "multicast": False, "timeout": 0.1}),
    "POST /onboarding/onvif/probe": Spec(gate=onboarders, body={"xaddr": "http://127.0.0.1:9/onvif/device_service"}),
    "POST /onboarding/onvif/cameras": Spec(gate=onboarders, writes=True, body=lambda c: {
        "xaddr": "http://127.0.0.1:9/onvif/device_service", "place_id": c["places"]["district2"]}),
    "GET /cameras/{camera_id}/push": Spec("camera", camera("manage", D.FORBIDDEN)),
    "POST /cameras/{camera_id}/push": Spec("camera", camera("manage", D.FORBIDDEN), writes=True,
                                           body={"protocol": "rtmp"}),
    "POST /ingest/publish": Spec(public=True),  # the push servers' callback: their secret, else 404
    "GET /field/offline": Spec(gate=everyone),  # a filtered list: the cameras the caller manages
    "GET /cameras/{camera_id}/storage-tier": Spec("camera", camera(None)),
    "PUT /cameras/{camera_id}/storage-tier": Spec("camera", camera("manage", D.FORBIDDEN), writes=True,
                                                  body={"full_days": 7, "motion_days": 23}),
    "DELETE /cameras/{camera_id}/storage-tier": Spec("camera", camera("manage", D.FORBIDDEN), writes=True),
    # the telecom's business: platform admins and the telecom's operator admins (everyone else: as if it did not exist)
    "GET /cloud/plans": Spec(gate=business),
    "POST /cloud/plans": Spec(gate=business, writes=True, body={
        "name": "probe", "archive_days": 7, "clip_downloads_per_month": 1, "price_tiyn": 100}),
    "PUT /cloud/plans/{plan_id}": Spec("plan", business_object, writes=True, body={
        "name": "probe", "archive_days": 7, "clip_downloads_per_month": 1, "price_tiyn": 100}),
    "GET /cloud/contracts": Spec(gate=business),
    "POST /cloud/contracts": Spec(gate=business, writes=True, body=lambda c: {
        "number": "probe", "building_id": c["places"]["building1"], "plan_id": c["plan"],
        "entrance_ids": [c["places"]["entrance_b1e1"]], "starts_on": "2024-01-01"}),
    "GET /cloud/contracts/{contract_id}": Spec("contract", business_object),
    "POST /cloud/contracts/{contract_id}/end": Spec("contract", business_object, writes=True),
    "POST /cloud/contracts/{contract_id}/flats": Spec("contract", business_object, writes=True, body=lambda c: {
        "entrance_id": c["places"]["entrance_b1e1"], "number": "probe"}),
    "GET /cloud/flats": Spec(gate=business),
    "GET /cloud/flats/{flat_id}": Spec("flat", business_object),
    "POST /cloud/flats/{flat_id}/state": Spec("flat", business_object, writes=True, body={"state": "suspended"}),
    "DELETE /cloud/flats/{flat_id}/residents/{user_id}": Spec("flat_resident", business_object, writes=True),
    "POST /cloud/flats/{flat_id}/code": Spec("flat", business_object, writes=True),
    "DELETE /cloud/flats/{flat_id}/code": Spec("flat", business_object, writes=True),
    "POST /cloud/entrances/{place_id}/notices.pdf": Spec("entrance", business_object, writes=True),
    "POST /cloud/invoices/run": Spec(gate=business, writes=True, body={"period": "2024-01"}),
    "GET /cloud/invoices": Spec(gate=business, query={"period": "2024-01"}),
    "GET /cloud/invoices/export": Spec(gate=business, query={"period": "2024-01"}),
    "POST /cloud/payments/import": Spec(gate=business, writes=True, files={
        "file": ("p.csv", b"account,amount,paid_on,reference\n", "text/csv")}),
    "GET /cloud/payments": Spec(gate=business),
    "GET /cloud/usage": Spec(gate=business, query={"period": "2024-01"}),
    "POST /cloud/checks": Spec(gate=business, writes=True),
    # routing agreements: run by the business, read also by auditors and the party's and the unit's members
    "GET /cloud/agreements": Spec(gate=everyone),  # a filtered list
    "POST /cloud/agreements": Spec(gate=business, writes=True, body=lambda c: {
        "number": "probe", "party_org_id": c["orgs"]["telecom"], "holder_org_id": c["orgs"]["duty2"],
        "starts_on": "2024-01-01", "scope": ["view_live"], "legal_basis": "probe",
        "place_ids": [c["places"]["district2"]]}),
    "POST /cloud/agreements/bulk": Spec(gate=business, writes=True, body=lambda c: {
        "root_place_id": c["places"]["city"], "place_kinds": ["school"], "holder_org_id": c["orgs"]["centre"],
        "scope": ["view_live"], "starts_on": "2024-01-01", "legal_basis": "probe", "number_prefix": "probe"}),
    "GET /cloud/agreements/{agreement_id}": Spec("agreement", agreement_seen),
    "POST /cloud/agreements/{agreement_id}/end": Spec("agreement", agreement_changed, writes=True,
                                                      body={"reason": "probe"}),
    "POST /cloud/agreements/{agreement_id}/renew": Spec("agreement", agreement_changed, writes=True,
                                                        body={"number": "probe"}),
    "PUT /cloud/agreements/{agreement_id}/document": Spec("agreement", agreement_changed, writes=True, files={
        "file": ("a.pdf", b"%PDF-1.4\n", "application/pdf")}),
    "GET /cloud/agreements/{agreement_id}/document": Spec("agreement", agreement_seen),
    # retention compliance: the business (cameras in reach), organisation admins (their own cameras)
    "GET /cloud/requirements": Spec(gate=compliance_readers),
    "PUT /cloud/requirements": Spec(gate=business, writes=True, body={"camera_kind": "entrance", "days": 30}),
    "GET /cloud/compliance": Spec(gate=compliance_readers),
    "GET /cloud/compliance.xlsx": Spec(gate=compliance_readers),
    "GET /cloud/compliance.pdf": Spec(gate=compliance_readers),
    # the resident's portal: one's own subscriptions and cameras; downloads and shares of subscribed cameras
    "GET /my/subscriptions": Spec(gate=everyone),
    "GET /my/cameras": Spec(gate=everyone),
    "GET /my/access-log": Spec(gate=everyone),
    "GET /my/cameras/{camera_id}/download.mp4": Spec("camera", subscribed, writes=True, query=window),
    "GET /my/shares": Spec(gate=everyone),
    "POST /my/shares": Spec("camera", subscribed, writes=True, body=lambda c, ids: {
        "camera_id": ids["camera_id"], **window()}),
    "DELETE /my/shares/{share_id}": Spec("share", owned, writes=True),
    "GET /shared/{token}.mp4": Spec(public=True),  # the link is the key; every opening audited (test_cloud_portal)
    "POST /activation": Spec(public=True),  # throttled per code and per address (test_cloud_activation)
    # body-worn and dash cameras: duties, devices and shifts, tus offload, recordings (docs/bodycams.md)
    "GET /bodycams/duties": Spec(gate=everyone),  # a filtered list
    "POST /bodycams/duties": Spec("bodycam_member", bodycam_unit_administered, writes=True, body=lambda c, ids: {
        "user_id": ids["user_id"], "duty": "officer", "legal_basis": "probe"}),
    "DELETE /bodycams/duties/{duty_id}": Spec("bodycam_duty", bodycam_unit_administered, writes=True),
    "GET /bodycams/devices": Spec(gate=everyone),  # a filtered list
    "POST /bodycams/devices": Spec("bodycam_unit", bodycam_device_registrar, writes=True, body=lambda c, ids: {
        "serial": "PROBE-1", "kind": "body", "organisation_id": ids["organisation_id"]}),
    "GET /bodycams/devices/{device_id}": Spec("bodycam_device", bodycam_device_seen),
    "POST /bodycams/devices/{device_id}/check-out": Spec("bodycam_device", bodycam_device_managed, writes=True,
                                                         body=lambda c: {"officer_id": c["users"]["responder1"]}),
    "POST /bodycams/devices/{device_id}/check-in": Spec("bodycam_device", bodycam_device_managed, writes=True,
                                                        body={}),
    "OPTIONS /bodycams/uploads": Spec(public=True),  # tus discovery: protocol versions only
    "POST /bodycams/uploads": Spec(gate=everyone, writes=True),  # the device named in a header: test_bodycams
    "HEAD /bodycams/uploads/{upload_id}": Spec("bodycam_upload", bodycam_upload_seen),
    "PATCH /bodycams/uploads/{upload_id}": Spec("bodycam_upload", bodycam_upload_seen, writes=True),
    "DELETE /bodycams/uploads/{upload_id}": Spec("bodycam_upload", bodycam_upload_seen, writes=True),
    "GET /bodycams/categories": Spec(gate=everyone),
    "PUT /bodycams/categories/{code}": Spec(gate=roles("platform_admin"), writes=True, body={"retention_days": 30}),
    "GET /bodycams/recordings": Spec(gate=everyone),  # a filtered list
    "GET /bodycams/recordings/{recording_id}": Spec("bodycam_recording", bodycam_recording_seen),
    "GET /bodycams/recordings/{recording_id}/video.mp4": Spec("bodycam_recording", bodycam_recording_seen),
    "GET /bodycams/recordings/{recording_id}/track": Spec("bodycam_recording", bodycam_recording_seen),
    "GET /bodycams/recordings/{recording_id}/nearby-cameras": Spec("bodycam_recording", bodycam_recording_seen),
    "GET /cameras/{camera_id}/bodycam-recordings": Spec("camera", camera("view_archive"), query=window),
    "POST /bodycams/recordings/{recording_id}/category": Spec("bodycam_recording", bodycam_recording_seen,
                                                              writes=True, body={"category": "no_event"}),
    "POST /bodycams/recordings/{recording_id}/holds": Spec("bodycam_recording", bodycam_recording_kept,
                                                           writes=True, body={"reason": "probe"}),
    "DELETE /bodycams/holds/{hold_id}": Spec("bodycam_hold", bodycam_recording_kept, writes=True),
    "POST /bodycams/recordings/{recording_id}/incidents": Spec("bodycam_recording", bodycam_recording_kept,
                                                               writes=True, body={"incident_id": 1}),
    "POST /bodycams/recordings/{recording_id}/redactions": Spec("bodycam_recording", bodycam_recording_kept,
                                                                writes=True),
    "GET /bodycams/crews": Spec(gate=everyone),  # a filtered list: devices seen, or live cameras watched
    "GET /bodycams/recordings/{recording_id}/redactions": Spec("bodycam_recording", bodycam_recording_kept),
    "GET /bodycams/redactions/{redaction_id}": Spec("bodycam_redaction", bodycam_recording_kept),
    "PUT /bodycams/redactions/{redaction_id}": Spec("bodycam_redaction", bodycam_recording_kept, writes=True,
                                                    body={}),
    "POST /bodycams/redactions/{redaction_id}/render": Spec("bodycam_redaction", bodycam_recording_kept,
                                                            writes=True),
    "GET /bodycams/redactions/{redaction_id}/video.mp4": Spec("bodycam_redaction", bodycam_recording_kept),
    "POST /bodycams/disclosures": Spec("bodycam_redaction", bodycam_recording_kept, writes=True,
                                       body=lambda c, ids: {"redaction_ids": [ids["redaction_id"]],
                                                            "recipient": "probe", "reason": "probe"}),
    "GET /shared/bodycams/{token}.zip": Spec(public=True),  # the link is the key; every opening audited
    # the car's own post with its push key (not a user's token): test_bodycams posts_its_position (401, alike 404s)
    "POST /bodycams/devices/{device_id}/positions": Spec(public=True),
    "POST /bodycams/devices/{device_id}/live": Spec("bodycam_device", bodycam_device_managed, writes=True,
                                                    body={"protocol": "rtmp"}),
}
WEBSOCKETS = {"/cameras/{camera_id}/live", "/alarms/live", "/dispatches/live"}


# --- the installation: the demo city, its capabilities, and what the delegated admins made ---------------------------

@dataclass
class City:
    inst: Installation
    client: TestClient
    tokens: dict[str, str]
    ids: dict[str, dict[str, Any]]  # cameras, places, orgs, users by key
    objects: dict[str, list[Obj]]

    def headers(self, account: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[account]}"}


def _api(client: TestClient, headers: dict, method: str, path: str, **kw: Any) -> Any:
    response = client.request(method, f"/api/v1{path}", headers=headers, **kw)
    assert response.status_code < 300, (method, path, response.text)
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def city(demo_inst: Installation, demo_client: TestClient) -> Iterator[City]:
    from kuzet.services.audit import SYSTEM
    from kuzet.services.demo_extras import seed_capabilities
    from kuzet.services.operations.webhooks import create_webhook, enqueue_ping
    from kuzet.services.safeyard.photos import store_photo
    from kuzet.store.models import Place, User
    from kuzet.store.models.operations import (
        Alarm,
        AlarmRoute,
        AlarmRule,
        Dispatch,
        Event,
        HotList,
        HotListEntry,
        Incident,
        Webhook,
        WebhookDelivery,
    )
    from kuzet.store.models.recording import Recording
    from kuzet.store.models.safeyard import DistrictAssignment, PersonRecord, SafeYard, SafeYardPhoto
    from kuzet.store.models.watching import Export

    inst, client = demo_inst, demo_client
    demo = inst.city
    seed_capabilities(inst, demo)
    cli = client
    tokens = {a.name: _token(cli, a.name, "demo") for a in ACCOUNTS if a.name in _DEMO}
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    orgs = dict(demo.organisations)
    places = {"city": demo.city_id, "region": demo.region_id, "district1": demo.districts[0],
              "district2": demo.districts[1], "entrance_b1e1": demo.entrances[0], "school1": demo.schools[0],
              "building1": demo.buildings[0]}
    # The delegated admins make their accounts through the API, as they would.
    _api(cli, {"Authorization": f"Bearer {tokens['school7']}"}, "POST", "/users", json={
        "username": "schoolstaff", "password": PASSWORD, "role": "responder"})
    sub = _api(cli, {"Authorization": f"Bearer {tokens['operator']}"}, "POST", "/users", json={
        "username": "subscriber", "password": PASSWORD, "role": "resident", "place_id": demo.entrances[1]})
    _api(cli, {"Authorization": f"Bearer {tokens['operator']}"}, "POST", "/grants", json={
        "user_id": sub["id"], "camera_id": demo.cameras["b1e2"], "rights": ["view_live"],
        "legal_basis": "Подписка (проба)"})
    _api(cli, admin, "POST", "/users", json={"username": "unitadmin", "password": PASSWORD,
                                             "role": "organisation_admin", "organisation_id": orgs["duty1"]})
    tokens["unitadmin"] = _token(cli, "unitadmin", PASSWORD)
    unit = {"Authorization": f"Bearer {tokens['unitadmin']}"}
    inspector = _api(cli, unit, "POST", "/users", json={"username": "unitinspector", "password": PASSWORD,
                                                         "role": "inspector", "place_id": demo.districts[0]})
    _api(cli, unit, "POST", "/safe-yards/assignments", json={
        "user_id": inspector["id"], "place_id": demo.districts[0], "legal_basis": "Приказ (проба)"})
    for name in ("schoolstaff", "subscriber", "unitinspector"):
        tokens[name] = _token(cli, name, PASSWORD)
    school_grant = _api(cli, {"Authorization": f"Bearer {tokens['school7']}"}, "POST", "/grants", json={
        "organisation_id": orgs["centre"], "camera_id": demo.cameras["d1school1"], "rights": ["view_live"],
        "legal_basis": "Соглашение со школой (проба)"})
    for name in ("duty1", "duty2"):
        _api(cli, {"Authorization": f"Bearer {tokens[name]}"}, "POST", "/layouts", json={
            "name": f"{name} wall", "grid": 4, "cameras": []})
    personal = {a.name: _api(cli, {"Authorization": f"Bearer {tokens[a.name]}"}, "POST", "/auth/tokens",
                             json={"name": "probe"}) for a in ACCOUNTS if a.name in ("duty1", "resident1")}

    objects: dict[str, list[Obj]] = {}
    with inst.db.session() as session:
        users = dict(session.execute(select(User.username, User.id)).all())
        slug_of = {v: k for k, v in demo.cameras.items()}
        org_key = {v: k for k, v in orgs.items()}
        now = utcnow()
        objects["camera"] = [Obj({"camera_id": cid}, {"slug": s}) for s, cid in demo.cameras.items()]
        objects["segment"] = [Obj({"camera_id": cid, "sequence": 0}, {"slug": s}) for s, cid in demo.cameras.items()]
        rec_dir = inst.settings.recordings_path / "probe"
        rec_dir.mkdir(parents=True, exist_ok=True)
        for cid in demo.cameras.values():
            (rec_dir / f"{cid}.mp4").write_bytes(b"\0" * 64)
            session.add(Recording(camera_id=cid, path=f"probe/{cid}.mp4", start_at=now - timedelta(minutes=3),
                                  end_at=now - timedelta(minutes=2), bytes=64, state="closed"))
        session.flush()
        objects["recording"] = [Obj({"camera_id": r.camera_id, "recording_id": r.id}, {"slug": slug_of[r.camera_id]})
                                for r in session.scalars(select(Recording).where(Recording.path.like("probe/%")))]
        objects["event"] = [Obj({"event_id": e.id}, {"slug": slug_of[e.camera_id]})
                            for e in session.scalars(select(Event))]
        routes: dict[int, set[str]] = {}
        for alarm_id, org_id in session.execute(select(AlarmRoute.alarm_id, AlarmRoute.organisation_id)):
            routes.setdefault(alarm_id, set()).add(org_key[org_id])
        objects["alarm"] = [Obj({"alarm_id": a.id}, {"slug": slug_of[a.camera_id], "routes": routes.get(a.id, set())})
                            for a in session.scalars(select(Alarm))]
        names = {v: k for k, v in users.items()}
        objects["incident"] = [Obj({"incident_id": i.id}, {
            "org": org_key.get(i.organisation_id),
            "routes": set().union(*(routes.get(a, set()) for a in session.scalars(
                select(Alarm.id).where(Alarm.incident_id == i.id)))),
            "responders": {names[d.responder_id] for d in session.scalars(
                select(Dispatch).where(Dispatch.incident_id == i.id))}}) for i in session.scalars(select(Incident))]
        objects["dispatch"] = [Obj({"dispatch_id": d.id}, {"responder": names[d.responder_id]})
                               for d in session.scalars(select(Dispatch))]
        yards = session.scalars(select(SafeYard)).all()
        district_no = {demo.districts[0]: 1, demo.districts[1]: 2}
        objects["yard"] = [Obj({"yard_id": y.id}, {"district": district_no[y.district_id]}) for y in yards]
        objects["person"] = [Obj({"yard_id": p.safe_yard_id, "person_id": p.id}, {
            "district": district_no[session.get(SafeYard, p.safe_yard_id).district_id]})
            for p in session.scalars(select(PersonRecord))][:6]
        for y in yards:
            store_photo(session, inst.settings.recordings_path, SYSTEM, y, JPEG)
        objects["photo"] = [Obj({"yard_id": p.safe_yard_id, "photo_id": p.id}, {
            "district": district_no[session.get(SafeYard, p.safe_yard_id).district_id]})
            for p in session.scalars(select(SafeYardPhoto))]
        free_yards = [p for p in session.scalars(select(Place).where(Place.kind == "yard"))
                      if session.scalar(select(SafeYard).where(SafeYard.place_id == p.id)) is None]
        objects["yard_place"] = [Obj({"place_id": p.id}, {"district": 1 if p.path.startswith(
            session.get(Place, demo.districts[0]).path) else 2}) for p in free_yards]
        objects["user"] = [Obj({"user_id": users[a.name]}, {"account": a.name}) for a in ACCOUNTS]
        objects["inspector2"] = [Obj({"user_id": users["inspector2"]})]
        centre_grant = session.scalar(select(text("id")).select_from(text("grants")).where(
            text("organisation_id = :o AND place_id = :p")).params(o=orgs["centre"], p=demo.city_id))
        objects["grant"] = [Obj({"grant_id": centre_grant}, {"revokers": set()}),
                            Obj({"grant_id": school_grant["id"]}, {"revokers": {"school7", "operator"}})]
        objects["place"] = [Obj({"place_id": pid}, {"key": key}) for key, pid in places.items()]
        objects["rule"] = [Obj({"rule_id": r.id}, {"org": org_key.get(r.organisation_id)})
                           for r in session.scalars(select(AlarmRule))]
        objects["hotlist"] = [Obj({"list_id": h.id}, {"org": org_key.get(h.organisation_id)})
                              for h in session.scalars(select(HotList))]
        objects["entry"] = [Obj({"list_id": e.list_id, "entry_id": e.id}, {
            "org": org_key.get(session.get(HotList, e.list_id).organisation_id)})
            for e in session.scalars(select(HotListEntry))][:2]
        for org in ("duty1", None):
            hook, _ = create_webhook(session, SYSTEM, inst.keys, name=f"probe {org}", url="https://example.org/hook",
                                     organisation_id=orgs[org] if org else None)
            enqueue_ping(session, hook)
        session.flush()
        objects["webhook"] = [Obj({"webhook_id": w.id}, {"org": org_key.get(w.organisation_id)})
                              for w in session.scalars(select(Webhook))]
        objects["delivery"] = [Obj({"webhook_id": d.webhook_id, "delivery_id": d.id}, {
            "org": org_key.get(session.get(Webhook, d.webhook_id).organisation_id)})
            for d in session.scalars(select(WebhookDelivery))]
        from kuzet.services.watching.evidence import create_export

        for creator, slugs in (("center", ["d1street1"]), ("resident1", ["b1e1"]), ("duty2", ["d2street1"])):
            who = session.get(User, users[creator])
            create_export(session, SYSTEM, who, [demo.cameras[s] for s in slugs], now - timedelta(minutes=5),
                          now - timedelta(minutes=4), "probe")
        objects["export"] = [Obj({"export_id": e.id}, {
            "creator": names[e.created_by], "slugs": [slug_of[c] for c in e.cameras]})
            for e in session.scalars(select(Export))]
        from kuzet.store.models.watching import WallLayout

        objects["layout"] = [Obj({"layout_id": w.id}, {"owner": names[w.user_id]})
                             for w in session.scalars(select(WallLayout))]
        from kuzet.store.models import ApiToken

        objects["token"] = [Obj({"token_id": t.id}, {"owner": names[t.user_id]})
                            for t in session.scalars(select(ApiToken).where(ApiToken.id.in_(
                                [p["id"] for p in personal.values()])))]
        objects["assignment"] = [Obj({"assignment_id": a.id}, {"unit": org_key.get(
            session.get(User, a.user_id).organisation_id)}) for a in session.scalars(select(DistrictAssignment))]
        cameras = {s: cid for s, cid in demo.cameras.items()}
        # the cloud service's objects: the demo's plans, contract, subscriber, agreements, and a resident's share
        from kuzet.services.cloud.portal import subscribed_camera
        from kuzet.services.cloud.shares import create_share
        from kuzet.store.models.cloud import Agreement, Contract, Flat, FlatResident, Plan

        plan = session.scalar(select(Plan).order_by(Plan.id))
        objects["plan"] = [Obj({"plan_id": plan.id})]
        objects["contract"] = [Obj({"contract_id": c.id}) for c in session.scalars(select(Contract))][:2]
        flat = session.scalar(select(Flat).join(FlatResident, FlatResident.flat_id == Flat.id).where(
            FlatResident.user_id == users["resident1"]))
        objects["flat"] = [Obj({"flat_id": flat.id})]
        objects["flat_resident"] = [Obj({"flat_id": flat.id, "user_id": users["resident1"]})]
        objects["entrance"] = [Obj({"place_id": demo.entrances[0]})]
        objects["agreement"] = [Obj({"agreement_id": a.id}, {"party": org_key.get(a.party_org_id),
                                                             "holder": org_key.get(a.holder_org_id)})
                                for a in session.scalars(select(Agreement).order_by(Agreement.id))]
        resident = session.get(User, users["resident1"])
        camera_row, flat_row = subscribed_camera(session, resident, demo.cameras["b1e1"])
        create_share(session, SYSTEM, resident, flat_row, camera_row, now - timedelta(minutes=5),
                     now - timedelta(minutes=4), hours=24, max_hours=24, note="probe", tz="Asia/Almaty")
        from kuzet.store.models.cloud import SharedClip

        objects["share"] = [Obj({"share_id": sh.id}, {"owner": names[sh.user_id]})
                            for sh in session.scalars(select(SharedClip))]
        plan_id = plan.id
        _bodycam_objects(inst, session, objects, users, orgs)
    yield City(inst, client, tokens, {"cameras": cameras, "places": places, "orgs": orgs, "users": users,
                                      "plan": plan_id}, objects)


def _bodycam_objects(inst: Installation, session: Any, objects: dict[str, list[Obj]], users: dict[str, int],
                     orgs: dict[str, int]) -> None:
    """A shift of BWC-0001 (duty unit 1) worn by responder1 and a recording of it; a recording of BWC-0101 (duty unit
    2) from no shift; a hold on each; an unfinished upload on each device."""
    from kuzet.services.audit import SYSTEM
    from kuzet.services.bodycams import devices, offload, recordings
    from kuzet.store.models import User
    from kuzet.store.models.bodycams import BodycamDevice, BodycamDuty

    admin = session.get(User, users["admin"])
    unit_of = {v: k for k, v in orgs.items()}
    by_serial = {d.serial: d for d in session.scalars(select(BodycamDevice))}
    shift = devices.check_out(session, SYSTEM, admin, by_serial["BWC-0001"], users["responder1"])
    devices.check_in(session, SYSTEM, admin, by_serial["BWC-0001"], utcnow())
    root = inst.settings.bodycams_path
    source_dir = root / "probe-sources"
    source_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for serial in ("BWC-0001", "BWC-0101"):
        source = source_dir / f"{serial}.mp4"
        source.write_bytes(b"\0" * 64)
        rec = offload.ingest_file(session, root, SYSTEM, device=by_serial[serial], source=source,
                                  filename=source.name, via="upload", ingested_by=None)
        recordings.hold(session, SYSTEM, admin, rec, "probe")
        made.append(rec)
    names = {v: k for k, v in users.items()}
    assert made[0].shift_id == shift.id
    objects["bodycam_recording"] = [Obj({"recording_id": r.id}, {
        "officer": names.get(r.officer_id), "unit": unit_of[r.organisation_id]}) for r in made]
    objects["bodycam_hold"] = [Obj({"hold_id": recordings.open_holds(session, r.id)[0].id}, {
        "officer": names.get(r.officer_id), "unit": unit_of[r.organisation_id]}) for r in made]
    objects["bodycam_device"] = [Obj({"device_id": d.id}, {"unit": unit_of[d.organisation_id]})
                                 for d in by_serial.values()]
    objects["bodycam_unit"] = [Obj({"organisation_id": orgs[u]}, {"unit": u}) for u in ("duty1", "duty2")]
    objects["bodycam_member"] = [Obj({"user_id": users["responder1"]}, {"unit": "duty1"}),
                                 Obj({"user_id": users["inspector2"]}, {"unit": "duty2"})]
    objects["bodycam_duty"] = [Obj({"duty_id": d.id}, {"unit": unit_of[d.organisation_id]})
                               for d in session.scalars(select(BodycamDuty))]
    from kuzet.services.bodycams.redaction import Plan
    from kuzet.store.models.bodycams import BodycamRedaction

    redactions = []
    for r in made:
        row = BodycamRedaction(recording_id=r.id, plan_path=f"redactions/probe-{r.id}.json", created_by=admin.id)
        session.add(row)
        (root / "redactions").mkdir(parents=True, exist_ok=True)
        Plan(width=64, height=64, fps=25, frames=1, tracks={1: {0: [0, 0, 8, 8]}}).save(root / row.plan_path)
        redactions.append((row, r))
    session.flush()
    objects["bodycam_redaction"] = [Obj({"redaction_id": row.id}, {
        "officer": names.get(r.officer_id), "unit": unit_of[r.organisation_id]}) for row, r in redactions]
    uploads = []
    for serial in ("BWC-0001", "BWC-0101"):
        up = offload.create_upload(session, root, SYSTEM, admin, length=10, metadata={"device": serial},
                                   max_bytes=100, expiry_hours=24 * 30)
        uploads.append(Obj({"upload_id": up.id}, {"creator": "admin",
                                                  "unit": unit_of[by_serial[serial].organisation_id]}))
    objects["bodycam_upload"] = uploads


_DEMO = {"admin", "operator", "duty1", "duty2", "center", "inspector1", "inspector2", "analyst", "resident1",
         "resident2", "school7", "responder1", "auditor"}


def _token(client: TestClient, username: str, password: str) -> str:
    response = client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


# --- asking ----------------------------------------------------------------------------------------------------------

def _schema_routes(client: TestClient) -> set[str]:
    schema = client.get("/api/v1/openapi.json").json()
    return {f"{method.upper()} {path.removeprefix('/api/v1')}" for path, ops in schema["paths"].items()
            for method in ops}


def _request(city: City, key: str, spec: Spec, headers: dict, ids: dict[str, Any]):  # noqa: ANN202
    method, path = key.split(" ", 1)
    for name, value in ids.items():
        path = path.replace("{" + name + "}", str(value))
    query = spec.query() if callable(spec.query) else spec.query
    kw: dict[str, Any] = {"params": query, "headers": headers}
    if spec.body is not None:
        if callable(spec.body):
            kw["json"] = spec.body(city.ids, ids) if spec.body.__code__.co_argcount == 2 else spec.body(city.ids)
        else:
            kw["json"] = spec.body
    if spec.files is not None:
        kw["files"] = {k: (v[0], io.BytesIO(v[1]), v[2]) for k, v in spec.files.items()}
    return city.client.request(method, f"/api/v1{path}", **kw)


def _fingerprint(inst: Installation) -> dict[str, int]:
    """Row counts of every table and the audit chain's length: what a denied request must leave as it was."""
    with inst.db.session() as session:
        names = inspect(session.get_bind()).get_table_names()
        counts = {n: session.scalar(select(func.count()).select_from(text(f'"{n}"'))) for n in names
                  if n not in ("alembic_version", "api_tokens", "login_attempts")}
    return counts


def _body(response) -> Any:  # noqa: ANN001
    try:
        return response.json()
    except ValueError:
        return response.content


def _probes(city: City, spec: Spec, account: Account) -> list[tuple[D, dict[str, Any]]]:
    """One object of each decision for this account (ALLOW, HIDDEN, FORBIDDEN), as far as the demo has one."""
    if spec.kind is None:
        return [(D.ALLOW if spec.gate(account) else D.FORBIDDEN, {})]
    chosen: dict[D, dict[str, Any]] = {}
    for obj in city.objects[spec.kind]:
        decision = spec.decide(account, obj)
        chosen.setdefault(decision, obj.ids)
    return list(chosen.items())


def test_every_route_has_an_access_decision(city: City) -> None:
    routes = _schema_routes(city.client)
    assert routes - set(SPECS) == set(), "routes without an access decision in tests/test_access_suite.py SPECS"
    assert set(SPECS) - routes == set(), "access decisions for routes that no longer exist"
    websockets = {r.path.removeprefix("/api/v1") for r in _websocket_routes(city.client.app)}
    assert websockets == WEBSOCKETS


def _websocket_routes(app) -> list:  # noqa: ANN001
    """Every WebSocket route of the app, however FastAPI nests included routers."""
    from starlette.routing import WebSocketRoute

    found = []

    def walk(routes: list) -> None:
        for route in routes:
            if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
                found.append(route)
            inner = getattr(route, "original_router", None) or getattr(route, "router", None)
            if inner is not None and hasattr(inner, "routes"):
                walk(inner.routes)
            elif isinstance(getattr(route, "routes", None), list):
                walk(route.routes)

    walk(app.router.routes)
    return found


@pytest.mark.parametrize("key", sorted(SPECS))
def test_route_answers_each_account_by_its_grants(city: City, key: str) -> None:
    spec = SPECS[key]
    if spec.public:
        return
    failures: list[str] = []
    # Without a token, and with a token that was revoked: 401, whatever the object.
    ids = city.objects[spec.kind][0].ids if spec.kind else {}
    for headers in ({}, {"Authorization": f"Bearer {city.tokens['revoked']}"}):
        response = _request(city, key, spec, headers, ids)
        if response.status_code != 401:
            failures.append(f"{'no token' if not headers else 'revoked token'}: {response.status_code}")
    before = _fingerprint(city.inst)
    for account in ACCOUNTS:
        headers = city.headers(account.name)
        missing = None
        if spec.kind is not None:
            missing = _request(city, key, spec, headers, missing_ids(ids))
        for decision, probe_ids in _probes(city, spec, account):
            if decision is D.ALLOW and spec.writes:
                continue  # not made: it would change the shared demo
            response = _request(city, key, spec, headers, probe_ids)
            where = f"{account.name} {probe_ids}: {decision.value} → {response.status_code} {response.text[:160]}"
            if decision is D.ALLOW:
                looks_missing = (missing is not None and response.status_code == 404
                                 and _body(response) == _body(missing))
                if response.status_code in (401, 403) or looks_missing or (
                        spec.kind is None and response.status_code == 404):
                    failures.append(where)
            elif decision is D.HIDDEN or spec.kind is None:
                if spec.kind is None:
                    if response.status_code not in (403, 404):
                        failures.append(where)
                elif response.status_code != 404 or _body(response) != _body(missing):
                    failures.append(where + f" (missing object: {missing.status_code} {missing.text[:80]})")
            elif response.status_code not in (403, 404):
                failures.append(where)
    after = _fingerprint(city.inst)
    changed = {t: (before[t], after[t]) for t in before if before[t] != after.get(t)}
    # Allowed reads may add audit records of the views they are; nothing else may change.
    changed.pop("audit_log", None)
    assert not changed, f"denied requests changed rows: {changed}"
    assert not failures, "\n".join(failures)


def test_denied_requests_leave_no_trace_in_the_audit_chain(city: City) -> None:
    """Requests that ask for objects outside the caller's grants add nothing to the audit log."""
    from kuzet.store.models import AuditRecord

    with city.inst.db.session() as session:
        last = session.scalar(select(func.max(AuditRecord.seq)))
    for key, spec in SPECS.items():
        if spec.public or spec.kind is None:
            continue
        for account in ACCOUNTS:
            for decision, ids in _probes(city, spec, account):
                if decision is D.HIDDEN:
                    _request(city, key, spec, city.headers(account.name), ids)
    with city.inst.db.session() as session:
        added = session.scalars(select(AuditRecord).where(AuditRecord.seq > last)).all()
    assert [(r.action, r.actor_name) for r in added] == []


def test_websockets_refuse_what_the_account_may_not_watch(city: City) -> None:
    from starlette.websockets import WebSocketDisconnect

    def close_code(url: str) -> int | None:
        try:
            with city.client.websocket_connect(url) as ws:
                message = ws.receive()
                return message.get("code") if message["type"] == "websocket.close" else None
        except WebSocketDisconnect as exc:
            return exc.code

    failures = []
    for account in ACCOUNTS:
        token = city.tokens[account.name]
        for obj in city.objects["camera"]:
            allowed = "view_live" in camera_rights(account.name, obj.slug)
            code = close_code(f"/api/v1/cameras/{obj.ids['camera_id']}/live?token={token}")
            # Allowed: accepted (the recorder is not running here, so it says so and closes normally).
            if (code in (4401, 4404)) == allowed:
                failures.append(f"{account.name} camera {obj.slug}: {code}")
        queue = account.role in QUEUE
        code = close_code(f"/api/v1/alarms/live?token={token}")
        if (code == 4404) == queue:
            failures.append(f"{account.name} alarms: {code}")
        crew = account.role in ("responder", "platform_admin")  # the crew's page and its pushed calls
        code = close_code(f"/api/v1/dispatches/live?token={token}")
        if (code == 4404) == crew:
            failures.append(f"{account.name} dispatches: {code}")
    assert close_code(f"/api/v1/cameras/{city.ids['cameras']['b1e1']}/live?token=nonsense") == 4401
    assert close_code(f"/api/v1/cameras/{MISSING}/live?token={city.tokens['admin']}") == 4404
    assert close_code("/api/v1/dispatches/live?token=nonsense") == 4401
    assert close_code(f"/api/v1/dispatches/live?token={city.tokens['revoked']}") == 4401
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module", autouse=True)
def _revoked_token(city: City) -> None:
    """A token that worked once and was signed out: a stolen, revoked token must open nothing."""
    token = _token(city.client, "center", "demo")
    assert city.client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    city.tokens["revoked"] = token

