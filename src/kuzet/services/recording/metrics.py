"""Prometheus exposition of recorder health (``/metrics`` and ``/api/v1/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from kuzet.installation import Installation

STATES = ("recording", "connecting", "offline", "error", "disabled")


def render(inst: Installation) -> bytes:
    registry = CollectorRegistry()
    state = Gauge("kuzet_camera_state", "1 for the camera's current recorder state", ["camera", "state"],
                  registry=registry)
    bitrate = Gauge("kuzet_camera_bitrate_bps", "Measured bitrate of the main stream", ["camera"], registry=registry)
    fps = Gauge("kuzet_camera_fps", "Measured frame rate of the main stream", ["camera"], registry=registry)
    last = Gauge("kuzet_camera_last_frame_timestamp_seconds", "Time of the last frame", ["camera"],
                 registry=registry)
    recorded = Gauge("kuzet_camera_recorded_bytes", "Bytes recorded by this run", ["camera"], registry=registry)
    reconnects = Gauge("kuzet_camera_reconnects", "Reconnects since start", ["camera"], registry=registry)
    written = Gauge("kuzet_recorder_bytes_written", "Bytes written by the recorder since start", registry=registry)
    recorder = inst.extras.get("recorder")
    if recorder is not None:
        written.set(recorder.bytes_written)
        for camera_id, rec in recorder.cameras.items():
            h = rec.health
            label = str(camera_id)
            for s in STATES:
                state.labels(label, s).set(1 if h.state == s else 0)
            b, f = h.rates()
            bitrate.labels(label).set(b)
            fps.labels(label).set(f)
            if h.last_frame_at:
                last.labels(label).set(h.last_frame_at.timestamp())
            recorded.labels(label).set(h.recorded_bytes)
            reconnects.labels(label).set(h.reconnects)
    return generate_latest(registry)
