"""``/api/v1/ready``: whether this node can do its work — the database answers, the event bus is connected, the
recordings storage is usable (the local volume is writable; with S3, the store answers). ``/health`` only says the
process is alive."""

from __future__ import annotations

import logging
import os

from sqlalchemy import text

from kuzet.installation import Installation

log = logging.getLogger("kuzet.ready")


def _database(inst: Installation) -> bool:
    with inst.db.session() as session:
        session.execute(text("SELECT 1"))
    return True


def _bus(inst: Installation) -> bool:
    bus = inst.running.bus
    if bus is None:  # no runtime in this process (an API worker): only the in-process bus needs none
        return inst.settings.events_url.startswith("memory:")
    stats = getattr(bus, "stats", None)
    return bool(stats()["connected"]) if stats is not None else True


def _storage(inst: Installation) -> bool:
    settings = inst.settings
    if settings.storage.backend == "s3":
        uploader = inst.running.uploader
        if uploader is not None:
            return uploader.failing_since is None
        from kuzet.services.recording.objectstore import ObjectStore

        return ObjectStore(settings.storage.s3).reachable()
    path = settings.recordings_path
    path.mkdir(parents=True, exist_ok=True)  # the recorder makes it at its start; a fresh node is still ready
    return os.access(path, os.W_OK)


CHECKS = {"database": _database, "bus": _bus, "storage": _storage}


def readiness(inst: Installation) -> dict:
    """``{"ready": bool, "checks": {name: "ok" | "failed"}, "failed": [names]}``. Why a check failed goes to the log,
    not to the answer (the route is public)."""
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            ok = check(inst)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            log.warning("not ready: %s: %s", name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            ok = False
        checks[name] = "ok" if ok else "failed"
    failed = [name for name, state in checks.items() if state != "ok"]
    return {"ready": not failed, "checks": checks, "failed": failed}
