"""One Kuzet installation: its settings, database, keys and event bus, found from ``--data`` / ``KUZET_DATA_DIR``.

Files that hold secrets or personal data are owner-only: the data and keys directories 0700; ``kuzet.toml``, the SQLite
database (and its ``-wal``/``-shm``), the key files and the audit anchor 0600. ``insecure_files()`` names those that
are readable by others in an existing installation (``kuzet serve`` and ``kuzet demo`` warn about them).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import event

from kuzet.config import STARTER_CONFIG, Settings, load_settings
from kuzet.services.keys import Keyring
from kuzet.store.db import Database, sqlite_file

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class LooseFile:
    """A file or directory of the installation that others than its owner may read (or enter)."""

    path: Path
    mode: int
    wanted: int

    def __str__(self) -> str:
        return f"{self.path} is {self.mode:04o}; run: chmod {self.wanted:o} {self.path}"


def write_private(path: Path, text: str) -> None:
    """Create ``path`` (which must not exist) with ``text``, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def make_private_dir(path: Path) -> bool:
    """Create ``path`` (and missing parents) with the directory itself 0700; False if it existed already."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=PRIVATE_DIR_MODE)
    return True

log = logging.getLogger("kuzet.audit")

if TYPE_CHECKING:
    from kuzet.services.audit import AuditCheck
    from kuzet.services.audit.heads import AuditAnchor
    from kuzet.services.bodycams.live import PostingRate
    from kuzet.services.cluster.keeper import LeaseKeeper
    from kuzet.services.onboarding.relay import PushIngest
    from kuzet.services.operations.analysis import AnalysisService
    from kuzet.services.operations.mqtt import MqttBridge
    from kuzet.services.operations.webhooks import WebhookService
    from kuzet.services.recording.hub import Hub
    from kuzet.services.recording.recorder import Recorder
    from kuzet.services.recording.uploader import Uploader
    from kuzet.services.watching.hls import LiveHlsRegistry
    from kuzet.services.watching.viewing import ViewingSessions
    from kuzet.store.bus import Bus, Subscription


_MAKING = threading.Lock()  # routes run in a thread pool: one of each per process


@dataclass
class Running:
    """The long-lived parts of the services running in this process, for the others and the routes to reach. A part
    is None where its service does not run here (a command, an API worker, a node of another role, or the service is
    switched off); each service sets its own part when it starts."""

    bus: Bus | None = None  # the event bus (runtime.py; an API worker's own when the bus is NATS)
    access_watch: Subscription | None = None  # drops the cached grants on changes announced on the bus
    recorder: Recorder | None = None
    uploader: Uploader | None = None  # with [storage] backend = "s3"
    analysis: AnalysisService | None = None
    webhooks: WebhookService | None = None
    mqtt: MqttBridge | None = None
    push: PushIngest | None = None  # with [push] enabled
    lease_keeper: LeaseKeeper | None = None  # with [cluster] enabled on a recording node
    redaction_wake: threading.Event | None = None  # wakes the body-camera redaction jobs' worker at once
    _position_rate: PostingRate | None = field(default=None, repr=False)
    demo_sim_port: int | None = None  # `kuzet demo --sim-port`, for the demo's camera simulator
    _viewing_sessions: ViewingSessions | None = field(default=None, repr=False)
    _live_hls: LiveHlsRegistry | None = field(default=None, repr=False)

    @property
    def hub(self) -> Hub | None:
        """The recorder's live stream hub."""
        return self.recorder.hub if self.recorder is not None else None

    @property
    def viewing_sessions(self) -> ViewingSessions:
        """The open viewing sessions of this process (made on first need, in any role)."""
        with _MAKING:
            if self._viewing_sessions is None:
                from kuzet.services.watching.viewing import ViewingSessions

                self._viewing_sessions = ViewingSessions()
            return self._viewing_sessions

    @viewing_sessions.setter
    def viewing_sessions(self, sessions: ViewingSessions) -> None:
        self._viewing_sessions = sessions

    @property
    def position_rate(self) -> PostingRate:
        """How often each patrol car posts its position, and keys refused per address (made on first need)."""
        with _MAKING:
            if self._position_rate is None:
                from kuzet.services.bodycams.live import PostingRate

                self._position_rate = PostingRate()
            return self._position_rate

    @position_rate.setter
    def position_rate(self, rate: PostingRate | None) -> None:
        self._position_rate = rate

    @property
    def live_hls(self) -> LiveHlsRegistry:
        """The live HLS streams this process serves (made on first need)."""
        with _MAKING:
            if self._live_hls is None:
                from kuzet.services.watching.hls import LiveHlsRegistry

                self._live_hls = LiveHlsRegistry()
            return self._live_hls


