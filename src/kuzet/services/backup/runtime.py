"""What ``kuzet serve`` runs for backups: one every ``[backup] interval_hours`` into ``[backup] dir``, keeping the
newest ``keep``. Nothing runs without a folder and a passphrase file."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from kuzet.installation import Installation
from kuzet.services.backup import BackupResult, make_backup, newest_backup_time, rotate
from kuzet.services.lifecycle import PeriodicService

log = logging.getLogger("kuzet.backup")


class ScheduledBackup(PeriodicService):
    """Checks every few minutes whether the newest backup in the folder is older than the interval (backups made by
    hand or by another node count), and makes one if so."""

    name = "backup-schedule"

    def __init__(self, inst: Installation, check_seconds: float = 300) -> None:
        super().__init__(check_seconds)
        self.inst = inst
        self.last: BackupResult | None = None

    def due(self, now: datetime | None = None) -> bool:
        config = self.inst.settings.backup
        newest = newest_backup_time(config.dir)
        return newest is None or (now or datetime.now(UTC)) - newest >= timedelta(hours=config.interval_hours)

    def run_once(self) -> BackupResult | None:
        config = self.inst.settings.backup
        if not self.due():
            return None
        passphrase = config.passphrase_file.read_text(encoding="utf-8").splitlines()[0]
        result = make_backup(self.inst, config.dir, passphrase, media=config.recordings)
        removed = rotate(config.dir, config.keep)
        log.info("backup written to %s (%d older removed)", result.path, len(removed))
        self.last = result
        return result


def scheduled_backup(inst: Installation) -> ScheduledBackup | None:
    """Scheduled backups, when ``[backup] dir`` and a readable ``passphrase_file`` are set."""
    config = inst.settings.backup
    if config.dir is None:
        return None
    if config.passphrase_file is None or not config.passphrase_file.is_file():
        log.error("[backup] dir is set but passphrase_file is missing or unreadable: no scheduled backups")
        return None
    return ScheduledBackup(inst)
