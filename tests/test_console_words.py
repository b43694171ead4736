"""One vocabulary: API errors in the reader's language, a user's own time zone, and the console's counted nouns in
Russian and Kazakh plural forms (1, 2, 5, 11, 21, 22, 25). The database tests run on both backends."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from kuzet.api.errors import localise
from kuzet.web import i18n
from tests.conftest import login

COUNTS = (1, 2, 5, 11, 21, 22, 25)
RU_FORMS = {1: "one", 2: "few", 5: "many", 11: "many", 21: "one", 22: "few", 25: "many"}


def counted_nouns() -> list[str]:
    return sorted(k for k, v in i18n.catalogue().items() if isinstance(v.get("ru"), dict))


@pytest.mark.parametrize("key", counted_nouns())
def test_every_counted_noun_has_every_form_in_ru_and_kk(key: str) -> None:
    entry = i18n.catalogue()[key]
    assert {"one", "few", "many"} <= set(entry["ru"]), f"{key}: Russian needs one, few and many"
    assert isinstance(entry.get("kk"), dict) and {"one", "other"} <= set(entry["kk"]), f"{key}: Kazakh one, other"
    import re

    others = {name: f"<{name}>" for name in re.findall(r"\{(\w+)\}", str(entry)) if name != "n"}
    for n in COUNTS:
        ru = i18n.translate_n(key, n, "ru", **others)
        assert ru == entry["ru"][RU_FORMS[n]].format(n=n, **others), (key, n, ru)
        kk = i18n.translate_n(key, n, "kk", **others)
        assert kk == entry["kk"]["one" if n == 1 else "other"].format(n=n, **others), (key, n, kk)
        assert str(n) in ru and str(n) in kk and "{" not in ru + kk


def test_russian_forms_read_right() -> None:
    got = [i18n.translate_n("audit.records", n, "ru") for n in COUNTS]
    assert got == ["1 запись", "2 записи", "5 записей", "11 записей", "21 запись", "22 записи", "25 записей"]
    assert i18n.translate_n("audit.records", 21, "kk") == "21 жазба"


def test_error_messages_are_translated_by_pattern() -> None:
    assert localise("not_found", "camera not found", "ru") == "Камера не найдена"
    assert localise("not_found", "place 17 not found", "kk") == "№17 орын табылмады"
    assert localise("not_found", "webhook not found", "ru") == "Веб-хук не найден"
    assert localise("not_found", "gizmo not found", "ru") == "Не найдено"  # a noun without an entry: no English
    assert localise("invalid", "rights.0: Input should be 'view_live'", "ru").startswith("Неверные данные: ")
    assert localise("not_found", "camera not found", "en") == "camera not found"


def test_api_errors_come_in_the_asked_language(client: TestClient) -> None:
    headers = login_admin(client)
    missing = "/api/v1/cameras/999999"
    assert client.get(missing, headers=headers).json()["error"]["message"] == "camera not found"
    ru = client.get(missing, headers={**headers, "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}).json()["error"]
    assert ru == {"code": "not_found", "message": "Камера не найдена", "key": "api_error.camera_not_found",
                  "params": {}}
    kk = client.get(missing, headers={**headers, "Accept-Language": "de, kk;q=0.8"}).json()["error"]
    assert kk["code"] == "not_found" and kk["message"] == "Камера табылмады"


def login_admin(client: TestClient) -> dict[str, str]:
    from kuzet.services import accounts
    from kuzet.services.audit import SYSTEM

    inst = client.app.state.installation
    with inst.db.session() as session:
        accounts.create_user(session, SYSTEM, "root", "a-long-enough-password", "platform_admin")
    return login(client, "root", "a-long-enough-password")


def test_a_user_reads_times_in_their_own_zone(client: TestClient) -> None:
    headers = login_admin(client)
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert me.get("timezone") is None
    changed = client.patch(f"/api/v1/users/{me['id']}", json={"timezone": "Asia/Aqtau"}, headers=headers)
    assert changed.status_code == 200 and changed.json()["timezone"] == "Asia/Aqtau"
    bad = client.patch(f"/api/v1/users/{me['id']}", json={"timezone": "Mars/Olympus"},
                       headers={**headers, "Accept-Language": "ru"})
    assert bad.status_code == 422 and "Mars/Olympus" in bad.json()["error"]["message"]
    assert "Неизвестный часовой пояс" in bad.json()["error"]["message"]
    client.post("/api/v1/auth/login", json={"username": "root", "password": "a-long-enough-password"})
    page = client.get("/settings")
    assert page.status_code == 200 and '"timezone": "Asia/Aqtau"' in page.text and "Актау (UTC+5)" in page.text
    assert client.patch(f"/api/v1/users/{me['id']}", json={"timezone": ""}, headers=headers).json()["timezone"] is None
    assert '"timezone": "Asia/Almaty"' in client.get("/settings").text


@pytest.mark.parametrize(("zone", "lang", "shown"), [
    ("Asia/Almaty", "ru", "Алматы (UTC+5)"), ("Asia/Qyzylorda", "kk", "Қызылорда (UTC+5)"),
    ("Europe/Moscow", "en", "Moscow (UTC+3)"), ("UTC", "ru", "UTC"), ("Asia/Kolkata", "en", "Kolkata (UTC+5:30)"),
])
def test_time_zones_are_named_in_the_language(zone: str, lang: str, shown: str) -> None:
    assert i18n.zone_name(zone, lang) == shown


def test_every_api_message_translation_is_complete() -> None:
    """Each ``api_error`` entry: three languages, the same placeholders in each, and its English is a message pattern
    that matches itself (so no entry shadows a more specific one)."""
    import re

    entries = {k: v for k, v in i18n.catalogue().items() if k.startswith("api_error.")}
    assert len(entries) > 50
    for key, entry in entries.items():
        names = {lang: set(re.findall(r"\{(\w+)\}", entry.get(lang) or "")) for lang in ("ru", "kk", "en")}
        assert all(entry.get(lang) for lang in ("ru", "kk", "en")), key
        assert names["ru"] == names["kk"] == names["en"], (key, names)
        if not names["en"]:
            assert localise("invalid", entry["en"], "kk") == entry["kk"], key


def _actions() -> set[str]:
    """Every audit action the code writes (the ``Action`` classes of the domain and the services)."""
    from kuzet.domain import audit as domain_audit
    from kuzet.domain import bodycams
    from kuzet.domain.cloud import CloudAction
    from kuzet.services.operations import alarms, hotlists, incidents, rules

    found = set()
    for holder in (domain_audit.Action, bodycams.Action, CloudAction, alarms.Action, hotlists.Action,
                   incidents.Action, rules.Action):
        found |= {v for k, v in vars(holder).items() if k.isupper() and isinstance(v, str) and "." in v}
    return found


def test_every_value_has_a_label_in_each_language() -> None:
    """Roles, rights, kinds, states, priorities and audit actions: named in ru, kk and en (the walk test finds what
    is shown raw; this finds what no page happened to show)."""
    from kuzet.domain.access import OrganisationKind, Right, Role
    from kuzet.domain.operations import AlarmState, DispatchStatus, IncidentStatus, Priority
    from kuzet.domain.places import PlaceKind

    groups = {"role": Role, "right": Right, "organisation_kind": OrganisationKind, "place_kind": PlaceKind,
              "priority": Priority, "alarm_state": AlarmState, "dispatch_status": DispatchStatus,
              "incident_status": IncidentStatus}
    wanted = {(g, v.value) for g, enum in groups.items() for v in enum} | {("audit_action", a) for a in _actions()}
    named = i18n.catalogue()
    missing = sorted(f"label.{g}.{v}" for g, v in wanted
                     if not all((named.get(f"label.{g}.{v}") or {}).get(lang) for lang in ("ru", "kk", "en")))
    assert not missing, missing
