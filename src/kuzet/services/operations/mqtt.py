"""MQTT bridge: detections and alarms of the operations centre published to an MQTT broker, the way Frigate does.

- ``kuzet/<camera_id>/events`` — one message per detection change, shaped like Frigate's ``frigate/events``:
  ``{"type": "new" | "update" | "end", "before": {…}, "after": {…}, "organisations": […]}``. ``after`` is the event as
  the bus carried it plus Frigate's names for the same things (``camera``, ``label``, ``sub_label`` = the plate,
  ``score``, ``top_score``, ``start_time`` / ``end_time`` in Unix seconds, ``current_zones``, ``entered_zones``,
  ``false_positive``, ``has_snapshot``); ``before`` is the previous state of the same event (for ``new``, and after a
  restart, the same as ``after``, as in Frigate).
- ``kuzet/<camera_id>/alarms`` — ``{"type": "raised" | …, "alarm": {…}, "organisations": […]}``.
- ``kuzet/available`` — ``online`` when connected, ``offline`` on a clean stop and, through the broker's last will,
  when the connection dies; retained, for Home Assistant's availability topic.

The broker sees every camera's messages: it is the platform operator's integration, to be protected by the broker's
own ACLs — unless ``mqtt_organisation`` names an organisation, whose broker then gets only the messages that
organisation may see (``audience.py``: events of cameras it holds ``view_archive`` on, alarms routed to it).
The bus handler only queues (bounded, oldest dropped first), so a slow or absent broker never holds back the
publishers; the connection is retried with exponential backoff and the server never stops because of it. Logs name
the broker's host and port only, never its credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from kuzet.installation import Installation
from kuzet.services.operations.audience import camera_of, listed

log = logging.getLogger("kuzet.mqtt")

SUBJECTS = ("kuzet.event.>", "kuzet.alarm.>")
ONLINE, OFFLINE = "online", "offline"
_STOP = object()


@dataclass(frozen=True)
class MqttTarget:
    """Where the broker is. The password never appears in ``repr`` (and so in no log)."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttTarget:
    """``mqtt://[user:password@]host[:1883]`` or ``mqtts://…[:8883]`` (TLS); ValueError names no credentials."""
    parts = urlsplit(url.strip())
    schemes = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
    if parts.scheme not in schemes:
        raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError("mqtt_url has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("mqtt_url has a bad port") from None
    tls = schemes[parts.scheme]
    return MqttTarget(parts.hostname, port or (8883 if tls else 1883), tls,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None)


# --- payloads ---------------------------------------------------------------------------------------------------------


def _epoch(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def frigate_event(event: dict[str, Any], camera_id: int) -> dict[str, Any]:
    """The event plus Frigate's field names (values the publisher already set under those names are kept)."""
    zones = event.get("zones") if isinstance(event.get("zones"), list) else (
        [event["zone"]] if event.get("zone") else [])
    out = dict(event)
    defaults = {
        "camera": camera_id,
        "label": event.get("label") or event.get("kind"),
        "sub_label": event.get("plate"),
        "score": event.get("score"),
        "top_score": event.get("score"),
        "start_time": _epoch(event.get("start_at")),
        "end_time": _epoch(event.get("end_at")),
        "current_zones": zones,
        "entered_zones": zones,
        "false_positive": False,
        "has_snapshot": bool(event.get("snapshot")),
    }
    for key, value in defaults.items():
        out.setdefault(key, value)
    return out


class EventStates:
    """The last ``after`` of each running event, to fill ``before`` (bounded: oldest forgotten first)."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self._last: OrderedDict[tuple[int, Any], dict] = OrderedDict()

    def message(self, camera_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
        kind = payload.get("type")
        after = frigate_event(event, camera_id)
        key = (camera_id, event.get("id"))
        before = self._last.pop(key, None) if kind != "new" else None
        if kind != "end" and event.get("id") is not None:
            self._last[key] = after
            while len(self._last) > self.size:
                self._last.popitem(last=False)
        return {"type": kind, "before": before or after, "after": after,
                "organisations": payload.get("organisations", [])}


# --- the service ------------------------------------------------------------------------------------------------------


class MqttBridge:
    """Publishes bus messages to MQTT while ``settings.mqtt_url`` is set; does nothing otherwise."""

    name = "mqtt"

    def __init__(self, inst: Installation, *, url: str | None = None, prefix: str = "kuzet", qos: int = 1,
                 min_backoff: float = 1.0, max_backoff: float = 60.0, queue_size: int = 10_000) -> None:
        self.inst = inst
        self.url = url if url is not None else inst.settings.mqtt_url
        # An organisation's broker gets what that organisation may see; without one the broker is platform-wide.
        self.organisation = inst.settings.mqtt_organisation
        self.prefix = prefix.strip("/")
        self.qos = qos
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.target: MqttTarget | None = None
        self.connected = asyncio.Event()
        self.dropped = 0
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=queue_size)
        self._states = EventStates()
        self._stop = asyncio.Event()
        self._subs: list = []
        self._task: asyncio.Task | None = None
        self._pending: tuple[str, bytes] | None = None
        self._last_drop_log = 0.0

    @property
    def available_topic(self) -> str:
        return f"{self.prefix}/available"

    async def start(self) -> None:
        if not self.url:
            log.info("MQTT bridge off (no mqtt_url)")
            return
        import aiomqtt  # noqa: F401 - fail at start, with a clear message, if the package is missing

        self.target = parse_mqtt_url(self.url)
        bus = self.inst.running.bus
        for pattern in SUBJECTS:
            self._subs.append(await bus.subscribe(pattern, self._on_message))
        self._task = asyncio.create_task(self._run(), name="mqtt-bridge")
        self.inst.running.mqtt = self

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if self._task is None:
            return
        self._stop.set()
        self._put(_STOP)  # after what is queued: flushed first while connected
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except Exception:  # a broker that does not answer: give up on the goodbye
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None
        if self.inst.running.mqtt is self:
            self.inst.running.mqtt = None

    # Receiving from the bus.

    def _put(self, item: object) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                self._queue.get_nowait()  # the oldest goes: live integrations care about what happens now
                self.dropped += 1
                if time.monotonic() - self._last_drop_log > 60:
                    self._last_drop_log = time.monotonic()
                    log.warning("MQTT queue full (broker %s slow or away): %d messages dropped so far",
                                self.target, self.dropped)

    async def _on_message(self, subject: str, payload: dict[str, Any]) -> None:
        item = self.to_mqtt(subject, payload)
        if item is not None and not self._stop.is_set():
            self._put(item)

    def to_mqtt(self, subject: str, payload: dict[str, Any]) -> tuple[str, bytes] | None:
        """(MQTT topic, JSON body) for a bus message, or None for messages the bridge does not publish."""
        camera_id = camera_of(subject, payload)
        if camera_id is None or not payload.get("type"):
            return None
        if self.organisation is not None:
            if self.organisation not in listed(payload):
                return None
            payload = {k: v for k, v in payload.items() if k != "organisations"}
        if subject.startswith("kuzet.event."):
            topic, body = f"{self.prefix}/{camera_id}/events", self._states.message(camera_id, payload)
        elif subject.startswith("kuzet.alarm."):
            topic = f"{self.prefix}/{camera_id}/alarms"
            body = {"type": payload["type"], "alarm": payload.get("alarm"),
                    "organisations": payload.get("organisations", [])}
        else:
            return None
        return topic, json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")

    # Talking to the broker.

    def _client(self):  # noqa: ANN202
        import aiomqtt

        assert self.target is not None
        return aiomqtt.Client(
            self.target.host, self.target.port, username=self.target.username, password=self.target.password,
            will=aiomqtt.Will(self.available_topic, OFFLINE, qos=1, retain=True),
            tls_context=ssl.create_default_context() if self.target.tls else None, keepalive=30, timeout=10)

    async def _run(self) -> None:
        import aiomqtt

        delay = self.min_backoff
        while not self._stop.is_set():
            try:
                async with self._client() as client:
                    await client.publish(self.available_topic, ONLINE, qos=1, retain=True)
                    self.connected.set()
                    log.info("MQTT bridge connected to %s", self.target)
                    delay = self.min_backoff
                    if await self._publish_queued(client):
                        await client.publish(self.available_topic, OFFLINE, qos=1, retain=True)
                        return
            except aiomqtt.MqttError as exc:
                log.warning("MQTT broker %s unavailable (%s); retrying in %.3g s", self.target, exc, delay)
            except Exception:
                log.exception("MQTT bridge failed; retrying in %.3g s", delay)
            finally:
                self.connected.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
            delay = min(self.max_backoff, delay * 2)

    async def _publish_queued(self, client) -> bool:  # noqa: ANN001
        """Publish until told to stop (True) or the connection fails (raises; the message in hand is kept)."""
        while True:
            if self._pending is None:
                item = await self._queue.get()
                if item is _STOP:
                    return True
                self._pending = item
            topic, body = self._pending
            await client.publish(topic, body, qos=self.qos)
            self._pending = None
