"""The operations services ``kuzet serve`` runs: video analysis (events and alarms), event retention, outgoing
webhooks and the MQTT bridge."""

from __future__ import annotations

from kuzet.installation import Installation
from kuzet.services.operations.analysis import AnalysisService, EventRetentionService


def services(inst: Installation) -> list:
    return [AnalysisService(inst), EventRetentionService(inst)]