@dataclass
class Installation:
    settings: Settings
    db: Database
    keys: Keyring
    running: Running = field(default_factory=Running)  # what the running services hold (bus, recorder, …)

    @classmethod
    def open(cls, data: str | Path | None = None, settings: Settings | None = None) -> Installation:
        settings = settings or load_settings(data)
        inst = cls(settings=settings, db=Database(settings.db_url), keys=Keyring(settings.keys_path))
        event.listen(inst.db.sessions, "after_commit", inst._after_commit)
        event.listen(inst.db.sessions, "after_rollback", inst._after_rollback)
        from kuzet.services.access.cache import watch

        # the callers' grants, cached and dropped on every change (here, and in this machine's other processes)
        watch(inst.db.sessions, inst.db.engine, stamp=settings.data_dir / "access.changed")
        return inst

    @property
    def audit_anchor_file(self) -> Path:
        return self.settings.data_dir / "audit.anchor"

    @cached_property
    def audit_anchor(self) -> AuditAnchor:
        from kuzet.services.audit.heads import AuditAnchor

        return AuditAnchor(self.audit_anchor_file, self.keys)

    def _after_commit(self, session) -> None:  # noqa: ANN001
        tip = session.info.pop("audit_tip", None)
        if tip and self.settings.data_dir.exists():
            try:
                self.audit_anchor.advance(*tip)
            except Exception:  # the change is committed; a stale anchor shows up in `kuzet audit verify`
                log.exception("audit anchor not updated to #%s", tip[0])

    @staticmethod
    def _after_rollback(session) -> None:  # noqa: ANN001
        session.info.pop("audit_tip", None)  # the records it names were never committed

    def verify_audit(self, progress=None, witness_files: Iterable[Path] = (),  # noqa: ANN001
                     allow_missing_anchor: bool = False) -> AuditCheck:
        """The chain against the signed anchor and the heads in ``witness_files`` (see services/audit)."""
        from kuzet.services.audit import verify_trusted

        return verify_trusted(self.db, self.audit_anchor, witness_files=witness_files,
                              allow_missing_anchor=allow_missing_anchor, progress=progress)

    def init(self) -> list[Path]:
        """Create the data directory, starter config, keys and schema. Safe to run again: nothing is overwritten."""
        from kuzet.store.schema import upgrade

        created: list[Path] = []
        make_private_dir(self.settings.data_dir)
        if not self.settings.config_file.exists():
            write_private(self.settings.config_file, STARTER_CONFIG)
            created.append(self.settings.config_file)
        make_private_dir(self.keys.dir)
        created += self.keys.ensure()
        from kuzet.services.safeyard.vault import Vault

        Vault(self.keys.dir).ensure()
        self.settings.recordings_path.mkdir(parents=True, exist_ok=True)
        upgrade(self.db)
        if self._start_audit_anchor():
            created.append(self.audit_anchor_file)
        return created

    def _start_audit_anchor(self) -> bool:
        """A new installation's anchor: the empty chain (#0), signed. An existing chain without an anchor is left to
        an operator (``kuzet audit anchor``), who decides the chain can be trusted as it is."""
        from kuzet.services.audit.heads import chain_tip

        if self.audit_anchor_file.exists():
            return False
        with self.db.session() as session:
            seq, digest = chain_tip(session)
        return seq == 0 and self.audit_anchor.create(seq, digest)

    def insecure_files(self) -> list[LooseFile]:
        """Files and directories of this installation that hold secrets but are open to group or others."""
        wanted: list[tuple[Path, int]] = [(self.settings.data_dir, PRIVATE_DIR_MODE),
                                          (self.settings.config_file, PRIVATE_FILE_MODE),
                                          (self.audit_anchor_file, PRIVATE_FILE_MODE),
                                          (self.keys.dir, PRIVATE_DIR_MODE)]
        db_file = sqlite_file(self.settings.db_url)
        if db_file is not None:
            wanted += [(db_file.with_name(db_file.name + suffix), PRIVATE_FILE_MODE) for suffix in ("", "-wal", "-shm")]
        if self.keys.dir.is_dir():
            wanted += [(key, PRIVATE_FILE_MODE) for key in sorted(self.keys.dir.iterdir())
                       if key.is_file() and key.suffix != ".pub"]
        loose = []
        for path, mode in wanted:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if stat.S_IMODE(st.st_mode) & 0o077:
                loose.append(LooseFile(path, stat.S_IMODE(st.st_mode), mode))
        return loose

    def close(self) -> None:
        self.db.dispose()
