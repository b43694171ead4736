"""The FastAPI application: API under /api/v1, web console at /, metrics at /metrics.

Long-running services (recorder, analysis, retention, …) are started by ``kuzet.runtime`` in the app's lifespan when
``kuzet serve`` runs; tests may build the app without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from kuzet import __version__, capabilities
from kuzet.api import errors, headers, limits
from kuzet.api.deps import metrics_reader
from kuzet.capabilities import ALL_ROLES, NodeRole
from kuzet.installation import Installation

API_PREFIX = "/api/v1"


def tune_serving_process() -> None:
    """Once the app has started, before the first request: the worker threads of synchronous routes and dependencies
    as many as the database pool's connections (``store.db.POOL_SIZE``: a thread never waits for a connection, and
    none is opened and closed again per request as the pool's overflow), and the objects of the start-up (modules,
    routes, mappers, models) moved out of the garbage collector's sight (``gc.freeze``): without it every full
    collection walks them all, a pause of tens of milliseconds that lands on whichever requests run then — the
    health endpoint's p99 of 745 ms at a p50 of 49 ms (docs/benchmarks.md, issue 16)."""
    import gc

    import anyio.to_thread

    from kuzet.store.db import POOL_SIZE

    global _frozen
    anyio.to_thread.current_default_thread_limiter().total_tokens = POOL_SIZE
    if not _frozen:  # once per process (tests start many apps in one): what is frozen is never collected again
        _frozen = True
        gc.collect()
        gc.freeze()


_frozen = False


def create_app(inst: Installation, *, run_services: bool = False, bus_only: bool = False,
               roles: Iterable[NodeRole] = ALL_ROLES) -> FastAPI:
    """``run_services``: the runtime (bus, and the services of ``roles``: recorder, analysis, …) runs in the app's
    lifespan. ``bus_only``: only the event bus, when it is NATS (an API worker process: it announces and hears changes
    to grants, and publishes alarm actions to the recorder's process)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        import asyncio

        from kuzet.store.db import serving_loop

        serving_loop(asyncio.get_running_loop())  # where no database call may run (store.db.forbid_on_event_loop)
        tune_serving_process()
        runtime = None
        if run_services:
            from kuzet.runtime import Runtime

            runtime = Runtime(inst, roles)
            await runtime.start()
            app.state.runtime = runtime
        bus = watch = None
        if bus_only and not run_services and inst.settings.events_url.startswith("nats"):
            import os

            from kuzet.services.access.cache import cache_of, watch_bus
            from kuzet.store.bus import connect_bus

            bus = inst.running.bus = await connect_bus(inst.settings.events_url)
            cache = cache_of(inst.db.engine)
            if cache is not None:
                watch = await watch_bus(cache, bus, f"api-{os.getpid()}")
        try:
            yield
        finally:
            if runtime is not None:
                await runtime.stop()
            if watch is not None:
                await watch.unsubscribe()
            if bus is not None:
                inst.running.bus = None
                await bus.close()

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
    # nosniff, frame and referrer headers; the console's Content-Security-Policy (pictures also from the map's tiles)
    headers.install(app, map_tiles=inst.settings.map.tiles, hsts_seconds=inst.settings.http.hsts_seconds)
    limits.install(app, inst)  # body and upload sizes, checked while the request streams in
    # Live video of cameras that recorder nodes hold: on a recorder node of a cluster, and on an API node (no recorder)
    if run_services and (inst.settings.cluster.enabled or not inst.settings.recorder.enabled):
        from kuzet.api.cluster_routes import LeaseHolderRoutes

        app.add_middleware(LeaseHolderRoutes, inst=inst)
    api = APIRouter(prefix=API_PREFIX)
    for router in capabilities.routers():
        api.include_router(router)
    app.include_router(api)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(metrics_reader)])
    def _metrics():  # noqa: ANN202 - Prometheus scrapes the conventional path
        """Bearer ``http.metrics_token`` when one is set; otherwise loopback clients only (404 to others)."""
        from fastapi.responses import PlainTextResponse

        from kuzet.services.recording.metrics import render

        return PlainTextResponse(render(inst), media_type="text/plain; version=0.0.4")
    from kuzet.web import mount as mount_web

    mount_web(app, inst)
    return app


def api_only_app() -> FastAPI:
    """The API and console of the installation in ``KUZET_DATA_DIR`` without the recorder and the other services:
    what an API worker process serves (``uvicorn --factory kuzet.api.app:api_only_app --workers N``)."""
    import os

    app = create_app(Installation.open(), run_services=False, bus_only=True)
    recorder = os.environ.get("KUZET_RECORDER_URL")
    if recorder:  # kuzet serve --api-workers: live video, health and pushes are the recorder process's
        from kuzet.api.recorder_routes import RecorderRoutes

        app.add_middleware(RecorderRoutes, recorder=recorder)
    return app
