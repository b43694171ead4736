"""The S3-compatible object store recordings go to (``[storage] backend = "s3"``).

A thin, synchronous layer over boto3 with what the archive needs and nothing more: upload a file and verify it (size
and SHA-256 checked by the server), read a byte range, delete keys in batches of up to 1,000 (DeleteObjects), tell
whether the store answers. Calls run in worker threads (never on an event loop); every request has a short connect
timeout, a bounded read timeout and exactly one attempt (no retry inside botocore), so an outage is seen at once and
the callers (the uploader, the readers) decide what to do.

boto3 rather than obstore: it is the reference S3 client every S3-compatible server is tested against (SeaweedFS,
MinIO, Ceph radosgw), exposes per-request checksums (``ChecksumAlgorithm="SHA256"``) and DeleteObjects directly, and
is a pure-Python wheel; obstore would save little here, where a recorder uploads a few files a minute per camera.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from kuzet.config import S3Config
from kuzet.store.db import EventLoopBlocked, on_serving_loop

log = logging.getLogger("kuzet.recording.objects")
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
READ_CHUNK = 1 << 20


class ObjectStoreError(Exception):
    """The object store could not be reached or refused a request (the message never holds the secret)."""


class ObjectStoreUnreachable(ObjectStoreError):
    """No answer: the connection failed or timed out (not: the store answered with an error)."""


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    sha256: str  # hex


def _not_on_the_loop(what: str) -> None:
    """Refuse a request on the server's event loop: a store that does not answer would hold every camera, viewer and
    lease renewal of the node for the whole timeout. Callers run requests in a thread."""
    if on_serving_loop():
        raise EventLoopBlocked(f"object store request on the event loop's thread: {what} (run it in a thread)")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ObjectStore:
    def __init__(self, config: S3Config) -> None:
        import boto3
        from botocore.config import Config

        self.config = config
        self.bucket = config.bucket
        self.prefix = config.prefix
        secret = config.secret_key.get_secret_value() if config.secret_key else None
        self.client = boto3.client(
            "s3", endpoint_url=config.endpoint, region_name=config.region, aws_access_key_id=config.access_key,
            aws_secret_access_key=secret,
            # One attempt per request ("total_max_attempts" counts the first; "max_attempts" 1 meant one retry more)
            config=Config(connect_timeout=min(config.connect_timeout, config.timeout), read_timeout=config.timeout,
                          retries={"total_max_attempts": 1, "mode": "standard"}, signature_version="s3v4",
                          s3={"addressing_style": "path"}, max_pool_connections=max(10, config.upload_workers * 2),
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        return f"ObjectStore(endpoint={self.config.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    def key_for(self, relative: str) -> str:
        """The object key of a recording at ``relative`` under the recordings directory."""
        return f"{self.prefix}{relative}"

    def _call(self, what: str, fn, /, **kwargs):  # noqa: ANN001, ANN202
        from botocore.exceptions import BotoCoreError, ClientError

        _not_on_the_loop(what)
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ObjectStoreError(f"{what}: {error.get('Code', '?')} {error.get('Message', '')}".strip()) from None
        except BotoCoreError as exc:
            raise ObjectStoreUnreachable(f"{what}: {type(exc).__name__}: {exc}") from None

    def ensure_bucket(self) -> None:
        """Create the bucket if it is not there (a store that refuses is left to say so on the first upload). A store
        that does not answer at all raises :class:`ObjectStoreUnreachable` after one request."""
        try:
            self._call("head bucket", self.client.head_bucket)
        except ObjectStoreUnreachable:
            raise
        except ObjectStoreError:
            self._call("create bucket", self.client.create_bucket)

    def reachable(self) -> bool:
        try:
            self._call("head bucket", self.client.head_bucket)
        except ObjectStoreError:
            return False
        return True

    def put_file(self, path: Path, key: str, sha256: str | None = None) -> Uploaded:
        """Upload one file and verify it: the server checks the SHA-256 sent with the body, and a HEAD afterwards must
        report the same size and checksum. Raises :class:`ObjectStoreError` on any mismatch."""
        sha256 = sha256 or file_sha256(path)
        size = path.stat().st_size
        checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
        with open(path, "rb") as fh:
            self._call(f"put {key}", self.client.put_object, Key=key, Body=fh, ContentLength=size,
                       ContentType="video/mp4", ChecksumSHA256=checksum)
        head = self._call(f"head {key}", self.client.head_object, Key=key, ChecksumMode="ENABLED")
        if head.get("ContentLength") != size:
            raise ObjectStoreError(f"verify {key}: {head.get('ContentLength')} bytes stored, {size} sent")
        stored = head.get("ChecksumSHA256")
        if stored is not None and stored != checksum:
            raise ObjectStoreError(f"verify {key}: stored checksum differs from the file's")
        return Uploaded(key, size, sha256)

    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> Uploaded:
        """Upload a small object from memory (an event picture); the server checks the SHA-256 sent with it."""
        digest = hashlib.sha256(data).digest()
        self._call(f"put {key}", self.client.put_object, Key=key, Body=data, ContentLength=len(data),
                   ContentType=content_type, ChecksumSHA256=base64.b64encode(digest).decode())
        return Uploaded(key, len(data), digest.hex())

    def get(self, key: str) -> bytes | None:
        """A whole (small) object, or None if there is no such key; other failures raise ObjectStoreError."""
        from botocore.exceptions import BotoCoreError, ClientError

        _not_on_the_loop(f"get {key}")
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):  # no bucket: nothing in it
                return None
            raise ObjectStoreError(f"get {key}: {error.get('Code', '?')} {error.get('Message', '')}".strip()) from None
        except BotoCoreError as exc:  # connection refused, timeouts
            raise ObjectStoreUnreachable(f"get {key}: {type(exc).__name__}: {exc}") from None
        try:
            return body.read()
        finally:
            body.close()

    def copy_verified(self, source: str, target: str, size: int) -> None:
        """Server-side copy of ``source`` to ``target``; the copy must have ``size`` bytes."""
        self._call(f"copy {source}", self.client.copy_object, Key=target,
                   CopySource={"Bucket": self.bucket, "Key": source})
        stored = self.size(target)
        if stored != size:
            raise ObjectStoreError(f"verify {target}: {stored} bytes after copy, {size} expected")

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of an object (fewer if the object is shorter)."""
        if end <= start:
            return b""
        body = self._call(f"get {key}", self.client.get_object, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def size(self, key: str) -> int | None:
        try:
            return self._call(f"head {key}", self.client.head_object, Key=key)["ContentLength"]
        except ObjectStoreError:
            return None

    def delete_many(self, keys: list[str]) -> list[str]:
        """Delete keys in DeleteObjects batches; returns the keys the store failed to delete (a key already gone
        counts as deleted)."""
        failed: list[str] = []
        for i in range(0, len(keys), DELETE_BATCH):
            batch = keys[i:i + DELETE_BATCH]
            result = self._call("delete objects", self.client.delete_objects,
                                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            failed.extend(e["Key"] for e in result.get("Errors", []) if e.get("Code") != "NoSuchKey")
        return failed

    def list_sizes(self, prefix: str = "") -> dict[str, int]:
        """Every key under ``self.prefix + prefix`` with its size (for checks and the bench)."""
        out: dict[str, int] = {}
        token = None
        while True:
            kwargs = {"Prefix": self.prefix + prefix, **({"ContinuationToken": token} if token else {})}
            page = self._call("list objects", self.client.list_objects_v2, **kwargs)
            out.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
            if not page.get("IsTruncated"):
                return out
            token = page.get("NextContinuationToken")


_clients: dict[str, ObjectStore] = {}
_clients_lock = threading.Lock()


def shared_object_store(config: S3Config) -> ObjectStore:
    """The process's one client for this configuration (boto3 clients are thread-safe and keep their connections):
    the archive, the uploader's readers and the event pictures of one installation share it."""
    secret = config.secret_key.get_secret_value() if config.secret_key else None
    ident = json.dumps([config.endpoint, config.bucket, config.prefix, config.region, config.access_key, secret,
                        config.timeout, config.connect_timeout, config.upload_workers])
    with _clients_lock:
        store = _clients.get(ident)
        if store is None:
            store = _clients[ident] = ObjectStore(config)
        return store
