"""The web console: server-rendered pages with small ES modules, in Russian, Kazakh and English."""

from __future__ import annotations

from fastapi import FastAPI

from kuzet.installation import Installation


def mount(app: FastAPI, inst: Installation) -> None:
    """Attach the console's pages and static files to the app (filled in by the watching capability)."""
    from fastapi.responses import RedirectResponse

    @app.get("/", include_in_schema=False)
    def _root() -> RedirectResponse:
        return RedirectResponse("/api/v1/docs")
