"""Configuration: a TOML file plus ``KUZET_*`` environment variables (the environment wins).

Every command finds its installation the same way: ``--data DIR`` or ``KUZET_DATA_DIR``. The data directory holds
``kuzet.toml``, the SQLite database, the keys and the recordings unless the configuration points elsewhere.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator

DEFAULT_DATA_DIR = "kuzet-data"
CONFIG_NAME = "kuzet.toml"


class ConfigError(Exception):
    """The configuration file or environment holds a value Kuzet cannot use."""


class HttpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # The session cookie is Secure whenever the request came over HTTPS (directly, or X-Forwarded-Proto from a
    # trusted proxy); this forces it on for every response.
    secure_cookies: bool = False
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed.
    trusted_proxies: list[str] = Field(default_factory=list)
    # /metrics answers only `Authorization: Bearer <metrics_token>`, or, without a token set, loopback clients.
    metrics_token: str | None = None
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest JSON or form body accepted")
    max_upload_bytes: int = Field(64 << 20, ge=1024, description="Largest uploaded file (imports, photos)")
    # Serve HTTPS directly (uvicorn's TLS): a PEM certificate chain and its private key (docs/deploy.md).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # With TLS on: also listen here for plain HTTP and answer every request with a redirect to HTTPS (0: off).
    redirect_port: int = Field(0, ge=0, le=65535)
    hsts_seconds: int = Field(31_536_000, ge=0, description="Strict-Transport-Security max-age on HTTPS (0: off)")


class S3Config(BaseModel):
    """An S3-compatible object store for recordings (docs/storage.md). The secret is never logged or returned."""

    endpoint: str | None = None  # e.g. http://seaweedfs:8333; None: the AWS endpoint of ``region``
    bucket: str = Field("kuzet", min_length=3, max_length=63)
    access_key: str | None = None
    secret_key: SecretStr | None = None
    region: str = "us-east-1"
    prefix: str = Field("recordings/", max_length=200, description="Key prefix of every recording object")
    # Event pictures (snapshots, plate crops) of every node go straight here, in the same bucket (docs/storage.md).
    events_prefix: str = Field("events/", min_length=1, max_length=200, description="Key prefix of event pictures")
    # Objects of files under an evidence hold move here (a lifecycle rule on ``prefix`` never reaches them).
    held_prefix: str = Field("held/", min_length=1, max_length=200)
    buffer_max_bytes: int = Field(8 << 30, ge=1 << 20, description="Closed files waiting for upload before alarm")
    upload_workers: int = Field(2, ge=1, le=32, description="Files uploaded at once")
    interval: float = Field(2.0, gt=0, description="Seconds between looks for closed files to upload")
    # Each request is tried once (no retries inside the client): the uploader's back-off decides when to try again.
    timeout: float = Field(10.0, gt=0, description="Read timeout of one request (and of each send), seconds")
    connect_timeout: float = Field(3.0, gt=0, le=60, description="Seconds to open a connection to the store")


class StorageConfig(BaseModel):
    recordings_dir: Path | None = None
    max_bytes: int | None = Field(None, ge=0, description="Upper bound of the archive on this volume")
    min_free_bytes: int = Field(1 << 30, ge=0, description="Keep at least this much free on the volume")
    # "local": recordings stay on this disk. "s3": written here first, each closed file uploaded to [storage.s3].
    backend: str = Field("local", pattern="^(local|s3)$")
    s3: S3Config = S3Config()


class RecorderConfig(BaseModel):
    enabled: bool = True
    ffmpeg: str | None = None  # path to ffmpeg; default: system ffmpeg, else the imageio-ffmpeg binary
    transport: str = "tcp"
    fragment_seconds: float = Field(0.25, gt=0, le=2.0)
    file_seconds: int = Field(60, ge=5, le=60)
    stall_seconds: float = Field(10.0, gt=0)


class ClusterConfig(BaseModel):
    """Several recorder nodes sharing the cameras through leases in the database (docs/scale.md). Off: this node
    records every enabled camera, as a single box does."""

    enabled: bool = False
    node: str | None = Field(None, min_length=1, max_length=200, description="This node's id (default host-pid)")
    lease_seconds: float = Field(15.0, ge=3, le=300, description="How long a lease lasts without renewal")
    renew_seconds: float = Field(3.0, gt=0, le=60, description="Seconds between heartbeats and lease renewals")
    margin_seconds: float = Field(3.0, gt=0, le=60, description="Stop writing this long before the lease ends")
    advertise_url: str | None = Field(
        None, max_length=500, pattern=r"^https?://[^/\s]+/?$",
        description="Where the other nodes reach this node's API (e.g. http://10.0.0.3:8080) to pass it live requests "
                    "for the cameras it holds")
    secret: SecretStr | None = Field(
        None, description="Shared by every node: signs node-to-node requests (an analysing worker reading a camera's "
                          "live stream from the node recording it). Never logged or returned")

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("[cluster] secret must be at least 16 characters")
        return value

    @model_validator(mode="after")
    def _timing(self) -> ClusterConfig:
        if self.renew_seconds + self.margin_seconds >= self.lease_seconds:
            raise ValueError("renew_seconds + margin_seconds must be less than lease_seconds")
        return self


class OperationsConfig(BaseModel):
    """Video analysis and alarms (docs/operations.md)."""

    enabled: bool = True  # analyse cameras (motion, objects, plates) while `kuzet serve` runs
    workers: int = Field(2, ge=1, le=64, description="Threads that decode and analyse (one per core)")
    onnx_model: Path | None = None  # a YOLO-family .onnx file for the "onnx" detector
    onnx_labels: list[str] | None = None  # class names of that model, in order (default: the 80 COCO classes)
    object_fps: float = Field(2.0, gt=0, le=25, description="Object detection runs at most this often per camera")
    plate_fps: float = Field(2.0, gt=0, le=25, description="Plate reading runs at most this often per camera")
    events_retention_days: int = Field(90, ge=1)
    webhook_max_attempts: int = Field(8, ge=1, le=50)


class SecurityConfig(BaseModel):
    session_hours: float = Field(12, gt=0)
    max_failed_logins: int = Field(5, ge=1)
    failed_login_window_minutes: float = Field(15, gt=0)
    max_failed_logins_per_address: int = Field(30, ge=1, description="Failed logins from one address per window")
    min_password_length: int = Field(10, ge=4)
    password_hash_concurrency: int = Field(2, ge=1, le=64, description="argon2 hashes computed at once")
    # Camera stream URL schemes accepted; "file" (a local video) only where a demo or a test allows it.
    camera_url_schemes: list[str] = Field(
        default_factory=lambda: ["rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https"])
    # Webhook targets in loopback, link-local or private ranges are refused unless inside one of these networks.
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    export_max_bytes: int = Field(16 << 30, ge=1 << 20, description="Largest evidence bundle built")


class PushConfig(BaseModel):
    """Cameras behind NAT that push their stream to Kuzet (docs/cloud.md, "Onboarding")."""

    enabled: bool = False  # run nginx's RTMP module (and the RTSP RECORD relay) beside `kuzet serve`
    public_host: str = "127.0.0.1"  # the host name cameras reach, in the URLs handed out
    listen: str = "0.0.0.0"
    rtmp_port: int = Field(1935, ge=1, le=65535)
    rtsp_port: int = Field(8555, ge=1, le=65535)
    nginx: str | None = None  # path to nginx; default: the system's
    rtmp_module: Path = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")


class OnboardingConfig(BaseModel):
    """Where ONVIF discovery and probes may reach (docs/cloud.md, "Onboarding")."""

    # Addresses (CIDR) that WS-Discovery probes and ONVIF requests may go to: camera networks are private.
    onvif_networks: list[str] = Field(default_factory=lambda: [
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8",
        "fc00::/7", "fe80::/10", "::1/128"])
    onvif_multicast: bool = True  # probe the WS-Discovery multicast group of the server's own segment


class AuditConfig(BaseModel):
    """Publishing the audit chain's head to a witness outside the installation (docs/security.md)."""

    witness_file: Path | None = None  # append each published head here (e.g. a file on another host's mount)
    witness_url: str | None = None  # POST each published head here (JSON)
    witness_interval_minutes: float = Field(1440, gt=0)


