"""The words services need to write for people (a press release, a verdict, a printed passport).

Texts live in the console's catalogue (``kuzet/web/i18n/*.json``, plural forms by CLDR through Babel). Services may
not import the web layer, so they take a ``Words`` — anything with these three functions; the module
``kuzet.web.i18n`` is one, and the API and CLI hand it in.
"""

from __future__ import annotations

from typing import Any, Protocol


class Words(Protocol):
    def translate(self, key: str, lang: str, **values: Any) -> str: ...

    def translate_n(self, key: str, n: float, lang: str, **values: Any) -> str: ...

    def label(self, group: str, value: str, lang: str) -> str: ...
