"""Texts of the web console in Russian, Kazakh and English.

Each capability keeps its strings in ``i18n/<capability>.json`` as ``{"key": {"ru": …, "kk": …, "en": …}}``; all files
are merged. A missing translation falls back to Russian, then to the key itself.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

LANGUAGES = ("ru", "kk", "en")
LANGUAGE_NAMES = {"ru": "Русский", "kk": "Қазақша", "en": "English"}


@functools.cache
def catalogue() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted((Path(__file__).parent / "i18n").glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def translate(key: str, lang: str) -> str:
    entry = catalogue().get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry.get("ru") or key


def for_language(lang: str) -> dict[str, str]:
    """All texts in one language (handed to the page's scripts)."""
    return {key: translate(key, lang) for key in catalogue()}