class MapConfig(BaseModel):
    """The console's map background (docs/watching.md, "Map"). Without ``tiles`` the map draws streets and places
    from the database, which works on closed networks."""

    # Leaflet URL template of a tile server the browsers can reach: "https://tiles.example.kz/{z}/{x}/{y}.png"
    # ({s} for subdomains), or a path on this site ("/tiles/{z}/{x}/{y}.png") behind the same reverse proxy.
    tiles: str | None = None
    attribution: str = Field("", max_length=300, description="Credit shown on the map, as plain text")
    max_zoom: int = Field(19, ge=1, le=24)

    @field_validator("tiles")
    @classmethod
    def _tiles(cls, value: str | None) -> str | None:
        from urllib.parse import urlsplit

        if value is None or not value.strip():
            return None
        value = value.strip()
        parts = urlsplit(value)
        relative = not parts.scheme and not parts.netloc and value.startswith("/") and not value.startswith("//")
        if not (relative or (parts.scheme in ("http", "https") and parts.netloc)):
            raise ValueError("must be an http(s) URL or a path on this site, "
                             "e.g. https://tiles.example.kz/{z}/{x}/{y}.png")
        if not all(p in value for p in ("{z}", "{x}", "{y}")):
            raise ValueError("must contain {z}, {x} and {y}")
        if any(c in value for c in "\"'<> "):
            raise ValueError("must not contain quotes, spaces, backslashes or angle brackets")
        return value
