"""What ``kuzet serve`` runs for body-worn cameras: one periodic pass that ingests the watch folder, makes the missing
browser-playable copies, drops expired unfinished uploads and applies retention (never to held recordings); and the
redaction jobs (finding the faces of a recording), one at a time, woken when one is queued. A job's state is in the
database, so one that a restart cut short is taken over by the next server."""

from __future__ import annotations

import asyncio
import logging
import threading

from sqlalchemy import select

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.bodycams import offload, recordings
from kuzet.services.lifecycle import PeriodicService
from kuzet.store.models.bodycams import BodycamRecording

log = logging.getLogger("kuzet.bodycams")


def housekeeping(inst: Installation) -> dict[str, int]:
    """One pass; each part on its own, so one failing never stops the others."""
    root = inst.settings.bodycams_path
    done = {"ingested": 0, "watch_failed": 0, "uploads_finished": 0, "playable": 0, "expired_uploads": 0,
            "deleted": 0}
    watched = offload.scan_watch_folder(inst)
    done["ingested"], done["watch_failed"] = len(watched.ingested), len(watched.failed)
    done["uploads_finished"] = len(offload.finish_complete_uploads(inst.db, root))
    with inst.db.session() as session:  # one query; only originals that cannot play are opened again
        pending = [rid for rid, media in session.execute(select(BodycamRecording.id, BodycamRecording.media).where(
            BodycamRecording.playable_path.is_(None), BodycamRecording.deleted_at.is_(None)))
            if offload.needs_playable(media)]
    for recording_id in pending:
        try:
            with inst.db.session() as session:
                recording = session.get(BodycamRecording, recording_id)
                done["playable"] += offload.make_playable(session, root, SYSTEM, recording)
        except Exception:
            log.exception("no playable copy of bodycam recording %s", recording_id)
    with inst.db.session() as session:
        done["expired_uploads"] = offload.drop_expired_uploads(session, root)
    with inst.db.session() as session:
        done["deleted"] = len(recordings.apply_retention(session, root))
    return done


class BodycamHousekeeping(PeriodicService):
    name = "bodycam-housekeeping"

    def __init__(self, inst: Installation) -> None:
        super().__init__(inst.settings.bodycams.scan_seconds)
        self.inst = inst

    def run_once(self) -> object:
        return housekeeping(self.inst)


_WAKE_MAKING = threading.Lock()  # routes run in a thread pool: one event per process


def wake_redactions(inst: Installation) -> threading.Event:
    """The event a route sets when it queues a redaction job (the worker then starts at once)."""
    with _WAKE_MAKING:
        if inst.running.redaction_wake is None:
            inst.running.redaction_wake = threading.Event()
        return inst.running.redaction_wake


def redaction_pass(inst: Installation) -> dict[str, int]:
    """Run every pending redaction job (queued, or left by a server that stopped), oldest first."""
    from kuzet.services.bodycams.disclosure import pending_redactions, plan_redaction

    done: dict[str, int] = {}
    with inst.db.session() as session:
        pending = pending_redactions(session)
    for redaction_id in pending:
        try:
            state = plan_redaction(inst.db, inst.settings.bodycams_path, redaction_id)
        except Exception:
            log.exception("redaction job %s", redaction_id)
            state = "error"
        done[state] = done.get(state, 0) + 1
    return done


class BodycamRedactions(PeriodicService):
    name = "bodycam-redactions"

    def __init__(self, inst: Installation) -> None:
        super().__init__(30)
        self.inst = inst
        self.wake = wake_redactions(inst)

    def run_once(self) -> object:
        self.wake.clear()
        return redaction_pass(self.inst)

    async def wait(self) -> None:
        await asyncio.to_thread(self.wake.wait, self.interval)

