"""Errors in the reader's language, whole: each error the API returns names its message by a catalogue key and the
values filling it, and a Russian or Kazakh reader sees no English word of it — validation problems (each field by
its label), the services' refusals, the database's last line of defence. The database tests run on both backends."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kuzet.api import errors
from kuzet.web import i18n
from tests.test_console_words import login_admin

# Latin words a Russian or Kazakh text may hold: names of formats and protocols.
ALLOWED = {"url", "json", "jpeg", "png", "utf", "http", "https", "geojson", "iso", "event", "alarm", "incident"}

# (method, path, body or query, what the request itself brings in: values echoed back are not the message's words)
BAD_REQUESTS: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("post", "/api/v1/places", {}, set()),                                              # missing fields
    ("post", "/api/v1/places", {"kind": "district", "name": "x" * 300}, set()),         # string_too_long
    ("post", "/api/v1/places", {"kind": "galaxy", "name": "A"}, {"galaxy"}),            # enum
    ("post", "/api/v1/places", {"kind": "district", "name": "A", "parent_id": 999999}, set()),  # no parent place
    ("post", "/api/v1/places", {"kind": "district", "name": "A", "lat": 91, "lon": 0}, set()),  # within
    ("post", "/api/v1/places", {"kind": "district", "name": "A", "population": -1}, set()),     # range
    ("post", "/api/v1/places", {"kind": "district", "name": None}, set()),              # null
    ("get", "/api/v1/cameras/abc", None, {"abc"}),                                      # int_parsing
    ("get", "/api/v1/cameras?limit=-5", None, set()),                                   # greater_than_equal
    ("get", "/api/v1/cameras/999999", None, set()),                                     # not found
    ("post", "/api/v1/users", {"username": "u1", "password": "pw", "role": "resident"}, set()),  # string_too_short
    ("post", "/api/v1/users", {"username": "u2", "password": "long-enough", "role": "pilot"}, {"pilot"}),
    ("post", "/api/v1/users", {"username": "root", "password": "a-long-enough-password", "role": "resident"},
     {"root"}),                                                                         # already exists
    ("post", "/api/v1/organisations", {"name": "Org", "kind": "school", "place_id": "x"}, {"x"}),
    ("post", "/api/v1/grants", {"rights": ["view_live"], "legal_basis": "order", "user_id": 999999,
                                "place_id": 1, "valid_to": "tomorrow"}, {"tomorrow"}),  # datetime_parsing
    ("post", "/api/v1/grants", {"rights": ["fly"], "legal_basis": "order"}, {"fly"}),
    ("post", "/api/v1/cameras", {"name": "C", "place_id": 999999, "main_url": "rtsp://10.0.0.1/s"}, set()),
    ("post", "/api/v1/cameras", {"name": "C", "place_id": 1, "main_url": "rtsp://10.0.0.1/s", "bearing": 400},
     set()),
    ("get", "/api/v1/map/cameras?bbox=1,2,3", None, set()),                             # a service's ValueError
    # body-worn cameras
    ("get", "/api/v1/bodycams/devices/999999", None, set()),                            # device not found
    ("get", "/api/v1/bodycams/recordings/999999", None, set()),                         # recording not found
    ("post", "/api/v1/bodycams/devices", {"serial": "BC-1", "kind": "body", "organisation_id": 999999}, set()),
    ("post", "/api/v1/bodycams/devices/999999/check-out", {"officer_id": 1}, set()),  # device not found
    ("post", "/api/v1/bodycams/duties", {"user_id": 1, "duty": "officer", "legal_basis": "order 1",
                                         "organisation_id": 999999}, set()),          # not a member of the unit
    # billing (the cloud service's plans and contracts)
    ("put", "/api/v1/cloud/plans/999999", {"name": "P", "archive_days": 7, "clip_downloads_per_month": 1,
                                           "price_tiyn": 100}, set()),                  # plan not found
    ("post", "/api/v1/cloud/plans", {"name": "P", "archive_days": 99999, "clip_downloads_per_month": 1,
                                     "price_tiyn": 100}, set()),                        # archive days out of range
    ("post", "/api/v1/cloud/contracts/999999/end", {"reason": "moved"}, set()),         # contract not found
]


def english_words(text: str, echoed: set[str]) -> set[str]:
    return {w for w in re.findall(r"[A-Za-z_]{3,}", text) if w.lower() not in ALLOWED and w not in echoed
            and not any(w in e for e in echoed)}


@pytest.mark.parametrize("lang", ["ru", "kk"])
def test_bad_requests_are_answered_wholly_in_the_readers_language(client: TestClient, lang: str) -> None:
    headers = login_admin(client)
    seen_keys = set()
    for method, path, body, echoed in BAD_REQUESTS:
        kwargs: dict[str, Any] = {"headers": {**headers, "Accept-Language": lang}}
        if body is not None:
            kwargs["json"] = body
        response = getattr(client, method)(path, **kwargs)
        assert 400 <= response.status_code < 500, (path, body, response.status_code, response.text)
        error = response.json()["error"]
        assert {"code", "message", "key", "params"} <= set(error), error
        english = getattr(client, method)(path, **{**kwargs, "headers": {**headers, "Accept-Language": "en"}})
        assert english.json()["error"]["key"] == error["key"]
        left = english_words(error["message"], echoed)
        assert not left, (lang, path, body, error["message"], english.json()["error"]["message"])
        assert error["key"] != f"api_error.code.{error['code']}" or error["code"] == "not_found", (path, error)
        seen_keys.add(error["key"])
    assert "api_validation" in seen_keys and len(seen_keys) >= 5


def test_validation_problems_name_each_field_by_its_label(client: TestClient) -> None:
    headers = {**login_admin(client), "Accept-Language": "ru"}
    response = client.post("/api/v1/places", json={"kind": "district", "name": "A", "lat": 91, "lon": 0},
                           headers=headers)
    error = response.json()["error"]
    assert error["key"] == "api_validation"
    assert error["params"]["problems"] == [{"key": "api_validation.within",
                                            "params": {"field": "lat", "min": "-90", "max": "90", "got": "91"}}]
    assert error["message"] == "Широта: должно быть от -90 до 90 (получено: 91)"
    kk = client.post("/api/v1/places", json={}, headers={**headers, "Accept-Language": "kk"}).json()["error"]
    assert kk["message"] == "Түрі: міндетті өріс, толтырыңыз; Атауы: міндетті өріс, толтырыңыз"
    en = client.post("/api/v1/places", json={}, headers={**headers, "Accept-Language": "en"}).json()["error"]
    assert en["message"] == "kind: Field required; name: Field required"  # English as before, for programs' logs


def test_a_services_refusal_carries_its_key_and_values(client: TestClient) -> None:
    headers = {**login_admin(client), "Accept-Language": "kk"}
    body = {"username": "someone", "password": "ab", "role": "resident"}
    response = client.post("/api/v1/places", json={"kind": "district", "name": "A", "parent_id": 424242},
                           headers=headers)
    error = response.json()["error"]
    assert error == {"code": "invalid", "message": "№424242 жоғарғы орын табылмады",
                     "key": "api_error.no_parent_place", "params": {"parent": "424242"}}
    assert client.post("/api/v1/users", json=body, headers=headers).json()["error"]["key"] == "api_validation"


# Modules whose refusals reach the console's forms (admin, cameras, exports, events, alarms and incidents, hot lists,
# rules, webhooks, safe yards, analytics, the cloud service's agreements, contracts, plans and shares, the
# installation lists): every message they raise has a catalogue entry.
CONSOLE_MODULES = ("services/accounts.py", "services/cameras.py", "services/places.py", "services/grants.py",
                   "services/access/delegation.py", "services/watching/evidence.py", "services/watching/map.py",
                   "services/operations/incidents.py", "services/operations/events.py",
                   "services/operations/rules.py", "services/operations/hotlists.py",
                   "services/operations/webhooks.py", "services/safeyard/assignments.py",
                   "services/safeyard/photos.py", "services/safeyard/passport.py", "services/crime/limits.py",
                   "services/crime/importing.py", "services/crime/placement.py", "services/crime/analysis.py",
                   "api/routes/directory.py", "api/routes/grants.py", "api/routes/exports.py",
                   "api/routes/alarms.py", "api/routes/operations.py", "api/routes/common.py",
                   "api/routes/crime.py", "api/routes/recording.py", "api/routes/integrations.py",
                   "services/cloud/agreements.py", "services/cloud/subscriptions.py", "services/cloud/plans.py",
                   "services/cloud/shares.py", "services/onboarding/installations.py",
                   # body-worn cameras
                   "services/bodycams/devices.py", "services/bodycams/disclosure.py", "services/bodycams/live.py",
                   "services/bodycams/offload.py", "services/bodycams/recordings.py",
                   "services/bodycams/redaction.py", "services/bodycams/tracks.py", "services/bodycams/units.py",
                   "api/routes/bodycams.py",
                   # ONVIF and onboarding
                   "services/onboarding/onvif.py", "services/onboarding/push.py", "services/onboarding/relay.py",
                   "services/onboarding/field.py", "api/routes/onboarding.py",
                   # billing and the rest of the cloud service
                   "services/cloud/activation.py", "services/cloud/billing.py", "services/cloud/common.py",
                   "services/cloud/compliance.py", "services/cloud/payments.py", "services/cloud/portal.py",
                   "api/routes/cloud.py", "api/routes/cloud_agreements.py", "api/routes/cloud_common.py",
                   # backups
                   "services/backup/__init__.py", "services/backup/database.py", "services/backup/seal.py",
                   # the rest of the API's routes
                   "api/routes/auth.py", "api/routes/watching.py", "api/routes/safeyard.py", "api/routes/my.py",
                   "api/routes/cameras.py", "api/routes/audit.py")


def _raised_messages(path: Path) -> list[tuple[int, str]]:
    """(line, message with each {expression} as 7) of each error raised with a literal message in ``path``
    (``not_found("…")`` too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if not (name in ("ApiError", "not_found") or name.endswith(("Error", "Denied", "Rejected", "NotFound"))):
            continue
        args = node.args[1:] if name == "ApiError" else node.args
        text = _literal(args[0]) if args else None
        if text and text.strip():
            found.append((node.lineno, text))
    return found


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "'7'" if v.conversion == ord("r") else "7"
                       for v in node.values)
    return None


