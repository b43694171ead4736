from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from kuzet import __version__
from kuzet.api.deps import installation
from kuzet.installation import Installation

router = APIRouter(tags=["health"])


@router.get("/health")
def health(inst: Installation = Depends(installation)) -> dict:
    """Liveness and readiness: the database answers."""
    with inst.db.session() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__, "database": inst.db.engine.dialect.name}


@router.get("/ready")
def ready(inst: Installation = Depends(installation)) -> JSONResponse:
    """Readiness: the database, the event bus and the recordings storage are reachable; 503 names what is not."""
    from kuzet.services.cluster.readiness import readiness

    report = readiness(inst)
    return JSONResponse(report, status_code=200 if report["ready"] else 503)
