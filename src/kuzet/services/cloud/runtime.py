"""What ``kuzet serve`` runs for the cloud service: every ``cloud.check_seconds`` (a minute by default) agreements
whose last day is over expire, trials that ran out become active, and flats with overdue debt are suspended (those
whose debt is paid are active again)."""

from __future__ import annotations

import logging

from kuzet.installation import Installation
from kuzet.services.audit import SYSTEM
from kuzet.services.cloud.agreements import expire_agreements
from kuzet.services.cloud.billing import end_trials, enforce_payment
from kuzet.services.lifecycle import PeriodicService

log = logging.getLogger("kuzet.cloud")


def check_once(inst: Installation) -> dict[str, int]:
    """One pass, each part in its own transaction (one failing leaves the others done)."""
    tz = inst.settings.timezone
    out: dict[str, int] = {}
    with inst.db.session() as session:
        out["agreements_expired"] = expire_agreements(session, SYSTEM, tz)
    with inst.db.session() as session:
        out["trials_ended"] = end_trials(session, SYSTEM)
    with inst.db.session() as session:
        out.update(enforce_payment(session, SYSTEM, tz, inst.settings.cloud.grace_days))
    if any(out.values()):
        log.info("cloud check: %s", out)
    return out


class CloudChecks(PeriodicService):
    name = "cloud-checks"

    def __init__(self, inst: Installation) -> None:
        super().__init__(inst.settings.cloud.check_seconds)
        self.inst = inst

    def run_once(self) -> object:
        return check_once(self.inst)