# Messages whose words come from a variable: each form they take.
DYNAMIC = {"no 7 7": ("no user 7", "no organisation 7", "no place 7", "no camera 7"),
           "this event has no 7": ("this event has no snapshot", "this event has no crop"),
           "no 7 with coordinates in that period": ("no cameras with coordinates in that period",
                                                    "no safe yards with coordinates in that period"),
           "this grant belongs to 7 #7 and ends with it: end or change that instead": (
               "this grant belongs to routing agreement #7 and ends with it: end or change that instead",
               "this grant belongs to subscription #7 and ends with it: end or change that instead"),
           "you do not hold 7 on this 7 and cannot hand it out": (
               "you do not hold view_live on this camera and cannot hand it out",
               "you do not hold view_live on this place and cannot hand it out"),
           "7 does not hold 7 on 7 and cannot route it": (
               "7 does not hold view_live on camera 7 and cannot route it",
               "7 does not hold view_live on place 7 (7) and cannot route it"),
           "7 holds 7 on 7 only until 7: the agreement must end by then": (
               "7 holds view_live on camera 7 only until 7: the agreement must end by then",
               "7 holds view_live on place 7 (7) only until 7: the agreement must end by then")}


def test_every_message_the_console_can_meet_has_a_translation() -> None:
    root = Path(errors.__file__).parent.parent
    missing = []
    for module in CONSOLE_MODULES:
        for line, raised in _raised_messages(root / module):
            for text in DYNAMIC.get(raised, (raised,)):
                key, params = errors.explain("invalid", text)
                if key == "api_error.code.invalid":
                    missing.append(f"{module}:{line}: {text}")
                elif "what" in params and "what_key" not in params:  # a noun of the code's: it has its own entry
                    missing.append(f"{module}:{line}: {text} (the noun {params['what']!r})")
    assert not missing, "\n".join(missing)


