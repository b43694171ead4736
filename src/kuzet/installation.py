"""One Kuzet installation: its settings, database, keys and event bus, found from ``--data`` / ``KUZET_DATA_DIR``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import event

from kuzet.config import STARTER_CONFIG, Settings, load_settings
from kuzet.services.keys import Keyring
from kuzet.store.db import Database


@dataclass
class Installation:
    settings: Settings
    db: Database
    keys: Keyring
    extras: dict = field(default_factory=dict)  # long-lived objects of running services (bus, recorder, …)

    @classmethod
    def open(cls, data: str | Path | None = None, settings: Settings | None = None) -> Installation:
        settings = settings or load_settings(data)
        inst = cls(settings=settings, db=Database(settings.db_url), keys=Keyring(settings.keys_path))
        event.listen(inst.db.sessions, "after_commit", inst._after_commit)
        return inst

    @property
    def audit_anchor_file(self) -> Path:
        return self.settings.data_dir / "audit.anchor"

    def _after_commit(self, session) -> None:  # noqa: ANN001
        tip = session.info.pop("audit_tip", None)
        if tip and self.settings.data_dir.exists():
            from kuzet.services.audit import write_anchor

            write_anchor(self.audit_anchor_file, *tip)

    def verify_audit(self, progress=None):  # noqa: ANN001, ANN201
        from kuzet.services.audit import read_anchor, verify

        return verify(self.db, progress=progress, anchor=read_anchor(self.audit_anchor_file))

    def init(self) -> list[Path]:
        """Create the data directory, starter config, keys and schema. Safe to run again: nothing is overwritten."""
        from kuzet.store.schema import upgrade

        created: list[Path] = []
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.config_file.exists():
            self.settings.config_file.write_text(STARTER_CONFIG, encoding="utf-8")
            created.append(self.settings.config_file)
        created += self.keys.ensure()
        from kuzet.services.safeyard.vault import Vault

        Vault(self.keys.dir).ensure()
        self.settings.recordings_path.mkdir(parents=True, exist_ok=True)
        upgrade(self.db)
        return created

    def close(self) -> None:
        self.db.dispose()
