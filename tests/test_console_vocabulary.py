"""The console's vocabulary: counted nouns take the plural form of each language's rules (CLDR through Babel), values
are named through the catalogue, and placeholders are filled."""

from __future__ import annotations

import json

import pytest

from kuzet.web import i18n


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {
        "test.people": {"ru": {"one": "{n} человек", "few": "{n} человека", "many": "{n} человек"},
                        "kk": {"one": "{n} адам", "other": "{n} адам"},
                        "en": {"one": "{n} person", "other": "{n} people"}},
        "test.crimes": {"ru": {"one": "{n} преступление", "few": "{n} преступления", "many": "{n} преступлений"},
                        "en": {"one": "{n} crime", "other": "{n} crimes"}},
        "label.camera_kind.entrance": {"ru": "Подъезд", "kk": "Кіреберіс", "en": "Entrance"},
        "test.greeting": {"ru": "Здравствуйте, {name}", "en": "Hello, {name}"},
    }
    monkeypatch.setattr(i18n, "catalogue", lambda: entries)


@pytest.mark.parametrize(("n", "ru", "en"), [
    (1, "1 преступление", "1 crime"), (2, "2 преступления", "2 crimes"), (5, "5 преступлений", "5 crimes"),
    (11, "11 преступлений", "11 crimes"), (21, "21 преступление", "21 crimes"), (22, "22 преступления", "22 crimes"),
    (25, "25 преступлений", "25 crimes"), (883, "883 преступления", "883 crimes"),
])
def test_plural_forms_follow_each_languages_rules(counted: None, n: int, ru: str, en: str) -> None:
    assert i18n.translate_n("test.crimes", n, "ru") == ru
    assert i18n.translate_n("test.crimes", n, "en") == en
    # No Kazakh text: the Russian forms, chosen by the Russian rules (the forms' own language).
    assert i18n.translate_n("test.crimes", n, "kk") == ru


def test_labels_placeholders_and_fallbacks(counted: None) -> None:
    assert i18n.label("camera_kind", "entrance", "kk") == "Кіреберіс"
    assert i18n.label("camera_kind", "road", "en") == "road"  # unnamed: the value itself (the walk test finds it)
    assert i18n.translate("test.greeting", "en", name="Aigul") == "Hello, Aigul"
    assert i18n.translate_n("test.people", 4, "kk") == "4 адам"
    assert i18n.translate_n("test.people", 1000, "en") == "1,000 people"
    assert i18n.translate("test.people", "ru") == "{n} человек"  # without a count: the general form
    texts = i18n.for_language("ru")
    assert texts["test.people"]["few"] == "{n} человека" and json.dumps(texts)