def test_every_field_label_and_validation_entry_is_in_three_languages() -> None:
    entries = {k: v for k, v in i18n.catalogue().items() if k.startswith(("label.field.", "api_validation."))}
    assert len(entries) > 150
    for key, entry in entries.items():
        names = {lang: set(re.findall(r"\{(\w+)\}", entry.get(lang) or "")) for lang in ("ru", "kk", "en")}
        assert all(entry.get(lang) for lang in ("ru", "kk", "en")), key
        assert names["ru"] == names["kk"] == names["en"], (key, names)


def test_nouns_rights_and_wrapped_messages_are_said_in_the_language() -> None:
    """Values the code puts in a message (a noun, a right, another message) are translated with it: backups (the
    CLI's refusals), grants that belong to an agreement, delegation, the generic «… not found»."""
    belongs = "this grant belongs to routing agreement #12 and ends with it: end or change that instead"
    assert "(соглашение о передаче №12)" in errors.localise("conflict", belongs, "ru")
    assert "(беру келісімі №12)" in errors.localise("conflict", belongs, "kk")
    assert errors.explain("conflict", belongs) == ("api_error.grant_belongs", {
        "what": "routing agreement", "ident": "12", "what_key": "api_noun.routing_agreement"})
    held = "you do not hold view_live on this camera and cannot hand it out"
    ru = errors.localise("forbidden", held, "ru")
    assert "(камера)" in ru and "view_live" not in ru, ru
    wrapped = "part keys: unknown key derivation 'scrypt2'"
    assert errors.localise("invalid", wrapped, "ru") == "Часть «ключи»: неизвестный способ получения ключа «scrypt2»"
    assert errors.localise("invalid", wrapped, "kk") == "«Кілттер» бөлігі: кілт алудың белгісіз тәсілі «scrypt2»"
    assert errors.localise("invalid", wrapped, "en") == wrapped
    sha = ("part database (database.sqlite) fails its SHA-256 check: the manifest says ab12, the file has cd34; "
           "this backup was altered or damaged")
    assert errors.localise("invalid", sha, "kk").startswith("database бөлігі (database.sqlite) SHA-256 тексеруінен")
    assert errors.localise("not_found", "share not found", "kk") == "Сілтеме табылмады"
    assert errors.localise("not_found", "building 7 not found", "ru") == "Не найдено: дом 7"
    assert errors.localise("not_found", "gizmo not found", "ru") == "Не найдено"  # never half a sentence in English
    for lang in ("ru", "kk"):
        for message in ("the camera at 10.0.0.5:80 did not answer within 5 s",
                        "Upload-Length 99 is larger than the 10 bytes this server accepts",
                        "hours: the link lives 1 to 168 hours", "a code is valid for 1..3650 days"):
            text = errors.localise("invalid", message, lang)
            assert not english_words(text, {"Upload", "Length"}), (lang, text)
