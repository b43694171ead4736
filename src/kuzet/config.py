"""Configuration: a TOML file plus ``KUZET_*`` environment variables (the environment wins).

Every command finds its installation the same way: ``--data DIR`` or ``KUZET_DATA_DIR``. The data directory holds
``kuzet.toml``, the SQLite database, the keys and the recordings unless the configuration points elsewhere.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

DEFAULT_DATA_DIR = "kuzet-data"
CONFIG_NAME = "kuzet.toml"


class ConfigError(Exception):
    """The configuration file or environment holds a value Kuzet cannot use."""


class HttpConfig(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Cookies marked Secure only behind TLS; the embedded install serves plain HTTP on localhost.
    secure_cookies: bool = False


class StorageConfig(BaseModel):
    recordings_dir: Path | None = None
    max_bytes: int | None = Field(None, ge=0, description="Upper bound of the archive on this volume")
    min_free_bytes: int = Field(1 << 30, ge=0, description="Keep at least this much free on the volume")


class RecorderConfig(BaseModel):
    enabled: bool = True
    ffmpeg: str | None = None  # path to ffmpeg; default: system ffmpeg, else the imageio-ffmpeg binary
    transport: str = "tcp"
    fragment_seconds: float = Field(0.25, gt=0, le=2.0)
    file_seconds: int = Field(60, ge=5, le=60)
    stall_seconds: float = Field(10.0, gt=0)


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


class Settings(BaseModel):
    """The whole configuration of one installation."""

    data_dir: Path
    database_url: str | None = None
    events_url: str = Field("memory://", description="memory:// (in-process) or nats://host:port")
    mqtt_url: str | None = None
    keys_dir: Path | None = None
    default_language: str = "ru"
    timezone: str = "Asia/Almaty"  # local time of schedules and reports (Kazakhstan: UTC+5 since 2024)
    http: HttpConfig = HttpConfig()
    storage: StorageConfig = StorageConfig()
    recorder: RecorderConfig = RecorderConfig()
    security: SecurityConfig = SecurityConfig()
    operations: OperationsConfig = OperationsConfig()

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

[storage]
# recordings_dir = "/srv/kuzet/recordings"   # default: <data dir>/recordings
# max_bytes = 2_000_000_000_000               # archive ceiling on this volume
min_free_bytes = 1_073_741_824               # always keep 1 GiB free

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
"""
