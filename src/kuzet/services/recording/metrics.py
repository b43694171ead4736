"""Prometheus exposition of recorder health (``/metrics`` and ``/api/v1/metrics``), with what waits for the database
(index rows) and for the event bus (the NATS outbox) while either is away."""

from __future__ import annotations

import time

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
    pending = Gauge("kuzet_index_pending_rows", "Index rows (files, gaps) waiting for the database",
                    registry=registry)
    failing = Gauge("kuzet_index_failing_seconds", "How long index writes have been failing (0: they work)",
                    registry=registry)
    _bus_metrics(inst, registry)
    _installation_metrics(inst, registry)
    _upload_metrics(inst, registry)
    _cluster_metrics(inst, registry)
    _analysis_metrics(inst, registry)
    recorder = inst.running.recorder
    if recorder is not None:
        written.set(recorder.bytes_written)
        pending.set(recorder.index.pending)
        since = recorder.index.failing_since
        failing.set(time.monotonic() - since if since is not None else 0)
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


def _bus_metrics(inst: Installation, registry: CollectorRegistry) -> None:
    bus = inst.running.bus
    stats = getattr(bus, "stats", None)
    if stats is None:
        return
    values = stats()
    Gauge("kuzet_bus_connected", "1 while the event bus is connected", registry=registry).set(
        1 if values["connected"] else 0)
    Gauge("kuzet_bus_outbox_messages", "Events waiting to be sent to the bus", registry=registry).set(
        values["outbox"])
    Gauge("kuzet_bus_outbox_capacity", "Events the outbox holds before dropping the oldest", registry=registry).set(
        values["outbox_max"])
    Gauge("kuzet_bus_sent", "Events sent and acknowledged since start", registry=registry).set(values["sent"])
    Gauge("kuzet_bus_dropped", "Events dropped because the outbox was full, since start", registry=registry).set(
        values["dropped"])
    Gauge("kuzet_bus_retries", "Attempts to send an event that were not acknowledged", registry=registry).set(
        values["retries"])


def _installation_metrics(inst: Installation, registry: CollectorRegistry) -> None:
    """What the shipped alert rules (kuzet/monitoring/prometheus-alerts.yml) watch beside the cameras: free space on the
    recordings volume, the newest backup, the TLS certificate's expiry, the audit chain against its signed anchor."""
    import shutil

    settings = inst.settings
    try:
        usage = shutil.disk_usage(settings.recordings_path)
    except OSError:
        usage = None
    if usage is not None:
        Gauge("kuzet_storage_free_bytes", "Free bytes on the recordings volume", registry=registry).set(usage.free)
        Gauge("kuzet_storage_size_bytes", "Size of the recordings volume", registry=registry).set(usage.total)
    Gauge("kuzet_storage_min_free_bytes", "Configured floor of free bytes ([storage] min_free_bytes)",
          registry=registry).set(settings.storage.min_free_bytes)
    if settings.backup.dir is not None:
        from kuzet.services.backup import newest_backup_time

        newest = newest_backup_time(settings.backup.dir)
        Gauge("kuzet_backup_last_success_timestamp_seconds", "When the newest complete backup in [backup] dir was "
              "taken (0: none)", registry=registry).set(newest.timestamp() if newest else 0)
    if settings.http.tls_cert is not None:
        expiry = _certificate_expiry(settings.http.tls_cert)
        if expiry is not None:
            Gauge("kuzet_tls_certificate_expiry_timestamp_seconds", "When [http] tls_cert stops being valid",
                  registry=registry).set(expiry)
    Gauge("kuzet_audit_anchor_ok", "1 when the signed audit anchor verifies and the chain holds the record it names",
          registry=registry).set(1 if _anchor_ok(inst) else 0)


def _certificate_expiry(path) -> float | None:  # noqa: ANN001
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None
    return cert.not_valid_after_utc.timestamp()


def _anchor_ok(inst: Installation) -> bool:
    from sqlalchemy import select

    from kuzet.services.audit.heads import AnchorState
    from kuzet.store.models import AuditRecord

    try:
        reading = inst.audit_anchor.read()
        if reading.state is not AnchorState.VALID or reading.head is None:
            return False
        if reading.head.seq == 0:
            return True
        with inst.db.session() as session:
            found = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == reading.head.seq))
        return found == reading.head.hash
    except Exception:  # noqa: BLE001 - a broken key file or database reads as "not verified", never as a 500
        return False


