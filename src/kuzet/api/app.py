"""The FastAPI application: API under /api/v1, web console at /, metrics at /metrics.

Long-running services (recorder, analysis, retention, …) are started by ``kuzet.runtime`` in the app's lifespan when
``kuzet serve`` runs; tests may build the app without them.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from kuzet import __version__
from kuzet.api import errors
from kuzet.api.routes import audit, auth, cameras, directory, grants, health
from kuzet.installation import Installation

API_PREFIX = "/api/v1"


def _capability_routers() -> list[APIRouter]:
    """Routers of the capabilities beyond the core. Each module owns its router."""
    from kuzet.api.routes import alarms, crime, integrations, operations, recording, safeyard, watching

    return [recording.router, watching.router, operations.router, alarms.router, integrations.router,
            safeyard.router, crime.router]


def create_app(inst: Installation, *, run_services: bool = False) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        runtime = None
        if run_services:
            from kuzet.runtime import Runtime

            runtime = Runtime(inst)
            await runtime.start()
            app.state.runtime = runtime
        try:
            yield
        finally:
            if runtime is not None:
                await runtime.stop()

    app = FastAPI(
        title="Kuzet",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.installation = inst
    app.state.runtime = None
    errors.install(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (health, auth, directory, grants, cameras, audit):
        api.include_router(module.router)
    for router in _capability_routers():
        api.include_router(router)
    app.include_router(api)

    @app.get("/metrics", include_in_schema=False)
    def _metrics():  # noqa: ANN202 - Prometheus scrapes the conventional path
        from fastapi.responses import PlainTextResponse

        from kuzet.services.recording.metrics import render

        return PlainTextResponse(render(inst), media_type="text/plain; version=0.0.4")
    from kuzet.web import mount as mount_web

    mount_web(app, inst)
    return app
