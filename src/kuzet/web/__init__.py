"""The web console: server-rendered pages (Jinja2) with small ES modules, in Russian, Kazakh and English.

See ``web/README.md`` for how a capability adds its pages.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kuzet.installation import Installation
from kuzet.web.render import STATIC


def mount(app: FastAPI, inst: Installation) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    from kuzet.web import pages

    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: (m.name != "core", m.name)):
        module = importlib.import_module(f"kuzet.web.pages.{info.name}")
        app.include_router(module.router, include_in_schema=False)
