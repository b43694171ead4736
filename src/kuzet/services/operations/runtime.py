"""The operations services ``kuzet serve`` runs: video analysis (events and alarms), event retention, outgoing
webhooks and the MQTT bridge."""

from __future__ import annotations

from kuzet.installation import Installation
from kuzet.services.operations.analysis import AnalysisService, EventRetentionService
from kuzet.services.operations.mqtt import MqttBridge
from kuzet.services.operations.webhooks import WebhookService


def services(inst: Installation) -> list:
    return [AnalysisService(inst), EventRetentionService(inst), WebhookService(inst), MqttBridge(inst)]