class CloudConfig(BaseModel):
    """The telecom's cloud service (docs/cloud.md)."""

    # Where residents open the portal: activation QR codes and shared clip links point here.
    portal_url: str = Field("http://127.0.0.1:8080", max_length=200)
    trial_days: int = Field(14, ge=0, le=365)
    code_days: int = Field(90, ge=1, le=3650, description="How long a printed activation code is valid")
    invoice_due_days: int = Field(15, ge=0, le=120, description="Days after an invoice run until it is due")
    grace_days: int = Field(0, ge=0, le=120, description="Days past the due date before an unpaid flat is suspended")
    check_seconds: float = Field(60, gt=0, le=3600, description="How often agreements and unpaid flats are checked")
    document_max_bytes: int = Field(20 << 20, ge=1 << 16, description="Largest signed agreement (PDF) accepted")
    share_max_hours: int = Field(168, ge=1, le=24 * 90, description="Longest life of a shared clip link")


class BackupConfig(BaseModel):
    """Scheduled backups while `kuzet serve` runs (docs/operations-guide.md)."""

    dir: Path | None = None  # where scheduled backups go (another disk or a mount); none: no schedule
    interval_hours: float = Field(24, gt=0, le=24 * 31)
    keep: int = Field(7, ge=1, le=1000, description="Complete backups kept in `dir`; older ones are removed")
    passphrase_file: Path | None = None  # seals the keys and the configuration; owner-only file
    recordings: bool = False  # also the recordings, events and exports (default: their index only, in the database)


class BodycamsConfig(BaseModel):
    """Body-worn and dash cameras (docs/bodycams.md)."""

    # Docking stations that copy files locally put them in <watch_dir>/<device serial>/; None: no watch folder.
    watch_dir: Path | None = None
    settle_seconds: float = Field(10, ge=0, le=3600, description="A watched file is taken once unchanged this long")
    scan_seconds: float = Field(15, gt=0, le=3600, description="How often the watch folder is looked at")
    ingest_workers: int = Field(0, ge=0, le=64, description="Watched files read (hashed and indexed) at once; "
                                "0: two per core")
    max_file_bytes: int = Field(64 << 30, ge=1 << 20, description="Largest file one upload may announce")
    upload_expiry_hours: int = Field(72, ge=1, le=24 * 30, description="An unfinished upload is dropped after this")
    position_posts_per_minute: int = Field(60, ge=1, le=6000, description="Live GPS posts a dash camera may make")
    max_fixes_per_post: int = Field(600, ge=1, le=100_000, description="GPS fixes in one live post")