def _upload_metrics(inst: Installation, registry: CollectorRegistry) -> None:
    """The local buffer of files waiting for the object store (``[storage] backend = "s3"``)."""
    uploader = inst.running.uploader
    if uploader is None:
        return
    from kuzet.store.db import utcnow

    backlog = uploader.backlog
    Gauge("kuzet_upload_backlog_files", "Closed recordings waiting for upload to the object store",
          registry=registry).set(backlog.files)
    Gauge("kuzet_upload_backlog_bytes", "Bytes of closed recordings waiting for upload", registry=registry).set(
        backlog.bytes)
    Gauge("kuzet_upload_backlog_oldest_seconds", "Age of the oldest closed recording not yet uploaded",
          registry=registry).set(backlog.oldest_seconds(utcnow()))
    Gauge("kuzet_upload_buffer_max_bytes", "Upload backlog above which the buffer is full", registry=registry).set(
        uploader.buffer_max)
    Gauge("kuzet_upload_buffer_full", "1 while the upload backlog is over its limit", registry=registry).set(
        1 if uploader.buffer_full else 0)
    Gauge("kuzet_upload_failing_seconds", "How long uploads have been failing (0: they work)",
          registry=registry).set(uploader.failing_seconds)
    Gauge("kuzet_uploaded_files", "Recordings uploaded and verified since start", registry=registry).set(
        uploader.uploaded_files)
    Gauge("kuzet_uploaded_bytes", "Bytes uploaded and verified since start", registry=registry).set(
        uploader.uploaded_bytes)


def _cluster_metrics(inst: Installation, registry: CollectorRegistry) -> None:
    """This recorder node's leases (``[cluster] enabled``, docs/scale.md)."""
    keeper = inst.running.lease_keeper
    if keeper is None:
        return
    Gauge("kuzet_cluster_node_info", "This recorder node", ["node"], registry=registry).labels(keeper.node).set(1)
    Gauge("kuzet_cluster_cameras_held", "Cameras this node holds a lease on", registry=registry).set(
        len(keeper.tokens))
    Gauge("kuzet_cluster_lease_age_seconds", "Seconds since this node's leases were last renewed",
          registry=registry).set(keeper.lease_age())
    last = keeper.last_pass
    Gauge("kuzet_cluster_live_nodes", "Recorder nodes with a fresh heartbeat, as last seen", registry=registry).set(
        last.live_nodes if last else 0)
    Gauge("kuzet_cluster_fair_share", "The most cameras this node should hold", registry=registry).set(
        last.share if last else 0)
    Gauge("kuzet_cluster_lease_failures", "Lease passes that failed since start", registry=registry).set(
        keeper.failures)
    Gauge("kuzet_cluster_cameras_taken_over", "Cameras taken over from another node since start",
          registry=registry).set(keeper.moves_in)
    Gauge("kuzet_cluster_leases_lost", "Leases lost (taken over or not renewed in time) since start",
          registry=registry).set(keeper.lost_total)
    Gauge("kuzet_cluster_lease_passes_slow", "Lease passes that took longer than renew_seconds since start",
          registry=registry).set(keeper.slow_passes)


def _analysis_metrics(inst: Installation, registry: CollectorRegistry) -> None:
    """This node's video analysis: its analysis leases (``[cluster] enabled``, docs/scale.md "Analysis on workers")
    and the event pictures waiting for the object store (docs/storage.md)."""
    from kuzet.services.operations.pictures import SharedPictures

    analysis = inst.running.analysis
    if analysis is None:
        return
    pictures = getattr(analysis, "pictures", None)
    if isinstance(pictures, SharedPictures):
        Gauge("kuzet_event_pictures_pending", "Event pictures kept locally until the object store takes them",
              registry=registry).set(pictures.pending)
        Gauge("kuzet_event_pictures_uploaded", "Event pictures stored in the object store since start",
              registry=registry).set(pictures.uploaded)
    keeper = analysis.keeper
    if keeper is None:
        return
    Gauge("kuzet_cluster_analysis_node_info", "This analysing node", ["node"], registry=registry).labels(
        keeper.node).set(1)
    Gauge("kuzet_cluster_analysis_cameras_held", "Cameras this node holds an analysis lease on",
          registry=registry).set(len(keeper.tokens))
    Gauge("kuzet_cluster_analysis_cameras_analysed", "Cameras whose analysis loop runs on this node",
          registry=registry).set(len(analysis.loops))
    Gauge("kuzet_cluster_analysis_lease_age_seconds", "Seconds since this node's analysis leases were last renewed",
          registry=registry).set(keeper.lease_age())
    last = keeper.last_pass
    Gauge("kuzet_cluster_analysis_live_nodes", "Analysing nodes with a fresh heartbeat, as last seen",
          registry=registry).set(last.live_nodes if last else 0)
    Gauge("kuzet_cluster_analysis_fair_share", "The most cameras this node should analyse",
          registry=registry).set(last.share if last else 0)
    Gauge("kuzet_cluster_analysis_lease_failures", "Analysis lease passes that failed since start",
          registry=registry).set(keeper.failures)
    Gauge("kuzet_cluster_analysis_cameras_taken_over", "Cameras whose analysis this node took over since start",
          registry=registry).set(keeper.moves_in)
    Gauge("kuzet_cluster_analysis_leases_lost", "Analysis leases lost (taken over or not renewed) since start",
          registry=registry).set(keeper.lost_total)
