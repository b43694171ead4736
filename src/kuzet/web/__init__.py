"""The web console: server-rendered pages (Jinja2) with small ES modules, in Russian, Kazakh and English.

See ``web/README.md`` for how a capability adds its pages.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from kuzet import capabilities
from kuzet.installation import Installation
from kuzet.web.render import STATIC


def mount(app: FastAPI, inst: Installation) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in capabilities.page_modules():
        app.include_router(module.router, include_in_schema=False)