class Settings(BaseModel):
    """The whole configuration of one installation."""

    data_dir: Path
    database_url: str | None = None
    events_url: str = Field("memory://", description="memory:// (in-process) or nats://host:port")
    mqtt_url: str | None = None
    mqtt_organisation: int | None = None  # the broker is this organisation's: only what it may see is published
    keys_dir: Path | None = None
    default_language: str = "ru"
    demo: bool = False  # written by `kuzet demo`: a demo installation (short passwords, file: cameras allowed)
    timezone: str = "Asia/Almaty"  # local time of schedules and reports (Kazakhstan: UTC+5 since 2024)
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    recorder: RecorderConfig = RecorderConfig()
    cluster: ClusterConfig = ClusterConfig()
    security: SecurityConfig = SecurityConfig()
    audit: AuditConfig = AuditConfig()
    operations: OperationsConfig = OperationsConfig()
    map: MapConfig = MapConfig()
    push: PushConfig = PushConfig()
    onboarding: OnboardingConfig = OnboardingConfig()
    cloud: CloudConfig = CloudConfig()
    backup: BackupConfig = BackupConfig()
    bodycams: BodycamsConfig = BodycamsConfig()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Almaty)") from None
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if value not in ("ru", "kk", "en"):
            raise ValueError("must be one of ru, kk, en")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kuzet.db'}"

    @property
    def recordings_path(self) -> Path:
        return self.storage.recordings_dir or self.data_dir / "recordings"

    @property
    def keys_path(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def events_path(self) -> Path:
        """Event snapshots and plate crops, beside the recordings."""
        return self.recordings_path.parent / "events" if self.storage.recordings_dir else self.data_dir / "events"

    @property
    def bodycams_path(self) -> Path:
        """Offloaded body-worn and dash camera files (originals, playable copies, uploads in progress)."""
        return self.recordings_path.parent / "bodycams" if self.storage.recordings_dir else self.data_dir / "bodycams"

    @property
    def config_file(self) -> Path:
        return self.data_dir / CONFIG_NAME


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """``KUZET_HTTP__PORT=9000`` → ``{"http": {"port": "9000"}}`` (double underscore nests)."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith("KUZET_") or key in ("KUZET_DATA_DIR", "KUZET_CONFIG") or key.startswith("KUZET_TEST"):
            continue
        parts = key[len("KUZET_"):].lower().split("__")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_data_dir(data: str | Path | None = None, environ: dict[str, str] | None = None) -> Path:
    environ = dict(os.environ) if environ is None else environ
    chosen = data or environ.get("KUZET_DATA_DIR") or DEFAULT_DATA_DIR
    return Path(chosen).expanduser().resolve()


def load_settings(data: str | Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read ``DATA/kuzet.toml`` (or ``KUZET_CONFIG``) and apply ``KUZET_*`` variables on top."""
    environ = dict(os.environ) if environ is None else environ
    data_dir = resolve_data_dir(data, environ)
    config_file = Path(environ["KUZET_CONFIG"]) if environ.get("KUZET_CONFIG") else data_dir / CONFIG_NAME
    from_file: dict[str, Any] = {}
    if config_file.exists():
        try:
            from_file = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: {exc}") from exc
    values = _merge(from_file, _env_overrides(environ))
    values["data_dir"] = data_dir
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration ({config_file}): {problems}") from exc


STARTER_CONFIG = """\
# Kuzet configuration. Every value can be overridden by an environment variable:
# KUZET_<NAME>, with a double underscore for sections (KUZET_HTTP__PORT=9000). The environment wins.

# Metadata database. Default: SQLite (WAL) in the data directory.
# database_url = "postgresql+psycopg://kuzet@127.0.0.1:5432/kuzet"

# Event bus: "memory://" runs in-process; production uses NATS JetStream.
# events_url = "nats://127.0.0.1:4222"

# MQTT broker for integrations (events on kuzet/<camera>/events).
# mqtt_url = "mqtt://127.0.0.1:1883"

# Language of the web console and reports for new users: ru, kk or en.
default_language = "ru"

# Local time zone of alarm schedules ("yard at night") and reports.
timezone = "Asia/Almaty"

[http]
host = "127.0.0.1"
port = 8080
# trusted_proxies = ["127.0.0.1"]   # reverse proxies whose X-Forwarded-For / -Proto are believed
# secure_cookies = true             # the session cookie is Secure anyway whenever the request came over HTTPS
# metrics_token = "…"               # /metrics needs this bearer token; without one only loopback may read it
# max_body_bytes = 1_048_576        # largest JSON or form body
# max_upload_bytes = 67_108_864     # largest uploaded file
# tls_cert = "/etc/kuzet/tls/fullchain.pem"   # serve HTTPS directly (see docs/deploy.md)
# tls_key = "/etc/kuzet/tls/privkey.pem"
# redirect_port = 80                # with TLS: plain HTTP here redirects to HTTPS
# hsts_seconds = 31_536_000         # Strict-Transport-Security on HTTPS (0: off)

[storage]
# recordings_dir = "/srv/kuzet/recordings"   # default: <data dir>/recordings
# max_bytes = 2_000_000_000_000               # archive ceiling on this volume
min_free_bytes = 1_073_741_824               # always keep 1 GiB free
# backend = "s3"     # write here first, upload each closed file to S3-compatible storage (docs/storage.md)
# [storage.s3]
# endpoint = "http://127.0.0.1:8333"   # SeaweedFS, MinIO, Ceph radosgw, AWS …
# bucket = "kuzet"
# access_key = "…"
# secret_key = "…"                     # or KUZET_STORAGE__S3__SECRET_KEY; never logged or shown
# region = "us-east-1"
# prefix = "recordings/"
# buffer_max_bytes = 8_589_934_592     # closed files waiting for upload before the alarm

[recorder]
enabled = true
transport = "tcp"        # RTSP transport: tcp or udp
fragment_seconds = 0.25  # fMP4 fragment length: live latency, and a crash loses at most one fragment
file_seconds = 60        # one file per camera per minute
stall_seconds = 10       # no frame for this long = stalled, reconnect

[operations]
enabled = true           # motion, object and plate detection while `kuzet serve` runs
workers = 2              # decode and analysis threads: one per core
# onnx_model = "/srv/kuzet/models/yolov8n.onnx"   # for cameras set to the "onnx" detector
object_fps = 2.0         # object detection at most this often per camera (on motion only)
plate_fps = 2.0          # plate reading at most this often per road / gate camera (on motion only)
events_retention_days = 90
webhook_max_attempts = 8 # retries back off 1 s, 2 s, 4 s … up to 10 minutes

[security]
session_hours = 12
max_failed_logins = 5
failed_login_window_minutes = 15
max_failed_logins_per_address = 30
min_password_length = 10
password_hash_concurrency = 2   # argon2 computations at once in a process
# camera_url_schemes = ["rtsp", "rtsps", "rtmp", "rtmps", "srt", "http", "https"]   # add "file" for local videos
# webhook_allowed_networks = ["10.20.0.0/16"]   # private networks webhooks may reach (refused otherwise)
# export_max_bytes = 17_179_869_184              # largest evidence bundle

[map]
# A tile server for the console's map (Leaflet URL template). Without one the map draws streets and places from the
# database, which works on closed police networks.
# tiles = "https://tiles.example.kz/{z}/{x}/{y}.png"
# attribution = "© OpenStreetMap contributors"
# max_zoom = 19

[push]
# Cameras behind NAT push RTMP (nginx's RTMP module) or RTSP RECORD to a per-camera URL with a secret key.
enabled = false
# public_host = "video.example.kz"   # the host name cameras reach
# rtmp_port = 1935
# rtsp_port = 8555

[onboarding]
# onvif_networks = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]   # where ONVIF probes may go (CIDR)
# onvif_multicast = true                                                 # WS-Discovery on the server's segment
[cloud]
# portal_url = "https://video.example.kz"   # activation QR codes and shared clip links point here
trial_days = 14          # a new subscriber watches free this long
code_days = 90           # printed activation codes expire after this
invoice_due_days = 15    # an invoice is due this many days after the run
grace_days = 0           # an unpaid flat is suspended this many days after the due date
check_seconds = 60       # how often agreements expire and unpaid flats are suspended

[bodycams]
# Docking stations that copy files locally put them into <watch_dir>/<device serial>/ (GPX/NMEA side files beside).
# watch_dir = "/srv/kuzet-dock"
settle_seconds = 10      # a watched file is taken once it has not changed this long
ingest_workers = 0       # watched files hashed at once (a dock offloads several devices together); 0: two per core
upload_expiry_hours = 72 # an unfinished resumable upload is dropped after this
position_posts_per_minute = 60  # a patrol car's live GPS posts (with its push key), per device
max_fixes_per_post = 600        # GPS fixes in one such post (a modem sends what it kept while offline)

[audit]
# Publish the audit chain's signed head outside the installation, so that truncation is detectable.
# witness_file = "/mnt/oversight/kuzet-heads.jsonl"
# witness_url = "https://oversight.example.kz/kuzet/heads"
witness_interval_minutes = 1440

[backup]
# Scheduled backups while `kuzet serve` runs (see docs/operations-guide.md); `kuzet backup` makes one by hand.
# dir = "/mnt/backup/kuzet"                    # another disk or host; nothing is scheduled without it
# passphrase_file = "/etc/kuzet/backup.pass"   # seals the keys and this file; keep a copy away from the backups
interval_hours = 24
keep = 7
recordings = false       # true: also the video files (large); false: their index only
"""
